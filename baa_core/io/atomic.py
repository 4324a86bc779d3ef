"""Atomic file replacement: a reader (or a server killed mid-write) sees the old file or the whole new one.

One rule for every file the project rewrites in place (a card, an upload, the app's on-disk caches): write
a temporary file beside the target, flush and fsync it, then ``os.replace`` it over the target. The
temporary file never outlives a failed write. Its name starts with ``tmp_prefix`` (hidden by default), so
the app's leftover cleaner can recognise one that a crash left behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: str | Path, data: bytes | str, *, tmp_prefix: str | None = None) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) atomically; failures are raised."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=tmp_prefix if tmp_prefix is not None else f".{path.name}.", suffix=".tmp",
                               dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
