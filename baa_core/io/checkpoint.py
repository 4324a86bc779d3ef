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

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from ..model.config import ConfigError, ModelConfig
from ..model.encoder import BudgetedClassifier
from .tokenizers import HFTokenizer, WordTokenizer, tokenizer_from_dict

FORMAT = "baa-checkpoint"
VERSION = 1
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


class CheckpointError(Exception):
    """A checkpoint that cannot be loaded; the message is one sentence for the user."""


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
        return self.card.get("name") or (self.path.name if self.path else "model")


def _write_json(path: Path, data) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(folder: str | Path, model: BudgetedClassifier, tokenizer, card: dict, *, dtype: str = "float32",
                    external: dict | None = None, files: dict[str, str | Path] | None = None) -> Path:
    """Write a checkpoint atomically. ``external`` = {"source": ..., "tensors": [names]} left out of the file;
    ``files`` = {name in the folder: path to copy} kept beside the weights (a CSV model's data)."""
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
                  "dtype": dtype, "external": external}
        _write_json(tmp / "config.json", config)
        _write_json(tmp / "card.json", card)
        for name, source in (files or {}).items():
            shutil.copyfile(source, tmp / name)
        if folder.exists():
            old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(folder, old)
            os.rename(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def update_card(folder: str | Path, card: dict) -> None:
    """Replace a checkpoint's card.json atomically (write beside it, then rename over it)."""
    folder = Path(folder)
    tmp = folder / f".card.json.{uuid.uuid4().hex[:8]}"
    try:
        _write_json(tmp, card)
        os.replace(tmp, folder / "card.json")
    finally:
        tmp.unlink(missing_ok=True)


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
    from safetensors import safe_open

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
        with safe_open(str(weights), framework="pt") as f:
            f.keys()
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
    if config.get("version", 0) > VERSION:
        raise CheckpointError(f"{folder.name} was written by a newer version (format {config['version']}); upgrade baa_core")
    try:
        mcfg = ModelConfig.from_dict(config["model"])
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{folder.name}/config.json does not describe a valid model: {exc}") from None
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


def _check_state(folder: Path, model: BudgetedClassifier, state: dict[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items() if k in state and state[k].shape != v.shape]
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
