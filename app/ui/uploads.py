"""Uploaded CSVs and the leftovers of interrupted saves, kept tidy. No Streamlit in this module.

* An upload is stored once under its SHA-256 (``.uploads/<digest>/<its own name>.csv``, or
  ``.uploads/<digest>.csv`` without a name), written to a hidden temporary file and renamed into place,
  so a crash never leaves a truncated file under the real name; a file already there is reused only
  after its digest is checked again (a truncated copy is rewritten).
* An upload the app rejects is deleted at once.
* ``clean_leftovers`` (run once when the server starts) removes what interrupted writes leave behind:
  ``.NAME.partial-*`` / ``.NAME.old-*`` folders of atomic checkpoint saves, temporary files, and
  uploads nobody used for a while.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from baa_core.io.atomic import atomic_write

UPLOADS = ".uploads"
LEFTOVER_AGE_S = 600.0  # a save takes seconds: anything this old is from a process that died
UPLOAD_AGE_S = 7 * 86400.0  # uploads unused for a week go
_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def upload_path(folder: Path, digest: str, name: str | None = None) -> Path:
    """Where an upload with this SHA-256 lives: ``.uploads/<digest>/<name>.csv`` (its own, sanitised name,
    so cards and messages name the user's file), or ``.uploads/<digest>.csv``."""
    base = Path(folder) / UPLOADS
    return base / digest[:16] / f"{name}.csv" if name else base / f"{digest[:16]}.csv"


def store_upload(content: bytes, folder: Path, digest: str | None = None, name: str | None = None) -> Path:
    """Store ``content`` under its digest in ``folder/.uploads`` and return the path; reuse a stored copy
    only if its bytes hash to the same digest."""
    digest = digest or hashlib.sha256(content).hexdigest()
    path = upload_path(folder, digest, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        try:
            if file_digest(path) == digest:
                os.utime(path)  # in use: keep it from expiring
                return path
        except OSError:
            pass
    atomic_write(path, content, tmp_prefix=".partial-")  # the leftover cleaner knows ".partial-" files
    return path


def discard(path: str | Path | None) -> None:
    """Delete a rejected upload (it was written before it could be checked), and its digest folder if empty."""
    if path is None:
        return
    path = Path(path)
    path.unlink(missing_ok=True)
    if path.parent.name != UPLOADS:
        try:
            path.parent.rmdir()
        except OSError:  # other files there, or already gone
            pass


def clean_leftovers(models_dir: Path, now: float | None = None, leftover_age_s: float = LEFTOVER_AGE_S,
                    upload_age_s: float = UPLOAD_AGE_S) -> list[str]:
    """Remove leftovers of interrupted writes in a models folder; return what was removed (names)."""
    models_dir = Path(models_dir)
    now = time.time() if now is None else now
    removed: list[str] = []
    if not models_dir.is_dir():
        return removed

    def old(p: Path, age: float) -> bool:
        try:
            return now - p.lstat().st_mtime > age
        except OSError:
            return False

    def remove(p: Path) -> None:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(str(p.relative_to(models_dir)))

    for p in models_dir.iterdir():
        if p.name.startswith(".") and (".partial-" in p.name or ".old-" in p.name) and old(p, leftover_age_s):
            remove(p)  # an atomic save's temporary or replaced folder
        elif p.is_dir() and not p.name.startswith("."):
            for q in p.iterdir():  # temporary files of card updates and CSV copies inside a checkpoint
                if q.name.startswith((".card.json.", ".data.csv.partial")) and old(q, leftover_age_s):
                    remove(q)
    uploads = models_dir / UPLOADS
    if uploads.is_dir():
        for p in [*uploads.iterdir(), *(q for d in uploads.iterdir() if d.is_dir() for q in d.iterdir())]:
            if (p.name.startswith(".partial-") and old(p, leftover_age_s)) or (p.suffix == ".csv" and old(p, upload_age_s)):
                remove(p)
        for d in uploads.iterdir():  # digest folders left empty
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
    return removed
