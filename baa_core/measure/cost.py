"""The cost model: estimated attention cost and the per-layer FLOP model (METHODS.md section 3).

Per layer, with n tokens, model width d, k = active heads x head size and FFN width f:

    QKV projections      3 * 2 * d * k * n
    scores and context   2 * 2 * n^2 * k
    output projection    2 * k * d * n
    FFN                  2 * 2 * d * f * n

Embeddings, LayerNorms and the classifier are left out, as in the paper's model; the FLOP-bound
speedup of a head set is dense FLOPs / sliced FLOPs at the same token counts.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ..model.config import ModelConfig


def estimated_attention_cost(head_weights: torch.Tensor | None) -> float:
    """Mean gate mass over all L * H heads (dense = 1.0); for 0/1 masks, active / total heads."""
    if head_weights is None:
        return 1.0
    return float(head_weights.float().mean())


@dataclass(frozen=True)
class LayerFlops:
    qkv: float
    scores: float
    output: float
    ffn: float

    @property
    def attention(self) -> float:
        return self.qkv + self.scores + self.output

    @property
    def total(self) -> float:
        return self.attention + self.ffn


def layer_flops(d_model: int, active_heads: int, head_dim: int, d_ffn: int, n_tokens: float) -> LayerFlops:
    k, n = active_heads * head_dim, n_tokens
    return LayerFlops(
        qkv=3 * 2 * d_model * k * n,
        scores=2 * 2 * n * n * k,
        output=2 * k * d_model * n,
        ffn=2 * 2 * d_model * d_ffn * n,
    )


def model_flops(cfg: ModelConfig, heads_per_layer: Sequence[int] | None, lengths: Iterable[int]) -> LayerFlops:
    """FLOPs of the encoder layers summed over sequences of the given (padded) lengths."""
    heads = list(heads_per_layer) if heads_per_layer is not None else cfg.layer_heads
    qkv = scores = output = ffn = 0.0
    for n in lengths:
        for h in heads:
            f = layer_flops(cfg.d_model, h, cfg.head_dim, cfg.d_ffn, n)
            qkv, scores, output, ffn = qkv + f.qkv, scores + f.scores, output + f.output, ffn + f.ffn
    return LayerFlops(qkv, scores, output, ffn)


def flop_speedup(cfg: ModelConfig, heads_per_layer: Sequence[int], lengths: Iterable[int]) -> float:
    """Dense FLOPs / FLOPs with ``heads_per_layer`` active, over the same sequences."""
    lengths = list(lengths)
    return model_flops(cfg, None, lengths).total / model_flops(cfg, heads_per_layer, lengths).total


def heads_per_layer(mask: torch.Tensor) -> list[int]:
    """(L, H) 0/1 mask -> number of active heads in each layer."""
    return [int(v) for v in (mask > 0).sum(dim=-1).tolist()]


class HeadLayout:
    """What a (L, H) 0/1 ``mask`` of the heads that run says, for the dataclasses that hold one
    (``operating_points.BudgetPoint``, the app's ``OperatingPoint``)."""

    mask: torch.Tensor  # (L, H) 0/1

    @property
    def active_heads(self) -> int:
        return int(self.mask.sum())

    @property
    def total_heads(self) -> int:
        return int(self.mask.numel())

    @property
    def est_cost(self) -> float:
        """Hard gates: active / total heads (METHODS.md)."""
        return estimated_attention_cost(self.mask)

    @property
    def heads_per_layer(self) -> list[int]:
        return heads_per_layer(self.mask)

    @property
    def key(self) -> tuple:
        """The mask as nested tuples: hashable, for caches keyed by head layout."""
        return tuple(tuple(int(v) for v in row) for row in self.mask.tolist())
