"""Other ways to run a (sliced) ``BudgetedClassifier``: int8, ONNX Runtime, and Hugging Face's BERT.

* ``quantize_int8``: dynamic int8 quantization of every Linear layer (weights int8 per output
  channel, activations quantized on the fly), on a copy.
* ``export_onnx`` / ``quantize_onnx_int8`` / ``OnnxRunner``: an ONNX file (``torch.onnx.export``,
  dynamic batch and length) that ONNX Runtime runs with no code from this project; its int8 form
  comes from ONNX Runtime's own dynamic quantizer.
* ``hf_reference``: the same weights in ``transformers.BertModel`` (SDPA, fp32), with this
  project's classifier applied to the masked mean: the yardstick users would otherwise run.

Every runner here is called as ``runner(input_ids, attention_mask)`` (B, T) and returns logits or
an object with ``.logits``; ``logits_of`` takes either.
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .encoder import BudgetedClassifier, masked_mean
from .families.bert import local_to_hf

INT8_BACKENDS = ("torch", "torchao")
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
# opset 23: attention is exported as ONNX's own Attention op (one kernel for QK^T, mask, softmax and
# x V, on (B, T, H*D) tensors, so no transposes around it) instead of the 7-10 ops SDPA decomposes into
# at opset 20; on MiniLM AG News at budget 0.5, one thread, it took the fp32 file from 0.98x to 1.02x
# [0.99, 1.04] of the torch sliced model's speed, and the int8 file from 3.12x to 3.52x over HF dense.
ONNX_OPSET = 23


class MissingPackage(ImportError):
    """An optional package is not installed; the message says which and how to get it."""


def require(*packages: str, purpose: str) -> None:
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise MissingPackage(f"{purpose} needs the package{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
                             f"pip install {' '.join(missing)} (or pip install -r requirements.txt)")


def onnx_missing() -> str | None:
    """Why ONNX export cannot run here, in one sentence; None when it can."""
    try:
        require(*ONNX_PACKAGES, purpose="ONNX export")
    except MissingPackage as exc:
        return str(exc)
    return None


def logits_of(out) -> torch.Tensor:
    """Logits from whatever a runner returns: a ClassifierOutput, a tensor or a numpy array."""
    if hasattr(out, "logits"):
        return out.logits
    return out if torch.is_tensor(out) else torch.from_numpy(out)


# ---------------------------------------------------------------- int8 (torch)
def quantize_int8(model: nn.Module, backend: str = "torch") -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` dynamically quantized to int8 (CPU inference only).

    ``torch``: ``torch.ao.quantization.quantize_dynamic`` (weights int8 per output channel, activations
    quantized on the fly) of the model's packed form (``PackedClassifier``: Q, K and V in one Linear,
    so each layer's input is quantized once instead of three times), with the weights packed for
    oneDNN where torch has it: on this project's Xeon (AVX512-VNNI, AMX) oneDNN's int8 GEMMs measured
    about 1.4x faster than fbgemm's on MiniLM at one thread, with the same int32-exact products. An
    ungated ``BudgetedClassifier`` gets the packed form; anything else is quantized as it is.
    ``torchao``: ``Int8DynamicActivationInt8WeightConfig``, whose eager CPU path quantizes
    activations op by op and measured about half as fast on MiniLM (it is meant to be compiled).
    ``torch.ao.quantization`` is deprecated upstream but present in the pinned torch 2.13; when a
    later torch drops it, ``torch`` falls back to torchao.
    """
    if backend not in INT8_BACKENDS:
        raise ValueError(f"the int8 backend must be one of {INT8_BACKENDS}, not {backend!r}")
    ao = getattr(getattr(torch, "ao", None), "quantization", None)
    if backend == "torch" and ao is not None and hasattr(ao, "quantize_dynamic"):
        packable = isinstance(model, BudgetedClassifier) and model.gate is None and model.controllers is None
        q = PackedClassifier(model).eval() if packable else copy.deepcopy(model).cpu().eval()
        engines = torch.backends.quantized.supported_engines
        before = torch.backends.quantized.engine
        # The engine chosen here only decides how the weights are packed; a packed weight keeps its
        # own kernels whatever the engine is later, so it is set for this call and put back.
        torch.backends.quantized.engine = "onednn" if "onednn" in engines else before
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the deprecation notice, once per call, says nothing new
                return ao.quantize_dynamic(q, {nn.Linear: ao.per_channel_dynamic_qconfig}, dtype=torch.qint8)
        finally:
            torch.backends.quantized.engine = before
    q = copy.deepcopy(model).cpu().eval()
    require("torchao", purpose="int8 quantization with torchao")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        quantize_(q, Int8DynamicActivationInt8WeightConfig(set_inductor_config=False))
    return q


# ---------------------------------------------------------------- ONNX
@torch.library.custom_op("baa::packed_attention", mutates_args=())
def packed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Multi-head attention on (B, T, H*D) tensors with an additive (B, 1, 1, T) mask -> (B, T, H*D).

    A custom op so that the ONNX export can write it as one ONNX ``Attention`` node (see
    ``_attention_onnx``); in torch it is plain SDPA."""
    B, T, HD = q.shape
    split = lambda x: x.view(B, T, num_heads, HD // num_heads).transpose(1, 2)  # noqa: E731  (B, H, T, D)
    ctx = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=bias)  # (B, H, T, D)
    return ctx.transpose(1, 2).reshape(B, T, HD)


@packed_attention.register_fake
def _(q, k, v, bias, num_heads):
    return torch.empty_like(q)


def _attention_onnx():
    """``packed_attention`` in ONNX: the opset-23 ``Attention`` op with 3-D Q, K, V. ONNX Runtime's CPU
    kernel wants the mask as (B, 1, T_q, T_kv), so the (B, 1, 1, T) bias is expanded first."""
    from onnxscript import opset23 as op

    def attention(q, k, v, bias, num_heads: int):
        shape = op.Shape(q)  # (B, T, H*D)
        batch, length = op.Slice(shape, [0], [1]), op.Slice(shape, [1], [2])
        mask = op.Expand(bias, op.Concat(batch, op.Constant(value_ints=[1]), length, length, axis=0))  # (B, 1, T, T)
        y, _, _, _ = op.Attention(q, k, v, mask, q_num_heads=num_heads, kv_num_heads=num_heads)
        return y

    return {torch.ops.baa.packed_attention.default: attention}


class _PackedAttention(nn.Module):
    """A sliced attention module with Q, K and V in one Linear (one GEMM instead of three)."""

    def __init__(self, attn):
        super().__init__()
        self.n_heads, self.head_dim = attn.n_heads, attn.head_dim
        inner = attn.n_heads * attn.head_dim
        self.qkv = nn.Linear(attn.d_model, 3 * inner)
        with torch.no_grad():
            self.qkv.weight.copy_(torch.cat([attn.query.weight, attn.key.weight, attn.value.weight]))
            self.qkv.bias.copy_(torch.cat([attn.query.bias, attn.key.bias, attn.value.bias]))
        self.output = attn.output

    def forward(self, x: torch.Tensor, bias: torch.Tensor, B: int, T: int) -> torch.Tensor:
        inner = self.n_heads * self.head_dim
        q, k, v = self.qkv(x).view(B, T, 3 * inner).split(inner, dim=-1)  # 3 x (B, T, H*D)
        ctx = packed_attention(q, k, v, bias, self.n_heads)  # (B, T, H*D)
        return self.output(ctx.reshape(B * T, inner))  # (B*T, d)


class PackedClassifier(nn.Module):
    """An ungated model in the form that is exported to ONNX and quantized to int8: (input_ids,
    attention_mask) -> logits.

    The same computation as ``BudgetedClassifier.forward`` with all of its heads (layers may keep
    different numbers of heads), written without its Python-level branches (an unpadded batch skips
    the mask there; here the mask is always applied, so one graph serves every batch). Q, K and V
    share one Linear, and the hidden states go through the blocks as a (batch x length, d) matrix:
    in ONNX every Linear is then a 2-D MatMul + Add that ONNX Runtime fuses into one Gemm (bias in the
    GEMM), and the residual Add + LayerNormalization is not fused into SkipLayerNormalization, whose
    CPU kernel in ONNX Runtime 1.32 measured about 4x slower than the two ops it replaces (the int8
    file ran 2.3x instead of 3.1x faster than HF dense with it).
    """

    def __init__(self, model: BudgetedClassifier):
        super().__init__()
        if model.gate is not None or model.controllers is not None:
            raise ValueError("only an ungated (dense or sliced) model can be exported; slice it at a budget first")
        self.model = copy.deepcopy(model).cpu().eval()
        self.attention = nn.ModuleList(_PackedAttention(b.attention) for b in self.model.blocks)
        for block in self.model.blocks:  # their Q, K, V live in self.attention now
            block.attention = None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        m = self.model
        B, T = input_ids.shape
        x = m.embeddings(input_ids)  # (B, T, d)
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min  # (B, 1, 1, T)
        x = x.reshape(B * T, x.shape[-1])  # (B*T, d)
        for block, attn in zip(m.blocks, self.attention):
            x = block.attention_norm(x + attn(x, bias, B, T))
            x = block.ffn_norm(x + block.ffn_output(block.act(block.intermediate(x))))
        return m.classify(x.view(B, T, -1), attention_mask)  # (B, C)


def export_onnx(model: BudgetedClassifier, path: str | Path) -> Path:
    """Write ``model`` (ungated) as an ONNX file with dynamic batch and sequence length; one file, no external data."""
    require(*ONNX_PACKAGES[:2], purpose="ONNX export")
    wrapper = PackedClassifier(model).eval()
    # The example only fixes the graph's shape symbols: two rows of some length >= 2, so that neither
    # dimension is specialised to 1 (the file then runs any batch and any length up to max_len).
    ids = torch.randint(1, model.config.vocab_size, (2, min(8, model.config.max_len)), generator=torch.Generator().manual_seed(0))
    example = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=model.config.max_len)
    path = Path(path)
    with warnings.catch_warnings(), _quiet("torch.onnx", "onnxscript"):
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (example["input_ids"], example["attention_mask"]), str(path), dynamo=True,
                          input_names=["input_ids", "attention_mask"], output_names=["logits"], opset_version=ONNX_OPSET,
                          dynamic_shapes={"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}},
                          custom_translation_table=_attention_onnx(), external_data=False, verbose=False)
    return path


def quantize_onnx_int8(src: str | Path, dst: str | Path) -> Path:
    """ONNX Runtime's dynamic int8 quantization of the weight MatMuls (the Linear layers) only:
    attention's activation x activation MatMuls and the embedding lookups stay fp32."""
    require("onnxruntime", "onnx", purpose="ONNX int8 quantization")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet("root", "onnxruntime"):
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"],
                         extra_options={"MatMulConstBOnly": True})
    return Path(dst)


class _quiet:
    """Silence chatty loggers (exporter progress, the quantizer's pre-processing advice) for a block, and keep
    anything they print off stdout (``bench-deploy --json`` prints only JSON there)."""

    def __init__(self, *names: str):
        self.loggers = [logging.getLogger(n) for n in names]
        self.redirect = contextlib.redirect_stdout(sys.stderr)

    def __enter__(self):
        self.levels = [lg.level for lg in self.loggers]
        for lg in self.loggers:
            lg.setLevel(logging.ERROR)
        self.redirect.__enter__()

    def __exit__(self, *exc):
        self.redirect.__exit__(*exc)
        for lg, level in zip(self.loggers, self.levels):
            lg.setLevel(level)


class OnnxRunner:
    """An ONNX Runtime session behind the runner interface; ``threads`` intra-op threads, one inter-op."""

    def __init__(self, path: str | Path, threads: int = 1):
        require("onnxruntime", purpose="running an ONNX model")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        feed = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        return torch.from_numpy(self.session.run(["logits"], feed)[0])

    def eval(self):  # the timing helpers call .eval() on every model they time
        return self


# ---------------------------------------------------------------- Hugging Face reference
def hf_bert_config(cfg, **kw):
    """A ``transformers.BertConfig`` with this model's shape (all heads; sliced layers cannot be described)."""
    from transformers import BertConfig

    return BertConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layers,
                      num_attention_heads=cfg.n_heads, intermediate_size=cfg.d_ffn, max_position_embeddings=cfg.max_len,
                      type_vocab_size=max(1, cfg.type_vocab_size), layer_norm_eps=cfg.layer_norm_eps, hidden_act=cfg.hidden_act,
                      pad_token_id=cfg.pad_id, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **kw)


class HFReference(nn.Module):
    """A Hugging Face BERT (SDPA, fp32) holding this model's weights, called like the other runners.

    ``classifier`` given: ``BertModel`` + this project's masked-mean head (the models this project
    trains); None: ``BertForSequenceClassification`` as it is (a BERT classifier read with its own head).
    """

    def __init__(self, bert: nn.Module, classifier: nn.Linear | None = None):
        super().__init__()
        self.bert, self.classifier = bert, classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
        if self.classifier is None:
            return out.logits  # (B, C)
        return self.classifier(masked_mean(out.last_hidden_state, attention_mask))  # (B, C)


def hf_reference(model: BudgetedClassifier) -> HFReference:
    """The model with all heads as Hugging Face's BERT with SDPA attention, built from the same weights: what
    users would run without this project. BERT-layout models only (this project's own, MiniLM, and BERT
    classifiers read with their head); other families: ValueError saying so.

    Word-level models have no token-type embedding; BertModel always adds one, so it gets a single
    all-zero row (adding zero changes nothing).
    """
    cfg = model.config
    if cfg.layer_heads != [cfg.n_heads] * cfg.n_layers:
        raise ValueError("Hugging Face's BertModel runs all heads in every layer; give the model with all of its heads")
    if cfg.family not in ("", "bert") or cfg.embedding_size or cfg.position_offset:
        raise ValueError(f"the Hugging Face reference here is BERT's; this is a {cfg.family} model")
    own_head = cfg.pooling == "mean" and cfg.head_act is None
    if not own_head and not (cfg.pooling == "first" and cfg.head_act == "tanh"):
        raise ValueError("BERT's classification head pools the first token through a tanh layer; this model's head does not")
    from transformers import BertForSequenceClassification, BertModel

    hf_cfg = hf_bert_config(cfg, attn_implementation="sdpa", num_labels=cfg.n_classes)
    prefix = "" if own_head else "bert."
    state = {prefix + local_to_hf(k): v for k, v in model.state_dict().items() if local_to_hf(k)}
    if not cfg.type_vocab_size:
        state[prefix + "embeddings.token_type_embeddings.weight"] = torch.zeros(1, cfg.d_model)
    if own_head:
        hf = BertModel(hf_cfg, add_pooling_layer=False).eval()
    else:
        hf = BertForSequenceClassification(hf_cfg).eval()
        for k, v in model.state_dict().items():
            if k.startswith("pre_classifier."):
                state["bert.pooler.dense." + k.removeprefix("pre_classifier.")] = v
            elif k.startswith("classifier."):
                state[k] = v
    missing, unexpected = hf.load_state_dict(state, strict=False)
    missing = [k for k in missing if "position_ids" not in k]
    if missing or unexpected:
        raise ValueError(f"this model's weights do not map onto BERT (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return HFReference(hf, copy.deepcopy(model.classifier) if own_head else None).eval()
