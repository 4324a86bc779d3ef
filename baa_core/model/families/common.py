"""What every family adapter shares: reading a Hugging Face config's activation and renaming the
BERT-style encoder layers that RoBERTa, XLM-RoBERTa and ELECTRA inherited unchanged."""
from __future__ import annotations

import re

from ..config import ACTIVATIONS

# One BERT-style layer (attention.self.query ... output.LayerNorm) -> one of this project's blocks.
BERT_LAYER = [
    (r"encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.", r"blocks.\1.attention.\2."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attention.output."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"blocks.\1.attention_norm."),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.", r"blocks.\1.intermediate."),
    (r"encoder\.layer\.(\d+)\.output\.dense\.", r"blocks.\1.ffn_output."),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"blocks.\1.ffn_norm."),
]
EMBEDDINGS = [(r"embeddings\.(word_embeddings|position_embeddings|token_type_embeddings|LayerNorm)\.", r"embeddings.\1.")]


class UnsupportedModel(ValueError):
    """A model this project cannot gate faithfully; the message is one sentence saying why."""


def hf_activation(hf_config, name) -> str:
    """The config's activation name, if this project computes it exactly."""
    name = str(name)
    if name not in ACTIVATIONS:
        raise UnsupportedModel(f"its hidden activation {name!r} is not one this project computes ({', '.join(ACTIVATIONS)})")
    return name


def labels_of(hf_config) -> list[str]:
    """id2label in id order (Hugging Face writes LABEL_0, LABEL_1, ... when a model has no names)."""
    names = getattr(hf_config, "id2label", None) or {}
    return [str(names.get(i, names.get(str(i), f"LABEL_{i}"))) for i in range(hf_config.num_labels)]


def renamed_by(name: str, prefix: str, table: list[tuple[str, str]]) -> list[str]:
    """``name`` under ``prefix`` renamed by the first matching (pattern, replacement); [] if none."""
    for pattern, repl in table:
        full = "^" + re.escape(prefix) + pattern
        if re.match(full, name):
            return [re.sub(full, repl, name)]
    return []


def absolute_positions_only(hf_config) -> None:
    kind = getattr(hf_config, "position_embedding_type", "absolute") or "absolute"
    if kind != "absolute":
        raise UnsupportedModel(f"it uses {kind!r} position embeddings, and only absolute ones are implemented here")
