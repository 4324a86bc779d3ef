"""ELECTRA (the discriminator): BERT's layers, embeddings of ``embedding_size`` projected to the hidden
width when the two differ (``embeddings_project``), and ``ElectraClassificationHead``:
<s> -> dropout -> dense -> GELU (exact, whatever hidden_act says) -> dropout -> out_proj.
"""
from __future__ import annotations

from ..config import ModelConfig
from .common import BERT_LAYER, EMBEDDINGS, absolute_positions_only, renamed_by, hf_activation

MODEL_TYPES = ("electra",)
HEAD_PREFIXES = ("classifier.out_proj.",)
_TABLE = EMBEDDINGS + [(r"embeddings_project\.", "embeddings.projection.")] + BERT_LAYER
_HEAD = [(r"classifier\.dense\.", "pre_classifier."), (r"classifier\.out_proj\.", "classifier.")]


def model_config(c, n_classes: int, labels: list[str]) -> ModelConfig:
    absolute_positions_only(c)
    return ModelConfig(
        vocab_size=c.vocab_size, n_classes=n_classes, d_model=c.hidden_size, n_heads=c.num_attention_heads,
        n_layers=c.num_hidden_layers, d_ffn=c.intermediate_size, max_len=c.max_position_embeddings,
        dropout=c.hidden_dropout_prob, attn_dropout=c.attention_probs_dropout_prob, layer_norm_eps=c.layer_norm_eps,
        embedding="bert", type_vocab_size=c.type_vocab_size, pad_id=c.pad_token_id or 0, labels=list(labels),
        hidden_act=hf_activation(c, c.hidden_act),
        embedding_size=c.embedding_size if c.embedding_size != c.hidden_size else None,
        pooling="first", head_act="gelu", family="electra",
    )


def rename(name: str, c) -> list[str]:
    return renamed_by(name, "", _HEAD) or renamed_by(name, "electra.", _TABLE)
