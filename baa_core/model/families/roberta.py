"""RoBERTa and XLM-RoBERTa: BERT's layers with fairseq's position ids and a two-layer head.

* Position ids start at ``pad_token_id + 1`` and padding sits at ``pad_token_id`` (so the table has
  ``max_position_embeddings`` = 514 rows for 512 tokens): ``position_offset = pad_token_id + 1``.
* ``RobertaClassificationHead``: <s> -> dropout -> dense -> tanh -> dropout -> out_proj.
* XLM-RoBERTa is the same network with another vocabulary (its weights also sit under ``roberta.``).
"""
from __future__ import annotations

from ..config import ModelConfig
from .common import BERT_LAYER, EMBEDDINGS, absolute_positions_only, renamed_by, hf_activation

MODEL_TYPES = ("roberta", "xlm-roberta")
HEAD_PREFIXES = ("classifier.out_proj.",)
_TABLE = EMBEDDINGS + BERT_LAYER
_HEAD = [(r"classifier\.dense\.", "pre_classifier."), (r"classifier\.out_proj\.", "classifier.")]


def model_config(c, n_classes: int, labels: list[str]) -> ModelConfig:
    absolute_positions_only(c)
    offset = c.pad_token_id + 1
    return ModelConfig(
        vocab_size=c.vocab_size, n_classes=n_classes, d_model=c.hidden_size, n_heads=c.num_attention_heads,
        n_layers=c.num_hidden_layers, d_ffn=c.intermediate_size, max_len=c.max_position_embeddings - offset,
        dropout=c.hidden_dropout_prob, attn_dropout=c.attention_probs_dropout_prob, layer_norm_eps=c.layer_norm_eps,
        embedding="bert", type_vocab_size=c.type_vocab_size, pad_id=c.pad_token_id, labels=list(labels),
        hidden_act=hf_activation(c, c.hidden_act), position_offset=offset, pooling="first", head_act="tanh",
        family=c.model_type,
    )


def rename(name: str, c) -> list[str]:
    return renamed_by(name, "", _HEAD) or renamed_by(name, "roberta.", _TABLE)
