"""The BERT family read into this project's gated encoder (BERT, MiniLM, BERT-Mini/Tiny).

transformers 5.x has no ``head_mask`` or ``prune_heads``, so instead of patching its attention we
read a ``BertModel``'s weights into this project's own ``BudgetedClassifier``, whose attention gates,
slices and returns weights itself. ``tests/test_bert.py`` checks that, with every gate open, its
hidden states equal ``BertModel``'s on padded batches. Finding and downloading the weights (Hub
name, folder, the MiniLM package) and the tokenizer is ``io/pretrained.py``'s job.

Two ways in: ``from_hf`` (``--kind bert``) keeps the encoder and puts a fresh masked-mean classifier on
it, for fine-tuning (the shipped MiniLM models were made so); the adapter at the bottom
(``MODEL_TYPES``, ``model_config``, ``rename``; see ``families/__init__.py``) reads a
``BertForSequenceClassification`` with its trained head: pooler dense + tanh on [CLS], then the classifier.
"""
from __future__ import annotations

import re

from ..config import ModelConfig
from ..encoder import BudgetedClassifier

WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"

# One table for both directions: Hugging Face ``BertModel``'s parameter-name prefix and this project's.
_NAME_PAIRS = [
    ("encoder.layer.{i}.attention.self.{qkv}.", "blocks.{i}.attention.{qkv}."),
    ("encoder.layer.{i}.attention.output.dense.", "blocks.{i}.attention.output."),
    ("encoder.layer.{i}.attention.output.LayerNorm.", "blocks.{i}.attention_norm."),
    ("encoder.layer.{i}.intermediate.dense.", "blocks.{i}.intermediate."),
    ("encoder.layer.{i}.output.dense.", "blocks.{i}.ffn_output."),
    ("encoder.layer.{i}.output.LayerNorm.", "blocks.{i}.ffn_norm."),
]
_PARTS = {"i": r"(?P<i>\d+)", "qkv": r"(?P<qkv>query|key|value)"}


def _prefix_pattern(template: str) -> re.Pattern:
    return re.compile("^" + re.escape(template).replace(r"\{", "{").replace(r"\}", "}").format(**_PARTS))


_HF_TO_LOCAL = [(_prefix_pattern(hf), local) for hf, local in _NAME_PAIRS]
_LOCAL_TO_HF = [(_prefix_pattern(local), hf) for hf, local in _NAME_PAIRS]


def _rename(name: str, table) -> str | None:
    for pattern, template in table:
        m = pattern.match(name)
        if m:
            return template.format(**m.groupdict()) + name[m.end():]
    return None


def hf_to_local(name: str) -> str | None:
    """Map a Hugging Face BertModel parameter name to this project's name (None: not used)."""
    name = name.removeprefix("bert.")
    if name.startswith("embeddings.") and "position_ids" not in name:
        return name
    return _rename(name, _HF_TO_LOCAL)


def local_to_hf(name: str) -> str | None:
    """This project's parameter name -> Hugging Face ``BertModel``'s (None: not part of BertModel)."""
    if name.startswith("embeddings."):
        return name
    return _rename(name, _LOCAL_TO_HF)


def config_from_hf(hf_config, n_classes: int, labels: list[str] | None = None) -> ModelConfig:
    if getattr(hf_config, "model_type", "bert") != "bert":
        raise ValueError(f"only BERT-architecture encoders are supported, not {hf_config.model_type!r}")
    if getattr(hf_config, "position_embedding_type", "absolute") != "absolute":
        raise ValueError("only absolute position embeddings are supported")
    from .common import hf_activation

    return ModelConfig(
        vocab_size=hf_config.vocab_size, n_classes=n_classes, d_model=hf_config.hidden_size,
        n_heads=hf_config.num_attention_heads, n_layers=hf_config.num_hidden_layers, d_ffn=hf_config.intermediate_size,
        max_len=hf_config.max_position_embeddings, dropout=hf_config.hidden_dropout_prob,
        attn_dropout=hf_config.attention_probs_dropout_prob, layer_norm_eps=hf_config.layer_norm_eps,
        embedding="bert", type_vocab_size=hf_config.type_vocab_size, pad_id=hf_config.pad_token_id or 0,
        labels=list(labels or []), hidden_act=hf_activation(hf_config, hf_config.hidden_act),
    )


def from_hf(hf_model, n_classes: int, labels: list[str] | None = None, source: str = "the model",
            freeze_word_embeddings: bool = True) -> BudgetedClassifier:
    """A BudgetedClassifier holding a ``BertModel``'s encoder weights, with a fresh classifier.

    The word embeddings are frozen by default: they are most of the parameters (11.7M of MiniLM's
    22.7M), fine-tuning them on a few thousand rows buys little, and frozen ones need not be stored
    again in each checkpoint.
    """
    model = BudgetedClassifier(config_from_hf(hf_model.config, n_classes, labels))
    state = {}
    for k, v in hf_model.state_dict().items():
        local = hf_to_local(k)
        if local is not None:
            state[local] = v
    missing, unexpected = model.load_state_dict(state, strict=False)
    left = [k for k in missing if not k.startswith(("classifier.", "gate.", "controllers."))]
    if left or unexpected:
        raise ValueError(f"{source} does not look like a BERT encoder (missing {left[:3]}, unexpected {unexpected[:3]})")
    if freeze_word_embeddings:
        model.embeddings.word_embeddings.weight.requires_grad_(False)
    return model


# ---------------------------------------------------------------- the BERT adapter (families/__init__.py)
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
