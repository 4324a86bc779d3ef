"""The files of an exported model: where it may go, its Hugging Face-style config keys, a one-file
tokenizer, and a zip of the folder. ``pipeline.export_model`` writes and measures the export.

An export folder holds what ``load_checkpoint`` opens (``model.safetensors`` with only the kept
heads, ``config.json``, ``card.json``, the tokenizer) and, for use without this project,
``config.json``'s Hugging Face keys (``model_type``, sizes, ``id2label``, ``pruned_heads``), a
``tokenizers`` JSON file and optionally ``model.onnx`` / ``model.int8.onnx``.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import torch

from ..model.encoder import BudgetedClassifier
from ..model.surgery import kept_heads
from .checkpoint import FORMAT, Checkpoint
from .tokenizers import _WORD_RE, WordTokenizer

ONNX_FILE, ONNX_INT8_FILE, WORD_TOKENIZER_FILE = "model.onnx", "model.int8.onnx", "tokenizer.json"


class ExportError(ValueError):
    """An export that cannot be done as asked; the message is one sentence for the user."""


def check_target(out: str | Path, overwrite: bool = False, source: str | Path | None = None) -> Path:
    """The export folder, after checking (before any work) that it may and can be written.

    An existing ``out`` is replaced only with ``overwrite``, and only when it is a checkpoint folder
    (or empty): ``--overwrite`` pointed at the wrong folder must not delete someone's files.
    """
    out = Path(out).expanduser()
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise ExportError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")
        if not out.is_dir():
            raise ExportError(f"{out} is a file, not a folder; choose another --out")
        if source is not None and out.resolve() == Path(source).resolve():
            raise ExportError(f"{out} is the model being exported; write the export to another folder")
        try:
            is_checkpoint = json.loads((out / "config.json").read_text()).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            is_checkpoint = False
        if not is_checkpoint and any(out.iterdir()):
            raise ExportError(f"{out} is not a checkpoint folder; --overwrite replaces only an earlier export or checkpoint")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{out.name}.probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ExportError(f"cannot write to {parent} ({exc.strerror or exc})") from None
    return out


def storage_dtype_of(ckpt: Checkpoint) -> str:
    """The dtype the source checkpoint stored its weights in: the export keeps it (the weights were rounded to it)."""
    try:
        return json.loads((Path(ckpt.path) / "config.json").read_text()).get("dtype") or "float32"
    except (OSError, TypeError, ValueError):
        return "float32"


def hf_config_keys(model: BudgetedClassifier, mask: torch.Tensor, labels: list[str], dtype: str) -> dict:
    """Hugging Face's config.json keys for the exported model: ``AutoConfig`` reads them; which heads were
    removed is ``pruned_heads`` (layer -> head indices, in the original numbering)."""
    cfg = model.config
    keep = kept_heads(mask)
    H = int(mask.shape[1])
    names = labels or [str(i) for i in range(cfg.n_classes)]
    head = ("the mean of the final hidden states over non-padding tokens" if cfg.pooling == "mean" else "the first token's "
            "final hidden state") + (f", a dense layer with {cfg.head_act}" if cfg.head_act else "") + ", then one Linear layer"
    keys = {
        "model_type": cfg.family or "bert", "architectures": ["BudgetedClassifier"], "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model, "num_hidden_layers": cfg.n_layers, "num_attention_heads": H,
        "attention_head_size": cfg.head_dim, "intermediate_size": cfg.d_ffn, "hidden_act": cfg.hidden_act,
        "max_position_embeddings": cfg.max_len + cfg.position_offset, "type_vocab_size": cfg.type_vocab_size,
        "layer_norm_eps": cfg.layer_norm_eps, "pad_token_id": cfg.pad_id, "torch_dtype": dtype,
        "id2label": {str(i): n for i, n in enumerate(names)}, "label2id": {n: i for i, n in enumerate(names)},
        "heads_per_layer": [len(k) for k in keep],
        "pruned_heads": {str(layer): [h for h in range(H) if h not in k] for layer, k in enumerate(keep) if len(k) < H},
        "classifier_head": head,
    }
    if cfg.embedding_size:
        keys["embedding_size"] = cfg.embedding_size
    return keys


def word_tokenizer_json(tokenizer: WordTokenizer) -> str:
    """A ``tokenizers`` JSON string that tokenizes exactly like ``WordTokenizer`` (lower-case, words and single
    punctuation marks, [UNK] for unknown words); truncation and the empty-text rule are the caller's."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(tokenizer.vocab)}, unk_token=tokenizer.vocab[tokenizer.unk_id]))
    if tokenizer.lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split(Regex(_WORD_RE.pattern), behavior="isolated"),
    ])
    return tok.to_str()


def write_tokenizer_json(tokenizer, folder: Path) -> str:
    """The tokenizer as one ``tokenizers`` JSON file in ``folder``; returns its path inside the folder."""
    if isinstance(tokenizer, WordTokenizer):
        (folder / WORD_TOKENIZER_FILE).write_text(word_tokenizer_json(tokenizer), encoding="utf-8")
        return WORD_TOKENIZER_FILE
    fast = folder / "tokenizer" / "tokenizer.json"
    if not fast.exists():  # a slow tokenizer was saved; its fast twin writes the one-file form
        backend = getattr(tokenizer.tok, "backend_tokenizer", None)
        if backend is None:
            return "tokenizer/"
        backend.save(str(fast))
    return "tokenizer/tokenizer.json"


def zip_folder(folder: str | Path) -> bytes:
    """A zip of ``folder`` (its files under a top-level folder of the same name), in memory."""
    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, Path(folder.name) / path.relative_to(folder))
    return buf.getvalue()
