"""Where pretrained weights may come from, checked before anything is fetched or unpickled.

* A model is named by a Hugging Face Hub name (``owner/name``) or a local folder. Folders are
  accepted only under allow-listed roots when the caller gives roots (the app: the shipped and the
  user models folders, the MiniLM package), so a name field cannot probe arbitrary server paths.
* Weights load from safetensors only: a folder with only ``pytorch_model.bin`` (a pickle) is refused,
  and transformers is always called with ``use_safetensors=True, trust_remote_code=False``.
* When the Hub is unreachable, callers learn it in one quick probe instead of waiting out the Hub's
  retries; ``go_offline_if_unreachable`` also switches huggingface_hub to offline mode.
"""
from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

# What the Hub accepts as a repo id: owner/name (or a bare legacy name), letters, digits, - _ .
HUB_NAME_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
HF_LOAD_KWARGS = {"use_safetensors": True, "trust_remote_code": False}
PICKLE_FILES = ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack", "model.ckpt.index")

_probe_lock = threading.Lock()
_probe: dict = {}  # {"at": time, "ok": bool}
PROBE_TTL_S = 300.0


class SourceError(ValueError):
    """A model name or folder that may not or cannot be loaded; one sentence for the user."""


def is_hub_name(name: str) -> bool:
    """``owner/name`` as the Hub spells repo ids (no path separators beyond one '/', no '..')."""
    return bool(HUB_NAME_RE.match(name or "")) and ".." not in name and not name.endswith((".", "-"))


def _offline_flag() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = 1.5) -> bool:
    """One TCP connect to huggingface.co:443, remembered for five minutes; False when HF_HUB_OFFLINE is set."""
    if _offline_flag():
        return False
    with _probe_lock:
        if _probe and time.monotonic() - _probe["at"] < PROBE_TTL_S:
            return _probe["ok"]
        try:
            socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
            ok = True
        except OSError:
            ok = False
        _probe.update(at=time.monotonic(), ok=ok)
        return ok


def go_offline_if_unreachable() -> bool:
    """Set HF_HUB_OFFLINE=1 (environment and huggingface_hub's constant) when the Hub cannot be reached,
    so a later load fails in one step instead of after retries. Returns whether the Hub is offline."""
    if hub_reachable():
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as constants

        constants.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - comes with transformers
        pass
    return True


def in_hub_cache(repo_id: str, filename: str = "model.safetensors") -> bool:
    """Whether the local Hugging Face cache already holds this file (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename)
        return isinstance(found, str) and os.path.exists(found)
    except Exception:  # a malformed name, or no huggingface_hub: not cached
        return False


def hub_source_problem(source: str) -> str | None:
    """Why weights named by ``source`` cannot be had right now, or None: local folders and the MiniLM
    aliases are always fine; a Hub name is fine when cached or when the Hub answers."""
    from .pretrained import MINILM_ALIASES

    if not isinstance(source, str) or not source:
        return "the source is not named"
    if source in MINILM_ALIASES or Path(source).is_dir():
        return None
    if not is_hub_name(source):
        return f"{source!r} is neither a local folder nor a Hugging Face Hub name"
    if in_hub_cache(source):
        return None
    if not hub_reachable():
        return "it is not in the local Hugging Face cache and the Hub is unreachable from here (offline)"
    return None


def require_safetensors(folder: str | Path) -> None:
    """Refuse a local model folder whose weights are not in safetensors (pickles can run code)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    if any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.name in PICKLE_FILES or p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt"))
    if pickles:
        raise SourceError(f"{folder.name} holds only non-safetensors weights ({', '.join(pickles)}); they are not loaded, "
                          f"because unpickling can run arbitrary code")
    raise SourceError(f"{folder.name} has no model.safetensors")


def check_model_source(name: str, roots: list[str | Path] | None = None) -> str | None:
    """Why ``name`` may not be loaded, or None. For fields users type (the app's picker):

    * a Hub name (``owner/name``), or one of the MiniLM aliases, is accepted;
    * a folder only if ``roots`` is given and it resolves (links followed) inside one of them, and it
      holds safetensors weights;
    * anything else (absolute paths elsewhere, ``..``, odd characters) is refused.
    """
    from .pretrained import MINILM_ALIASES

    name = (name or "").strip()
    if not name:
        return "type a Hugging Face name such as prajjwal1/bert-mini"
    if name in MINILM_ALIASES:
        return None
    # transformers loads a local folder first when one exists under the name, so a name that exists
    # on disk is judged as a folder, whatever it looks like.
    looks_like_path = (name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1 or ".." in name
                       or os.path.lexists(name))
    if not looks_like_path and is_hub_name(name):
        return None
    if not roots:
        return "only Hugging Face Hub names (owner/name) are accepted here"
    try:
        path = Path(name).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        return "only Hugging Face Hub names (owner/name) or folders inside the allowed model folders are accepted here"
    allowed = [Path(r).expanduser().resolve() for r in roots]
    if not any(path == r or r in path.parents for r in allowed):
        return "only Hugging Face Hub names (owner/name) or folders inside the allowed model folders are accepted here"
    try:
        require_safetensors(path)
    except SourceError as exc:
        return str(exc)
    return None
