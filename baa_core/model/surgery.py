"""Model surgery: physically smaller copies, and copies with another kind of gating.

``slice_heads`` is how every method gets real speed: given which heads stay (and, optionally, the
gate values they carry), it copies the model with only those heads' Q/K/V rows and output
columns. ``with_gating`` copies a model's weights under a fresh gate module (a method's start).
"""
from __future__ import annotations

import copy

import torch

from .encoder import BudgetedClassifier
from .rng import seeded_rng


def kept_heads(mask: torch.Tensor) -> list[list[int]]:
    """(L, H) 0/1 mask -> the kept head indices of each layer."""
    return [torch.nonzero(row > 0).flatten().tolist() for row in mask]


@torch.no_grad()
def slice_heads(model: BudgetedClassifier, mask: torch.Tensor, gate_values: torch.Tensor | None = None) -> BudgetedClassifier:
    """A dense, smaller copy of ``model`` running only the heads where ``mask`` (L, H) is non-zero.

    ``gate_values`` (L, H), if given, are folded into the output projection so that the sliced
    model equals masked execution with those soft gates; by default kept heads count fully (the
    hard operating point). Every layer must keep at least one head.
    """
    if model.is_sliced:
        raise ValueError("this model is already sliced; slice the full model instead")
    cfg = model.config
    if tuple(mask.shape) != (cfg.n_layers, cfg.n_heads):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match ({cfg.n_layers}, {cfg.n_heads})")
    keep = kept_heads(mask)
    if any(not k for k in keep):
        raise ValueError("every layer must keep at least one head to be built structurally")
    small_cfg = copy.deepcopy(cfg)
    small_cfg.heads_per_layer = [len(k) for k in keep]
    small_cfg.gating = "dense"
    small = BudgetedClassifier(small_cfg).to(next(model.parameters()).device)
    # Everything but the attention projections and the gates is shared unchanged.
    state = {k: v for k, v in model.state_dict().items()
             if not k.startswith(("gate.", "controllers.")) and ".attention." not in k}
    small.load_state_dict(state, strict=False)
    scale = None if gate_values is None else gate_values.detach()
    for layer, (big, new) in enumerate(zip(model.blocks, small.blocks)):
        new.attention = big.attention.sliced(keep[layer], None if scale is None else scale[layer])
    small.train(model.training)
    return small


def all_heads_mask(cfg) -> torch.Tensor:
    """(L, H) ones: every head of a full (unsliced) model on."""
    return torch.ones(cfg.n_layers, cfg.n_heads)


def layout_mask(n_layers: int, n_heads: int, heads_per_layer) -> torch.Tensor:
    """A mask with ``heads_per_layer[l]`` heads on in layer l: latency depends on the counts, not on which heads."""
    mask = torch.zeros(n_layers, n_heads)
    for layer, k in enumerate(heads_per_layer):
        mask[layer, :k] = 1
    return mask


def with_gating(model: BudgetedClassifier, gating: str, static_budgets: list[float] | None = None,
                seed: int | None = None) -> BudgetedClassifier:
    """A copy of ``model`` (same weights) with a fresh gate module of another kind, initialised from ``seed``."""
    cfg = copy.deepcopy(model.config)
    cfg.gating = gating
    cfg.static_budgets = list(static_budgets or [])
    with seeded_rng(seed):
        new = BudgetedClassifier(cfg).to(next(model.parameters()).device)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(("gate.", "controllers."))}
    missing, unexpected = new.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(("gate.", "controllers.")) for k in missing), (missing, unexpected)
    for name, p in model.named_parameters():  # keep frozen parameters (e.g. BERT word embeddings) frozen
        if not p.requires_grad:
            new.get_parameter(name).requires_grad_(False)
    return new
