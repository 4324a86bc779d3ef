"""Static fixed-budget gates: a baseline with one learned, budget-independent gate set per budget.

Trained like BAA (soft gates, then hard adaptation), but at one fixed budget: one model per budget.
"""
from __future__ import annotations

from ..model.surgery import with_gating
from .baa import gated_phases
from .base import Method, TrainConfig, register


def plan(dense, cfg: TrainConfig, budget: float | None = None):
    if budget is None or not 0.0 < budget <= 1.0:
        raise ValueError(f"the static baseline is trained for one budget in (0, 1]; got budget={budget}")
    return with_gating(dense, "static", [budget], seed=cfg.seed), gated_phases(dense, cfg, budget)


STATIC = register(Method("static", "static gates (one model per budget)", "#2b8a3e", gating="static", plan=plan,
                         one_model_per_budget=True, phases=("static@{b:g}", "hard@{b:g}"), order=10))
