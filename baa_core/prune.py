"""Structural pruning: build physically smaller models, and rank heads for post-hoc pruning.

``slice_heads`` is how every method gets real speed: given which heads stay (and, optionally, the
gate values they carry), it copies the model with only those heads' Q/K/V rows and output
columns. Post-hoc pruning ranks the dense model's heads by validation importance (Michel et al.,
2019: |dL/dg_h| at g = 1, summed over the validation set) and keeps the top ones per budget.
"""
from __future__ import annotations

import copy

import torch

from .encoder import BudgetedClassifier
from .gates import heads_for_budget, topk_head_mask


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


def layout_mask(n_layers: int, n_heads: int, heads_per_layer) -> torch.Tensor:
    """A mask with ``heads_per_layer[l]`` heads on in layer l: latency depends on the counts, not on which heads."""
    mask = torch.zeros(n_layers, n_heads)
    for layer, k in enumerate(heads_per_layer):
        mask[layer, :k] = 1
    return mask


def head_importance(model: BudgetedClassifier, batches, device: str = "cpu") -> torch.Tensor:
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
