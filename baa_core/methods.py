"""The methods as objectives for the Trainer, and the recipes that chain their phases.

BAA (METHODS.md section 1): dense warm start -> budget-conditioned training -> hard-gate adaptation.
Baselines: the dense model, static fixed-budget gates (one model per budget), post-hoc structural
pruning of the dense model by validation importance, and the same after one recovery epoch.

Choices for what the paper leaves open (recorded in every card through ``TrainConfig``):
* budgets are drawn per example from U(min_budget, max_budget), so each batch covers many budgets;
* a share ``hard_fraction`` of budget-phase steps runs the hard top-k mask with straight-through
  gradients, so the soft gates already rank heads the way the hard operating point will use them;
* hard-gate adaptation distils from a frozen copy of the soft model at the same budget.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .config import ModelConfig, TrainConfig
from .data import EncodedDataset, iterate_batches
from .encoder import BudgetedClassifier
from .evaluate import evaluate
from .gates import straight_through, topk_head_mask
from .prune import head_importance
from .train import StepContext, Trainer


# How each method's rows are named in tables and charts (CLI, cards' readers, the app).
METHOD_LABELS = {"dense": "dense (all heads)", "baa": "BAA (one model, hard gates)",
                 "static": "static gates (one model per budget)", "posthoc": "post-hoc structural pruning",
                 "recovery": "post-hoc + 1 recovery epoch (one model per budget)",
                 "budgetformer": "BudgetFormer (per-input budgets)",
                 "adaptive": "adaptive (per-input heads under one budget)"}

def _task_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
    return F.cross_entropy(logits, labels), float((logits.argmax(-1) == labels).float().mean())


def _heads_at(budget: torch.Tensor, n_layers: int, n_heads: int) -> torch.Tensor:
    return torch.floor(budget * n_layers * n_heads + 0.5).long()


class DenseObjective:
    """Task loss with every head on (``mask`` None), or with a fixed head mask (recovery training)."""

    def __init__(self, mask: torch.Tensor | None = None):
        self.mask = mask

    def __call__(self, model, batch, ctx: StepContext):
        out = model(batch["input_ids"], batch["attention_mask"], head_mask=self.mask)
        loss, acc = _task_loss(out.logits, batch["labels"])
        return loss, {"accuracy": acc, "cost": 1.0 if self.mask is None else float(self.mask.mean())}


class GateObjective:
    """task loss + lambda_mass * mean gate mass + lambda_overshoot * max(0, mass - b).

    BAA samples b per example; the static baseline passes its one ``fixed_budget``.
    """

    def __init__(self, cfg: TrainConfig, fixed_budget: float | None = None):
        self.cfg, self.fixed_budget = cfg, fixed_budget

    def budgets(self, B: int, ctx: StepContext, device) -> torch.Tensor:
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

    def __call__(self, model, batch, ctx: StepContext):
        labels = batch["labels"]
        b = self.budgets(labels.shape[0], ctx, labels.device)
        soft = self.soft_gates(model, b)  # (B, L, H)
        cfg = model.config
        use_hard = float(torch.rand((), generator=ctx.generator)) < self.cfg.hard_fraction
        weights = straight_through(topk_head_mask(soft, _heads_at(b, cfg.n_layers, cfg.n_heads)), soft) if use_hard else soft
        out = model(batch["input_ids"], batch["attention_mask"], head_mask=weights)
        task, acc = _task_loss(out.logits, labels)
        reg, overshoot = self.regulariser(soft, b)
        return task + reg, {"accuracy": acc, "cost": float(weights.detach().mean()), "overshoot": overshoot, "task_loss": task.item()}


class HardAdaptObjective(GateObjective):
    """Straight-through top-k training, distilled from the frozen soft model at the same budget."""

    def __init__(self, cfg: TrainConfig, teacher: BudgetedClassifier, fixed_budget: float | None = None):
        super().__init__(cfg, fixed_budget)
        self.teacher = teacher

    def __call__(self, model, batch, ctx: StepContext):
        labels = batch["labels"]
        b = self.budgets(labels.shape[0], ctx, labels.device)
        soft = self.soft_gates(model, b)
        cfg = model.config
        hard = topk_head_mask(soft.detach(), _heads_at(b, cfg.n_layers, cfg.n_heads))
        out = model(batch["input_ids"], batch["attention_mask"], head_mask=straight_through(hard, soft))
        with torch.no_grad():
            t_logits = self.teacher(batch["input_ids"], batch["attention_mask"], head_mask=self.soft_gates(self.teacher, b)).logits
        task, acc = _task_loss(out.logits, labels)
        T, a = self.cfg.distill_temperature, self.cfg.distill_alpha
        kd = F.kl_div(F.log_softmax(out.logits / T, -1), F.log_softmax(t_logits / T, -1), log_target=True, reduction="batchmean")
        # The soft gates still set the ranking. Nothing in this phase pulls them up (the hard mask
        # meets the budget exactly), so the one-sided mass penalty would drive them all to zero;
        # a two-sided penalty keeps the soft mass calibrated to b instead.
        gap = (soft.mean(dim=(1, 2)) - b).abs().mean()
        loss = (1 - a) * task + a * T * T * kd + self.cfg.lambda_overshoot * gap
        return loss, {"accuracy": acc, "cost": float(hard.mean()), "distill": kd.item(), "mass_gap": gap.item()}


# ---------------------------------------------------------------- recipes
def with_gating(model: BudgetedClassifier, gating: str, static_budgets: list[float] | None = None) -> BudgetedClassifier:
    """A copy of ``model`` (same weights) with a fresh gate module of another kind."""
    cfg = copy.deepcopy(model.config)
    cfg.gating = gating
    cfg.static_budgets = list(static_budgets or [])
    new = BudgetedClassifier(cfg).to(next(model.parameters()).device)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(("gate.", "controllers."))}
    missing, unexpected = new.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(("gate.", "controllers.")) for k in missing), (missing, unexpected)
    for name, p in model.named_parameters():  # keep frozen parameters (e.g. BERT word embeddings) frozen
        if not p.requires_grad:
            new.get_parameter(name).requires_grad_(False)
    return new


def _trainer(model, objective, data, cfg: TrainConfig, phase: str, epochs: float, **kw) -> Trainer:
    return Trainer(model, objective, data, phase=phase, epochs=epochs, batch_size=cfg.batch_size, lr=kw.pop("lr", cfg.lr),
                   weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps, grad_clip=cfg.grad_clip,
                   seed=cfg.seed + kw.pop("seed_offset", 0), device=cfg.device, **kw)


def val_metrics(val: EncodedDataset, budgets: tuple[float, ...] = (0.5,), device: str = "cpu") -> Callable:
    """An ``evaluate`` hook for the Trainer: validation accuracy, dense or at hard budgets."""

    def run(model) -> dict:
        if model.config.gating in ("baa",):
            return {f"acc@{b:g}": evaluate(model, val, budget=b, hard=True, device=device).accuracy for b in budgets}
        return {"acc": evaluate(model, val, device=device).accuracy}

    return run


def train_dense(mcfg: ModelConfig, train: EncodedDataset, cfg: TrainConfig, model: BudgetedClassifier | None = None,
                epochs: float | None = None, **kw) -> BudgetedClassifier:
    """Phase 1 of BAA and the dense baseline: plain training with all heads on."""
    torch.manual_seed(cfg.seed)
    model = model if model is not None else BudgetedClassifier(mcfg)
    if cfg.dense_target_acc < 1.0 and kw.get("evaluate") is not None:
        kw.setdefault("done", lambda val: val.get("acc", 0.0) >= cfg.dense_target_acc)
    _trainer(model, DenseObjective(), train, cfg, "dense", cfg.dense_epochs if epochs is None else epochs, **kw).run()
    return model


def _gate_params(model: BudgetedClassifier, cfg: TrainConfig):
    return [(list(model.gate.parameters()), {"lr": cfg.gate_lr})]


def train_gated(dense: BudgetedClassifier, train: EncodedDataset, cfg: TrainConfig, budget: float | None = None,
                **kw) -> BudgetedClassifier:
    """BAA (``budget`` None: one model for all budgets) or the static baseline for one ``budget``.

    Budget-conditioned (or fixed-budget) soft-gate training, then hard-gate adaptation distilled
    from a frozen copy of the soft model. ``dense`` is left untouched.
    """
    model = with_gating(dense, "baa" if budget is None else "static", None if budget is None else [budget])
    tag = "budget" if budget is None else f"static@{budget:g}"
    _trainer(model, GateObjective(cfg, budget), train, cfg, tag, cfg.budget_epochs, seed_offset=1, lr=cfg.phase_lr,
             param_groups=_gate_params(model, cfg), **kw).run()
    if cfg.hard_epochs > 0:
        teacher = copy.deepcopy(model).eval().requires_grad_(False)
        _trainer(model, HardAdaptObjective(cfg, teacher, budget), train, cfg, "hard" if budget is None else f"hard@{budget:g}",
                 cfg.hard_epochs, seed_offset=2, lr=cfg.phase_lr * 0.5, param_groups=_gate_params(model, cfg), **kw).run()
    return model


def validation_importance(dense: BudgetedClassifier, val: EncodedDataset, device: str = "cpu", batch_size: int = 64) -> torch.Tensor:
    """(L, H) validation importance of the dense model's heads, for post-hoc pruning."""
    return head_importance(dense, iterate_batches(val, batch_size, device=device), device)


def train_recovery(dense: BudgetedClassifier, mask: torch.Tensor, train: EncodedDataset, cfg: TrainConfig, **kw) -> BudgetedClassifier:
    """The recovered specialist: the post-hoc-pruned dense model fine-tuned with its fixed head mask."""
    model = copy.deepcopy(dense)
    _trainer(model, DenseObjective(mask.to(cfg.device)), train, cfg, "recovery", cfg.recovery_epochs, seed_offset=3,
             lr=cfg.phase_lr, **kw).run()
    return model
