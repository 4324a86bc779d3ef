"""The model's dataclass config: its shape and how its heads are gated.

Every config round-trips through plain JSON (``to_dict`` / ``from_dict``) so a checkpoint's
``config.json`` fully describes how to rebuild its model. Unknown keys are an error, not a
silent default: a checkpoint written by a newer version should fail loudly.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

GATINGS = ("dense", "baa", "static", "budgetformer", "posthoc", "adaptive")
EMBEDDINGS = ("word", "bert")
ADAPTIVE_INPUTS = ("embedding", "block")  # what an adaptive block's share reads
ADAPTIVE_SCORES = ("input", "input+budget", "static")  # what an adaptive block's head scores read
# FFN / head activations by their Hugging Face names (transformers' ACT2FN); "gelu" is the exact (erf) GELU.
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish", "tanh")
POOLINGS = ("mean", "first")


class ConfigError(ValueError):
    """A config that cannot describe a valid model or recipe."""


# What a config may ask for, checked before anything is allocated: a hostile or corrupt config.json
# must not be able to make the loader reserve gigabytes (vocab_size 1e8 x d 128 is a 51 GB tensor).
# Generous for real models: XLM-R has 250k word pieces, BERT-large d=1024 / 24 layers / 16 heads.
SHAPE_LIMITS = {"vocab_size": 1_000_000, "n_classes": 100_000, "d_model": 8192, "n_heads": 256, "n_layers": 128,
                "d_ffn": 65_536, "max_len": 65_536, "type_vocab_size": 1024, "controller_hidden": 8192}
MAX_PARAMETERS = 2_000_000_000  # the whole model, estimated from its shape


def _check_int(name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range (allowed: {low} to {high:,})")


def _check_number(name: str, value, low: float, high: float, *, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, not {value!r}")
    if value < low or value > high or (low_open and value == low):
        raise ConfigError(f"{name}={value} is out of range ({'(' if low_open else '['}{low:g}, {high:g}])")


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
    eps = 1e-3  # gates.BUDGET_EPS: the budget logit is taken of b clipped to [eps, 1 - eps]
    u = [math.log(min(max(b, eps), 1 - eps) / (1 - min(max(b, eps), 1 - eps))) + c for b, c in pairs]
    if any(b1 >= b2 for (b1, _), (b2, _) in zip(pairs, pairs[1:])) or any(u1 > u2 + 1e-6 for u1, u2 in zip(u, u[1:])):
        raise ConfigError("budget_calibration must list increasing budgets whose calibrated logits never decrease")


@dataclass
class ModelConfig:
    """Shape of an encoder classifier and how its heads are gated.

    One config describes both the word-level model trained from scratch (``embedding="word"``)
    and BERT-family encoders (``embedding="bert"``: token-type embeddings, BERT's LayerNorm eps).
    The fields after ``labels`` describe the Hugging Face families read by ``baa_core.families``
    (RoBERTa, DistilBERT, ELECTRA, ALBERT, ...); their defaults are the original model, so every
    config written before they existed builds the same modules and loads the same weights.
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
    # BERT initialises embeddings with std 0.02. The synthetic task's preset uses 1.0 (PyTorch's
    # nn.Embedding default): its dense model then finds its positional head in 300-500 training steps
    # instead of 600-1500+ (6 seeds each, measured while building this; training speed, not a test
    # score). For text models it is one of the values re-chosen on validation (protocol.SELECTION_GRIDS).
    embedding_init_std: float = 0.02
    # Heads kept per layer. None means n_heads everywhere; a sliced model lists fewer.
    heads_per_layer: list[int] | None = None
    gating: str = "dense"
    # For gating == "static": the budgets that each have their own learned gate set.
    static_budgets: list[float] = field(default_factory=list)
    # For gating == "budgetformer" / "adaptive": the controller's hidden width.
    controller_hidden: int = 64
    labels: list[str] = field(default_factory=list)
    # For gating == "adaptive" (methods/adaptive.py, issue 10): what the budget FFN reads ("embedding":
    # the pooled embedding output, so s_i(b) is monotone in b in every block; "block": the block
    # input), and the validation calibration [[b, c(b)], ...] of the budget logit (empty: none).
    adaptive_input: str = "embedding"
    # adaptive: what the head scores read: the block input ("input"), also the budget ("input+budget":
    # score_h = w_h . h + slope_h * u(b), so which heads run may change with b, as BAA's per-budget gates
    # do), or nothing ("static": one learned order per block, so an input with k heads runs the block's
    # first k: nested in k, as BAA's heads nearly are; inputs differ only in how many).
    adaptive_scores: str = "input"
    budget_calibration: list[list[float]] = field(default_factory=list)
    # ---- Hugging Face encoder families (issue 13); defaults = the model above, unchanged
    hidden_act: str = "gelu"  # FFN activation (ALBERT: gelu_new; DistilBERT: its config's `activation`)
    # ALBERT / ELECTRA: token embeddings of this width, LayerNorm'ed, then projected to d_model. None: d_model, no projection.
    embedding_size: int | None = None
    # RoBERTa: position ids start at pad_id + 1 and padding gets pad_id; the position table holds max_len + offset rows.
    position_offset: int = 0
    pooling: str = "mean"  # "mean": masked mean over tokens; "first": the first token ([CLS] / <s>)
    head_act: str | None = None  # a d x d dense layer and this activation before the classifier (BERT's pooler: tanh)
    family: str = ""  # the Hugging Face model_type the weights came from ("" = this project's own model)

    def __post_init__(self):
        lows = {"type_vocab_size": 0}
        for name, high in SHAPE_LIMITS.items():
            _check_int(name, getattr(self, name), lows.get(name, 1), high)
        _check_int("pad_id", self.pad_id, 0, self.vocab_size - 1)
        for name in ("dropout", "attn_dropout"):
            _check_number(name, getattr(self, name), 0.0, 1.0)
        _check_number("layer_norm_eps", self.layer_norm_eps, 0.0, 1.0, low_open=True)
        _check_number("embedding_init_std", self.embedding_init_std, 0.0, 100.0)
        if self.parameter_estimate() > MAX_PARAMETERS:
            raise ConfigError(f"this shape has about {self.parameter_estimate():,.0f} parameters, more than the "
                              f"{MAX_PARAMETERS:,} this project loads")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.gating not in GATINGS:
            raise ConfigError(f"gating must be one of {GATINGS}, not {self.gating!r}")
        if self.embedding not in EMBEDDINGS:
            raise ConfigError(f"embedding must be one of {EMBEDDINGS}, not {self.embedding!r}")
        for name in ("heads_per_layer", "static_budgets", "labels"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, list):
                raise ConfigError(f"{name} must be a list, not {type(value).__name__}")
        if any(not isinstance(b, (int, float)) or isinstance(b, bool) or not 0.0 < b <= 1.0 for b in self.static_budgets):
            raise ConfigError(f"static_budgets must lie in (0, 1], not {self.static_budgets!r}")
        if any(not isinstance(x, str) for x in self.labels):
            raise ConfigError("labels must be strings")
        if self.heads_per_layer is not None:
            if any(isinstance(h, bool) or not isinstance(h, int) for h in self.heads_per_layer):
                raise ConfigError("heads_per_layer must list whole numbers")
            if len(self.heads_per_layer) != self.n_layers:
                raise ConfigError("heads_per_layer needs one entry per layer")
            if any(not 1 <= h <= self.n_heads for h in self.heads_per_layer):
                raise ConfigError(f"each layer keeps between 1 and {self.n_heads} heads")
        if self.gating == "static" and not self.static_budgets:
            raise ConfigError("static gating needs at least one budget in static_budgets")
        if self.hidden_act not in ACTIVATIONS or (self.head_act is not None and self.head_act not in ACTIVATIONS):
            raise ConfigError(f"activations must be one of {ACTIVATIONS}, not {self.hidden_act!r} / {self.head_act!r}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, not {self.pooling!r}")
        if self.adaptive_input not in ADAPTIVE_INPUTS:
            raise ConfigError(f"adaptive_input must be one of {ADAPTIVE_INPUTS}, not {self.adaptive_input!r}")
        if self.adaptive_scores not in ADAPTIVE_SCORES:
            raise ConfigError(f"adaptive_scores must be one of {ADAPTIVE_SCORES}, not {self.adaptive_scores!r}")
        if self.budget_calibration:
            _check_calibration(self.budget_calibration)
        if self.labels and len(self.labels) != self.n_classes:
            raise ConfigError(f"{len(self.labels)} labels given for {self.n_classes} classes")

    def parameter_estimate(self) -> int:
        """Parameters of the dense model of this shape (embeddings, blocks, classifier), from the shape alone."""
        d, f, L = self.d_model, self.d_ffn, self.n_layers
        embeddings = (self.vocab_size + self.max_len + self.type_vocab_size) * d
        block = 4 * d * d + 2 * d * f + 10 * d + f
        return embeddings + L * block + d * self.n_classes

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
