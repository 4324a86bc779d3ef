"""Any common Hugging Face encoder classifier, with its trained head, as a ``BudgetedClassifier``.

``load_classifier(NAME_OR_FOLDER)`` reads a model through the usual ``AutoConfig`` /
``AutoModelForSequenceClassification`` (always ``use_safetensors=True, trust_remote_code=False``)
and maps its weights into this project's gated encoder with the adapter of its ``model_type``
(``model/families``). The fine-tuned head, ``id2label`` and the tokenizer come along, so the
predictions are the model's own; ``tests/test_families.py`` checks the logits against
``AutoModelForSequenceClassification`` on padded batches for every family.

Before transformers is asked for a Hub name, the Hub's reachability (or HF_HUB_OFFLINE) and the local
cache are checked, so an offline name fails in one sentence instead of after 24 s of retries. Folders
must hold safetensors weights. ``align_labels`` renumbers a dataset's labels to the head's order.
"""
from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ..model.families import UnsupportedModel, adapter_for, labels_of

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack", "model.ckpt.index")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


class ModelSourceError(ValueError):
    """A model name or folder that cannot be loaded; the message is one sentence for the user."""


# ---------------------------------------------------------------- where the model comes from
_ONLINE: dict[str, tuple[float, bool]] = {}


def hub_reachable(timeout: float = 1.5, ttl: float = 60.0) -> bool:
    """False when HF_HUB_OFFLINE is set or the Hub's host does not answer within ``timeout`` seconds
    (asked once a minute): the check that spares an offline user transformers' retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    from urllib.parse import urlparse

    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    seen = _ONLINE.get(host)
    if seen is not None and time.monotonic() - seen[0] < ttl:
        return seen[1]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        ok = True
    except OSError:
        ok = False
    _ONLINE[host] = (time.monotonic(), ok)
    return ok


def _cached(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # an unusual cache layout is the same as no cache
        return False


@dataclass
class Source:
    path: str  # the folder, or the Hub name
    local_only: bool  # True: read from disk only (a folder, the MiniLM package, or the Hub cache)
    label: str  # what the user named


def resolve_source(name_or_path: str | os.PathLike | None) -> Source:
    """A local folder (checked for safetensors weights), the MiniLM package, or a Hub name (checked
    for a reachable Hub or a cached copy), before transformers gets a chance to retry for 24 s."""
    from .minilm import MINILM_ALIASES, resolve_source as minilm_folder

    label = "all-MiniLM-L6-v2" if name_or_path is None else str(name_or_path).strip()
    if name_or_path is None or label in MINILM_ALIASES:
        return Source(minilm_folder(None), True, label)
    if not label:
        raise ModelSourceError("no model given: name a Hugging Face model or a folder")
    folder = Path(label).expanduser()
    if folder.exists():
        check_folder(folder)
        return Source(str(folder), True, label)
    if not _HUB_NAME.match(label):
        raise ModelSourceError(f"{label} is neither a folder nor a Hugging Face model name")
    if hub_reachable():
        return Source(label, False, label)
    if _cached(label):
        return Source(label, True, label)
    why = "switched off (HF_HUB_OFFLINE)" if os.environ.get("HF_HUB_OFFLINE") else "unreachable from this machine"
    raise ModelSourceError(f"{label} is not a local folder, the Hugging Face Hub is {why}, and no copy of it is cached")


def check_folder(folder: Path) -> None:
    """A Hugging Face model folder with safetensors weights, or one sentence saying what it lacks."""
    if not folder.is_dir():
        raise ModelSourceError(f"{folder} is a file; give the model's folder")
    if not (folder / "config.json").exists():
        raise ModelSourceError(f"{folder.name} has no config.json, so it is not a Hugging Face model folder")
    if not any((folder / f).exists() for f in WEIGHT_FILES):
        pickles = [f for f in PICKLE_FILES if (folder / f).exists()]
        raise ModelSourceError(f"{folder.name} has no safetensors weights" + (
            f" (only {', '.join(pickles)}, which are not loaded because unpickling can run arbitrary code)" if pickles else ""))


# ---------------------------------------------------------------- loading
@dataclass
class HFClassifier:
    model: object  # BudgetedClassifier, eval mode
    tokenizer: object  # HFTokenizer
    family: str  # the model_type
    source: str  # the name or folder the user gave
    trained_head: bool  # False: a bare encoder; the head is this project's fresh initialisation
    labels: list[str]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]


def load_classifier(name_or_path, *, fresh_labels: list[str] | None = None,
                    require_trained_head: bool = False) -> HFClassifier:
    """A supported encoder classifier as a dense ``BudgetedClassifier`` with its own head and labels.

    A bare encoder (no trained classifier in the checkpoint) gets its family's head freshly
    initialised for ``fresh_labels`` (for fine-tuning), or is refused with ``require_trained_head``.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from ..model.encoder import BudgetedClassifier

    src = resolve_source(name_or_path)
    kw = dict(trust_remote_code=False, local_files_only=src.local_only)
    try:
        hf_cfg = AutoConfig.from_pretrained(src.path, **kw)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError... for unusable configs
        raise ModelSourceError(f"{src.label}: its config could not be read ({_first_line(exc)})") from None
    adapter = adapter_for(hf_cfg, src.label)  # refuse before loading any weights
    _model_config(adapter, hf_cfg, max(2, hf_cfg.num_labels), [], src.label)  # (its activation, positions...)
    try:
        hf, info = AutoModelForSequenceClassification.from_pretrained(src.path, use_safetensors=True,
                                                                      output_loading_info=True, **kw)
    except Exception as exc:
        raise ModelSourceError(f"{src.label} could not be loaded as a {hf_cfg.model_type} classifier with safetensors "
                               f"weights ({_first_line(exc)})") from None
    missing = set(info.get("missing_keys") or [])
    trained = not any(k.startswith(adapter.HEAD_PREFIXES) for k in missing)
    if not trained and require_trained_head:
        raise ModelSourceError(f"{src.label} has no trained classification head (it is a bare {hf_cfg.model_type} encoder), "
                               f"so it makes no predictions of its own; fine-tune it first: train --kind hf --base {src.label}")
    if trained and (getattr(hf_cfg, "problem_type", None) == "regression" or hf_cfg.num_labels < 2):
        raise UnsupportedModel(f"{src.label} is a regression model (one output), and only classifiers are supported")
    labels = labels_of(hf_cfg) if trained or not fresh_labels else list(fresh_labels)
    mcfg = _model_config(adapter, hf_cfg, len(labels), labels, src.label)
    model = BudgetedClassifier(mcfg)
    state = {}
    for name, tensor in hf.state_dict().items():
        if name in missing:  # transformers' fresh initialisation, not the checkpoint's
            continue
        value = tensor.detach().float() if tensor.is_floating_point() else tensor.detach()
        for local in adapter.rename(name, hf_cfg):
            state[local] = value.clone()  # ALBERT: one tensor per layer that shared it
    if not trained:
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    left, unexpected = model.load_state_dict(state, strict=False)
    allowed = () if trained else ("classifier.", "pre_classifier.")
    left = [k for k in left if not k.startswith(allowed)]
    if left or unexpected:
        raise ModelSourceError(f"{src.label} does not look like a {hf_cfg.model_type} encoder classifier (missing "
                               f"{left[:2]}, unexpected {unexpected[:2]})")
    tokenizer = load_tokenizer(src, mcfg.pad_id)
    return HFClassifier(model.eval(), tokenizer, hf_cfg.model_type, src.label, trained, labels)


def _model_config(adapter, hf_cfg, n_classes: int, labels: list[str], label: str):
    try:
        return adapter.model_config(hf_cfg, n_classes, labels)
    except ValueError as exc:  # UnsupportedModel (an activation, relative positions) or a ConfigError
        raise UnsupportedModel(f"{label} is refused: {exc}") from None


def load_tokenizer(src: Source, pad_id: int):
    from transformers import AutoTokenizer

    from .tokenizers import HFTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(src.path, trust_remote_code=False, local_files_only=src.local_only)
    except Exception as exc:
        raise ModelSourceError(f"{src.label} has no tokenizer that loads here ({_first_line(exc)})") from None
    out = HFTokenizer(tok, src.label)
    if out.pad_id is None:  # some tokenizers name no pad token; the model's config does
        out.pad_id = pad_id
    return out


# ---------------------------------------------------------------- the data's labels, in the head's order
_GENERIC = re.compile(r"^LABEL_(\d+)$")


def label_mapping(data_labels: list[str], model_labels: list[str]) -> tuple[list[int], str]:
    """Where each of the data's classes sits in the model's head, and how that was decided.

    By name (case-insensitive), else by integer id (a label column holding 0..C-1), else by position
    when the model's labels carry no names (LABEL_0, LABEL_1, ...) and the counts agree.
    """
    index = {m.strip().casefold(): i for i, m in enumerate(model_labels)}
    if all(str(d).strip().casefold() in index for d in data_labels):
        return [index[str(d).strip().casefold()] for d in data_labels], "by name"
    if all(str(d).strip().isdigit() and int(d) < len(model_labels) for d in data_labels):
        return [int(d) for d in data_labels], "by integer id"
    generic = all(_GENERIC.match(m) and int(_GENERIC.match(m).group(1)) == i for i, m in enumerate(model_labels))
    if generic and len(data_labels) == len(model_labels):
        return list(range(len(data_labels))), "by position (the model's labels have no names)"
    shown = lambda xs: ", ".join(map(str, xs[:6])) + (", ..." if len(xs) > 6 else "")  # noqa: E731
    raise ModelSourceError(f"the data's labels ({shown(data_labels)}) do not match the model's ({shown(model_labels)}); "
                           f"use the model's label names or its integer ids in the label column")


def align_labels(data, model_labels: list[str]):
    """``data`` (a TaskData) with every split's label ids renumbered to the model's head."""
    from .data import TaskData, TextDataset

    mapping, how = label_mapping(list(data.label_names), list(model_labels))
    if how == "by name" and list(data.label_names) == list(model_labels):
        return data
    split = lambda ds: TextDataset(ds.texts, [mapping[y] for y in ds.labels], list(model_labels), ds.name)  # noqa: E731
    return TaskData(split(data.train), split(data.val), split(data.test), data.source, data.task,
                    {**data.extra, "label_alignment": how})
