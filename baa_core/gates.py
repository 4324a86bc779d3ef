"""Head gates: budget-conditioned monotone gates (BAA), static per-budget gates, top-k masks.

BAA's gate for head (l, h) at requested budget b (METHODS.md section 1):

    g_lh(b) = sigmoid(a_lh + softplus(s_lh) * logit(b)),   b clipped to [eps, 1 - eps]

softplus(.) >= 0 and logit is increasing, so g is non-decreasing in b: more budget never lowers a
gate. A hard operating point keeps k = round(b * L * H) heads by global top-k of the gate values,
with at least one head per layer, because a layer with no head cannot be built structurally. The
kept sets are not nested: gate curves with different sensitivities cross, so a head kept at one
budget can be dropped at a larger one (``unnested_heads`` finds such pairs).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BUDGET_EPS = 1e-3


def as_budget_tensor(budget, device=None) -> torch.Tensor:
    """Budgets as a float tensor, () or (B,), after checking they lie in (0, 1]."""
    b = torch.as_tensor(budget, dtype=torch.float32, device=device)
    if b.ndim > 1:
        raise ValueError("budget must be a number or a 1-D tensor of per-example budgets")
    if torch.isnan(b).any() or (b <= 0).any() or (b > 1).any():
        raise ValueError(f"budget must lie in (0, 1], got {budget!r}")
    return b


def budget_logit(budget: torch.Tensor, eps: float = BUDGET_EPS) -> torch.Tensor:
    b = budget.clamp(eps, 1 - eps)
    return torch.log(b) - torch.log1p(-b)


def heads_for_budget(budget: float, n_layers: int, n_heads: int) -> int:
    """k = round(b * L * H), kept within [L, L * H] (one head per layer at least)."""
    k = int(math.floor(budget * n_layers * n_heads + 0.5))  # round half up, unlike Python's round
    return max(n_layers, min(n_layers * n_heads, k))


def topk_head_mask(scores: torch.Tensor, k: int | torch.Tensor) -> torch.Tensor:
    """0/1 mask keeping the k best-scored heads overall, with at least one per layer.

    scores: (L, H) or (B, L, H); k: an int, or (B,) ints for per-example budgets.
    Returns a float mask of the same shape as ``scores``.
    """
    batched = scores.dim() == 3
    s = scores if batched else scores.unsqueeze(0)  # (B, L, H)
    B, L, H = s.shape
    k = torch.as_tensor(k, device=s.device).expand(B) if not torch.is_tensor(k) or k.dim() == 0 else k
    k = k.clamp(L, L * H)
    # Each layer's best head goes first (rank by a large bonus), then the global ranking fills up.
    best = F.one_hot(s.argmax(dim=-1), H).bool()  # (B, L, H)
    ranked = torch.where(best, s.new_full((), float("inf")), s).reshape(B, L * H)
    order = ranked.argsort(dim=-1, descending=True, stable=True)  # (B, L*H)
    position = torch.empty_like(order)
    position.scatter_(1, order, torch.arange(L * H, device=s.device).expand(B, -1))
    mask = (position < k.unsqueeze(1)).to(s.dtype).reshape(B, L, H)
    return mask if batched else mask[0]


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Forward with the hard 0/1 mask, backward through the soft gates."""
    return hard + soft - soft.detach()


class BudgetGate(nn.Module):
    """Per-head monotone gate g_lh(b) with a learned intercept and a non-negative sensitivity."""

    def __init__(self, n_layers: int, n_heads: int, init_open: float = 2.0, init_sensitivity: float = 1.0):
        super().__init__()
        self.n_layers, self.n_heads = n_layers, n_heads
        self.intercept = nn.Parameter(torch.full((n_layers, n_heads), init_open))
        raw = math.log(math.expm1(init_sensitivity))  # softplus^-1
        self.raw_sensitivity = nn.Parameter(torch.full((n_layers, n_heads), raw))

    def sensitivity(self) -> torch.Tensor:
        return F.softplus(self.raw_sensitivity)

    def forward(self, budget) -> torch.Tensor:
        """Soft gate values: (L, H) for a scalar budget, (B, L, H) for per-example budgets."""
        b = as_budget_tensor(budget, self.intercept.device)
        z = budget_logit(b).reshape(*b.shape, 1, 1)
        return torch.sigmoid(self.intercept + self.sensitivity() * z)

    def hard(self, budget) -> torch.Tensor:
        """The hard operating point: 0/1 mask of the top-k heads at each budget."""
        b = as_budget_tensor(budget, self.intercept.device)
        soft = self(b)
        k = torch.floor(b * self.n_layers * self.n_heads + 0.5).long()
        return topk_head_mask(soft, k)


class StaticGates(nn.Module):
    """The static baseline: one learned, budget-independent gate set per trained budget."""

    def __init__(self, n_layers: int, n_heads: int, budgets: list[float], init_open: float = 2.0):
        super().__init__()
        self.n_layers, self.n_heads = n_layers, n_heads
        self.budgets = [float(b) for b in budgets]
        self.logits = nn.Parameter(torch.full((len(budgets), n_layers, n_heads), init_open))

    def index(self, budget: float) -> int:
        for i, b in enumerate(self.budgets):
            if abs(b - float(budget)) < 1e-6:
                return i
        raise ValueError(f"this static-gate model was trained for budgets {self.budgets}, not {budget}")

    def forward(self, budget: float) -> torch.Tensor:
        return torch.sigmoid(self.logits[self.index(budget)])  # (L, H)

    def hard(self, budget: float) -> torch.Tensor:
        return topk_head_mask(self(budget), heads_for_budget(budget, self.n_layers, self.n_heads))


def unnested_heads(gate: BudgetGate, budgets) -> list[dict]:
    """Heads that run at one budget of ``budgets`` (ascending) and are off at the next one.

    Every gate value is monotone in b, but the hard operating point ranks heads against each other:
    where two heads' gate curves cross (different sensitivities), the top-k set at a larger budget can
    drop a head that ran at a smaller one. Returns {layer, head, on_at, off_at} per such case."""
    budgets = sorted(float(b) for b in budgets)
    out = []
    with torch.no_grad():
        masks = [gate.hard(b) for b in budgets]
    for (b0, m0), (b1, m1) in zip(zip(budgets, masks), zip(budgets[1:], masks[1:])):
        for layer, head in torch.nonzero((m0 > 0) & (m1 == 0)).tolist():
            out.append({"layer": layer, "head": head, "on_at": b0, "off_at": b1})
    return out
