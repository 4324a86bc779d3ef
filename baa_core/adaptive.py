"""Adaptive: budget-conditioned per-input head allocation (METHODS.md section 4, issue 10).

BAA gives every input the same heads at a budget; BudgetFormer gives each input its own budget but
has no knob. Here one checkpoint takes a global budget b (the slider) and every block's controller
turns it into this input's share of heads:

    s_i(b) = sigmoid( f(h_i) + softplus(alpha) * u(b) )         f: a small FFN, alpha: learned
    u(b)   = logit(b) + c(b)                                    c: validation calibration (below)

Heads: the top ceil(s_i * H) by the block's linear head scores (>= 1): BudgetFormer's rule
(``budgetformer.hard_head_mask``), its soft relaxation and its controller, reused.

Choices for what is open (every one is a ``ModelConfig`` / ``TrainConfig`` field, so cards record it):

* What f reads. ``adaptive_input="embedding"`` (default): the mean-pooled embedding output h_i^0,
  the same for every b. Then s_i^l(b) is monotone in b in **every** block for every input, which is
  the promise "more budget never takes heads away". ``"block"``: the mean-pooled block input, as in
  BudgetFormer; only the first block is then guaranteed monotone, because a later block's input
  depends on the heads the earlier blocks chose at b. The head *scores* (which heads) always read
  the block input, so which heads run follows what the block sees.
* Budgets per example from U(min_budget, max_budget), drawn as ``ad_groups`` budgets per batch
  (each example gets one of them), so the cost penalty can hold each budget's mean realised head
  fraction to its b while leaving inputs free to spend more or less than b:
  loss = task + lambda_overshoot * max(0, r_g - b_g) + ad_lambda_gap * |r_g - b_g|, averaged over
  groups g, with r_g the group's mean soft head weight (the differentiable realised fraction; under
  straight-through it equals the heads that actually run).
* BudgetFormer's exploration -> exploitation schedule (bf_temp_*, bf_noise_*, straight-through in
  its last 20%), then ``ad_hard_epochs`` of hard adaptation (forward with the hard top-ceil(sH)
  masks, backward through the soft weights) distilled from a frozen copy of the soft model.
* Calibration on the validation split: for each b on ``CALIBRATION_GRID`` the calibrated logit
  u(b) is solved by bisection so that the realised mean head fraction (mean over inputs and blocks
  of ceil(s * H) / H, the heads that run) equals b; u is made non-decreasing over the grid and
  interpolated linearly in logit(b) (slope 1 beyond the grid), so s_i(b) stays monotone. The table
  lives in ``config.json`` (``budget_calibration``): inference is self-contained.
"""
from __future__ import annotations

import copy
import math
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from .budgetformer import BudgetFormerObjective, HeadController
from .encoder import masked_mean
from .gates import budget_logit

CALIBRATION_GRID = [round(0.05 * i, 2) for i in range(1, 21)]  # 0.05 .. 1.00
LOGIT_BRACKET = (-30.0, 30.0)  # the calibrated logit is searched in here


# ---------------------------------------------------------------- model
class AdaptiveController(HeadController):
    """BudgetFormer's controller (scorer, soft/hard rules, temperatures), told the budget.

    s = sigmoid(f(h) + softplus(alpha) * u): monotone non-decreasing in the calibrated budget logit
    u for any parameters, and u is non-decreasing in b.
    """

    def __init__(self, d_model: int, n_heads: int, hidden: int = 64, reads: str = "embedding"):
        super().__init__(d_model, n_heads, hidden)
        self.reads = reads
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
        the offset only moves inputs relative to each other: the cost penalty, which acts on a
        group's mean, reaches the shared ``level`` and alpha and not the per-input part, which
        learns from the task loss alone which inputs gain most from more heads."""
        z = F.linear(h, self.input.weight[: self.hidden], self.input.bias[: self.hidden])  # (B, hidden)
        f = self.budget_out(F.gelu(z)).squeeze(-1)  # (B,)
        if self.training and f.shape[0] > 1:
            mean = f.mean()
            with torch.no_grad():
                self.offset_mean.lerp_(mean.detach(), 0.05)
        else:
            mean = self.offset_mean
        return f - mean + self.level

    def predict(self, x: torch.Tensor, attention_mask: torch.Tensor | None, budget_logit: torch.Tensor = None,
                pooled: torch.Tensor = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.mean(1) if attention_mask is None else masked_mean(x, attention_mask)  # (B, d) block input
        scores = F.linear(h, self.input.weight[self.hidden :], self.input.bias[self.hidden :])  # (B, H)
        f = self.offset(pooled if self.reads == "embedding" else h)  # (B,)
        s = torch.sigmoid(f + self.sensitivity() * budget_logit)  # (B,); budget_logit () or (B,)
        return s, scores

    def forward(self, x, attention_mask, mode: str = "hard", target=None, budget_logit=None, pooled=None):
        s, scores = self.predict(x, attention_mask, budget_logit, pooled)
        if target is not None:
            s = target.expand_as(s).to(s.dtype)
        return self.head_weights(s, scores, mode)


def _interp(x: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear through (xs, ys), slope 1 beyond both ends; non-decreasing if ys is."""
    if len(xs) == 1:
        return ys[0] + (x - xs[0])
    i = torch.searchsorted(xs, x.clamp(xs[0], xs[-1])).clamp(1, len(xs) - 1)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    inside = y0 + (y1 - y0) * (x - x0) / (x1 - x0).clamp_min(1e-12)
    return torch.where(x < xs[0], ys[0] + (x - xs[0]), torch.where(x > xs[-1], ys[-1] + (x - xs[-1]), inside))


class BudgetCalibration(nn.Module):
    """b -> u(b) = logit(b) + c(b) from the table [[b, c(b)], ...] in the config (empty: c = 0)."""

    def __init__(self, table: list[list[float]] | None = None):
        super().__init__()
        self.register_buffer("knots", torch.zeros(0), persistent=False)  # logit(b) at the table's budgets
        self.register_buffer("values", torch.zeros(0), persistent=False)  # u there
        self.set_table(table or [])

    def set_table(self, table: list[list[float]]) -> None:
        dev = self.knots.device
        b = torch.tensor([float(r[0]) for r in table], dtype=torch.float64, device=dev)
        c = torch.tensor([float(r[1]) for r in table], dtype=torch.float64, device=dev)
        x = budget_logit(b)
        # cummax: float rounding must not make u step down anywhere (monotone by construction)
        u = (x + c).cummax(0).values if len(table) else x + c
        self.knots, self.values = x.float(), u.float()
        self.table = [[float(x), float(y)] for x, y in table]

    def forward(self, budget: torch.Tensor) -> torch.Tensor:
        x = budget_logit(budget.float())
        return x if len(self.knots) == 0 else _interp(x, self.knots, self.values)


def set_calibration(model, table: list[list[float]]) -> None:
    """Install a calibration table in a model and in its config (what ``config.json`` will hold)."""
    model.config.budget_calibration = [[float(b), float(c)] for b, c in table]
    model.config.__post_init__()  # validates the table (increasing budgets, monotone logits)
    model.calibration.set_table(model.config.budget_calibration)


# ---------------------------------------------------------------- training
def _group_budgets(B: int, cfg, generator: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ad_groups budgets from U(min_budget, max_budget); each example gets one. -> b (B,), group (B,), b_g (G,)."""
    G = max(1, min(cfg.ad_groups, B))
    bg = cfg.min_budget + (cfg.max_budget - cfg.min_budget) * torch.rand(G, generator=generator)
    group = torch.randperm(B, generator=generator) % G
    return bg[group].to(device), group.to(device), bg.to(device)


def cost_penalty(weights: torch.Tensor, group: torch.Tensor, bg: torch.Tensor, cfg) -> tuple[torch.Tensor, dict]:
    """Per budget group: lambda_overshoot * max(0, r - b) + ad_lambda_gap * |r - b|, r = mean head weight."""
    frac = weights.mean(dim=(1, 2))  # (B,) realised head fraction per example (soft, or hard via straight-through)
    G = len(bg)
    count = torch.zeros(G, device=frac.device).index_add_(0, group, torch.ones_like(frac))
    r = torch.zeros(G, device=frac.device, dtype=frac.dtype).index_add_(0, group, frac) / count.clamp_min(1)
    over, gap = F.relu(r - bg).mean(), (r - bg).abs().mean()
    return cfg.lambda_overshoot * over + cfg.ad_lambda_gap * gap, {"overshoot": over.item(), "gap": gap.item()}


class AdaptiveObjective:
    """Task loss + per-budget cost penalty, under BudgetFormer's explore -> exploit schedule.

    With a ``teacher`` it is the hard-adaptation phase: forward with the hard masks (straight-through),
    loss mixes the task with distillation from the teacher (the frozen soft model) at the same budgets.
    """

    def __init__(self, cfg, teacher=None):
        self.cfg, self.teacher = cfg, teacher
        self.scheduler = BudgetFormerObjective(cfg)  # its set_schedule: temperatures, noise, straight-through

    def set_schedule(self, model, progress: float) -> dict:
        if self.teacher is None:
            return self.scheduler.set_schedule(model, progress)
        sched = self.scheduler.set_schedule(model, 1.0)  # exploitation's end: lowest temperature, no noise
        for ctrl in model.controllers:
            ctrl.straight_through = True
        return sched

    def __call__(self, model, batch, ctx):
        sched = self.set_schedule(model, ctx.progress)
        labels = batch["labels"]
        b, group, bg = _group_budgets(labels.shape[0], self.cfg, ctx.generator, labels.device)
        out = model(batch["input_ids"], batch["attention_mask"], budget=b, controller_mode="soft")
        task = F.cross_entropy(out.logits, labels)
        penalty, info = cost_penalty(out.head_weights, group, bg, self.cfg)
        loss = task + penalty
        if self.teacher is not None:
            with torch.no_grad():
                t_logits = self.teacher(batch["input_ids"], batch["attention_mask"], budget=b, controller_mode="soft").logits
            T, a = self.cfg.distill_temperature, self.cfg.distill_alpha
            kd = F.kl_div(F.log_softmax(out.logits / T, -1), F.log_softmax(t_logits / T, -1), log_target=True,
                          reduction="batchmean")
            loss = (1 - a) * task + a * T * T * kd + penalty
            info["distill"] = kd.item()
        s = torch.stack([r["s"] for r in out.controller], dim=1)  # (B, L)
        acc = float((out.logits.argmax(-1) == labels).float().mean())
        return loss, {"accuracy": acc, "cost": out.head_weights.detach().mean().item(), "s_mean": s.mean().item(),
                      "budget_mean": bg.mean().item(), "task_loss": task.item(), **info, **sched}


def _controller_groups(model, cfg):
    return [(list(model.controllers.parameters()), {"lr": cfg.gate_lr * 0.1})]


def train_adaptive(dense, train, cfg, val=None, callbacks=(), stop=None):
    """Dense model -> adaptive controllers -> budget-conditioned phase -> hard adaptation -> calibration."""
    from .methods import _trainer, with_gating

    model = with_gating(dense, "adaptive")
    steps_per_epoch = max(1, math.ceil(len(train) / cfg.batch_size))

    def evaluate_val(m):
        out = {}
        for b in (0.25, 0.5):
            o = adaptive_outputs(m, val, b, device=cfg.device)
            out[f"val_acc@{b:g}"] = o["accuracy"]
            out[f"val_cost@{b:g}"] = o["realised"]
        return out

    kw = dict(callbacks=list(callbacks), stop=stop, evaluate=evaluate_val if val is not None else None,
              eval_every=max(1, steps_per_epoch // 2))
    _trainer(model, AdaptiveObjective(cfg), train, cfg, "adaptive", cfg.ad_epochs, seed_offset=5, lr=cfg.phase_lr,
             param_groups=_controller_groups(model, cfg), eval_at_start=True, **kw).run()
    if cfg.ad_hard_epochs > 0:
        teacher = copy.deepcopy(model).eval().requires_grad_(False)
        for ctrl in teacher.controllers:
            ctrl.straight_through = False
        _trainer(model, AdaptiveObjective(cfg, teacher), train, cfg, "adaptive-hard", cfg.ad_hard_epochs, seed_offset=6,
                 lr=cfg.phase_lr * 0.1, param_groups=_controller_groups(model, cfg), **kw).run()
    AdaptiveObjective(cfg).set_schedule(model, 1.0)
    for ctrl in model.controllers:
        ctrl.straight_through = False
    model.eval()
    if val is not None and len(val):
        calibrate(model, val, device=cfg.device)
    return model


# ---------------------------------------------------------------- measuring
@torch.no_grad()
def adaptive_outputs(model, data, budget, batch_size: int = 128, device: str = "cpu", mode: str = "hard") -> dict:
    """Batched masked evaluation at one budget: per example prediction, loss, s (N, L), heads (N, L, H)."""
    from .data import iterate_batches

    was = model.training
    model.to(device).eval()
    pred, label, loss, s, mask = [], [], [], [], []
    for batch in iterate_batches(data, batch_size, device=device):
        out = model(batch["input_ids"], batch["attention_mask"], budget=budget, controller_mode=mode)
        pred.append(out.logits.argmax(-1).cpu())
        label.append(batch["labels"].cpu())
        loss.append(F.cross_entropy(out.logits.float(), batch["labels"], reduction="none").cpu())
        s.append(torch.stack([r["s"] for r in out.controller], 1).float().cpu())
        mask.append(out.head_weights.float().cpu())
    model.train(was)
    o = {"pred": torch.cat(pred), "label": torch.cat(label), "loss": torch.cat(loss), "s": torch.cat(s),
         "mask": torch.cat(mask)}
    o["accuracy"] = float((o["pred"] == o["label"]).float().mean())
    o["realised"] = float(o["mask"].mean())
    return o


def _embedding_offsets(model, data, batch_size: int = 256, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """For ``adaptive_input="embedding"``: f_l(h_i^0) (N, L) and softplus(alpha_l) (L,). The realised
    head fraction at any budget logit then follows without running the blocks."""
    from .data import iterate_batches

    f = []
    with torch.no_grad():
        for batch in iterate_batches(data, batch_size, device=device):
            x = model.embeddings(batch["input_ids"])
            h0 = masked_mean(x, batch["attention_mask"])
            f.append(torch.stack([c.offset(h0) for c in model.controllers], 1).float().cpu())
        alpha = torch.stack([c.sensitivity() for c in model.controllers]).float().cpu()
    return torch.cat(f), alpha


def _outputs(model, data, budget, device: str, cache: dict | None) -> dict:
    """``adaptive_outputs`` at ``budget``, memoised in ``cache`` (one pass over ``data`` per budget)."""
    if cache is None:
        return adaptive_outputs(model, data, budget, device=device)
    key = round(float(budget), 6)
    if key not in cache:
        cache[key] = adaptive_outputs(model, data, budget, device=device)
    return cache[key]


def realised_fraction(s: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Mean over blocks of ceil(s * H) / H (>= 1 head): the share of heads that run, per input. (N, L) -> (N,)."""
    return torch.ceil(s * n_heads - 1e-6).clamp(1, n_heads).mean(-1) / n_heads


@torch.no_grad()
def calibrate(model, val, grid=CALIBRATION_GRID, iters: int = 30, device: str = "cpu") -> dict:
    """Solve u(b) on ``val`` so the realised mean head fraction equals b at each grid budget; install it.

    Returns the table and what it reaches on ``val``. The realised fraction is a non-decreasing step
    function of u (exactly so for ``adaptive_input="embedding"``), found by bisection; a target
    below one head per block (or above all heads) takes the bracket's end.
    """
    H = model.config.n_heads
    model.to(device).eval()
    if model.config.adaptive_input == "embedding":
        f, alpha = _embedding_offsets(model, val, device=device)

        def realised(u: float) -> float:
            return float(realised_fraction(torch.sigmoid(f + alpha * u), H).mean())
    else:
        saved = list(model.calibration.table)

        def realised(u: float) -> float:  # a one-knot table puts u exactly at b = 0.5
            model.calibration.set_table([[0.5, u]])
            return adaptive_outputs(model, val, 0.5, device=device)["realised"]

    try:
        us, reached = [], []
        for b in grid:
            lo, hi = LOGIT_BRACKET
            r_lo, r_hi = realised(lo), realised(hi)
            if r_lo >= b:
                u, r = lo, r_lo
            elif r_hi <= b:
                u, r = hi, r_hi
            else:
                for _ in range(iters):  # keep realised(lo) < b <= realised(hi)
                    mid = 0.5 * (lo + hi)
                    r_mid = realised(mid)
                    if r_mid < b:
                        lo, r_lo = mid, r_mid
                    else:
                        hi, r_hi = mid, r_mid
                u, r = (lo, r_lo) if abs(r_lo - b) < abs(r_hi - b) else (hi, r_hi)
            us.append(u)
            reached.append(r)
    finally:
        if model.config.adaptive_input != "embedding":
            model.calibration.set_table(saved)
    us = torch.tensor(us, dtype=torch.float64).cummax(0).values  # monotone in b (it is already, up to bisection ties)
    shifts = (us - budget_logit(torch.tensor(grid, dtype=torch.float64))).tolist()
    table = [[float(b), float(c)] for b, c in zip(grid, shifts)]
    set_calibration(model, table)
    return {"table": table, "val_realised": [{"budget": b, "realised": r} for b, r in zip(grid, reached)],
            "split": "validation", "n": len(val)}


def tracking(model, data, budgets, device: str = "cpu", cache: dict | None = None) -> dict:
    """|realised - b| and |mean s - b| at each budget on ``data``, and the worst of each."""
    rows = []
    for b in budgets:
        o = _outputs(model, data, b, device, cache)
        rows.append({"budget": b, "realised": o["realised"], "s_mean": float(o["s"].mean()),
                     "realised_gap": o["realised"] - b, "s_gap": float(o["s"].mean()) - b, "accuracy": o["accuracy"]})
    worst_r = max(rows, key=lambda r: abs(r["realised_gap"]))
    worst_s = max(rows, key=lambda r: abs(r["s_gap"]))
    return {"rows": rows, "worst_realised": {"budget": worst_r["budget"], "gap": worst_r["realised_gap"]},
            "worst_s": {"budget": worst_s["budget"], "gap": worst_s["s_gap"]}, "n": len(data)}


def min_realised(model) -> float:
    """One head per block: the least any budget can cost."""
    return 1.0 / model.config.n_heads


def monotone_violations(model, data, budgets=CALIBRATION_GRID, device: str = "cpu", tol: float = 1e-6,
                        cache: dict | None = None) -> dict:
    """How many (input, block) pairs have s or the head count fall somewhere as b rises over ``budgets``."""
    s_all, k_all = [], []
    for b in budgets:
        o = _outputs(model, data, b, device, cache)
        s_all.append(o["s"])
        k_all.append(o["mask"].sum(-1))
    s, k = torch.stack(s_all), torch.stack(k_all)  # (n_budgets, N, L)
    s_bad = ((s[1:] < s[:-1] - tol).any(0))
    k_bad = ((k[1:] < k[:-1]).any(0))
    return {"s_decreases": int(s_bad.sum()), "heads_decrease": int(k_bad.sum()), "pairs": int(s_bad.numel()),
            "inputs_with_any": int((s_bad | k_bad).any(-1).sum()), "n": s.shape[1]}


def adaptive_sweep(model, test, budgets, *, method: str = "adaptive", latency_examples: int = 0, threads: int = 1,
                   device: str = "cpu", progress=None, latency_repeats: int = 5, cache: dict | None = None) -> list[dict]:
    """``sweep``'s rows for an adaptive model: accuracy by batched masked evaluation, est_cost = the
    realised mean head fraction, s_mean / s_std over test inputs (mean over blocks per input), and
    latency of the structural batch-1 path (each input runs only its heads) beside the dense model."""
    from .analysis import per_example_latency

    L, H = model.config.n_layers, model.config.n_heads
    rows = []
    for b in budgets:
        o = _outputs(model, test, b, device, cache)
        s_in = o["s"].mean(1)
        heads = o["mask"].sum(-1)  # (N, L)
        row = {"budget": float(b), "accuracy": o["accuracy"], "est_cost": o["realised"],
               "active_heads": round(float(heads.sum(-1).mean()), 3), "total_heads": L * H, "method": method,
               "heads_per_layer": [round(float(v), 3) for v in heads.mean(0)], "n": len(test),
               "s_mean": float(s_in.mean()), "s_std": float(s_in.std(unbiased=False)),
               "realised_std": float(realised_fraction(o["s"], H).std(unbiased=False)),
               "latency_ms": None, "dense_latency_ms": None, "speedup": None, "flop_speedup": None, "threads": threads}
        if latency_examples:
            lat = per_example_latency(model.cpu(), test, latency_examples, threads, repeats=latency_repeats, budget=b)
            model.to(device)
            row.update(latency_ms=statistics.median(r["latency_ms"] for r in lat["examples"]),
                       dense_latency_ms=statistics.median(r["dense_ms"] for r in lat["examples"]),
                       speedup=lat["median_speedup"], flop_speedup=lat["median_flop_speedup"],
                       latency_ratio_to_flop_model=lat["median_ratio"], latency_inputs=lat["n"],
                       latency_protocol="batch 1 per input, structural path vs dense on the same input, medians")
        if progress:
            progress(f"{method} budget {b:g}: accuracy {row['accuracy']:.4f}, realised cost {row['est_cost']:.3f}, "
                     f"mean s {row['s_mean']:.3f}")
        rows.append(row)
    return rows


# ---------------------------------------------------------------- analyses and the app's arrays
def s_by_group(s: torch.Tensor, groups: list, name: str) -> list[dict]:
    """Mean / std of per-input s (N,) for each value in ``groups`` (e.g. the number of marks)."""
    out = []
    for g in sorted(set(groups)):
        idx = [i for i, x in enumerate(groups) if x == g]
        v = s[idx]
        out.append({name: g, "n": len(idx), "s_mean": float(v.mean()), "s_std": float(v.std(unbiased=False))})
    return out


def complexity_analysis(model, test, complexity: torch.Tensor, budgets=(0.3, 0.5), device: str = "cpu",
                        measure: str = "", cache: dict | None = None) -> list[dict]:
    """Spearman rho(complexity, s) at each budget; s = mean over blocks per input."""
    from .analysis import spearman

    rows = []
    for b in budgets:
        o = _outputs(model, test, b, device, cache)
        s = o["s"].mean(1)
        rows.append({"budget": b, "spearman_rho": spearman(complexity, s),
                     "spearman_rho_realised": spearman(complexity, realised_fraction(o["s"], model.config.n_heads)),
                     "n": len(test), "complexity_measure": measure})
    return rows


def operating_point_arrays(model, data, budget: float, device: str = "cpu") -> dict:
    """What the explorer draws at one budget, as plain lists: per input s (mean over blocks), s per
    block, realised head fraction, label, correct; and the summary numbers."""
    o = adaptive_outputs(model, data, budget, device=device)
    return {"budget": float(budget), "s": o["s"].mean(1).tolist(), "s_blocks": o["s"].tolist(),
            "realised": realised_fraction(o["s"], model.config.n_heads).tolist(), "label": o["label"].tolist(),
            "correct": (o["pred"] == o["label"]).tolist(), "accuracy": o["accuracy"], "est_cost": o["realised"],
            "s_mean": float(o["s"].mean())}


@torch.no_grad()
def s_curves(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, budgets=None) -> dict:
    """One input: s per block as b runs over ``budgets`` (default 0.05 .. 1.00), and the heads run."""
    budgets = list(budgets or CALIBRATION_GRID)
    model.eval()
    s, k = [], []
    for b in budgets:
        out = model(input_ids, attention_mask, budget=b)
        s.append([float(r["s"][0]) for r in out.controller])
        k.append([int(v) for v in out.head_weights[0].sum(-1).tolist()])
    L = model.config.n_layers
    return {"budgets": budgets, "s": [[row[l] for row in s] for l in range(L)],
            "heads": [[row[l] for row in k] for l in range(L)], "n_heads": model.config.n_heads}


# ---------------------------------------------------------------- intervals and the card
def bootstrap_ci(values: torch.Tensor, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (N,) over resampled test rows.
    Paired differences: pass the per-row difference (e.g. correct_a - correct_b)."""
    v = values.double().flatten()
    if len(v) == 0:
        return (float("nan"), float("nan"))
    g = torch.Generator().manual_seed(seed)
    means = torch.stack([v[torch.randint(len(v), (len(v),), generator=g)].mean() for _ in range(n_boot)])
    lo, hi = torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)).tolist()
    return (lo, hi)


def adaptive_card(prep, model, dense, budgets, tcfg, *, threads: int = 1, latency_examples: int = 0, progress=None,
                  tracking_budgets=None, recalibrate: bool = True) -> tuple[list[dict], dict]:
    """Everything an adaptive model's card holds: sweep rows (with bootstrap intervals) and the analyses.

    ``recalibrate``: solve the calibration on the validation split first (after the weights were
    rounded to the storage dtype). Test rows are touched only to report."""
    from .data import count_marks

    device = tcfg.device
    if recalibrate and len(prep.val):
        calibrate(model, prep.val, device=device)
    report = {"calibration": {"table": model.config.budget_calibration, "split": "validation", "n": len(prep.val),
                              "grid": CALIBRATION_GRID}}
    cache: dict = {}  # one pass over the test split per budget serves every analysis below
    rows = adaptive_sweep(model, prep.test, budgets, latency_examples=latency_examples, threads=threads, device=device,
                          progress=progress, cache=cache)
    for r in rows:
        o = _outputs(model, prep.test, r["budget"], device, cache)
        r["accuracy_ci"] = bootstrap_ci((o["pred"] == o["label"]).float())
    grid = tracking_budgets or [round(0.1 * i, 1) for i in range(1, 11)]
    report["tracking"] = tracking(model, prep.test, grid, device=device, cache=cache)
    report["tracking"]["floor"] = {"min_realised": min_realised(model),
                                   "note": "at least one head per block: no budget can cost less than 1/H"}
    report["monotone"] = monotone_violations(model, prep.test, device=device, cache=cache)
    # complexity from another model: the dense warm start's loss on the true label
    dense_loss = adaptive_dense_loss(dense, prep.test, device)
    measure = ("cross-entropy on the true label of the dense warm-start model (every head on; a separate "
               "model from the one analysed)")
    report["s_by_complexity"] = complexity_analysis(model, prep.test, dense_loss, device=device, measure=measure, cache=cache)
    if prep.data.task == "synthetic_marks":
        marks = [count_marks(t) for t in prep.data.test.texts]
        by = []
        for b in (0.15, 0.2, 0.3, 0.5, 0.7, 0.9):
            o = _outputs(model, prep.test, b, device, cache)
            correct = (o["pred"] == o["label"]).float()
            groups = s_by_group(o["s"].mean(1), marks, "marks")
            real = s_by_group(realised_fraction(o["s"], model.config.n_heads), marks, "marks")
            for g, rg in zip(groups, real):
                idx = [i for i, m in enumerate(marks) if m == g["marks"]]
                by.append({"budget": b, **g, "realised_mean": rg["s_mean"], "accuracy": float(correct[idx].mean())})
        report["s_by_marks"] = by
    report["alpha"] = [float(c.sensitivity()) for c in model.controllers]
    return rows, report


@torch.no_grad()
def adaptive_dense_loss(dense, data, device: str = "cpu") -> torch.Tensor:
    """Per-example cross-entropy of a dense model on the true label (complexity, higher = harder)."""
    from .data import iterate_batches

    dense.to(device).eval()
    out = []
    for batch in iterate_batches(data, 128, device=device):
        logits = dense(batch["input_ids"], batch["attention_mask"]).logits
        out.append(F.cross_entropy(logits.float(), batch["labels"], reduction="none").cpu())
    return torch.cat(out)
