"""The adaptive method's model parts (issue 10): a budget-conditioned controller and its calibration.

    s_i(b) = sigmoid( f(h_i) + level + softplus(alpha) * u(b) )      per block; f: a small FFN, centred
    u(b)   = logit(b) + c(b)                                        c: validation calibration

Heads: the top ceil(s_i * H) by the block's linear head scores (>= 1), BudgetFormer's rule, with its
controller's scorer, temperatures and soft relaxation (``gates.HeadController``). softplus(alpha) >= 0
and u is non-decreasing in b, so s_i(b) never falls as b rises, for any input and any weights, in
every block whose f reads something that does not depend on b (``adaptive_input="embedding"``: the
pooled embedding output). Training, calibration and the method's choices: ``methods/adaptive.py``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .attention import masked_mean
from .gates import HeadController, budget_logit

CALIBRATION_GRID = [round(0.05 * i, 2) for i in range(1, 21)]  # 0.05 .. 1.00: where c(b) is solved


class AdaptiveController(HeadController):
    """BudgetFormer's controller (scorer, soft/hard rules, temperatures), told the budget."""

    def __init__(self, d_model: int, n_heads: int, hidden: int = 64, reads: str = "embedding", scores: str = "input"):
        super().__init__(d_model, n_heads, hidden)
        self.reads = reads
        # "input+budget": each head's score also moves with the budget logit (starts flat: the same
        # ranking at every b), so the heads an input runs may change with b as BAA's do; s_i(b), the
        # count, stays monotone either way.
        self.score_slope = nn.Parameter(torch.zeros(n_heads)) if scores == "input+budget" else None
        # "static": the scores are the scorer's bias alone, one learned order per block (an input with k
        # heads runs the first k: nested in k, as BAA's nearly are). Drawn apart at the start so the order
        # is defined; the unused weight rows are zeroed (both paths ignore them).
        self.static_scores = scores == "static"
        if self.static_scores:
            with torch.no_grad():
                self.input.weight[self.hidden :].zero_()
                self.input.bias[self.hidden :].normal_(0, 1e-3)
        self.raw_alpha = nn.Parameter(torch.tensor(math.log(math.expm1(1.0))))  # softplus(alpha) = 1
        # The block's shared level, apart from the per-input offset (see ``offset``).
        self.level = nn.Parameter(torch.zeros(()))
        self.register_buffer("offset_mean", torch.zeros(()))  # running mean of the raw offset, as BatchNorm keeps
        # f starts at 0, so s_i(b) = b for every input before training: the budget is met from step one.
        nn.init.zeros_(self.budget_out.weight)
        nn.init.zeros_(self.budget_out.bias)

    def sensitivity(self) -> torch.Tensor:
        return F.softplus(self.raw_alpha)

    def offset(self, h: torch.Tensor) -> torch.Tensor:
        """f(h) - mean f + level: the input's own push up or down, (B, d) -> (B,).

        The raw FFN output is centred (on the batch while training, on its running mean after), so
        the per-input part only moves inputs relative to each other: the cost penalty, which acts on
        a group's mean, reaches the shared ``level`` and alpha, and the per-input part learns from the
        task loss which inputs gain most from more heads."""
        z = F.linear(h, self.input.weight[: self.hidden], self.input.bias[: self.hidden])  # (B, hidden)
        f = self.budget_out(F.gelu(z)).squeeze(-1)  # (B,)
        # A controller frozen for a phase (its weights not trained) keeps its running mean too, as at
        # inference (what it reads may still change: the embeddings train).
        if self.training and f.shape[0] > 1 and self.budget_out.weight.requires_grad:
            mean = f.mean()
            with torch.no_grad():
                self.offset_mean.lerp_(mean.detach(), 0.05)
        else:
            mean = self.offset_mean
        return f - mean + self.level

    def predict(self, x: torch.Tensor, attention_mask: torch.Tensor | None, budget_logit: torch.Tensor = None,
                pooled: torch.Tensor = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.mean(1) if attention_mask is None else masked_mean(x, attention_mask)  # (B, d) block input
        scores = self.head_scores(h, budget_logit)  # (B, H)
        return self.share(pooled if self.reads == "embedding" else h, budget_logit), scores

    def share(self, read: torch.Tensor, budget_logit: torch.Tensor) -> torch.Tensor:
        """s_i(b) = sigmoid(f(h_i) + softplus(alpha) * u(b)): (B, d) what the share reads -> (B,); u () or (B,)."""
        return torch.sigmoid(self.offset(read) + self.sensitivity() * budget_logit)

    def head_scores(self, h: torch.Tensor, budget_logit: torch.Tensor) -> torch.Tensor:
        """(B, d) pooled block input -> (B, H) head scores (which heads; the share s says how many)."""
        if self.static_scores:
            return self.input.bias[self.hidden :].expand(h.shape[0], -1)  # (B, H): the same order for every input
        scores = F.linear(h, self.input.weight[self.hidden :], self.input.bias[self.hidden :])  # (B, H)
        if self.score_slope is not None:
            u = budget_logit.reshape(-1, 1) if budget_logit.dim() else budget_logit  # (B, 1) or ()
            scores = scores + self.score_slope * u  # (B, H)
        return scores

    def forward(self, x, attention_mask, mode: str = "hard", target=None, budget_logit=None, pooled=None):
        s, scores = self.predict(x, attention_mask, budget_logit, pooled)
        if target is not None:
            s = target.expand_as(s).to(s.dtype)
        return self.head_weights(s, scores, mode)


class StackedShares:
    """Every block's share s^l(b) at once, for ``adaptive_input="embedding"`` (all blocks read the same
    pooled embedding output): the blocks' budget FFNs stacked into one batched matmul. Inference only (a
    snapshot of the weights): per-input execution at batch 1 would otherwise spend more time in six tiny
    FFNs than the heads it skips save. Same arithmetic as ``AdaptiveController.offset`` + ``predict``, up to the
    order of float rounding."""

    def __init__(self, controllers):
        self.n_blocks, self.hidden = len(controllers), controllers[0].hidden
        hid = self.hidden
        with torch.no_grad():
            # every block's first layer as one (L * hidden, d) matrix: one GEMV for all blocks
            self.w1 = torch.cat([c.input.weight[:hid] for c in controllers])  # (L * hidden, d)
            self.b1 = torch.cat([c.input.bias[:hid] for c in controllers])  # (L * hidden,)
            # every block's second layer as one block-diagonal (L * hidden, L) matrix: one GEMM, bias added in it
            self.w2 = torch.block_diag(*[c.budget_out.weight[0, :, None] for c in controllers])  # (L * hidden, L)
            self.b2 = torch.stack([c.budget_out.bias[0] for c in controllers])  # (L,)
            self.shift = torch.stack([c.level - c.offset_mean for c in controllers])  # (L,)
            self.alpha = torch.stack([c.sensitivity() for c in controllers])  # (L,)

    def constant(self, budget_logit: torch.Tensor) -> torch.Tensor:
        """What the shares add to every input's f at this calibrated budget logit: (L,), or (B, L) for (B,)."""
        u = budget_logit.reshape(-1, 1) if budget_logit.dim() else budget_logit
        return self.b2 + self.shift + self.alpha * u

    def __call__(self, pooled: torch.Tensor, constant: torch.Tensor) -> torch.Tensor:
        """(B, d) pooled embedding output and ``self.constant(u)`` -> (B, L) shares."""
        z = F.gelu(F.linear(pooled, self.w1, self.b1))  # (B, L * hidden)
        return torch.sigmoid(torch.addmm(constant, z, self.w2))  # (B, L)


def _interp(x: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear through (xs, ys), slope 1 beyond both ends; non-decreasing if ys is."""
    if len(xs) == 1:
        return ys[0] + (x - xs[0])
    i = torch.searchsorted(xs, x.clamp(xs[0], xs[-1])).clamp(1, len(xs) - 1)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    inside = y0 + (y1 - y0) * (x - x0) / (x1 - x0).clamp_min(1e-12)
    return torch.where(x < xs[0], ys[0] + (x - xs[0]), torch.where(x > xs[-1], ys[-1] + (x - xs[-1]), inside))


class BudgetCalibration(nn.Module):
    """b -> u(b) = logit(b) + c(b), interpolated linearly in logit(b) through the table [[b, c(b)], ...]
    of the config (empty: c = 0). No tensors in the state dict: ``config.json`` holds the table."""

    def __init__(self, table: list[list[float]] | None = None):
        super().__init__()
        self.register_buffer("knots", torch.zeros(0), persistent=False)  # logit(b) at the table's budgets
        self.register_buffer("values", torch.zeros(0), persistent=False)  # u there
        self.set_table(table or [])

    def set_table(self, table: list[list[float]]) -> None:
        # Computed on the CPU, then moved: on the meta device (a skeleton built to check a checkpoint's shapes)
        # log / cummax run through Python reference kernels whose first use imports ~1 s of torch internals.
        dev = self.knots.device
        b = torch.tensor([float(r[0]) for r in table], dtype=torch.float64, device="cpu")
        c = torch.tensor([float(r[1]) for r in table], dtype=torch.float64, device="cpu")
        x = budget_logit(b)
        u = (x + c).cummax(0).values if len(table) else x + c  # rounding never makes u step down
        self.knots, self.values = x.float().to(dev), u.float().to(dev)
        self.table = [[float(v), float(w)] for v, w in table]

    def forward(self, budget: torch.Tensor) -> torch.Tensor:
        x = budget_logit(budget.float())
        return x if len(self.knots) == 0 else _interp(x, self.knots, self.values)


def set_calibration(model, table: list[list[float]]) -> None:
    """Install a calibration table in a model and in its config (what ``config.json`` will hold)."""
    model.config.budget_calibration = [[float(b), float(c)] for b, c in table]
    model.config.__post_init__()  # validates the table (increasing budgets, monotone logits)
    model.calibration.set_table(model.config.budget_calibration)


def realised_fraction(s: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Mean over blocks of ceil(s * H) / H (>= 1 head): the share of heads that run, per input. (N, L) -> (N,)."""
    return torch.ceil(s * n_heads - 1e-6).clamp(1, n_heads).mean(-1) / n_heads
