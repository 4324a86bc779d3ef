"""What the pages measure or look up, as plain functions (no Streamlit): operating points, card rows,
live accuracy on an evaluation sample, live latency of a head layout.

Every number the app shows comes from here (measured now, by repo code) or from a card (measured
when the checkpoint was made, by repo code); the pages say which.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from baa_core import methods
from baa_core.io.data import EncodedDataset
from baa_core.measure.cost import HeadLayout
from baa_core.model.encoder import BudgetedClassifier
from baa_core.model.surgery import all_heads_mask

BUDGET_STEP = 0.05
# Live work that costs less than this many FLOPs (~0.5-1 s on a 2-core CPU) runs by itself when the
# budget moves; anything bigger waits for a button, so the slider stays quick on BERT-size models.
LIVE_AUTO_FLOPS = 2e10
SAMPLE_FLOPS = 1e10  # the evaluation sample is sized to cost about this much per head set
LIVE_LATENCY_FLOPS = 1e11  # a live timing of a model costing less than this uses every batch and more rounds
LATENCY_ROUNDS_SMALL, LATENCY_ROUNDS_BIG, LATENCY_BATCHES_BIG = 7, 3, 2


@dataclass
class OperatingPoint(HeadLayout):
    budget: float | None
    mask: torch.Tensor  # (L, H) 0/1: heads that run
    gate_values: torch.Tensor | None  # (L, H) soft gates at the budget (BAA, static); None otherwise

    @property
    def soft_mass(self) -> float | None:
        return None if self.gate_values is None else float(self.gate_values.mean())


def has_budget(model: BudgetedClassifier) -> bool:
    return methods.method_for_model(model).has_budget


def budget_choices(model: BudgetedClassifier) -> list[float]:
    """The budgets a model can run at: a 0.05 grid over the trained range (0.1..1.0; below it the gates are
    extrapolated, see baa_core.measure.operating_points.below_range) for BAA, the trained ones for static gates."""
    if methods.method_for_model(model).one_model_per_budget:
        return [float(b) for b in model.config.static_budgets]
    return [round(BUDGET_STEP * i, 2) for i in range(2, int(round(1 / BUDGET_STEP)) + 1)]


def snap_budget(model: BudgetedClassifier, budget: float | None) -> float:
    choices = budget_choices(model)
    if budget is None:
        return 0.5 if 0.5 in choices else choices[len(choices) // 2]
    return min(choices, key=lambda c: abs(c - budget))


@torch.no_grad()
def operating_point(model: BudgetedClassifier, budget: float | None) -> OperatingPoint:
    """The hard operating point at ``budget`` (BAA, static); every head for dense and BudgetFormer models."""
    mask = methods.operating_point(model, budget) if has_budget(model) and budget is not None else None
    if mask is not None:  # per-input methods have a knob but no one mask for everyone: all heads are drawn
        return OperatingPoint(budget, mask.float(), model.gate(budget).detach().float())
    return OperatingPoint(None, all_heads_mask(model.config), None)


def head_importance(ins, point: OperatingPoint) -> tuple[torch.Tensor | None, str]:
    """(L, H) values that rank the heads for one input, and their name: BudgetFormer's raw controller scores r
    (not q = softmax(r / tau), which rounds to 0 for all but the top head), the soft gates at the budget for
    BAA and static gates; None (index order) for a dense model."""
    if getattr(ins, "scores", None) is not None:
        return ins.scores, "score"
    if point.gate_values is not None:
        return point.gate_values, "gate"
    return None, "index"


def heads_table(ins, point: OperatingPoint) -> list[dict]:
    """One row per head for the CSV export: on/off, its importance value (score r or gate) and rank, and q."""
    from app.ui.figures import head_ranks

    values, name = head_importance(ins, point)
    ranks = None if values is None else head_ranks(values.tolist())
    rows = []
    L, H = ins.head_weights.shape
    for b in range(L):
        for h in range(H):
            row = {"block": b, "head": h, "active": bool(ins.head_weights[b, h] > 0)}
            if values is not None:
                row.update({name: float(values[b, h]), "rank": ranks[b][h]})
            if getattr(ins, "q", None) is not None:
                row["q"] = float(ins.q[b, h])
            rows.append(row)
    return rows


# ---------------------------------------------------------------- the card's numbers
def pct(value) -> str:
    """A fraction as a percentage; "-" for anything that is not a finite number (never "nan%")."""
    from baa_core.io.card import finite_number

    v = finite_number(value)
    return "-" if v is None else f"{v:.2%}"


def card_rows(card) -> list[dict]:
    """Every sweep row of a card, flat, with its method; in the registry's method order."""
    sweeps = card.get("sweeps") or {}
    out = []
    for method in methods.ordered(sweeps):
        for row in sweeps.get(method) or []:
            if isinstance(row, dict) and row.get("accuracy") is not None and row.get("est_cost", 0) is not None:
                out.append({**row, "method": method})
    return out


def card_row(card: dict, method: str, budget: float) -> dict | None:
    from baa_core.paper import Ours, find_row

    return find_row(card, Ours(card.get("task"), method, "accuracy", budget))


# ---------------------------------------------------------------- measured now
def sample_indices(n_total: int, n: int, seed: int = 0) -> list[int]:
    """A fixed random sample of the test split (the same for every session, so caches are shared)."""
    if n_total <= n:
        return list(range(n_total))
    return sorted(random.Random(seed).sample(range(n_total), n))


def live_accuracy(model: BudgetedClassifier, data: EncodedDataset, indices: list[int], point: OperatingPoint) -> float:
    """Accuracy on the sample, computed by the sliced model (the card's protocol); BudgetFormer by its controller."""
    from baa_core.measure.evaluate import evaluate
    from baa_core.model.surgery import slice_heads

    # Batches of similar lengths pad less: the same accuracy (it is per example) for about half the work.
    indices = sorted(indices, key=lambda i: len(data.ids[i]))
    if methods.method_for_model(model).per_input:
        return evaluate(model, data, indices=indices).accuracy
    sliced = slice_heads(model, point.mask)
    return evaluate(sliced, data, indices=indices).accuracy


def live_latency(model: BudgetedClassifier, batches: list[dict], heads_per_layer: list[int], threads: int = 1,
                 rounds: int | None = None) -> dict:
    """Sliced vs dense on the same batches, interleaved rounds (baa_core.measure.latency.compare_latency).

    Small models get 7 rounds over every batch; big ones (MiniLM) fewer batches and 3 rounds, so a
    measurement takes seconds, not a minute. The numbers say how many of each were used.
    """
    from baa_core.measure.latency import compare_latency, padded_lengths
    from baa_core.model.surgery import layout_mask, slice_heads

    if rounds is None:
        # Timing costs about (dense + sliced) x rounds passes over the batches.
        cheap = dense_flops(model, padded_lengths(batches)) * 2 * LATENCY_ROUNDS_SMALL < LIVE_LATENCY_FLOPS
        rounds, batches = (LATENCY_ROUNDS_SMALL, batches) if cheap else (LATENCY_ROUNDS_BIG, batches[:LATENCY_BATCHES_BIG])
    cfg = model.config
    dense = slice_heads(model, all_heads_mask(cfg))
    sliced = slice_heads(model, layout_mask(cfg.n_layers, cfg.n_heads, heads_per_layer))
    c = compare_latency({"dense": dense, "sliced": sliced}, batches, threads, rounds)
    return {"latency_ms": c.median_ms["sliced"], "dense_latency_ms": c.median_ms["dense"], "speedup": c.speedup["sliced"],
            "threads": threads, "rounds": rounds, "batches": len(batches)}


def dense_flops(model: BudgetedClassifier, lengths: list[int]) -> float:
    """Encoder FLOPs of the dense model over sequences of these lengths (baa_core.measure.cost's model)."""
    from baa_core.measure.cost import model_flops

    return model_flops(model.config, None, lengths).total


def sample_size(model: BudgetedClassifier, mean_len: float, lo: int = 100, hi: int = 1000) -> int:
    """How many test examples the live sample holds: about SAMPLE_FLOPS of work, within [lo, hi]."""
    per_example = dense_flops(model, [max(1, int(math.ceil(mean_len)))])
    return int(min(hi, max(lo, SAMPLE_FLOPS // max(per_example, 1.0))))
