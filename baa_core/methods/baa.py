"""BAA: one model, every budget (METHODS.md section 1).

Dense warm start -> budget-conditioned soft-gate training with budgets sampled per example ->
hard-gate adaptation (straight-through top-k) distilled from a frozen copy of the soft model.

Choices for what the paper leaves open (recorded in every card through ``TrainConfig``):
* budgets are drawn per example from U(min_budget, max_budget), so each batch covers many budgets;
* a share ``hard_fraction`` of budget-phase steps runs the hard top-k mask with straight-through
  gradients, so the soft gates already rank heads the way the hard operating point will use them;
* hard-gate adaptation distils from a frozen copy of the soft model at the same budget.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..model.gates import heads_for_budget, straight_through, topk_head_mask
from ..model.surgery import with_gating
from .base import Method, Phase, TrainConfig, register, task_loss


class GateObjective:
    """task loss + lambda_mass * mean gate mass + lambda_overshoot * max(0, mass - b).

    BAA samples b per example; the static baseline passes its one ``fixed_budget``.
    """

    def __init__(self, cfg: TrainConfig, fixed_budget: float | None = None):
        self.cfg, self.fixed_budget = cfg, fixed_budget

    def budgets(self, B: int, ctx, device) -> torch.Tensor:
        if self.fixed_budget is not None:
            return torch.full((B,), self.fixed_budget, device=device)
        u = torch.rand(B, generator=ctx.generator)
        return (self.cfg.min_budget + (self.cfg.max_budget - self.cfg.min_budget) * u).to(device)

    def soft_gates(self, model, b: torch.Tensor) -> torch.Tensor:
        if self.fixed_budget is not None:  # static gates do not depend on b
            return model.gate(self.fixed_budget).expand(b.shape[0], -1, -1)
        return model.gate(b)  # (B, L, H)

    def regulariser(self, soft: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, float]:
        mass = soft.mean(dim=(1, 2))  # (B,)
        overshoot = F.relu(mass - b).mean()
        return self.cfg.lambda_mass * mass.mean() + self.cfg.lambda_overshoot * overshoot, overshoot.item()

    def __call__(self, model, batch, ctx):
        labels = batch["labels"]
        b = self.budgets(labels.shape[0], ctx, labels.device)
        soft = self.soft_gates(model, b)  # (B, L, H)
        cfg = model.config
        use_hard = float(torch.rand((), generator=ctx.generator)) < self.cfg.hard_fraction
        weights = straight_through(topk_head_mask(soft, heads_for_budget(b, cfg.n_layers, cfg.n_heads)), soft) if use_hard else soft
        out = model(batch["input_ids"], batch["attention_mask"], head_mask=weights)
        task, acc = task_loss(out.logits, labels)
        reg, overshoot = self.regulariser(soft, b)
        return task + reg, {"accuracy": acc, "cost": float(weights.detach().mean()), "overshoot": overshoot, "task_loss": task.item()}


class HardAdaptObjective(GateObjective):
    """Straight-through top-k training, distilled from the frozen soft model at the same budget."""

    def __init__(self, cfg: TrainConfig, teacher, fixed_budget: float | None = None):
        super().__init__(cfg, fixed_budget)
        self.teacher = teacher

    def __call__(self, model, batch, ctx):
        labels = batch["labels"]
        b = self.budgets(labels.shape[0], ctx, labels.device)
        soft = self.soft_gates(model, b)
        cfg = model.config
        hard = topk_head_mask(soft.detach(), heads_for_budget(b, cfg.n_layers, cfg.n_heads))
        out = model(batch["input_ids"], batch["attention_mask"], head_mask=straight_through(hard, soft))
        with torch.no_grad():
            t_logits = self.teacher(batch["input_ids"], batch["attention_mask"], head_mask=self.soft_gates(self.teacher, b)).logits
        task, acc = task_loss(out.logits, labels)
        T, a = self.cfg.distill_temperature, self.cfg.distill_alpha
        kd = F.kl_div(F.log_softmax(out.logits / T, -1), F.log_softmax(t_logits / T, -1), log_target=True, reduction="batchmean")
        # The soft gates still set the ranking. Nothing in this phase pulls them up (the hard mask
        # meets the budget exactly), so the one-sided mass penalty would drive them all to zero;
        # a two-sided penalty keeps the soft mass calibrated to b instead.
        gap = (soft.mean(dim=(1, 2)) - b).abs().mean()
        loss = (1 - a) * task + a * T * T * kd + self.cfg.lambda_overshoot * gap
        return loss, {"accuracy": acc, "cost": float(hard.mean()), "distill": kd.item(), "mass_gap": gap.item()}


def gate_params(model, cfg: TrainConfig) -> list:
    """The gates train at their own rate."""
    return [(list(model.gate.parameters()), {"lr": cfg.gate_lr})]


def gated_phases(model, cfg: TrainConfig, budget: float | None = None) -> list[Phase]:
    """Soft-gate training, then hard-gate adaptation: BAA (``budget`` None) or one static budget."""
    tag = "budget" if budget is None else f"static@{budget:g}"
    validate = budget is None  # BAA reports validation accuracy at hard budgets after each phase
    phases = [Phase(tag, cfg.budget_epochs, lambda m: GateObjective(cfg, budget), cfg.phase_lr, seed_offset=1,
                    param_groups=lambda m: gate_params(m, cfg), validate=validate)]
    if cfg.hard_epochs > 0:
        phases.append(Phase("hard" if budget is None else f"hard@{budget:g}", cfg.hard_epochs,
                            lambda m: HardAdaptObjective(cfg, copy.deepcopy(m).eval().requires_grad_(False), budget),
                            cfg.phase_lr * 0.5, seed_offset=2, param_groups=lambda m: gate_params(m, cfg), validate=validate))
    return phases


def plan(dense, cfg: TrainConfig, budget: float | None = None):
    return with_gating(dense, "baa", seed=cfg.seed), gated_phases(dense, cfg)


BAA = register(Method("baa", "BAA (one model, hard gates)", "#2f6fde", gating="baa", plan=plan,
                      phases=("budget", "hard"), order=0))
