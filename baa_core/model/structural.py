"""Structural per-input execution: each input runs only the heads its controllers chose.

Per-input head choice means a different small weight matrix per input; ``SlicedHeadCache`` keeps
the sliced attention modules per (block, head set), and ``structural_forward`` runs one input at
batch 1 through them. Its logits equal the batched masked path's (tests check it).
"""
from __future__ import annotations

from collections import OrderedDict

import torch

from .attention import attention_bias
from .gates import hard_head_mask


class SlicedHeadCache:
    """Sliced attention modules per (block, head set), built on first use and kept (LRU, bounded).

    Per-input head choice means a different small weight matrix per input; copying it for every
    input would cost as much as the matmuls it saves. Selections settle on few head sets after the
    exploitation phase, so caching the sliced modules makes the steady state copy-free.
    """

    def __init__(self, model, max_entries: int = 512):
        self.model, self.max_entries = model, max_entries
        self.entries: OrderedDict = OrderedDict()
        self.hits = self.misses = 0

    def get(self, layer: int, heads: tuple[int, ...]):
        key = (layer, heads)
        module = self.entries.get(key)
        if module is None:
            self.misses += 1
            module = self.model.blocks[layer].attention.sliced(list(heads)).eval()
            self.entries[key] = module
            if len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)
        else:
            self.hits += 1
            self.entries.move_to_end(key)
        return module


@torch.no_grad()
def structural_forward(model, input_ids: torch.Tensor, cache: SlicedHeadCache, attention_mask=None,
                       budget=None) -> tuple[torch.Tensor, list]:
    """One input (batch 1): each block's controller picks heads, and only those heads' weights run.

    Returns the logits (1, C) and, per block, the chosen head indices and s. ``budget``: the
    requested b of an adaptive model (``model/adaptive.py``); BudgetFormer models choose without one.
    """
    if input_ids.shape[0] != 1:
        raise ValueError("structural execution runs one input at a time (batch 1)")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    x = model.embeddings(input_ids)  # (1, T, d)
    bias = attention_bias(attention_mask, x.dtype)
    pool_mask = None if bias is None else attention_mask  # no padding at batch 1: a plain mean
    context = model.controller_context(x, pool_mask, budget)  # {} for BudgetFormer
    chosen = []
    for layer, block in enumerate(model.blocks):
        s, scores = model.controllers[layer].predict(x, pool_mask, **context)
        heads = tuple(torch.nonzero(hard_head_mask(s, scores)[0]).flatten().tolist())  # the batched path's rule
        chosen.append({"heads": heads, "s": float(s)})
        x, _ = block(x, bias, attention=cache.get(layer, heads))
    logits = model.classify(x, attention_mask)  # the model's own head (mean or first-token pooling)
    return logits, chosen
