"""Whether pretrained weights named by a checkpoint can be had right now, asked before anything waits.

A BERT-family checkpoint leaves out its frozen word embeddings and names where they come from (the
MiniLM package, a folder, or a Hugging Face Hub name). Offline, asking transformers or huggingface_hub
for a Hub name that is not cached waits out their retries (24-27 s on every page). So:

* ``hub_source_problem`` says at once why a named source cannot be had (not cached, Hub unreachable);
* ``go_offline_if_unreachable`` switches huggingface_hub to offline mode when the Hub does not answer,
  so anything that asks it anyway fails in one step.

Where a typed name or folder may come from (Hub names, folders inside allowed roots, safetensors only)
is ``hf_classifier.resolve_source`` / ``check_folder``'s job; every transformers call passes
``use_safetensors=True, trust_remote_code=False`` (tests/test_hostile.py checks each call).
"""
from __future__ import annotations

import os
from pathlib import Path

from .hf_classifier import _HUB_NAME, hub_reachable


def is_hub_name(name: str) -> bool:
    """``owner/name`` as the Hub spells repo ids (no '..', no other path separators)."""
    return bool(_HUB_NAME.match(name or "")) and ".." not in name


def go_offline_if_unreachable() -> bool:
    """Set HF_HUB_OFFLINE=1 (environment and huggingface_hub's constant) when the Hub cannot be reached,
    so a later load fails in one step instead of after retries. Returns whether the Hub is offline."""
    if hub_reachable():
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants

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
    except Exception:  # a malformed name, or an unusual cache layout: not cached
        return False


def hub_source_problem(source: str) -> str | None:
    """Why weights named by ``source`` cannot be had right now, or None: local folders and the MiniLM
    aliases are always fine; a Hub name is fine when cached or when the Hub answers."""
    from .minilm import MINILM_ALIASES

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
