"""Structural per-input execution: each input runs only the heads its controllers chose.

Per-input head choice means a different small weight matrix per input; ``SlicedHeadCache`` keeps
the sliced attention modules per (block, head set), and ``structural_forward`` runs one input at
batch 1 through them. Its logits equal the batched masked path's (tests check it).
"""
from __future__ import annotations

import math
import struct
from collections import OrderedDict

import torch
import torch.nn.functional as F

from .adaptive import StackedShares
from .attention import attention_bias
from .gates import as_budget_tensor, hard_head_mask


class SlicedHeadCache:
    """Sliced attention modules per (block, head set), built on first use and kept (LRU, bounded).

    Per-input head choice means a different small weight matrix per input; copying it for every
    input would cost as much as the matmuls it saves. Selections settle on few head sets after the
    exploitation phase, so caching the sliced modules makes the steady state copy-free.
    """

    def __init__(self, model, max_entries: int = 512):
        self.model, self.max_entries = model, max_entries
        self.entries: OrderedDict = OrderedDict()
        self.hits = self.misses = 0
        self._shares = None  # adaptive, embedding-read controllers: every block's share in one op
        self._budgets: dict[float, tuple] = {}  # per slider position: what the controllers add for it
        self._mean_rows: dict[tuple, torch.Tensor] = {}  # per input length: the (1, T) row that takes the mean

    def budget_terms(self, budget: float, device) -> tuple[StackedShares, torch.Tensor, list]:
        """For an adaptive model at this budget, computed once per slider position (the weights and the
        calibration are fixed at inference): the stacked shares, their constant term (``StackedShares.constant``
        of u(b)), and per block (W, c) with head scores = W h + c (``AdaptiveController.head_scores`` with
        the weight views and the budget term folded in; static scores: (None, the scores as floats)). Per
        input and block, these small ops are a visible part of the path's overhead at batch 1."""
        key = float(budget)
        if key not in self._budgets:
            if self._shares is None:
                self._shares = StackedShares(self.model.controllers)
            u = self.model.calibration(as_budget_tensor(key, device))  # the calibrated budget logit u(b)
            scorers = []
            for c in self.model.controllers:
                w, b = c.input.weight[c.hidden:].detach().clone(), c.input.bias[c.hidden:].detach()
                if c.static_scores:  # the scores are the bias alone (whatever a checkpoint holds in the weight rows)
                    scorers.append((None, b.tolist()))
                    continue
                scorers.append((w, (b + c.score_slope * u if c.score_slope is not None else b).detach().clone()))
            self._budgets[key] = (self._shares, self._shares.constant(u), scorers)
        return self._budgets[key]

    def mean_row(self, length: int, dtype, device) -> torch.Tensor:
        """(1, T) row of 1/T: x.mean(1) as a product, kept per length (at most max_len of them)."""
        key = (length, dtype, device)
        row = self._mean_rows.get(key)
        if row is None:
            row = self._mean_rows[key] = torch.full((1, length), 1.0 / length, dtype=dtype, device=device)
        return row

    def get(self, layer: int, heads: tuple[int, ...]):
        key = (layer, heads)
        module = self.entries.get(key)
        if module is None:
            self.misses += 1
            module = self.model.blocks[layer].attention.sliced(list(heads)).eval()
            self.entries[key] = module
            if len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)
        else:
            self.hits += 1
            self.entries.move_to_end(key)
        return module


@torch.no_grad()
def structural_forward(model, input_ids: torch.Tensor, cache: SlicedHeadCache, attention_mask=None,
                       budget=None) -> tuple[torch.Tensor, list]:
    """One input (batch 1): each block's controller picks heads, and only those heads' weights run.

    Returns the logits (1, C) and, per block, the chosen head indices and s. ``budget``: the
    requested b of an adaptive model (``model/adaptive.py``); BudgetFormer models choose without one.
    """
    if input_ids.shape[0] != 1:
        raise ValueError("structural execution runs one input at a time (batch 1)")
    no_padding = attention_mask is None
    if no_padding:
        attention_mask = torch.ones_like(input_ids)
    x = model.embeddings(input_ids)  # (1, T, d)
    bias = None if no_padding else attention_bias(attention_mask, x.dtype)
    pool_mask = None if bias is None else attention_mask  # no padding at batch 1: a plain mean
    cfg = model.config
    if cfg.gating == "adaptive" and cfg.adaptive_input == "embedding" and isinstance(budget, (int, float)):
        return _adaptive_forward(model, x, bias, pool_mask, attention_mask, cache, budget)
    context = model.controller_context(x, pool_mask, budget)  # {} for BudgetFormer
    chosen = []
    for layer, block in enumerate(model.blocks):
        s, scores = model.controllers[layer].predict(x, pool_mask, **context)
        heads = tuple(torch.nonzero(hard_head_mask(s, scores)[0]).flatten().tolist())  # the batched path's rule
        chosen.append({"heads": heads, "s": float(s)})
        x, _ = block(x, bias, attention=cache.get(layer, heads))
    logits = model.classify(x, attention_mask)  # the model's own head (mean or first-token pooling)
    return logits, chosen


def _adaptive_forward(model, x, bias, pool_mask, attention_mask, cache: SlicedHeadCache, budget: float):
    """``structural_forward`` for an adaptive model whose shares read the pooled embedding output: every
    block's share comes from one stacked op before the blocks run, and u(b) once per budget; each block
    then only scores its heads. Same rule as the batched path (``hard_head_mask``): the top ceil(s * H)
    heads (>= 1) in stable descending order of score.

    Written for few tensor ops between blocks: at batch 1 each small op run between two blocks costs
    several times what it costs in a loop of its own (timed in context: a first ``x.mean(1)`` after a
    block ~30 us, a second ~5 us), and the FLOP model counts none of them. So the means are (1, T) @ (T, d)
    products, like the matmuls the blocks have just run, and the head counts and ranks are worked out
    on a few Python numbers."""
    H = model.config.n_heads
    stacked, constant, scorers = cache.budget_terms(budget, x.device)
    if pool_mask is None:
        mean_row = cache.mean_row(x.shape[1], x.dtype, x.device)  # (1, T)
    else:
        mean_row = pool_mask.to(x.dtype) / pool_mask.sum().clamp_min(1)  # (1, T), as masked_mean
    pooled = mean_row @ x[0]  # (1, d) the embedding output pooled: the shares' input and the first block's
    shares = stacked(pooled, constant)  # (1, L)
    s_list = shares[0].tolist()
    ks = head_counts(s_list, H)
    chosen = []
    for layer, (block, s, (w, c)) in enumerate(zip(model.blocks, s_list, scorers)):
        if w is None:  # static scores: the same for every input, so this block's input is not pooled
            scores = c
        else:
            h = pooled if layer == 0 else mean_row @ x[0]  # (1, d) this block's input, pooled
            scores = F.linear(h, w, c)[0].tolist()  # (H,)
        # sorted() is stable with reverse=True too: ties keep head order, as argsort(descending=True, stable=True)
        heads = tuple(sorted(sorted(range(H), key=scores.__getitem__, reverse=True)[: ks[layer]]))
        chosen.append({"heads": heads, "s": s})
        x, _ = block(x, bias, attention=cache.get(layer, heads))
    return model.classify(x, attention_mask), chosen


def head_counts(shares: list[float], n_heads: int) -> list[int]:
    """ceil(s * H - 1e-6) clamped to [1, H] per block, rounded to float32 at each step as ``hard_head_mask``
    computes it on float32 tensors (Python floats are doubles; for s in [0, 1] a product or difference of two float32
    numbers is exact in a double, so rounding it once to float32 gives torch's result)."""
    H, eps = _f32(float(n_heads)), _f32(1e-6)
    return [min(n_heads, max(1, math.ceil(_f32(_f32(s * H) - eps)))) for s in shares]


def _f32(v: float) -> float:
    return _FLOAT32.unpack(_FLOAT32.pack(v))[0]


_FLOAT32 = struct.Struct("f")
