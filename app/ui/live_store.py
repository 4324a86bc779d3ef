"""Live-sample accuracies kept on disk, so a restarted server shows them without measuring them again.

A live accuracy (``compute.live_accuracy``: the sliced model on the app's fixed test sample) depends
only on the checkpoint's weights and config, the sample's encoded examples and labels, the code that
computes it and torch. One file per (checkpoint, sample) holds every head set measured so far, under
a key made of all of these:

    {"format": "baa-live-accuracies", "key": {"checkpoint": sha256 of its files, "data": sha256 of the
     sample, "code": sha256 of baa_core/ and app/ui/compute.py, "torch": version}, "accuracies": {mask: acc}}

A file is trusted only when its key equals the one computed now and every entry is well formed; anything
else (stale key, truncated or hand-edited file, unreadable JSON) is ignored whole and its accuracies are
measured again, then written over it. Writes are atomic (a temporary file in the same folder, fsync,
``os.replace``): a server killed mid-write leaves the old file or the new one, never half of one.
Two servers sharing the folder may each rewrite the file; the last writer's entries win, and each entry
is a measurement by the same code on the same inputs, so losing one only means measuring it again.

The numbers read back are the same measurement, shown with the same label ("live"): this is a cache of
a measurement, not a second source. Pure Python and torch; no Streamlit.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import threading
from pathlib import Path

from baa_core.io.atomic import atomic_write  # noqa: F401 (also this module's name for it)

FORMAT = "baa-live-accuracies"
ROOT = Path(__file__).resolve().parents[2]
# What computes a live accuracy: the library (model, slicing, evaluation, data, loading) and the app's function.
CODE_PATHS = (ROOT / "baa_core", ROOT / "app" / "ui" / "compute.py")


def cache_dir() -> Path:
    """``$BAA_CACHE_DIR``, else ``.cache/`` at the repository root (ignored by git)."""
    return Path(os.environ.get("BAA_CACHE_DIR") or ROOT / ".cache") / "live"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 over the source of everything that computes a live accuracy (any edit makes a new key)."""
    h = hashlib.sha256()
    for base in CODE_PATHS:
        files = sorted(base.rglob("*.py")) if base.is_dir() else [base]
        for f in files:
            h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _checkpoint_files(folder: Path) -> list[Path]:
    tok = folder / "tokenizer"
    extra = sorted(p for p in tok.rglob("*") if p.is_file()) if tok.is_dir() else []
    return [p for p in (folder / "model.safetensors", folder / "config.json", folder / "vocab.json") if p.is_file()] + extra


@functools.lru_cache(maxsize=64)
def _checkpoint_digest(folder: str, stamp: tuple) -> str:
    h = hashlib.sha256()
    for f in _checkpoint_files(Path(folder)):
        h.update(str(f.relative_to(folder)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def checkpoint_digest(folder: str | Path) -> str:
    """sha256 of a checkpoint's weights, config and tokenizer files (remembered per file size and mtime)."""
    folder = Path(folder)
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in _checkpoint_files(folder))
    return _checkpoint_digest(str(folder), stamp)


def data_digest(ids: list[list[int]], labels, sample: list[int]) -> str:
    """sha256 of the sample: its indices, each example's token ids and its label (so the data file, the
    tokenizer and the sampling are all in it)."""
    h = hashlib.sha256()
    labels = [int(v) for v in (labels.tolist() if hasattr(labels, "tolist") else labels)]
    for i in sample:
        h.update(f"{i}:{labels[i]}:".encode() + ",".join(map(str, ids[i])).encode() + b";")
    return h.hexdigest()


def make_key(checkpoint: str, data: str) -> dict:
    import torch

    return {"checkpoint": checkpoint, "data": data, "code": code_version(), "torch": torch.__version__}


def mask_text(mask_key) -> str:
    """A head set as text: layers separated by '/', one 0/1 per head ("0110/1001")."""
    return "/".join("".join(str(int(v)) for v in row) for row in mask_key)


class LiveStore:
    """Accuracies per head set for one key, read from and written to one file."""

    def __init__(self, key: dict, folder: Path | None = None):
        self.key = dict(key)
        self.folder = Path(folder) if folder is not None else cache_dir()
        name = hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:32]
        self.path = self.folder / f"{name}.json"
        self._lock = threading.Lock()
        self.rejected: str | None = None  # why the file on disk was not used (None: used, or there was none)
        self._values = self._load()

    def _load(self) -> dict[str, float]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self.rejected = f"unreadable ({type(exc).__name__})"
            return {}
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            self.rejected = "not a live-accuracy file"
            return {}
        if raw.get("key") != self.key:
            self.rejected = "its key differs (other weights, data, code or torch)"
            return {}
        values = raw.get("accuracies")
        if not isinstance(values, dict) or not all(_valid(k, v) for k, v in values.items()):
            self.rejected = "malformed entries"
            return {}
        return {k: float(v) for k, v in values.items()}

    def get(self, mask_key) -> float | None:
        return self._values.get(mask_text(mask_key))

    def __len__(self) -> int:
        return len(self._values)

    def get_or_measure(self, mask_key, measure) -> float:
        """The stored accuracy of this head set, else ``measure()``, stored."""
        known = self.get(mask_key)
        if known is not None:
            return known
        accuracy = measure()
        self.put(mask_key, accuracy)
        return accuracy

    def put(self, mask_key, accuracy: float) -> None:
        """Remember one measurement and rewrite the file atomically (a failed write only loses the cache)."""
        if not _valid(mask_text(mask_key), accuracy):
            return
        with self._lock:
            self._values[mask_text(mask_key)] = float(accuracy)
            body = json.dumps({"format": FORMAT, "key": self.key, "accuracies": self._values}, sort_keys=True)
            try:
                atomic_write(self.path, body)
            except OSError:
                pass  # a read-only or full disk: the server still works, it measures again after a restart


def _valid(mask: object, value: object) -> bool:
    return (isinstance(mask, str) and bool(mask) and set(mask) <= {"0", "1", "/"}
            and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0.0 <= value <= 1.0)


def clean_leftovers(folder: Path | None = None, older_than_s: float = 600.0) -> int:
    """Remove temporary files of writes that a killed server left behind (old ones only: a younger one may be
    another server's write in progress). Returns how many were removed."""
    import time

    folder = Path(folder) if folder is not None else cache_dir()
    removed = 0
    for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
        try:
            if time.time() - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed += 1
        except OSError:
            pass
    return removed
