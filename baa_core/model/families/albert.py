"""ALBERT: factorised embeddings (``embedding_size`` -> hidden through ``embedding_hidden_mapping_in``)
and ONE set of layer weights shared by all layers (per group: ``num_hidden_groups``, usually 1).

How heads are gated per layer: the shared weights are *unshared at load*. Layer i gets its own copy
of its group's weights, so each layer has its own gates and is sliced on its own (layer 3 may keep
heads {0, 5} while layer 7 keeps {2, 9}). With every gate open the network computes exactly what
ALBERT computes; the price is memory: ALBERT-base's 7M shared layer parameters become 12 copies
(85M), about BERT-base's size. Fine-tuning after loading (``train --kind hf``) trains the copies
independently, so the result is no longer weight-shared. Sharing them instead would tie every
layer to one head set, or need per-layer slices of shared tensors, which saves no compute.

``inner_group_num`` > 1 (several different layers inside a group) is unrolled the same way: each
pass through a group adds ``inner_group_num`` blocks. Head: pooler (dense + tanh on [CLS]) -> classifier.
"""
from __future__ import annotations

import re

from ..config import ModelConfig
from .common import EMBEDDINGS, absolute_positions_only, renamed_by, hf_activation

MODEL_TYPES = ("albert",)
HEAD_PREFIXES = ("classifier.",)
_HEAD = [(r"albert\.pooler\.", "pre_classifier."), (r"classifier\.", "classifier.")]
_TABLE = EMBEDDINGS + [(r"encoder\.embedding_hidden_mapping_in\.", "embeddings.projection.")]
_SHARED = re.compile(r"^albert\.encoder\.albert_layer_groups\.(\d+)\.albert_layers\.(\d+)\.(.+)$")
_LAYER_PARTS = {
    "attention.query.": "attention.query.", "attention.key.": "attention.key.", "attention.value.": "attention.value.",
    "attention.dense.": "attention.output.", "attention.LayerNorm.": "attention_norm.",
    "ffn.": "intermediate.", "ffn_output.": "ffn_output.", "full_layer_layer_norm.": "ffn_norm.",
}


def model_config(c, n_classes: int, labels: list[str]) -> ModelConfig:
    absolute_positions_only(c)
    return ModelConfig(
        vocab_size=c.vocab_size, n_classes=n_classes, d_model=c.hidden_size, n_heads=c.num_attention_heads,
        n_layers=c.num_hidden_layers * c.inner_group_num, d_ffn=c.intermediate_size, max_len=c.max_position_embeddings,
        dropout=c.hidden_dropout_prob, attn_dropout=c.attention_probs_dropout_prob, layer_norm_eps=c.layer_norm_eps,
        embedding="bert", type_vocab_size=c.type_vocab_size, pad_id=c.pad_token_id or 0, labels=list(labels),
        hidden_act=hf_activation(c, c.hidden_act), embedding_size=c.embedding_size,  # always projected, even if equal
        pooling="first", head_act="tanh", family="albert",
    )


def group_of(layer: int, c) -> int:
    """transformers' rule: layer i runs group int(i / (num_hidden_layers / num_hidden_groups))."""
    return int(layer / (c.num_hidden_layers / c.num_hidden_groups))


def rename(name: str, c) -> list[str]:
    """A shared layer parameter maps to every block that runs it (the weights are unshared at load)."""
    m = _SHARED.match(name)
    if m is None:
        return renamed_by(name, "", _HEAD) or renamed_by(name, "albert.", _TABLE)
    group, inner, rest = int(m.group(1)), int(m.group(2)), m.group(3)
    part = next((p for p in _LAYER_PARTS if rest.startswith(p)), None)
    if part is None:
        return []
    local = _LAYER_PARTS[part] + rest[len(part):]
    return [f"blocks.{i * c.inner_group_num + inner}.{local}" for i in range(c.num_hidden_layers) if group_of(i, c) == group]
