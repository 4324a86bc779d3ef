"""Dense: every head on. The warm start of every other method, and the baseline they are compared with."""
from __future__ import annotations

import torch

from .base import Method, Phase, TrainConfig, register, task_loss


class DenseObjective:
    """Task loss with every head on (``mask`` None), or with a fixed head mask (recovery training)."""

    def __init__(self, mask: torch.Tensor | None = None):
        self.mask = mask

    def __call__(self, model, batch, ctx):
        out = model(batch["input_ids"], batch["attention_mask"], head_mask=self.mask)
        loss, acc = task_loss(out.logits, batch["labels"])
        return loss, {"accuracy": acc, "cost": 1.0 if self.mask is None else float(self.mask.mean())}


def plan(model, cfg: TrainConfig, budget: float | None = None):
    """Plain training of ``model`` itself (a fresh or pretrained network) with all heads on. The phase
    ends early once validation accuracy reaches ``cfg.dense_target_acc`` (1.0 = never)."""
    done = (lambda val: val.get("acc", 0.0) >= cfg.dense_target_acc) if cfg.dense_target_acc < 1.0 else None
    return model, [Phase("dense", cfg.dense_epochs, lambda m: DenseObjective(), cfg.lr, validate=True,
                         eval_every=cfg.eval_every, done=done)]


DENSE = register(Method("dense", "dense (all heads)", "#212529", gating="dense", plan=plan, has_budget=False,
                        phases=(), order=40))
