"""Every distinct operating point of a budget-gated model, measured once, ready to be drawn.

A BAA model's hard operating point at budget b is the global top-round(b·L·H) heads by gate value
(at least one per block). As b moves over the trained range, the mask changes only at a finite set of
budgets: when k grows by one, or when two gates cross and the ranking changes. So a model has a short
list of distinct points (about L·H of them), and everything about a point — its mask, cost, FLOP
bound, the card's accuracy and timing for it — can be computed once and looked up while a slider moves.

``operating_points`` walks the trained budget range on a fine grid, keeps one point per run of equal
masks, and attaches what is known about each: the card's row (accuracy with a 95% interval, latency,
FLOP bound), and optionally accuracy measured now on a sample (``live``, with its own interval).
A static-gate model has exactly one point per trained budget.

``probs_at_points`` runs one input through the model at every point in one batch (per-example head
masks), for the per-input view. ``below_range`` says what happens below the trained range (the gates
there are extrapolated: budgets were drawn from U(min_budget, max_budget) in training).

Pure PyTorch; no Streamlit. Accuracies are fractions.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..methods import method_for_model
from .cost import HeadLayout, flop_speedup

GRID_STEP = 0.001  # budget resolution of the walk: a mask that holds for less than this is not listed
DEFAULT_RANGE = (0.1, 1.0)  # TrainConfig's min_budget / max_budget defaults


@dataclass(frozen=True)
class Accuracy:
    value: float
    low: float  # 95% interval
    high: float
    n: int  # test examples behind it
    source: str  # "card" (full test split, when the model was made) or "live" (a sample, now)
    detail: str = ""

    def ties(self, other: Accuracy | None) -> bool:
        """Whether the two differ by less than their noise (the 95% intervals overlap): report as a tie."""
        return other is not None and self.low <= other.high and other.low <= self.high


@dataclass
class BudgetPoint(HeadLayout):
    budget: float  # the budget this point is shown and committed at (its mask is model.gate.hard(budget))
    budget_lo: float  # the grid budgets [budget_lo, budget_hi] of the trained range all give this mask
    budget_hi: float
    mask: torch.Tensor  # (L, H) 0/1
    gates: torch.Tensor  # (L, H) soft gates at ``budget``
    flop_speedup: float | None = None  # dense FLOPs / this layout's FLOPs (the FLOP model's bound)
    card: Accuracy | None = None  # the card's accuracy of this checkpoint at this mask
    live: Accuracy | None = None  # measured now on a sample
    latency: dict | None = None  # a card row timed with this layout: latency_ms, dense_latency_ms, speedup, threads
    extra: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> Accuracy | None:
        """The number to show: the card's (whole test split) where it has this point, else the live sample's."""
        return self.card or self.live


# ---------------------------------------------------------------- intervals
def wilson_interval(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``p`` measured on ``n`` examples."""
    if n <= 0:
        return 0.0, 1.0
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def measured(p: float, n: int, source: str, detail: str = "") -> Accuracy:
    lo, hi = wilson_interval(p, n)
    return Accuracy(float(p), lo, hi, int(n), source, detail)


# ---------------------------------------------------------------- the walk over budgets
def trained_range(card: dict | None) -> tuple[float, float]:
    """The budgets the model was trained for, from its card's train_config (U(min_budget, max_budget))."""
    tc = (card or {}).get("train_config") or {}
    lo, hi = tc.get("min_budget", DEFAULT_RANGE[0]), tc.get("max_budget", DEFAULT_RANGE[1])
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        return DEFAULT_RANGE
    return (lo, hi) if 0 < lo <= hi <= 1 else DEFAULT_RANGE


def _grid(lo: float, hi: float, step: float) -> list[float]:
    n = round((hi - lo) / step)
    return [round(lo + i * step, 6) for i in range(n + 1)]


def _representative(budgets: list[float], preferred: Sequence[float]) -> float:
    """The budget a run of equal masks is shown at: one the card measured, else the roundest one."""
    inside = [b for b in preferred if budgets[0] - 1e-9 <= b <= budgets[-1] + 1e-9]
    if inside:
        return float(inside[0])
    for unit in (0.05, 0.01):
        round_ones = [b for b in budgets if abs(b / unit - round(b / unit)) < 1e-6]
        if round_ones:
            return round_ones[len(round_ones) // 2]
    return budgets[len(budgets) // 2]


@torch.no_grad()
def budget_runs(model, lo: float, hi: float, preferred: Sequence[float] = (), step: float = GRID_STEP
                ) -> list[tuple[float, float, float]]:
    """(representative budget, first, last grid budget) of each run of equal hard masks over [lo, hi].

    BAA: the masks of a grid of budgets, computed in one batch. Static gates: the trained budgets in
    [lo, hi] (a static model knows no other budget)."""
    if method_for_model(model).one_model_per_budget:
        return [(float(b), float(b), float(b)) for b in model.config.static_budgets if lo - 1e-9 <= b <= hi + 1e-9]
    if model.gate is None or not method_for_model(model).has_budget:
        raise ValueError("this model has no budget gates: it has one operating point, every head")
    grid = _grid(lo, hi, step)
    masks = model.gate.hard(torch.tensor(grid)).reshape(len(grid), -1)  # (G, L*H)
    change = torch.ones(len(grid), dtype=torch.bool)
    change[1:] = (masks[1:] != masks[:-1]).any(dim=1)
    starts = torch.nonzero(change).flatten().tolist() + [len(grid)]
    runs = []
    for a, b in itertools.pairwise(starts):
        budgets = grid[a:b]
        runs.append((_representative(budgets, preferred), budgets[0], budgets[-1]))
    return runs


# ---------------------------------------------------------------- the card
def _rows(card: dict | None, method: str) -> list[dict]:
    rows = ((card or {}).get("sweeps") or {}).get(method) or []
    return [r for r in rows if isinstance(r, dict) and r.get("accuracy") is not None]


def card_latency(card: dict | None, layout: Sequence[int]) -> dict | None:
    """A card row timed with exactly this many heads per block (latency depends only on those counts)."""
    for rows in ((card or {}).get("sweeps") or {}).values():
        for row in rows or []:
            if isinstance(row, dict) and row.get("heads_per_layer") == list(layout) and row.get("latency_ms") is not None:
                return row
    return None


def card_accuracy(card: dict | None, row: dict) -> Accuracy:
    """This checkpoint's accuracy in a card row, with a 95% interval over its test examples. A multi-seed
    card's row holds the mean over seeds; the weights on hand are its first seed's."""
    n = int(row.get("n") or 0)
    seeds = row.get("accuracy_seeds")
    if seeds:
        seed = (card or {}).get("weights_seed", ((card or {}).get("seeds") or [0])[0])
        detail = (f"card, this checkpoint (seed {seed}) on {n:,} test examples; mean of {len(seeds)} seeds "
                  f"{100 * row['accuracy']:.2f}% ± {100 * float(row.get('accuracy_std') or 0):.2f}")
        return measured(float(seeds[0]), n, "card", detail)
    return measured(float(row["accuracy"]), n, "card", f"card, {n:,} test examples")


# ---------------------------------------------------------------- all of it
@torch.no_grad()
def operating_points(
    model,
    card: dict | None = None,
    *,
    budget_range: tuple[float, float] | None = None,
    lengths: Sequence[int] | None = None,
    live: Callable[[torch.Tensor], float] | None = None,
    live_n: int = 0,
    step: float = GRID_STEP,
) -> list[BudgetPoint]:
    """Every distinct hard operating point of a BAA or static-gate model over its trained budget range,
    in budget order, each with what the card knows about it and, if ``live`` is given (mask -> accuracy
    on a sample of ``live_n`` examples), accuracy measured now. ``lengths``: the (padded) sequence
    lengths the FLOP bound is computed at when the card has no row for a layout."""
    method = method_for_model(model).name  # the card's sweep of this model's own method
    lo, hi = budget_range or trained_range(card)
    rows = _rows(card, method)
    card_budgets = sorted(float(r["budget"]) for r in rows if r.get("budget") is not None)
    points = []
    for budget, b_lo, b_hi in budget_runs(model, lo, hi, card_budgets, step):
        mask = model.gate.hard(budget).detach().float()
        point = BudgetPoint(budget, b_lo, b_hi, mask, model.gate(budget).detach().float())
        row = next((r for r in rows if r.get("budget") is not None and abs(float(r["budget"]) - budget) < 1e-6), None)
        if row is not None:
            point.card = card_accuracy(card, row)
        timed = card_latency(card, point.heads_per_layer)
        if timed is not None:
            point.latency = {k: timed.get(k) for k in ("latency_ms", "dense_latency_ms", "speedup", "threads")}
        point.flop_speedup = (timed or {}).get("flop_speedup") or (row or {}).get("flop_speedup")
        if point.flop_speedup is None and lengths:
            point.flop_speedup = flop_speedup(model.config, point.heads_per_layer, lengths)
        if live is not None:
            point.live = measured(float(live(mask)), live_n, "live", f"live, {live_n:,}-example sample")
        points.append(point)
    return points


def point_at(points: Sequence[BudgetPoint], budget: float | None) -> BudgetPoint | None:
    """The point whose run of budgets holds ``budget`` (else the nearest run)."""
    if not points or budget is None:
        return None
    return min(points, key=lambda p: 0.0 if p.budget_lo - 1e-9 <= budget <= p.budget_hi + 1e-9
               else min(abs(budget - p.budget_lo), abs(budget - p.budget_hi)))


def below_range(model, lo: float) -> dict | None:
    """What the gates do at half the lowest trained budget, beside the lowest: budgets below the trained
    range were never seen in training, so there the ranking of heads is an extrapolation."""
    if not method_for_model(model).slides or lo <= 0.02:
        return None
    below = round(lo / 2, 3)
    at, under = model.gate.hard(lo).detach(), model.gate.hard(below).detach()
    return {"budget": below, "lowest": lo, "heads": int(under.sum()), "heads_at_lowest": int(at.sum()),
            "same_heads": bool(torch.equal(at, under))}


# ---------------------------------------------------------------- one input at every point
@torch.no_grad()
def probs_at_points(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, masks: Sequence[torch.Tensor],
                    chunk: int = 32) -> list[list[float]]:
    """Class probabilities of one encoded input (1, T) with each head mask, in batches of ``chunk``
    copies of the input, one mask each (the masked reference path equals the sliced one)."""
    model.eval()
    out = []
    for i in range(0, len(masks), chunk):
        m = torch.stack([mk.float() for mk in masks[i:i + chunk]])  # (P, L, H)
        ids, att = input_ids.expand(len(m), -1), attention_mask.expand(len(m), -1)
        out += model(ids, att, head_mask=m).logits.float().softmax(-1).tolist()
    return out
