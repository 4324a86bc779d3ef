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

from .attention import masked_mean

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


def heads_for_budget(budget, n_layers: int, n_heads: int):
    """k = round(b * L * H), rounding half up (unlike Python's round), kept within [L, L * H]
    (one head per layer at least). ``budget`` may be a float (-> int) or a tensor (-> long tensor)."""
    if torch.is_tensor(budget):
        return torch.floor(budget * n_layers * n_heads + 0.5).long().clamp(n_layers, n_layers * n_heads)
    k = int(math.floor(budget * n_layers * n_heads + 0.5))
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
        return topk_head_mask(soft, heads_for_budget(b, self.n_layers, self.n_heads))


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


class RankedGate(nn.Module):
    """Post-hoc pruning as a gate: a fixed ranking of the heads (validation importance of a trained
    model, Michel et al. 2019) and nothing learned. Budget b keeps the top round(b * L * H) heads,
    at least one per layer; its "soft" values are that 0/1 mask, so masked and sliced runs agree."""

    def __init__(self, n_layers: int, n_heads: int):
        super().__init__()
        self.n_layers, self.n_heads = n_layers, n_heads
        self.register_buffer("importance", torch.ones(n_layers, n_heads))  # (L, H), saved with the weights

    def hard(self, budget) -> torch.Tensor:
        b = as_budget_tensor(budget, self.importance.device)
        k = torch.floor(b * self.n_layers * self.n_heads + 0.5).long()
        scores = self.importance if b.dim() == 0 else self.importance.expand(b.shape[0], -1, -1)  # (L, H) or (B, L, H)
        return topk_head_mask(scores, k)

    forward = hard


# ---------------------------------------------------------------- per-input controllers (BudgetFormer)
def hard_head_mask(s: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """(B,) budgets and (B, H) scores -> (B, H) 0/1 mask of the top ceil(s * H) heads (>= 1)."""
    H = scores.shape[-1]
    k = torch.ceil(s * H - 1e-6).clamp(1, H).long()  # (B,)
    rank = scores.argsort(dim=-1, descending=True, stable=True).argsort(dim=-1)  # (B, H) 0 = best
    return (rank < k.unsqueeze(-1)).to(scores.dtype)


def soft_head_weights(s: torch.Tensor, scores: torch.Tensor, tau: float) -> torch.Tensor:
    """Differentiable relaxation of ``hard_head_mask`` at temperature ``tau``."""
    H = scores.shape[-1]
    diff = (scores.unsqueeze(-2) - scores.unsqueeze(-1)) / tau  # (B, H, H): [h, j] = r_j - r_h
    rank = torch.sigmoid(diff).sum(-1) - 0.5  # remove the j == h term, sigmoid(0) = 0.5
    return torch.sigmoid((s.unsqueeze(-1) * H - rank) / tau)


class HeadController(nn.Module):
    """Predicts one block's per-input budget s and head relevance q, and the head weights to apply."""

    def __init__(self, d_model: int, n_heads: int, hidden: int = 64):
        super().__init__()
        self.n_heads, self.hidden = n_heads, hidden
        # The budget FFN's first layer and the head scorer read the same pooled vector: one matmul.
        self.input = nn.Linear(d_model, hidden + n_heads)
        self.budget_out = nn.Linear(hidden, 1)
        # Annealed by the trainer (exploration -> exploitation). The final temperature is saved with
        # the model (it shapes q at inference); the noise only matters while training.
        self.register_buffer("tau", torch.tensor(1.0))
        self.register_buffer("noise", torch.tensor(0.0), persistent=False)
        self.straight_through = False
        with torch.no_grad():
            self.input.weight[hidden:].normal_(0, 1e-3)  # near-equal head scores at the start
            self.input.bias[hidden:].zero_()
        nn.init.constant_(self.budget_out.bias, 2.0)  # start with most heads on: s ~ 0.88

    def predict(self, x: torch.Tensor, attention_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.mean(1) if attention_mask is None else masked_mean(x, attention_mask)  # (B, d)
        z = self.input(h)  # (B, hidden + H)
        s = torch.sigmoid(self.budget_out(F.gelu(z[:, : self.hidden]))).squeeze(-1)  # (B,)
        return s, z[:, self.hidden :]  # (B,), (B, H) scores

    def forward(self, x, attention_mask, mode: str = "hard", target=None) -> tuple[torch.Tensor, dict]:
        """Head weights (B, H) and a record of s, q and the chosen heads for this block.

        mode: "hard" (inference: top-ceil(sH) mask), "soft" (training relaxation), "all" (every
        head on, for reference). ``target`` overrides s with a fixed budget (the no-controller ablation).
        """
        s, scores = self.predict(x, attention_mask)
        if target is not None:
            s = target.expand_as(s).to(s.dtype)
        return self.head_weights(s, scores, mode)

    def head_weights(self, s: torch.Tensor, scores: torch.Tensor, mode: str) -> tuple[torch.Tensor, dict]:
        """(B,) budgets and (B, H) scores -> head weights (B, H) under ``mode``, and the block's record."""
        tau = float(self.tau)
        q = torch.softmax(scores / max(tau, 1e-3), dim=-1)  # (B, H)
        if mode == "soft":
            noisy = scores
            if self.training and float(self.noise) > 0:
                u = torch.rand_like(scores).clamp(1e-6, 1 - 1e-6)
                noisy = scores + float(self.noise) * -torch.log(-torch.log(u))  # Gumbel noise
            soft = soft_head_weights(s, noisy, tau)
            weights = straight_through(hard_head_mask(s, noisy), soft) if self.straight_through else soft
        elif mode == "hard":
            weights = hard_head_mask(s, scores)
        elif mode == "all":
            weights = torch.ones_like(scores)
        else:
            raise ValueError(f"controller mode must be soft, hard or all, not {mode!r}")
        return weights, {"s": s, "q": q, "scores": scores, "weights": weights}


def entropy(q: torch.Tensor) -> torch.Tensor:
    """Entropy of each row of q, in nats: (B, H) -> (B,)."""
    return -(q * torch.log(q.clamp_min(1e-12))).sum(-1)
