"""Adaptive: budget-conditioned per-input head allocation (METHODS.md section 4, issue 10).

BAA gives every input the same heads at a budget; BudgetFormer gives each input its own budget but
has no knob. Here one checkpoint takes a global budget b (the slider) and every block's controller
turns it into this input's share of heads, s_i(b) = sigmoid(f(h_i) + level + softplus(alpha) * u(b)),
running the top ceil(s_i * H) heads by its scores (``model/adaptive.py``).

Choices for what is open (each a ``ModelConfig`` / ``TrainConfig`` field, so cards record it):

* What f reads. ``adaptive_input="embedding"`` (default): the mean-pooled embedding output h_i^0,
  the same for every b, so s_i^l(b) is monotone in b in **every** block for every input (the
  promise "more budget never takes heads away"). ``"block"``: the block input, as in BudgetFormer;
  then only the first block is guaranteed monotone, because a later block's input depends on the
  heads the earlier blocks chose at b. The head *scores* (which heads) always read the block input.
* f is centred (batch mean while training, running mean after) and a per-block ``level`` carries the
  shared part: the cost penalty acts on a group's mean, so it moves the level and alpha, and the
  per-input offset learns only from the task loss which inputs gain most from heads.
* Budgets per example from U(min_budget, max_budget), drawn as ``ad_groups`` budgets per batch (each
  example gets one), so the penalty holds each budget's mean realised head fraction to its b while
  inputs stay free to spend more or less than b: loss = task + ad_lambda_overshoot * max(0, r_g - b_g)
  + ad_lambda_gap * |r_g - b_g|, averaged over groups g; r_g is the group's mean soft head weight
  (the differentiable realised fraction; under straight-through its value is the heads that run).
  Light weights (1, 0.1; TrainConfig says how they were chosen): the calibration makes the cost
  follow b, so the penalty only has to keep training at realistic costs.
* BudgetFormer's exploration -> exploitation schedule (bf_temp_*, bf_noise_*; straight-through in
  its last 20%), then ``ad_hard_epochs`` of hard adaptation (forward with the hard top-ceil(sH)
  masks, backward through the soft weights) distilled from a frozen copy of the soft model, at a
  tenth of the phase learning rate (half of it, as BAA uses, lost 3-14 points of validation accuracy
  on the synthetic task in this phase; ``ad_hard_lr_scale``), or, with ``ad_teacher="dense"``, distilled
  from the dense warm start with every head on.
* Which inputs get the heads: by default only the task loss decides, through the soft relaxation (heads
  where one more helps most). Two optional signals, each centred within budget groups: the marginal value
  measured on the hard path (``ad_fd_weight``, ``marginal_value``) and the difficulty signal
  (``ad_difficulty_weight``, ``difficulty_push``: heads to the inputs doing worst), synthetic_marks' preset,
  where every input is solved with few heads and the task loss alone left the direction of s to the seed.
* Calibration on the validation split (``calibrate``): for each b on ``CALIBRATION_GRID`` the
  calibrated logit u(b) is solved by bisection so that the realised mean head fraction (mean over
  inputs and blocks of ceil(s * H) / H, the heads that run) equals b; u is made non-decreasing over
  the grid and interpolated linearly in logit(b) (slope 1 beyond it), so s_i(b) stays monotone. The
  table lives in ``config.json`` (``budget_calibration``): inference is self-contained.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..model.adaptive import CALIBRATION_GRID, realised_fraction, set_calibration
from ..model.attention import masked_mean
from ..model.gates import budget_logit
from ..model.surgery import with_gating
from .base import Method, Phase, TrainConfig, register
from .budgetformer import BudgetFormerObjective

LOGIT_BRACKET = (-30.0, 30.0)  # the calibrated logit is searched in here


def group_budgets(B: int, cfg: TrainConfig, generator: torch.Generator, device):
    """ad_groups budgets from U(min_budget, max_budget); each example gets one. -> b (B,), group (B,), b_g (G,)."""
    G = max(1, min(cfg.ad_groups, B))
    bg = cfg.min_budget + (cfg.max_budget - cfg.min_budget) * torch.rand(G, generator=generator)
    group = torch.randperm(B, generator=generator) % G
    return bg[group].to(device), group.to(device), bg.to(device)


def group_means(values: torch.Tensor, group: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Mean of ``values`` (B,) within each budget group: (n_groups,) (0 for an empty group)."""
    count = torch.zeros(n_groups, device=values.device).index_add_(0, group, torch.ones_like(values))
    return torch.zeros(n_groups, device=values.device, dtype=values.dtype).index_add_(0, group, values) / count.clamp_min(1)


def cost_penalty(weights: torch.Tensor, group: torch.Tensor, bg: torch.Tensor, cfg: TrainConfig):
    """Per budget group: ad_lambda_overshoot * max(0, r - b) + ad_lambda_gap * |r - b|, r = mean head weight."""
    frac = weights.mean(dim=(1, 2))  # (B,) realised head fraction per example (soft, or hard via straight-through)
    r = group_means(frac, group, len(bg))
    over, gap = F.relu(r - bg).mean(), (r - bg).abs().mean()
    return cfg.ad_lambda_overshoot * over + cfg.ad_lambda_gap * gap, {"overshoot": over.item(), "gap": gap.item()}


def marginal_value(model, batch, b: torch.Tensor, group: torch.Tensor, n_groups: int, s_logits: list[torch.Tensor],
                   cfg: TrainConfig) -> tuple[torch.Tensor, dict]:
    """Surrogate whose gradient moves each input's offsets by how much its own loss falls with more heads.

    The soft relaxation's gradient says little about which inputs gain from heads: once the schedule
    is cold it reaches only the boundary head, and most training inputs are already right at most
    budgets. Here each input's loss is measured on the hard path (the heads that would really run)
    at budget logits u - delta and u + delta: g_i = (loss_i(u + delta) - loss_i(u - delta)) / (2 delta)
    estimates d loss_i / d u, and since s_i^l = sigmoid(f^l(h_i) + level^l + alpha^l u) it also says
    which way f should move. g is centred within each budget group, so the shared level and alpha get
    nothing from it (the cost penalty keeps those); the surrogate mean_i sum_l g_i * logit(s_i^l) then
    pushes inputs whose loss falls fastest with heads up and the rest down, until the marginal values
    are equal: the allocation that minimises the summed loss at the group's mean cost."""
    delta = cfg.ad_fd_delta
    ids = batch["input_ids"]
    cuda = [ids.device] if ids.device.type == "cuda" else []
    with torch.no_grad():
        u = budget_logit(b.float())
        losses = []
        for sign in (-1.0, 1.0):
            # Both passes draw the same dropout masks (and leave the training stream as it was), so
            # their difference is the heads' effect, not dropout's. They run in training mode like the
            # step itself: the offsets are centred on the same batch mean (its running mean gets the
            # same value twice more).
            with torch.random.fork_rng(devices=cuda):
                out = model(ids, batch["attention_mask"], budget=torch.sigmoid(u + sign * delta), controller_mode="hard")
            losses.append(F.cross_entropy(out.logits.float(), batch["labels"], reduction="none"))
        g = (losses[1] - losses[0]) / (2 * delta)  # (B,) d loss_i / d u on the hard path; <= 0 where heads help
        g = g - group_means(g, group, n_groups)[group]
    surrogate = sum((g * z).mean() for z in s_logits)
    return cfg.ad_fd_weight * surrogate, {"fd_spread": float(g.abs().mean())}


def difficulty_push(logits: torch.Tensor, labels: torch.Tensor, group: torch.Tensor, n_groups: int,
                    s_logits: list[torch.Tensor], cfg: TrainConfig) -> tuple[torch.Tensor, dict]:
    """Surrogate whose gradient moves each input's offsets up by how much worse it does than its budget
    group: d_i = loss_i - mean of its group (the step's own per-input loss, detached), and the surrogate
    -mean_i sum_l d_i * logit(s_i^l). Centred within groups, so the shared level and alpha get nothing
    from it (the cost penalty keeps those). It stops pushing where more heads even the losses out; an input
    that stays wrong with any number of heads is pushed on (on MiniLM AG News that cost 3 points: the
    MiniLM card's selection). Its weight is not scaled by the hard phase's distillation mix."""
    with torch.no_grad():
        d = F.cross_entropy(logits.float(), labels, reduction="none")  # (B,)
        d = d - group_means(d, group, n_groups)[group]
    surrogate = -sum((d * z).mean() for z in s_logits)
    return cfg.ad_difficulty_weight * surrogate, {"difficulty_spread": float(d.abs().mean())}


class AdaptiveObjective:
    """Task loss + per-budget cost penalty, under BudgetFormer's explore -> exploit schedule.

    With a ``teacher`` it is the hard-adaptation phase: forward with the hard masks (straight-through),
    the task loss mixed with distillation from the teacher (the frozen soft model) at the same budgets.
    """

    def __init__(self, cfg: TrainConfig, teacher=None):
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
        b, group, bg = group_budgets(labels.shape[0], self.cfg, ctx.generator, labels.device)
        out = model(batch["input_ids"], batch["attention_mask"], budget=b, controller_mode="soft")
        task = F.cross_entropy(out.logits, labels)
        penalty, info = cost_penalty(out.head_weights, group, bg, self.cfg)
        s_logits = [torch.logit(r["s"].float(), eps=1e-6) for r in out.controller]  # (B,) per block
        if self.cfg.ad_fd_weight > 0:  # in both phases
            fd, fd_info = marginal_value(model, batch, b, group, len(bg), s_logits, self.cfg)
            penalty, info = penalty + fd, {**info, **fd_info}
        if self.cfg.ad_difficulty_weight > 0:  # in both phases
            push, push_info = difficulty_push(out.logits, labels, group, len(bg), s_logits, self.cfg)
            penalty, info = penalty + push, {**info, **push_info}
        loss = task + penalty
        if self.teacher is not None:
            with torch.no_grad():
                if self.cfg.ad_teacher == "dense":  # the dense warm start, every head on: the same target at every b
                    t_logits = self.teacher(batch["input_ids"], batch["attention_mask"]).logits
                else:
                    t_logits = self.teacher(batch["input_ids"], batch["attention_mask"], budget=b,
                                            controller_mode="soft").logits
            T, a = self.cfg.distill_temperature, self.cfg.distill_alpha
            kd = F.kl_div(F.log_softmax(out.logits / T, -1), F.log_softmax(t_logits / T, -1), log_target=True,
                          reduction="batchmean")
            loss = (1 - a) * task + a * T * T * kd + penalty
            info["distill"] = kd.item()
        s = torch.stack([r["s"] for r in out.controller], dim=1)  # (B, L)
        acc = float((out.logits.argmax(-1) == labels).float().mean())
        return loss, {"accuracy": acc, "cost": out.head_weights.detach().mean().item(), "s_mean": s.mean().item(),
                      "budget_mean": bg.mean().item(), "task_loss": task.item(), **info, **sched}


def _teacher(model):
    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    for ctrl in teacher.controllers:
        ctrl.straight_through = False
    return teacher


def _final_schedule(cfg: TrainConfig):
    def after(model) -> None:
        AdaptiveObjective(cfg).set_schedule(model, 1.0)
        for ctrl in model.controllers:
            ctrl.straight_through = False

    return after


def _param_groups(controller_lr: float, freeze_encoder: bool = False):
    """A phase's optimiser groups: the controllers at ``controller_lr`` (0 keeps them as they are), and with
    ``freeze_encoder`` everything else at 0 (the Trainer freezes a group at learning rate 0 for the phase)."""
    def groups(m):
        out = [(list(m.controllers.parameters()), {"lr": controller_lr})]
        if freeze_encoder:
            ctrl = {id(p) for p in m.controllers.parameters()}
            out.append(([p for p in m.parameters() if id(p) not in ctrl], {"lr": 0.0}))
        return out

    return groups


def plan(dense, cfg: TrainConfig, budget: float | None = None):
    """Adaptive controllers added to the dense model; a budget-conditioned phase under the schedule,
    then hard adaptation. Validated twice per epoch; the pipeline then calls ``calibrate``."""
    model = with_gating(dense, "adaptive", seed=cfg.seed)
    groups = _param_groups(cfg.gate_lr * 0.1, freeze_encoder=cfg.ad_freeze_encoder)
    phases = [Phase("adaptive", cfg.ad_epochs, lambda m: AdaptiveObjective(cfg), cfg.phase_lr, seed_offset=5,
                    param_groups=groups, validate=True, evals_per_epoch=2, eval_at_start=True, after=_final_schedule(cfg))]
    if cfg.ad_hard_epochs > 0:
        # The dense teacher is copied now (the phases train ``model``, a copy with controllers added).
        dense_teacher = copy.deepcopy(dense).eval().requires_grad_(False) if cfg.ad_teacher == "dense" else None
        teacher = (lambda m: dense_teacher.to(next(m.parameters()).device)) if dense_teacher is not None else _teacher
        hard_groups = _param_groups(0.0 if cfg.ad_hard_keep_controllers else cfg.gate_lr * 0.1)
        phases.append(Phase("adaptive-hard", cfg.ad_hard_epochs, lambda m: AdaptiveObjective(cfg, teacher(m)),
                            cfg.phase_lr * cfg.ad_hard_lr_scale, seed_offset=6, param_groups=hard_groups, validate=True,
                            evals_per_epoch=2, after=_final_schedule(cfg)))
    return model, phases


# ---------------------------------------------------------------- calibration on held-out rows
@torch.no_grad()
def controller_s(model, batches, budget) -> torch.Tensor:
    """s of every block for every input of ``batches`` (hard mode): (N, L)."""
    out = []
    for batch in batches:
        res = model(batch["input_ids"], batch["attention_mask"], budget=budget, controller_mode="hard")
        out.append(torch.stack([r["s"] for r in res.controller], 1).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def embedding_offsets(model, batches) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``adaptive_input="embedding"``: each block's offset f_l(h_i^0) + level (N, L) and softplus(alpha_l)
    (L,). The realised head fraction at any budget logit then follows without running the blocks."""
    f = []
    for batch in batches:
        h0 = masked_mean(model.embeddings(batch["input_ids"]), batch["attention_mask"])
        f.append(torch.stack([c.offset(h0) for c in model.controllers], 1).float().cpu())
    alpha = torch.stack([c.sensitivity() for c in model.controllers]).float().cpu()
    return torch.cat(f), alpha


@torch.no_grad()
def calibrate(model, batches, device: str = "cpu", grid=CALIBRATION_GRID, iters: int = 30) -> dict:
    """Solve u(b) on held-out ``batches`` so the realised mean head fraction equals b at each grid
    budget, and install it. The realised fraction is a non-decreasing step function of u (exactly so
    for ``adaptive_input="embedding"``), found by bisection; a target below one head per block (or
    above all heads) takes the bracket's end."""
    H = model.config.n_heads
    model.to(device).eval()
    batches = list(batches)
    if model.config.adaptive_input == "embedding":
        f, alpha = embedding_offsets(model, batches)

        def realised(u: float) -> float:
            return float(realised_fraction(torch.sigmoid(f + alpha * u), H).mean())
    else:
        saved = list(model.calibration.table)

        def realised(u: float) -> float:  # a one-knot table puts the budget logit at exactly u for b = 0.5
            model.calibration.set_table([[0.5, u]])
            return float(realised_fraction(controller_s(model, batches, 0.5), H).mean())

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
                for _ in range(iters):  # keeps realised(lo) < b <= realised(hi)
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
    return {"table": table, "realised": [{"budget": b, "realised": r} for b, r in zip(grid, reached)],
            "n": sum(int(bt["input_ids"].shape[0]) for bt in batches)}


ADAPTIVE = register(Method("adaptive", "adaptive (per-input heads under one budget)", "#c2255c", gating="adaptive",
                           plan=plan, has_budget=True, per_input=True, phases=("adaptive", "adaptive-hard"),
                           order=55, calibrate=calibrate))
