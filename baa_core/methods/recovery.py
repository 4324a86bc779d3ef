"""The recovered dense specialist: the post-hoc-pruned dense model fine-tuned for
``recovery_epochs`` with its fixed head mask (one model per budget)."""
from __future__ import annotations

import copy

from .base import Method, Phase, TrainConfig, register
from .dense import DenseObjective


def plan(dense, cfg: TrainConfig, budget: float | None = None, mask=None):
    """``mask``: the post-hoc mask at ``budget`` (``posthoc.posthoc_mask`` of the validation importance)."""
    if mask is None:
        raise ValueError("recovery training needs the post-hoc head mask of its budget")
    return copy.deepcopy(dense), [Phase("recovery", cfg.recovery_epochs, lambda m: DenseObjective(mask.to(cfg.device)),
                                        cfg.phase_lr, seed_offset=3)]


RECOVERY = register(Method("recovery", "post-hoc + 1 recovery epoch (one model per budget)", "#ae3ec9", gating="dense",
                           plan=plan, one_model_per_budget=True, trainable=False, phases=("recovery",), order=30))
