"""BudgetFormer: per-input head budgets. Each block decides, for each input, how many heads it
needs (budget s) and which ones (relevance q), and then runs only those (METHODS.md section 2).

Controller (one per block), from the block's mean-pooled input h = mean_t x_t:

    s = sigmoid(W2 gelu(W1 h))            budget: the fraction of the H heads to use
    r = W_r h ;  q = softmax(r / tau)      relevance: a distribution over heads

Inference keeps the top k = ceil(s * H) heads by q (at least one), weight 1, the rest off.

Estimator (the paper leaves it open). Training runs every head with a soft weight that becomes the
hard rule as temperatures fall:

    rank_h = sum_{j != h} sigmoid((r~_j - r~_h) / tau)      soft 0-based rank of head h
    w_h    = sigmoid((s * H - rank_h) / tau)                 ~ [rank_h < s * H] = top-ceil(sH)

with noisy scores r~ = r + sigma * Gumbel noise. At tau -> 0 and sigma = 0, w is exactly the hard
top-ceil(sH) mask, so what is trained is what runs. Gradients reach s (through the soft count) and
the scorer (through the soft ranks). Exploration -> exploitation: sigma and tau start high (noisy,
many head combinations tried, a high-entropy q) and anneal; the last part of training runs the
hard mask forward with these soft weights' gradients (straight-through), so training and
inference see the same heads. Loss = task + lambda_budget * max(0, mean_batch(s) - target)
+ hinge keeping each s in [s_min, s_max] + lambda_entropy * H(q).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..model.gates import entropy
from ..model.surgery import with_gating
from .base import Method, Phase, TrainConfig, register


def schedule(progress: float, start: float, end: float, explore: float) -> float:
    """Held at ``start`` for the first ``explore`` of training, then annealed geometrically to ``end``."""
    if progress <= explore:
        return start
    t = min(1.0, (progress - explore) / max(1e-6, 1.0 - explore))
    if start <= 0 or end <= 0:
        return start + (end - start) * t
    return start * math.exp(t * math.log(end / start))


class BudgetFormerObjective:
    """Task loss + budget regulariser + s hinge + entropy of q, under the explore -> exploit schedule."""

    def __init__(self, cfg, straight_through_from: float = 0.8):
        self.cfg = cfg
        self.straight_through_from = straight_through_from

    def set_schedule(self, model, progress: float) -> dict:
        c = self.cfg
        tau = schedule(progress, c.bf_temp_start, c.bf_temp_end, c.bf_explore_fraction)
        noise = schedule(progress, c.bf_noise_start, c.bf_noise_end, c.bf_explore_fraction)
        for ctrl in model.controllers:
            ctrl.tau.fill_(tau)
            ctrl.noise.fill_(noise)
            ctrl.straight_through = progress >= self.straight_through_from
        return {"tau": tau, "noise": noise}

    def __call__(self, model, batch, ctx):
        sched = self.set_schedule(model, ctx.progress)
        out = model(batch["input_ids"], batch["attention_mask"], controller_mode="soft")
        labels = batch["labels"]
        task = F.cross_entropy(out.logits, labels)
        s = torch.stack([r["s"] for r in out.controller], dim=1)  # (B, L)
        q = torch.stack([r["q"] for r in out.controller], dim=1)  # (B, L, H)
        c = self.cfg
        budget = F.relu(s.mean() - c.bf_target)
        hinge = (F.relu(c.bf_s_min - s) + F.relu(s - c.bf_s_max)).mean()
        ent = entropy(q).mean()
        loss = task + c.bf_lambda_budget * budget + hinge + c.bf_lambda_entropy * ent
        acc = float((out.logits.argmax(-1) == labels).float().mean())
        return loss, {"accuracy": acc, "cost": out.head_weights.detach().mean().item(), "s_mean": s.mean().item(),
                      "entropy": ent.item(), **sched}


def plan(dense, cfg: TrainConfig, budget: float | None = None):
    """Per-block controllers added to the dense model; the whole model trains under the schedule,
    validated four times per epoch and once before training (the training-dynamics view)."""
    model = with_gating(dense, "budgetformer", seed=cfg.seed)
    objective = BudgetFormerObjective(cfg)
    groups = lambda m: [(list(m.controllers.parameters()), {"lr": cfg.gate_lr * 0.1})]  # noqa: E731
    return model, [Phase("budgetformer", cfg.bf_epochs, lambda m: objective, cfg.phase_lr, seed_offset=4,
                         param_groups=groups, validate=True, evals_per_epoch=4, eval_at_start=True,
                         after=lambda m: objective.set_schedule(m, 1.0))]


BUDGETFORMER = register(Method("budgetformer", "BudgetFormer (per-input budgets)", "#e8590c", gating="budgetformer",
                               plan=plan, has_budget=False, per_input=True, phases=("budgetformer",), order=50))
