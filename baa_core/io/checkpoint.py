"""Checkpoints: a folder with ``model.safetensors``, ``config.json`` and ``card.json``.

* Weights are safetensors only; a folder holding pickle files (``.bin``, ``.pt``, ``.pkl``) is
  refused, never unpickled.
* Writes are atomic: everything goes to a hidden sibling folder first, which then replaces the
  target by rename, so a crash never leaves a half-written checkpoint under the real name.
* Every way loading can fail ends in one ``CheckpointError`` sentence naming the file and the fault.
* BERT-family checkpoints may leave out tensors that an installed package already holds (the
  frozen word embeddings) and store the rest in float16; ``config.json`` says where those come from.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from .atomic import atomic_write
from .card import Card
from ..model.config import ConfigError, ModelConfig
from ..model.encoder import BudgetedClassifier
from .tokenizers import HFTokenizer, WordTokenizer, tokenizer_from_dict

FORMAT = "baa-checkpoint"
VERSION = 1
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


class CheckpointError(Exception):
    """A checkpoint that cannot be loaded; the message is one sentence for the user."""


class TargetExistsError(CheckpointError):
    """Saving would replace a folder the caller did not agree to replace."""


def folder_stamp(folder: str | Path) -> tuple | None:
    """What identifies a folder's current contents (names, sizes, modification times); None if absent.
    A save that was allowed to replace one version of a folder compares this first, so it never
    replaces something else that appeared under the name meanwhile."""
    folder = Path(folder)
    if not folder.exists():
        return None
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()))
    except OSError:
        return ("unreadable",)


def free_name(folder: Path) -> Path:
    """``folder``, or the first ``folder-2``, ``folder-3``... that does not exist."""
    n = 2
    candidate = folder
    while candidate.exists():
        candidate = folder.with_name(f"{folder.name}-{n}")
        n += 1
    return candidate


def check_target(folder: str | Path, overwrite: bool = False) -> Path:
    """Refuse, before any work is done, a checkpoint target that cannot or may not be written:
    an existing folder (unless ``overwrite``), a path that is a file, or a parent that cannot be
    created or written. Returns the folder as a Path."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise TargetExistsError(f"{folder} is a file, not a checkpoint folder; choose another --out")
    if folder.exists() and not overwrite:
        raise TargetExistsError(f"{folder} already exists; pass --overwrite to replace it, or choose another --out")
    parent = folder.parent
    blocker = next((p for p in [parent, *parent.parents] if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise CheckpointError(f"cannot write {folder}: {blocker} is a file, not a folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise CheckpointError(f"cannot write {folder}: {exc.strerror or exc} ({parent})") from None
    return folder


@dataclass
class Checkpoint:
    model: BudgetedClassifier
    tokenizer: WordTokenizer | HFTokenizer
    card: dict
    path: Path | None = None

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def name(self) -> str:
        name = self.card.get("name") if isinstance(self.card, dict) else None
        return name if isinstance(name, str) and name else (self.path.name if self.path else "model")

    @functools.cached_property
    def typed_card(self) -> Card:
        """The card validated once (``baa_core.card``): what pages read; ``problems`` says what was dropped."""
        return Card.from_dict(self.card, n_classes=self.config.n_classes)


def _write_json(path: Path, data) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(folder: str | Path, model: BudgetedClassifier, tokenizer, card: dict, *, dtype: str = "float32",
                    external: dict | None = None, files: dict[str, str | Path] | None = None, overwrite: bool = False,
                    expect: tuple | None = None, if_taken: str = "refuse",
                    extra_config: dict | None = None) -> Path:
    """Write a checkpoint atomically and return the folder written. ``external`` = {"source": ...,
    "tensors": [names]} left out of the file; ``files`` = {name in the folder: path to copy} kept beside
    the weights (a CSV model's data); ``extra_config``: more top-level keys for config.json (loading ignores them).

    An existing ``folder`` is replaced only with ``overwrite=True``, and then, if ``expect`` (a
    ``folder_stamp``) is given, only while it still holds exactly that. Otherwise ``if_taken`` says
    what happens: "refuse" raises TargetExistsError, "rename" saves under the first free
    ``folder-N`` instead (the card's name follows), so a finished training is never lost.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        skip = set((external or {}).get("tensors", []))
        target = getattr(torch, dtype)
        state = {k: (v.detach().to("cpu", target) if v.is_floating_point() else v.detach().cpu()).contiguous()
                 for k, v in model.state_dict().items() if k not in skip}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": FORMAT})
        tok = tokenizer.to_dict()
        if isinstance(tokenizer, WordTokenizer):
            _write_json(tmp / "vocab.json", tok)
            tok = {"kind": "word", "file": "vocab.json"}
        else:
            tokenizer.save(tmp / "tokenizer")
        config = {"format": FORMAT, "version": VERSION, "model": model.config.to_dict(), "tokenizer": tok,
                  "dtype": dtype, "external": external, **(extra_config or {})}
        _write_json(tmp / "config.json", config)
        for name, source in (files or {}).items():
            shutil.copyfile(source, tmp / name)
        folder = _move_into_place(tmp, folder, card, overwrite, expect, if_taken)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _move_into_place(tmp: Path, folder: Path, card: dict, overwrite: bool, expect: tuple | None, if_taken: str) -> Path:
    """Rename the finished ``tmp`` folder to ``folder`` under the rules of ``save_checkpoint``."""
    asked = folder
    for _ in range(1000):
        stamp = folder_stamp(folder)
        if stamp is not None and not (overwrite and folder == asked and expect in (None, stamp)):
            if if_taken != "rename":
                why = " and changed since it was agreed to replace it" if overwrite and folder == asked else ""
                raise TargetExistsError(f"{folder} already exists{why}; nothing was replaced")
            folder = free_name(folder)
            continue
        _write_json(tmp / "card.json", {**card, "name": folder.name} if card.get("name") and folder != asked else card)
        if stamp is not None:
            old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(folder, old)
            os.rename(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
            return folder
        try:
            os.rename(tmp, folder)  # fails if a non-empty folder appeared since the check: look again
            return folder
        except OSError:
            if not folder.exists():
                raise
    raise TargetExistsError(f"no free name for {asked}")


def replace_folder(tmp: Path, folder: Path) -> None:
    """Move the finished folder ``tmp`` (a hidden sibling of ``folder``) to ``folder`` by rename, replacing an existing
    ``folder`` only once ``tmp`` is complete: a crash never leaves a half-written folder under the real name."""
    if folder.exists():
        old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(folder, old)
        os.rename(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, folder)


def update_card(folder: str | Path, card: dict) -> None:
    """Replace a checkpoint's card.json atomically (write beside it, then rename over it)."""
    atomic_write(Path(folder) / "card.json", json.dumps(card, indent=1), tmp_prefix=".card.json.")


def _read_json(path: Path, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"{path.parent.name} is not a checkpoint: {path.name} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); the {what} is corrupt") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} should hold a JSON object; the {what} is corrupt")
    return data


def read_card(folder: str | Path) -> dict:
    """A checkpoint's card.json alone (no weights loaded)."""
    return _read_json(Path(folder) / "card.json", "model card")


def check_files(folder: str | Path) -> str | None:
    """What is wrong with a checkpoint folder, found without loading its weights (config, tokenizer
    files, the safetensors header), in one sentence; None when nothing is. For listing many models
    quickly; ``load_checkpoint`` still checks everything else."""
    folder = Path(folder)
    weights = folder / "model.safetensors"
    try:
        if not weights.exists():
            raise CheckpointError(f"{folder.name} is not a checkpoint: model.safetensors is missing")
        config = _read_json(folder / "config.json", "configuration")
        if config.get("format") != FORMAT:
            raise CheckpointError(f"{folder.name}/config.json is not a {FORMAT} config (format={config.get('format')!r})")
        tok = config.get("tokenizer") or {}
        needed = folder / tok.get("file", "vocab.json") if tok.get("kind") == "word" else folder / "tokenizer"
        if not needed.exists():
            raise CheckpointError(f"{folder.name} is not a checkpoint: {needed.name} is missing")
        try:
            mcfg = ModelConfig.from_dict(config["model"])
        except (KeyError, TypeError, ConfigError) as exc:
            raise CheckpointError(f"{folder.name}/config.json does not describe a valid model: {exc}") from None
        _check_shapes(folder, mcfg, _header_shapes(weights), config)
    except CheckpointError as exc:
        return str(exc)
    except Exception as exc:  # safetensors reports a bad header with several exception types
        return f"{folder.name}/model.safetensors is corrupt or truncated ({exc})"
    return None


def load_checkpoint(folder: str | Path, device: str = "cpu") -> Checkpoint:
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"no checkpoint folder at {folder}")
    weights = folder / "model.safetensors"
    if not weights.exists():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(f"{folder.name} holds pickle weights ({', '.join(pickles)}); only safetensors are loaded, "
                                  f"because unpickling can run arbitrary code")
        raise CheckpointError(f"{folder.name} is not a checkpoint: model.safetensors is missing")
    config = _read_json(folder / "config.json", "configuration")
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{folder.name}/config.json is not a {FORMAT} config (format={config.get('format')!r})")
    version = config.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{folder.name}/config.json: version must be a whole number, not {version!r}")
    if version > VERSION:
        raise CheckpointError(f"{folder.name} was written by a newer version (format {config['version']}); upgrade baa_core")
    try:
        mcfg = ModelConfig.from_dict(config["model"])
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{folder.name}/config.json does not describe a valid model: {exc}") from None
    # Every tensor's shape is checked against the config from the file's header before anything is
    # allocated: a config.json asking for a vocabulary of 1e8 must not reserve 51 GB first.
    try:
        header = _header_shapes(weights)
    except Exception as exc:  # safetensors reports a bad header with several exception types
        raise CheckpointError(f"{folder.name}/model.safetensors is corrupt or truncated ({exc})") from None
    _check_shapes(folder, mcfg, header, config)
    card = _read_json(folder / "card.json", "model card")
    try:
        tok_cfg = config["tokenizer"]
        if tok_cfg.get("kind") == "word":
            tokenizer = tokenizer_from_dict(_read_json(folder / tok_cfg.get("file", "vocab.json"), "vocabulary"))
        else:
            tokenizer = tokenizer_from_dict(tok_cfg, folder / "tokenizer")
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{folder.name}: the tokenizer could not be loaded ({exc})") from None
    model = BudgetedClassifier(mcfg)
    state = _load_tensors(weights)
    external = config.get("external") or {}
    if external.get("tensors"):
        from .pretrained import load_external_tensors  # only BERT-family checkpoints have external tensors
        from .sources import hub_source_problem

        problem = hub_source_problem(external["source"])
        if problem:  # say so at once, instead of waiting out the Hub's retries offline
            raise CheckpointError(f"{folder.name} needs {external['source']} for its word embeddings: {problem}")
        try:
            state.update(load_external_tensors(external["source"], external["tensors"]))
        except Exception as exc:
            raise CheckpointError(f"{folder.name} needs {external['source']} for its word embeddings, which could not be "
                                  f"loaded ({exc})") from None
    _check_state(folder, model, state)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    for name in external.get("tensors", []):
        model.get_parameter(name).requires_grad_(False)
    return Checkpoint(model.to(device).eval(), tokenizer, card, folder)


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path.parent.name}/model.safetensors is corrupt or truncated ({exc})") from None


def _header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, read from the safetensors header alone (no tensor is loaded)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


class _NoRandomInitOnMeta(torch.overrides.TorchFunctionMode):
    """Meta tensors hold no values, so drawing them is skipped: ``normal_`` on the meta device goes
    through Python reference kernels whose first use imports ~1 s of torch internals (this runs when
    the app lists its models). Torch function modes are per thread: other threads are not affected."""

    SKIP = (torch.Tensor.normal_, torch.nn.init.normal_, torch.nn.init.trunc_normal_)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.SKIP:
            return args[0] if args else kwargs.get("tensor")
        return func(*args, **(kwargs or {}))


def expected_shapes(mcfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The state dict's shapes for a config, from a model built on the meta device (no memory used)."""
    with torch.device("meta"), _NoRandomInitOnMeta():
        skeleton = BudgetedClassifier(mcfg)
    return {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}


def _check_shapes(folder: Path, mcfg: ModelConfig, header: dict[str, tuple], config: dict) -> None:
    """The config must describe exactly the tensors the file holds (plus the external ones it names)."""
    external = config.get("external") or {}
    if not isinstance(external, dict) or not isinstance(external.get("tensors", []), list) or (
            external.get("tensors") and not isinstance(external.get("source"), str)):
        raise CheckpointError(f"{folder.name}/config.json: 'external' must name a source and a list of tensors")
    expected = expected_shapes(mcfg)
    outside = [k for k in external.get("tensors", []) if k in expected]
    _compare(folder, expected, {**header, **{k: expected[k] for k in outside if k not in header}})


def _check_state(folder: Path, model: BudgetedClassifier, state: dict[str, torch.Tensor]) -> None:
    _compare(folder, {k: tuple(v.shape) for k, v in model.state_dict().items()}, {k: tuple(v.shape) for k, v in state.items()})


def _compare(folder: Path, expected: dict[str, tuple], state: dict[str, tuple]) -> None:
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [(k, state[k], v) for k, v in expected.items() if k in state and tuple(state[k]) != tuple(v)]
    if missing:
        raise CheckpointError(f"{folder.name}/model.safetensors does not match its config.json: {len(missing)} tensors "
                              f"are missing, e.g. {missing[0]}")
    if unexpected:
        raise CheckpointError(f"{folder.name}/model.safetensors does not match its config.json: it has {len(unexpected)} "
                              f"tensors the model does not, e.g. {unexpected[0]}")
    if wrong:
        k, got, want = wrong[0]
        raise CheckpointError(f"{folder.name}/model.safetensors does not match its config.json: {k} has shape "
                              f"{list(got)} but the config needs {list(want)}")
