"""Dense with equal epochs: the baseline with the same training budget as the method it is compared with.

The dense warm start trained on, all heads on, for the epochs the method spent after it (BAA's budget
and hard phases; BudgetFormer's phase), at those phases' rate. "BAA vs dense" then compares models
that saw the training rows equally often (METHODS.md section 5); the warm start alone stays a row too.
"""
from __future__ import annotations

import copy

from .base import Method, Phase, TrainConfig, register
from .dense import DenseObjective


def plan(dense, cfg: TrainConfig, budget: float | None = None, epochs: float | None = None):
    """``epochs``: how many more epochs (default: BAA's later phases, ``budget_epochs + hard_epochs``)."""
    more = cfg.budget_epochs + cfg.hard_epochs if epochs is None else epochs
    return copy.deepcopy(dense), [Phase("dense_equal", more, lambda m: DenseObjective(), cfg.phase_lr, seed_offset=5)]


DENSE_EQUAL = register(Method("dense_equal", "dense (equal epochs)", "#495057", gating="dense", plan=plan, has_budget=False,
                              trainable=False, phases=("dense_equal",), order=41))
