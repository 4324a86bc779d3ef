"""Post-hoc structural pruning: the dense model's heads ranked by validation importance, cut to the
budget, no retraining (Michel et al., 2019: importance = |dL/dg_h| at g = 1, summed over the
validation set). Nothing to train: its model is the dense one, its operating point ``posthoc_mask``.
A post-hoc checkpoint (``pipeline.posthoc_and_save``: a model you brought, no training) carries the
ranking as its gate (``gating="posthoc"``, ``model.gates.RankedGate``), so its budget slides like BAA's.
"""
from __future__ import annotations

import torch

from ..model.gates import heads_for_budget, topk_head_mask
from .base import Method, register


def head_importance(model, batches, device: str = "cpu") -> torch.Tensor:
    """Validation importance of each head of a dense model: sum over batches of |dLoss/dg_lh| at g = 1."""
    cfg = model.config
    was_training = model.training
    model.eval()
    gate = torch.ones(cfg.n_layers, cfg.n_heads, device=device, requires_grad=True)
    total = torch.zeros(cfg.n_layers, cfg.n_heads, device=device)
    for batch in batches:
        gate.grad = None
        out = model(batch["input_ids"], batch["attention_mask"], head_mask=gate)
        loss = torch.nn.functional.cross_entropy(out.logits, batch["labels"], reduction="sum")
        loss.backward()
        total += gate.grad.abs()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return total / total.sum().clamp_min(1e-12)


def posthoc_mask(importance: torch.Tensor, budget: float) -> torch.Tensor:
    """Keep the round(b * L * H) most important heads (>= 1 per layer): zero-shot post-hoc pruning."""
    L, H = importance.shape
    return topk_head_mask(importance, heads_for_budget(budget, L, H))


POSTHOC = register(Method("posthoc", "post-hoc structural pruning", "#868e96", gating="posthoc", plan=None,
                          trainable=False, order=20))
