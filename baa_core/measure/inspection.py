"""One input, looked at closely: prediction, the heads it used, attention maps, measured latency.

This is what the app's per-input inspector and attention pages show, as plain data:
``inspect_text`` runs the eager reference path (so attention weights exist) at a budget (BAA,
static), with a per-input controller (BudgetFormer), or densely, and times the structural path
that a deployment would run for the same input.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..io.data import collate
from ..model.structural import SlicedHeadCache, structural_forward
from ..model.surgery import all_heads_mask, slice_heads
from .cost import model_flops
from .latency import compare_latency

MAX_CHARS = 100_000  # tokenising more than this is wasted work: the model reads max_len tokens anyway


class InputError(ValueError):
    """Text the model cannot be asked about, with a message for the user."""


@dataclass
class EncodedText:
    input_ids: torch.Tensor  # (1, T)
    attention_mask: torch.Tensor  # (1, T)
    tokens: list[str]
    truncated: bool
    n_words: int
    unknown_tokens: int = 0  # tokens the vocabulary does not know ([UNK])
    content_tokens: int = 0  # tokens that stand for the text: not [CLS], [SEP] or other special tokens


def unknown_and_content(tokenizer, ids: list[int]) -> tuple[int, int]:
    """(unknown, content) token counts of one encoded text. A BERT tokenizer adds [CLS] and [SEP]: they are
    not content, so an emoji-only text reads 1 unknown of 1 (not 1 of 3) on MiniLM as on the word model."""
    hf = getattr(tokenizer, "tok", None)  # baa_core.io.tokenizers.HFTokenizer wraps a Hugging Face tokenizer
    unk = hf.unk_token_id if hf is not None else getattr(tokenizer, "unk_id", None)
    special = set(hf.all_special_ids) - {unk} if hf is not None else {getattr(tokenizer, "pad_id", None)}
    content = [i for i in ids if i not in special]
    return sum(i == unk for i in content) if unk is not None else 0, len(content)


def encode_text(tokenizer, text: str, max_len: int) -> EncodedText:
    """Validate and encode one text; long texts are cut to ``max_len`` tokens and say so."""
    if text is None or not str(text).strip():
        raise InputError("the text is empty: type a sentence or pick an example")
    text = str(text)
    n_words = len(text.split())
    clipped = text[:MAX_CHARS]
    ids = tokenizer.encode([clipped], max_len)[0]
    full_len = len(tokenizer.encode([clipped], max_len + 1)[0])
    batch = collate([ids], tokenizer.pad_id)
    unknown, content = unknown_and_content(tokenizer, ids)
    return EncodedText(batch["input_ids"], batch["attention_mask"], tokenizer.tokens(ids),
                       truncated=full_len > len(ids) or len(text) > MAX_CHARS, n_words=n_words,
                       unknown_tokens=unknown, content_tokens=content)


@dataclass
class Inspection:
    tokens: list[str]
    truncated: bool
    label_names: list[str]
    probs: list[float]
    prediction: int
    head_weights: torch.Tensor  # (L, H) weights applied to each head for this input (1 = on)
    attentions: list[torch.Tensor] | None  # per layer (H, T, T), every head (inactive ones included)
    gate_values: torch.Tensor | None = None  # (L, H) BAA soft gates at the budget
    s: list[float] | None = None  # BudgetFormer: budget per block
    q: torch.Tensor | None = None  # BudgetFormer: (L, H) relevance q = softmax(r / tau)
    # BudgetFormer: (L, H) raw scores r. Rank heads by these: q rounds to 0 for all but the top head once tau
    # is small, so ranks by q fall back to index order, while the controller picks its heads by r.
    scores: torch.Tensor | None = None
    unknown_tokens: int = 0  # see EncodedText
    content_tokens: int = 0
    flops: float = 0.0
    dense_flops: float = 0.0
    latency_ms: float | None = None
    dense_latency_ms: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.label_names[self.prediction] if self.label_names else str(self.prediction)

    @property
    def confidence(self) -> float:
        return self.probs[self.prediction]

    @property
    def active(self) -> torch.Tensor:
        return self.head_weights > 0

    @property
    def active_heads(self) -> int:
        return int(self.active.sum())

    @property
    def mostly_unknown(self) -> bool:
        """Half or more of the text's tokens are [UNK]: the prediction says little about it."""
        return self.unknown_tokens > 0 and 2 * self.unknown_tokens >= self.content_tokens

    def chosen_heads(self) -> list[list[int]]:
        return [torch.nonzero(row).flatten().tolist() for row in self.active]


@torch.no_grad()
def inspect_text(model, tokenizer, text: str, *, budget: float | None = None, hard: bool = True,
                 attentions: bool = True, latency: bool = False, threads: int = 1, latency_cache: dict | None = None,
                 label_names: list[str] | None = None) -> Inspection:
    """Everything about one input. ``budget`` drives BAA / static gates; BudgetFormer picks its own."""
    model.eval()
    enc = encode_text(tokenizer, text, model.config.max_len)
    out = model(enc.input_ids, enc.attention_mask, budget=budget, hard=hard, output_attentions=attentions)
    cfg = model.config
    hw = out.head_weights
    hw = torch.ones(cfg.n_layers, cfg.n_heads) if hw is None else hw.reshape(-1, cfg.n_layers, cfg.n_heads)[0]
    probs = out.logits.float().softmax(-1)[0]
    T = enc.input_ids.shape[1]
    active_per_layer = (hw > 0).sum(-1).tolist()
    info = Inspection(
        tokens=enc.tokens, truncated=enc.truncated, label_names=list(label_names or cfg.labels),
        probs=probs.tolist(), prediction=int(probs.argmax()), head_weights=hw.float(),
        attentions=[a[0] for a in out.attentions] if attentions else None,
        flops=model_flops(cfg, active_per_layer, [T]).total, dense_flops=model_flops(cfg, None, [T]).total,
        unknown_tokens=enc.unknown_tokens, content_tokens=enc.content_tokens,
    )
    if cfg.gating in ("baa", "static") and budget is not None:
        info.gate_values = model.gate(budget).detach().float()
    if out.controller:
        info.s = [float(r["s"][0]) for r in out.controller]
        info.q = torch.stack([r["q"][0] for r in out.controller]).float()
        info.scores = torch.stack([r["scores"][0] for r in out.controller]).float()
    if latency:
        info.latency_ms, info.dense_latency_ms = input_latency(model, enc, hw, threads, latency_cache)
    return info


def input_latency(model, enc: EncodedText, head_weights: torch.Tensor, threads: int = 1,
                  cache: dict | None = None) -> tuple[float, float]:
    """Measured ms of the structural path for this one input, and of the dense model on it."""
    cache = cache if cache is not None else {}
    batch = [{"input_ids": enc.input_ids, "attention_mask": enc.attention_mask}]
    if "dense" not in cache:
        cache["dense"] = slice_heads(model, all_heads_mask(model.config))
    if model.controllers is not None:
        runner = _StructuralRunner(model, cache.setdefault("heads", SlicedHeadCache(model)))
    else:
        key = tuple(map(tuple, (head_weights > 0).int().tolist()))
        if key not in cache:
            cache[key] = slice_heads(model, (head_weights > 0).float())
        runner = cache[key]
    # Timed in pairs beside the dense model (bench.compare_latency): one timing of a sub-millisecond
    # pass each is at the mercy of whatever else the CPU is doing at that moment.
    c = compare_latency({"dense": cache["dense"], "input": runner}, batch, threads, rounds=7, min_timing_ms=3.0)
    return c.median_ms["input"], c.median_ms["dense"]


class _StructuralRunner(torch.nn.Module):
    """Callable like a model, running BudgetFormer's per-input structural path."""

    def __init__(self, model, cache):
        super().__init__()
        self.model, self.cache = model, cache

    def forward(self, input_ids, attention_mask=None):
        return structural_forward(self.model, input_ids, self.cache, attention_mask)[0]
