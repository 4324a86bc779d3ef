"""The no-attention control (METHODS.md section 5): how much of a task's accuracy attention carries.

``no_attention``: the same network (fresh, or the same pretrained weights) trained with every head
closed for the method's epochs; attention then adds only its output projection's bias, and the model
is a stack of per-token FFNs with a mean pool. ``no_attention_eval`` is not trained: it names the rows
of a trained model evaluated with every head closed.
"""
from __future__ import annotations

import torch

from .base import Method, Phase, TrainConfig, register
from .dense import DenseObjective


def no_attention_mask(cfg) -> torch.Tensor:
    """(L, H) zeros: every head closed."""
    return torch.zeros(cfg.n_layers, cfg.n_heads)


def plan(start, cfg: TrainConfig, budget: float | None = None, epochs: float | None = None):
    """``start``: the fresh network (as for the dense warm start); ``epochs``: the method's total
    (default: BAA's, ``dense_epochs + budget_epochs + hard_epochs``)."""
    total = cfg.dense_epochs + cfg.budget_epochs + cfg.hard_epochs if epochs is None else epochs
    mask = no_attention_mask(start.config).to(cfg.device)
    return start, [Phase("no_attention", total, lambda m: DenseObjective(mask), cfg.lr, seed_offset=6)]


NO_ATTENTION = register(Method("no_attention", "control: trained with no attention", "#adb5bd", gating="dense", plan=plan,
                               has_budget=False, trainable=False, phases=("no_attention",), order=50))
NO_ATTENTION_EVAL = register(Method("no_attention_eval", "control: every head closed", "#ced4da", gating="dense", plan=None,
                                    has_budget=False, trainable=False, order=51))
