"""The Hugging Face encoder families this project reads, one adapter each, by ``model_type``.

    bert (incl. MiniLM, BERT-Mini/Tiny)   bert.py
    roberta, xlm-roberta                  roberta.py
    distilbert                            distilbert.py
    electra                               electra.py
    albert (shared layers unshared)       albert.py

An adapter is a module with ``MODEL_TYPES``, ``HEAD_PREFIXES`` (the Hugging Face names of the trained
classifier: missing from a checkpoint = a bare encoder), ``model_config(hf_config, n_classes, labels)``
and ``rename(hf_name, hf_config) -> [local names]`` (a list: ALBERT's shared weights go to every layer).
Finding, loading and checking a model's files is ``io/hf_classifier.py``'s job; adapters only map.
Adapters are imported lazily, so importing this package loads none of them.
"""
from __future__ import annotations

import importlib

from .common import UnsupportedModel, labels_of

ADAPTERS = {
    "bert": "baa_core.model.families.bert",
    "roberta": "baa_core.model.families.roberta",
    "xlm-roberta": "baa_core.model.families.roberta",
    "distilbert": "baa_core.model.families.distilbert",
    "electra": "baa_core.model.families.electra",
    "albert": "baa_core.model.families.albert",
}
SUPPORTED = tuple(ADAPTERS)
# Families refused with a reason more specific than "not implemented".
_DEBERTA = ("DeBERTa's disentangled attention adds content-to-position and position-to-content scores over relative "
            "positions, which this project's attention does not compute")
REFUSED = {
    "deberta": _DEBERTA,
    "deberta-v2": _DEBERTA,
    "mpnet": "MPNet adds a learned relative-position bias to every attention score, which this project's attention does not compute",
    "longformer": "Longformer attends through sliding windows plus global tokens, not the full attention this project gates",
    "bigbird": "BigBird attends through sparse block patterns, not the full attention this project gates",
    "funnel": "Funnel Transformer pools the sequence between blocks, which this project's encoder does not",
    "xlnet": "XLNet uses two-stream relative attention, which this project's attention does not compute",
}

__all__ = ["ADAPTERS", "REFUSED", "SUPPORTED", "UnsupportedModel", "adapter_for", "labels_of", "refusal"]


def refusal(model_type) -> str:
    """Why a model_type is not read here (for listings that must not import transformers)."""
    return REFUSED.get(model_type, "not implemented here")


def adapter_for(hf_config, name: str = "this model"):
    """The adapter module of ``hf_config.model_type``, or UnsupportedModel with why not (one sentence)."""
    kind = getattr(hf_config, "model_type", None)
    if kind not in ADAPTERS:
        raise UnsupportedModel(f"{name} is a {kind!r} model, which is refused ({refusal(kind)}); supported families: "
                               f"{', '.join(SUPPORTED)}")
    return importlib.import_module(ADAPTERS[kind])
