"""What a method is, and the registry that holds them (after Hugging Face's attention registry).

A method is one file under ``baa_core/methods/`` that registers a ``Method`` once: its name (cards,
CLI), label and colour (tables, charts), the gating its models carry, what it can do (a global budget
knob, per-input heads, one model per budget), and ``plan``: from a trained dense model, the model to
train and the ``Phase``s to train it with. The Trainer (``train.py``) runs the phases; measurement
(``measure/``) and the app ask the registry instead of comparing method strings.

Adding a method = adding one file here (it is imported by ``methods/__init__.py``) plus its tests.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..model.config import ConfigError, _check_int, _check_number, _from_dict
from ..model.surgery import all_heads_mask


@dataclass
class TrainConfig:
    """The training recipe. Defaults suit the small word-level models; the CLI presets override.

    Phases of BAA (METHODS.md): ``dense_epochs`` of dense warm start, ``budget_epochs`` of
    budget-conditioned training with sampled budgets, ``hard_epochs`` of straight-through top-k
    adaptation distilled from the soft model.
    """

    seed: int = 0
    batch_size: int = 64
    lr: float = 1e-3
    # Learning rate of the model's own weights after the dense warm start (budget, hard, static,
    # recovery, BudgetFormer phases); None = lr. The gates have their own rate, gate_lr.
    adapt_lr: float | None = None
    gate_lr: float = 5e-2
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 1.0
    dense_epochs: float = 3.0
    budget_epochs: float = 3.0
    hard_epochs: float = 1.0
    # Budgets are drawn per example from U(min_budget, max_budget).
    min_budget: float = 0.1
    max_budget: float = 1.0
    lambda_mass: float = 0.05
    lambda_overshoot: float = 5.0
    # Share of budget-phase steps that run the hard top-k mask (straight-through) instead of soft gates.
    hard_fraction: float = 0.25
    distill_alpha: float = 0.5
    distill_temperature: float = 2.0
    # Static baseline and post-hoc recovery: one model per budget in this list.
    budgets: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75])
    recovery_epochs: float = 1.0
    eval_every: int = 0
    # Dense warm start ends early once validation accuracy reaches this (1.0 = never early).
    dense_target_acc: float = 1.0
    device: str = "cpu"
    threads: int = 0  # 0 leaves torch's default
    # BudgetFormer (issue 4): exploration -> exploitation and the budget regulariser.
    bf_epochs: float = 4.0
    bf_explore_fraction: float = 0.4
    bf_temp_start: float = 2.0
    bf_temp_end: float = 0.1
    bf_noise_start: float = 1.0
    bf_noise_end: float = 0.0
    bf_lambda_budget: float = 0.5
    bf_lambda_entropy: float = 0.01
    bf_s_min: float = 0.1
    bf_s_max: float = 0.9
    bf_target: float = 0.3
    # Adaptive (methods/adaptive.py, issue 10): budget-conditioned phase, hard adaptation, how many
    # budgets one batch is split into, and the per-group cost penalty's weights (overshoot, |gap|).
    # The schedule reuses bf_temp_*, bf_noise_*, bf_explore_fraction. The weights were chosen on the
    # synthetic_marks validation split: (1, 0.1) reached 97.5% at b = 0.3 where (5, 1) reached 92.8%;
    # the validation calibration, not the penalty, makes the realised cost follow b.
    ad_epochs: float = 3.0
    ad_hard_epochs: float = 1.0
    ad_groups: int = 4
    ad_lambda_overshoot: float = 1.0
    ad_lambda_gap: float = 0.1
    # Hard adaptation: its learning rate as a share of the phase rate (0.1 chosen on synthetic_marks
    # validation; BAA's hard phase uses 0.5), and its teacher: "soft" (a frozen copy of the soft
    # adaptive model, at the same budgets, as BAA does) or "dense" (the dense warm start, every head on).
    ad_hard_lr_scale: float = 0.1
    ad_teacher: str = "soft"
    # Marginal value of heads per input, measured on the hard path (methods/adaptive.py,
    # ``marginal_value``): weight of the surrogate that moves each input's offset by the finite
    # difference of its own hard-mask loss at budget logits u +- ad_fd_delta (0: off), centred within
    # each budget group so the shared level and alpha get nothing from it (the offset network, and
    # through the pooled input the embeddings, do).
    ad_fd_weight: float = 0.0
    ad_fd_delta: float = 0.5
    # Difficulty signal (methods/adaptive.py, ``difficulty_push``): weight of the surrogate that moves each
    # input's offset up by how far its own loss at its sampled budget lies above its budget group's mean
    # (0: off). It gives heads to the inputs doing worst, not (as the task loss and ``ad_fd_weight`` try)
    # to those that would gain most from one more head.
    ad_difficulty_weight: float = 0.0
    # Who learns what (both off by default). ``ad_freeze_encoder``: the budget-conditioned phase trains
    # the controllers only, so the allocation is learned against the dense model's own heads, which
    # cannot re-learn to make every input easy with few of them. ``ad_hard_keep_controllers``: hard
    # adaptation keeps the controllers (weights and running offset mean) while the encoder adapts to
    # their allocation. On synthetic_marks validation (10 seeds) neither made s rise with the number of
    # marks (the synthetic_marks card's ``selection``).
    ad_freeze_encoder: bool = False
    ad_hard_keep_controllers: bool = False

    def __post_init__(self):
        _check_int("batch_size", self.batch_size, 1, 1_000_000)
        _check_int("threads", self.threads, 0, 1024)
        for name in ("dense_epochs", "budget_epochs", "hard_epochs", "recovery_epochs", "bf_epochs"):
            _check_number(name, getattr(self, name), 0.0, 10_000.0)
        for name in ("lr", "gate_lr"):
            _check_number(name, getattr(self, name), 0.0, 100.0, low_open=True)
        if self.adapt_lr is not None:
            _check_number("adapt_lr", self.adapt_lr, 0.0, 100.0, low_open=True)
        for name in ("lambda_mass", "lambda_overshoot", "weight_decay", "bf_lambda_budget", "bf_lambda_entropy"):
            _check_number(name, getattr(self, name), 0.0, 1e6)
        _check_number("ad_hard_lr_scale", self.ad_hard_lr_scale, 0.0, 10.0, low_open=True)
        _check_number("ad_fd_weight", self.ad_fd_weight, 0.0, 1e6)
        _check_number("ad_difficulty_weight", self.ad_difficulty_weight, 0.0, 1e6)
        _check_number("ad_fd_delta", self.ad_fd_delta, 0.0, 10.0, low_open=True)
        if self.ad_teacher not in ("soft", "dense"):
            raise ConfigError(f"the adaptive hard phase's teacher must be 'soft' or 'dense', not {self.ad_teacher!r}")
        if not 0.0 < self.min_budget <= self.max_budget <= 1.0:
            raise ConfigError("budgets must satisfy 0 < min_budget <= max_budget <= 1")
        if any(not 0.0 < b <= 1.0 for b in self.budgets):
            raise ConfigError("every budget must lie in (0, 1]")
        if not 0.0 < self.bf_target < 1.0:
            raise ConfigError(f"the BudgetFormer target budget must lie in (0, 1), not {self.bf_target}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def phase_lr(self) -> float:
        return self.lr if self.adapt_lr is None else self.adapt_lr

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return _from_dict(cls, data)


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Cross-entropy and batch accuracy: the task part of every objective."""
    return F.cross_entropy(logits, labels), float((logits.argmax(-1) == labels).float().mean())


# An objective turns (model, batch, step context) into a loss and a few metrics for the callbacks.
Objective = Callable[[nn.Module, dict, Any], tuple[torch.Tensor, dict]]


@dataclass
class Phase:
    """One run of the Trainer: its name (``TrainEvent.phase``), its length and how to train.

    ``objective`` is built when the phase starts, from the model as the previous phase left it (BAA's
    hard phase distils from a frozen copy of the soft model). ``validate``: call the validation hook
    at the phase's evaluation points (``eval_every`` steps, 0 = at the end; ``eval_at_start``).
    """

    name: str
    epochs: float
    objective: Callable[[nn.Module], Objective]
    lr: float
    seed_offset: int = 0
    param_groups: Callable[[nn.Module], list] | None = None  # [(params, {"lr": ...}), ...]
    validate: bool = False
    eval_every: int = 0
    evals_per_epoch: int = 0  # instead of eval_every: this many evaluation points per epoch
    eval_at_start: bool = False
    done: Callable[[dict], bool] | None = None  # ends the phase early once validation says so
    after: Callable[[nn.Module], None] | None = None  # runs when the phase ends (e.g. final schedule)


@dataclass(frozen=True)
class Method:
    """A method as the rest of the project sees it. ``plan(dense, cfg, budget)`` -> (model, phases)."""

    name: str
    label: str  # how its rows are named in tables and charts
    color: str
    gating: str  # the gate module its models carry (ModelConfig.gating)
    plan: Callable[..., tuple[nn.Module, list[Phase]]] | None = None  # None: nothing to train (post-hoc)
    has_budget: bool = True  # one global budget knob that picks the heads
    per_input: bool = False  # each input gets its own heads (controllers)
    one_model_per_budget: bool = False  # static, recovery: a model trained for each budget
    trainable: bool = True  # offered by ``train --method`` and the app's Train page
    phases: tuple[str, ...] = ()  # TrainEvent.phase names of ``plan``'s phases ({b:g}: the budget)
    order: int = 0  # position in tables and legends
    # After training: (model, validation batches, device) -> report, fitting what the method fits on
    # held-out rows (adaptive: the budget calibration). Validation only; the pipeline calls it.
    calibrate: Callable[..., dict] | None = None

    @property
    def slides(self) -> bool:
        """One trained model whose heads follow a global budget slider, the same heads for every input (BAA;
        not per-budget models, not adaptive ones, whose heads depend on the input as well)."""
        return self.has_budget and not self.one_model_per_budget and not self.per_input and self.gating != "dense"

    def phase_names(self, budget: float | None = None) -> list[str]:
        """The phases a training run shows, dense warm start first (for progress bars)."""
        names = [] if self.name == "dense" else ["dense"]
        return names + [p.format(b=budget or 0.0) for p in self.phases]


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is registered twice")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None


def method_for_model(model: nn.Module) -> Method:
    """The method whose models carry this model's gating: the one named like the gating first (a dense
    model is ``dense``, not ``recovery``, whose models are dense-gated too; a post-hoc ranking is ``posthoc``)."""
    gating = model.config.gating
    same = sorted((m for m in METHODS.values() if m.gating == gating), key=lambda m: (m.name != gating, m.plan is None, m.order))
    if not same:
        raise ValueError(f"no registered method makes models with gating {gating!r}")
    return same[0]


def operating_point(model: nn.Module, budget: float | None) -> torch.Tensor | None:
    """(L, H) 0/1 mask of the heads a budget-gated model runs at ``budget`` (the same heads for every
    input); all heads for an ungated model; None for per-input methods (their heads depend on the input)."""
    if model.config.gating == "dense":
        return all_heads_mask(model.config)
    if model.gate is None:
        return None
    if budget is None:
        raise ValueError("a budget-gated model needs a budget to pick its heads")
    return model.gate.hard(budget).detach()


def ordered(names) -> list[str]:
    """Method names in the registry's table order; unknown names (from another version) last."""
    rank = {m.name: m.order for m in METHODS.values()}
    return sorted(names, key=lambda n: (rank.get(n, 1_000), n))


def label(name: str) -> str:
    m = METHODS.get(name)
    return m.label if m else name


def color(name: str) -> str | None:
    m = METHODS.get(name)
    return m.color if m else None
