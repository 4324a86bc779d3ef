"""DistilBERT: BERT's post-LN blocks under other names, no token types, LayerNorm eps fixed at 1e-12.

Head (``DistilBertForSequenceClassification``): [CLS] -> pre_classifier -> ReLU -> dropout -> classifier.
Its config says ``dim``, ``hidden_dim``, ``n_heads``, ``n_layers``, ``activation`` (not BERT's names).
"""
from __future__ import annotations

from ..config import ModelConfig
from .common import renamed_by, hf_activation

MODEL_TYPES = ("distilbert",)
HEAD_PREFIXES = ("classifier.",)
_LAYER = r"transformer\.layer\.(\d+)\."
_TABLE = [
    (r"embeddings\.(word_embeddings|position_embeddings|LayerNorm)\.", r"embeddings.\1."),
    (_LAYER + r"attention\.q_lin\.", r"blocks.\1.attention.query."),
    (_LAYER + r"attention\.k_lin\.", r"blocks.\1.attention.key."),
    (_LAYER + r"attention\.v_lin\.", r"blocks.\1.attention.value."),
    (_LAYER + r"attention\.out_lin\.", r"blocks.\1.attention.output."),
    (_LAYER + r"sa_layer_norm\.", r"blocks.\1.attention_norm."),
    (_LAYER + r"ffn\.lin1\.", r"blocks.\1.intermediate."),
    (_LAYER + r"ffn\.lin2\.", r"blocks.\1.ffn_output."),
    (_LAYER + r"output_layer_norm\.", r"blocks.\1.ffn_norm."),
]
_HEAD = [(r"pre_classifier\.", "pre_classifier."), (r"classifier\.", "classifier.")]


def model_config(c, n_classes: int, labels: list[str]) -> ModelConfig:
    return ModelConfig(
        vocab_size=c.vocab_size, n_classes=n_classes, d_model=c.dim, n_heads=c.n_heads, n_layers=c.n_layers,
        d_ffn=c.hidden_dim, max_len=c.max_position_embeddings, dropout=c.dropout, attn_dropout=c.attention_dropout,
        layer_norm_eps=1e-12,  # hard-coded in transformers' DistilBERT, not in its config
        embedding="bert", type_vocab_size=0, pad_id=c.pad_token_id or 0, labels=list(labels),
        hidden_act=hf_activation(c, c.activation), pooling="first", head_act="relu", family="distilbert",
    )


def rename(name: str, c) -> list[str]:
    return renamed_by(name, "", _HEAD) or renamed_by(name, "distilbert.", _TABLE)
