"""The budgeted encoder classifier: embeddings -> L gated blocks -> masked mean pool -> linear.

One model class serves the word-level model trained from scratch and the Hugging Face encoder
families of ``model/families`` (post-LayerNorm blocks, as in BERT; config fields say where a family
differs: activation, embedding width and projection, position offset, pooling and head). How heads
are gated is part of the config:

* ``dense``: no gate module; all heads run (or an explicit ``head_mask`` is applied).
* ``baa``: a ``BudgetGate``; ``forward(..., budget=b)`` uses g(b) (soft) or its top-k mask (hard).
* ``static``: one learned gate set per trained budget.
* ``posthoc``: a fixed head ranking (validation importance of a trained model); nothing learned.
* ``budgetformer``: a per-block controller predicts each input's budget s and head relevance q
  (``gates.HeadController``).
* ``adaptive``: the same controllers, also told the requested budget b: s_i(b) rises with b for
  every input (``adaptive.AdaptiveController``, issue 10).

Pass the budget in on every call: the model holds no "current budget", so one cached instance can
serve many users at different budgets at once.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .attention import GatedSelfAttention, attention_bias, masked_mean
from .config import ModelConfig
from .adaptive import AdaptiveController, BudgetCalibration
from .gates import BudgetGate, HeadController, RankedGate, StaticGates, as_budget_tensor


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, C)
    head_weights: torch.Tensor | None = None  # (L, H) or (B, L, H): gate applied per head; None = all on
    attentions: list[torch.Tensor] | None = None  # per layer (B, H_l, T, T)
    controller: list[dict] = field(default_factory=list)  # BudgetFormer: per block s, q, chosen mask


def activation(name: str):
    """A Hugging Face activation name (config.ACTIVATIONS) as a function. ``gelu_new`` is GPT-2's tanh
    approximation, which is exactly what F.gelu(approximate="tanh") computes."""
    if name == "gelu":
        return F.gelu
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return functools.partial(F.gelu, approximate="tanh")
    return {"relu": F.relu, "silu": F.silu, "swish": F.silu, "tanh": torch.tanh}[name]


class Embeddings(nn.Module):
    """word + position (+ token type) -> LayerNorm -> dropout (-> projection to d_model: ALBERT, ELECTRA)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        width = cfg.embedding_size or cfg.d_model
        self.pad_id, self.position_offset = cfg.pad_id, cfg.position_offset
        self.word_embeddings = nn.Embedding(cfg.vocab_size, width, padding_idx=cfg.pad_id)
        self.position_embeddings = nn.Embedding(cfg.max_len + cfg.position_offset, width)
        self.token_type_embeddings = (
            nn.Embedding(cfg.type_vocab_size, width) if cfg.type_vocab_size else None
        )
        self.LayerNorm = nn.LayerNorm(width, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)
        self.projection = nn.Linear(width, cfg.d_model) if cfg.embedding_size else None

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        T = input_ids.shape[1]
        if self.position_offset:
            # RoBERTa (fairseq): tokens count from pad_id + 1 in order, padding sits at pad_id.
            real = input_ids.ne(self.pad_id).long()  # (B, T)
            positions = torch.cumsum(real, dim=1) * real + (self.position_offset - 1)
            x = self.word_embeddings(input_ids) + self.position_embeddings(positions)  # (B, T, E)
        else:
            x = self.word_embeddings(input_ids) + self.position_embeddings.weight[:T]  # (B, T, E)
        if self.token_type_embeddings is not None:
            tt = token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
            x = x + self.token_type_embeddings(tt)
        x = self.dropout(self.LayerNorm(x))
        return x if self.projection is None else self.projection(x)  # (B, T, d)


class EncoderBlock(nn.Module):
    """BERT's post-LN block: x = LN(x + Attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, cfg: ModelConfig, n_heads: int):
        super().__init__()
        self.attention = GatedSelfAttention(cfg.d_model, n_heads, cfg.head_dim, cfg.attn_dropout)
        self.attention_norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.intermediate = nn.Linear(cfg.d_model, cfg.d_ffn)
        self.ffn_output = nn.Linear(cfg.d_ffn, cfg.d_model)
        self.ffn_norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)
        self.act = activation(cfg.hidden_act)

    def forward(self, x, attn_bias, head_weights=None, output_attentions=False, attention=None):
        """``attention`` swaps in another attention module (a sliced one) for this call only."""
        a, probs = (attention or self.attention)(x, attn_bias, head_weights, output_attentions)
        x = self.attention_norm(x + self.dropout(a))  # (B, T, d)
        h = self.ffn_output(self.act(self.intermediate(x)))
        x = self.ffn_norm(x + self.dropout(h))  # (B, T, d)
        return x, probs


class BudgetedClassifier(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.embeddings = Embeddings(cfg)
        self.blocks = nn.ModuleList(EncoderBlock(cfg, h) for h in cfg.layer_heads)
        self.dropout = nn.Dropout(cfg.dropout)
        # The classification head: pooled (mean or first token) [-> dense -> head_act] -> linear.
        self.pre_classifier = nn.Linear(cfg.d_model, cfg.d_model) if cfg.head_act else None
        self.head_act = activation(cfg.head_act) if cfg.head_act else None
        self.classifier = nn.Linear(cfg.d_model, cfg.n_classes)
        # BERT-style init for the network itself; gate modules below keep their own initialisation.
        self.apply(self._init_weights)
        if cfg.embedding_init_std != 0.02:
            for emb in (self.embeddings.word_embeddings, self.embeddings.position_embeddings):
                nn.init.normal_(emb.weight, std=cfg.embedding_init_std)
            nn.init.zeros_(self.embeddings.word_embeddings.weight[cfg.pad_id])
        self.gate: nn.Module | None = None
        self.controllers: nn.ModuleList | None = None
        if cfg.gating == "baa":
            self.gate = BudgetGate(cfg.n_layers, cfg.n_heads)
        elif cfg.gating == "static":
            self.gate = StaticGates(cfg.n_layers, cfg.n_heads, cfg.static_budgets)
        elif cfg.gating == "posthoc":
            self.gate = RankedGate(cfg.n_layers, cfg.n_heads)
        elif cfg.gating == "budgetformer":
            self.controllers = nn.ModuleList(
                HeadController(cfg.d_model, cfg.n_heads, cfg.controller_hidden) for _ in range(cfg.n_layers)
            )
        elif cfg.gating == "adaptive":  # issue 10: BudgetFormer's controllers, told the budget b
            self.controllers = nn.ModuleList(
                AdaptiveController(cfg.d_model, cfg.n_heads, cfg.controller_hidden, cfg.adaptive_input,
                                   cfg.adaptive_scores)
                for _ in range(cfg.n_layers)
            )
            self.calibration = BudgetCalibration(cfg.budget_calibration)

    def reset_classifier(self) -> None:
        """Draw the final classifier afresh (BERT-style init), per training seed, on a pretrained encoder that
        came without one. ``pre_classifier`` stays: a bare BERT's pooler is pretrained."""
        self._init_weights(self.classifier)

    def classify(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, d) final hidden states -> (B, C) logits, through this model's head."""
        pooled = x[:, 0] if self.config.pooling == "first" else masked_mean(x, attention_mask)  # (B, d)
        if self.pre_classifier is not None:
            pooled = self.head_act(self.pre_classifier(self.dropout(pooled)))
        return self.classifier(self.dropout(pooled))

    @staticmethod
    def _init_weights(m: nn.Module):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                nn.init.zeros_(m.weight[m.padding_idx])

    @property
    def is_sliced(self) -> bool:
        return self.config.heads_per_layer is not None

    def gate_values(self, budget, hard: bool = False) -> torch.Tensor | None:
        """Gate values at a budget: (L, H) for one budget, (B, L, H) per example; None if ungated."""
        if budget is None or self.gate is None:
            return None
        return self.gate.hard(budget) if hard else self.gate(budget)

    def controller_context(self, x: torch.Tensor, attention_mask: torch.Tensor | None, budget) -> dict:
        """What every block's controller reads besides its own input: nothing for BudgetFormer; for
        adaptive models the calibrated budget logit u(b) and the pooled embedding output."""
        if self.config.gating != "adaptive":
            return {}
        if budget is None:
            raise ValueError("an adaptive model needs a budget b in (0, 1] on every call")
        pooled = x.mean(1) if attention_mask is None else masked_mean(x, attention_mask)  # (B, d)
        return {"budget_logit": self.calibration(as_budget_tensor(budget, x.device)), "pooled": pooled}

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        attention_mask: torch.Tensor | None = None,  # (B, T) 1 = token, 0 = padding
        token_type_ids: torch.Tensor | None = None,
        *,
        budget=None,
        hard: bool = False,
        head_mask: torch.Tensor | None = None,  # (L, H) or (B, L, H); overrides the gates
        controller_mode: str | None = None,
        output_attentions: bool = False,
    ) -> ClassifierOutput:
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_id).long()
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, d)
        bias = attention_bias(attention_mask, x.dtype)
        weights = head_mask if head_mask is not None else self.gate_values(budget, hard)
        if weights is not None and weights.shape[-2:] != (self.config.n_layers, self.config.n_heads):
            raise ValueError(f"head weights of shape {tuple(weights.shape)} do not match L x H model")
        use_controller = weights is None and self.controllers is not None
        if use_controller:
            mode = controller_mode or ("hard" if not self.training else "soft")
            adaptive = self.config.gating == "adaptive"  # there, budget is b; for BudgetFormer, a fixed s
            target = None if budget is None or adaptive else as_budget_tensor(budget, x.device)
            context = self.controller_context(x, attention_mask, 1.0 if adaptive and budget is None and mode == "all" else budget)
        attentions, records, applied = [], [], []
        for layer, block in enumerate(self.blocks):
            w = None if weights is None else weights[..., layer, :]  # (H,) or (B, H)
            if use_controller:
                w, record = self.controllers[layer](x, attention_mask, mode=mode, target=target, **context)
                records.append(record)
            applied.append(w)
            x, probs = block(x, bias, w, output_attentions)
            if output_attentions:
                attentions.append(probs)
        logits = self.classify(x, attention_mask)  # (B, C)
        if use_controller:
            weights = torch.stack(applied, dim=-2)  # (B, L, H)
        return ClassifierOutput(logits, weights, attentions if output_attentions else None, records)
