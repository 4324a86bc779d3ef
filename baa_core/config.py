"""Dataclass configs: the model's shape and gating, and the training recipe.

Every config round-trips through plain JSON (``to_dict`` / ``from_dict``) so a checkpoint's
``config.json`` fully describes how to rebuild its model. Unknown keys are an error, not a
silent default: a checkpoint written by a newer version should fail loudly.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

GATINGS = ("dense", "baa", "static", "budgetformer", "adaptive")
EMBEDDINGS = ("word", "bert")


class ConfigError(ValueError):
    """A config that cannot describe a valid model or recipe."""


def _from_dict(cls, data: dict[str, Any]):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__} does not know the keys {unknown}")
    return cls(**data)


def _check_calibration(table) -> None:
    """[[b, c], ...]: budgets strictly increasing in (0, 1], and logit(b) + c non-decreasing, so the
    calibrated budget logit (and with it every input's s_i(b)) stays monotone in b."""
    import math

    try:
        pairs = [(float(b), float(c)) for b, c in table]
    except (TypeError, ValueError):
        raise ConfigError("budget_calibration must be a list of [budget, shift] pairs") from None
    if any(not (0.0 < b <= 1.0 and math.isfinite(c)) for b, c in pairs):
        raise ConfigError("budget_calibration budgets must lie in (0, 1] and shifts be finite numbers")
    b_eps = 1e-3  # gates.BUDGET_EPS: the budget logit is taken of b clipped to [eps, 1 - eps]
    u = [math.log(min(max(b, b_eps), 1 - b_eps) / (1 - min(max(b, b_eps), 1 - b_eps))) + c for b, c in pairs]
    if any(b1 >= b2 for (b1, _), (b2, _) in zip(pairs, pairs[1:])) or any(u1 > u2 + 1e-6 for u1, u2 in zip(u, u[1:])):
        raise ConfigError("budget_calibration must list increasing budgets whose calibrated logits never decrease")


@dataclass
class ModelConfig:
    """Shape of an encoder classifier and how its heads are gated.

    One config describes both the word-level model trained from scratch (``embedding="word"``)
    and BERT-family encoders (``embedding="bert"``: token-type embeddings, BERT's LayerNorm eps).
    """

    vocab_size: int
    n_classes: int
    d_model: int = 128
    n_heads: int = 8
    n_layers: int = 2
    d_ffn: int = 256
    max_len: int = 128
    dropout: float = 0.1
    attn_dropout: float = 0.0
    layer_norm_eps: float = 1e-5
    embedding: str = "word"
    type_vocab_size: int = 0
    pad_id: int = 0
    # BERT initialises embeddings with std 0.02. Models trained from scratch use 1.0 (PyTorch's
    # nn.Embedding default): on the marked-token task the dense model then finds its positional
    # head in 300-500 steps instead of 600-1500+ (6 seeds each, measured while building this).
    embedding_init_std: float = 0.02
    # Heads kept per layer. None means n_heads everywhere; a sliced model lists fewer.
    heads_per_layer: list[int] | None = None
    gating: str = "dense"
    # For gating == "static": the budgets that each have their own learned gate set.
    static_budgets: list[float] = field(default_factory=list)
    # For gating == "budgetformer" / "adaptive": the controller's hidden width.
    controller_hidden: int = 64
    # For gating == "adaptive" (baa_core/adaptive.py): what the budget FFN reads ("embedding": the
    # pooled embedding output, so s_i(b) is monotone in b in every block; "block": the block input),
    # and the validation calibration [[b, c(b)], ...] of the budget logit (empty: none).
    adaptive_input: str = "embedding"
    budget_calibration: list[list[float]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.gating not in GATINGS:
            raise ConfigError(f"gating must be one of {GATINGS}, not {self.gating!r}")
        if self.embedding not in EMBEDDINGS:
            raise ConfigError(f"embedding must be one of {EMBEDDINGS}, not {self.embedding!r}")
        if self.heads_per_layer is not None:
            if len(self.heads_per_layer) != self.n_layers:
                raise ConfigError("heads_per_layer needs one entry per layer")
            if any(not 1 <= h <= self.n_heads for h in self.heads_per_layer):
                raise ConfigError(f"each layer keeps between 1 and {self.n_heads} heads")
        if self.gating == "static" and not self.static_budgets:
            raise ConfigError("static gating needs at least one budget in static_budgets")
        if self.adaptive_input not in ("embedding", "block"):
            raise ConfigError(f"adaptive_input must be 'embedding' or 'block', not {self.adaptive_input!r}")
        if self.budget_calibration:
            _check_calibration(self.budget_calibration)
        if self.labels and len(self.labels) != self.n_classes:
            raise ConfigError(f"{len(self.labels)} labels given for {self.n_classes} classes")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def layer_heads(self) -> list[int]:
        return list(self.heads_per_layer or [self.n_heads] * self.n_layers)

    @property
    def total_heads(self) -> int:
        return self.n_layers * self.n_heads

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return _from_dict(cls, data)


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
    max_len: int = 128
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
    # Adaptive (baa_core/adaptive.py, issue 10): budget-conditioned phase, hard adaptation, and how
    # many budgets one batch is split into (the cost penalty is per budget group). The schedule
    # reuses bf_temp_*, bf_noise_*, bf_explore_fraction; the cost penalty weight is lambda_overshoot.
    ad_epochs: float = 3.0
    ad_hard_epochs: float = 1.0
    ad_groups: int = 4
    ad_lambda_gap: float = 1.0

    def __post_init__(self):
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
