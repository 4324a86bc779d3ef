"""Gated multi-head self-attention: one module, two ways to run it.

* Masked (the eager reference): every head is computed and its context is multiplied by a gate
  before the output projection, W_O . concat_h(g_h . head_h). Gates may be soft values, a 0/1
  mask, one set for the batch (H,) or one per example (B, H). It can return attention weights.
* Sliced: ``slice_heads`` builds a physically smaller module holding only the kept heads' Q/K/V
  rows and output-projection columns, with the kept heads' gate values folded into those columns.
  Its output equals the masked output with the other heads' gates at zero; only the smaller
  matmuls run, so it is faster on a CPU. Multiplying a head by zero saves nothing.

Weights follow Hugging Face BERT's layout (query/key/value/output Linear layers over
n_heads * head_dim features), so pretrained BERT weights load by name.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class GatedSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, head_dim: int, attn_dropout: float = 0.0):
        super().__init__()
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, head_dim
        inner = n_heads * head_dim
        self.query = nn.Linear(d_model, inner)
        self.key = nn.Linear(d_model, inner)
        self.value = nn.Linear(d_model, inner)
        self.output = nn.Linear(inner, d_model)
        self.attn_dropout = attn_dropout

    def forward(
        self,
        x: torch.Tensor,  # (B, T, d)
        attn_bias: torch.Tensor | None,  # (B, 1, 1, T) additive: 0 for tokens, -inf-like for padding; None = no padding
        head_weights: torch.Tensor | None = None,  # (H,) or (B, H); None = all heads at 1
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, _ = x.shape
        H, D = self.n_heads, self.head_dim
        q = self.query(x).view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        k = self.key(x).view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        v = self.value(x).view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        dropout = self.attn_dropout if self.training else 0.0
        if output_attentions:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(D)  # (B, H, T, T)
            if attn_bias is not None:
                scores = scores + attn_bias
            probs = scores.softmax(dim=-1)
            ctx = F.dropout(probs, dropout, self.training) @ v  # (B, H, T, D)
        else:
            # SDPA computes the same softmax(QK^T/sqrt(D) + bias) V without materialising weights.
            probs = None
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, dropout_p=dropout)
        if head_weights is not None:
            ctx = ctx * head_weights.reshape(-1, H, 1, 1).to(ctx.dtype)  # gate before W_O
        out = self.output(ctx.transpose(1, 2).reshape(B, T, H * D))  # (B, T, d)
        return out, probs

    @torch.no_grad()
    def sliced(self, keep: list[int], scale: torch.Tensor | None = None) -> "GatedSelfAttention":
        """A new module with only the heads in ``keep``; ``scale`` (H,) folds gate values into W_O."""
        if not keep:
            raise ValueError("a layer must keep at least one head to be built structurally")
        D = self.head_dim
        rows = torch.cat([torch.arange(h * D, (h + 1) * D) for h in keep])
        small = GatedSelfAttention(self.d_model, len(keep), D, self.attn_dropout)
        small = small.to(device=self.query.weight.device, dtype=self.query.weight.dtype)
        for name in ("query", "key", "value"):
            big, new = getattr(self, name), getattr(small, name)
            new.weight.copy_(big.weight[rows])
            new.bias.copy_(big.bias[rows])
        w_o = self.output.weight[:, rows]  # (d, k*D)
        if scale is not None:
            w_o = w_o * scale[keep].repeat_interleave(D).to(w_o.dtype)
        small.output.weight.copy_(w_o)
        small.output.bias.copy_(self.output.bias)
        return small


def attention_bias(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
    """(B, T) 1/0 padding mask -> (B, 1, 1, T) additive bias that keeps padding out of every softmax.

    None when nothing is padded (a single input, or equal lengths): attention then needs no mask.
    """
    if bool(attention_mask.all()):
        return None
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def masked_mean(x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    m = attention_mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)  # (B, d)
