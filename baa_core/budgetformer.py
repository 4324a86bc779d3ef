"""BudgetFormer: per-input head budgets. Each block decides, for each input, how many heads it
needs (budget s) and which ones (relevance q), and then runs only those (METHODS.md section 2).

Controller (one per block), from the block's mean-pooled input h = mean_t x_t:

    s = sigmoid(W2 gelu(W1 h))            budget: the fraction of the H heads to use
    r = W_r h ;  q = softmax(r / tau)      relevance: a distribution over heads

Inference keeps the top k = ceil(s * H) heads by q (at least one), weight 1, the rest off.

Estimator (the paper leaves it open). Training runs every head with a soft weight that becomes the
hard rule as temperatures fall:

    rank_h = sum_{j != h} sigmoid((r~_j - r~_h) / tau)      soft 0-based rank of head h
    w_h    = sigmoid((s * H - rank_h) / tau)                 ~ [rank_h < s * H] = top-ceil(sH)

with noisy scores r~ = r + sigma * Gumbel noise. At tau -> 0 and sigma = 0, w is exactly the hard
top-ceil(sH) mask, so what is trained is what runs. Gradients reach s (through the soft count) and
the scorer (through the soft ranks). Exploration -> exploitation: sigma and tau start high (noisy,
many head combinations tried, a high-entropy q) and anneal; the last part of training runs the
hard mask forward with these soft weights' gradients (straight-through), so training and
inference see the same heads. Loss = task + lambda_budget * max(0, mean_batch(s) - target)
+ hinge keeping each s in [s_min, s_max] + lambda_entropy * H(q).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .encoder import masked_mean


def hard_head_mask(s: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """(B,) budgets and (B, H) scores -> (B, H) 0/1 mask of the top ceil(s * H) heads (>= 1)."""
    H = scores.shape[-1]
    k = torch.ceil(s * H - 1e-6).clamp(1, H).long()  # (B,)
    rank = scores.argsort(dim=-1, descending=True, stable=True).argsort(dim=-1)  # (B, H) 0 = best
    return (rank < k.unsqueeze(-1)).to(scores.dtype)


def soft_head_weights(s: torch.Tensor, scores: torch.Tensor, tau: float) -> torch.Tensor:
    """Differentiable relaxation of ``hard_head_mask`` at temperature ``tau``."""
    H = scores.shape[-1]
    diff = (scores.unsqueeze(-2) - scores.unsqueeze(-1)) / tau  # (B, H, H): [h, j] = r_j - r_h
    rank = torch.sigmoid(diff).sum(-1) - 0.5  # remove the j == h term, sigmoid(0) = 0.5
    return torch.sigmoid((s.unsqueeze(-1) * H - rank) / tau)


class HeadController(nn.Module):
    """Predicts one block's per-input budget s and head relevance q, and the head weights to apply."""

    def __init__(self, d_model: int, n_heads: int, hidden: int = 64):
        super().__init__()
        self.n_heads, self.hidden = n_heads, hidden
        # The budget FFN's first layer and the head scorer read the same pooled vector: one matmul.
        self.input = nn.Linear(d_model, hidden + n_heads)
        self.budget_out = nn.Linear(hidden, 1)
        # Annealed by the trainer (exploration -> exploitation). The final temperature is saved with
        # the model (it shapes q at inference); the noise only matters while training.
        self.register_buffer("tau", torch.tensor(1.0))
        self.register_buffer("noise", torch.tensor(0.0), persistent=False)
        self.straight_through = False
        with torch.no_grad():
            self.input.weight[hidden:].normal_(0, 1e-3)  # near-equal head scores at the start
            self.input.bias[hidden:].zero_()
        nn.init.constant_(self.budget_out.bias, 2.0)  # start with most heads on: s ~ 0.88

    def predict(self, x: torch.Tensor, attention_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.mean(1) if attention_mask is None else masked_mean(x, attention_mask)  # (B, d)
        z = self.input(h)  # (B, hidden + H)
        s = torch.sigmoid(self.budget_out(F.gelu(z[:, : self.hidden]))).squeeze(-1)  # (B,)
        return s, z[:, self.hidden :]  # (B,), (B, H) scores

    def forward(self, x, attention_mask, mode: str = "hard", target=None) -> tuple[torch.Tensor, dict]:
        """Head weights (B, H) and a record of s, q and the chosen heads for this block.

        mode: "hard" (inference: top-ceil(sH) mask), "soft" (training relaxation), "all" (every
        head on, for reference). ``target`` overrides s with a fixed budget (the no-controller ablation).
        """
        s, scores = self.predict(x, attention_mask)
        if target is not None:
            s = target.expand_as(s).to(s.dtype)
        return self.head_weights(s, scores, mode)

    def head_weights(self, s: torch.Tensor, scores: torch.Tensor, mode: str) -> tuple[torch.Tensor, dict]:
        """(B,) budgets and (B, H) scores -> head weights (B, H) under ``mode``, and the block's record."""
        tau = float(self.tau)
        q = torch.softmax(scores / max(tau, 1e-3), dim=-1)  # (B, H)
        if mode == "soft":
            noisy = scores
            if self.training and float(self.noise) > 0:
                u = torch.rand_like(scores).clamp(1e-6, 1 - 1e-6)
                noisy = scores + float(self.noise) * -torch.log(-torch.log(u))  # Gumbel noise
            soft = soft_head_weights(s, noisy, tau)
            weights = hard_head_mask(s, noisy) + soft - soft.detach() if self.straight_through else soft
        elif mode == "hard":
            weights = hard_head_mask(s, scores)
        elif mode == "all":
            weights = torch.ones_like(scores)
        else:
            raise ValueError(f"controller mode must be soft, hard or all, not {mode!r}")
        return weights, {"s": s, "q": q, "scores": scores, "weights": weights}


def entropy(q: torch.Tensor) -> torch.Tensor:
    """Entropy of each row of q, in nats: (B, H) -> (B,)."""
    return -(q * torch.log(q.clamp_min(1e-12))).sum(-1)


def schedule(progress: float, start: float, end: float, explore: float) -> float:
    """Held at ``start`` for the first ``explore`` of training, then annealed geometrically to ``end``."""
    if progress <= explore:
        return start
    t = min(1.0, (progress - explore) / max(1e-6, 1.0 - explore))
    if start <= 0 or end <= 0:
        return start + (end - start) * t
    return start * math.exp(t * math.log(end / start))


# ---------------------------------------------------------------- training
class BudgetFormerObjective:
    """Task loss + budget regulariser + s hinge + entropy of q, under the explore -> exploit schedule."""

    def __init__(self, cfg, straight_through_from: float = 0.8):
        self.cfg = cfg
        self.straight_through_from = straight_through_from

    def set_schedule(self, model, progress: float) -> dict:
        c = self.cfg
        tau = schedule(progress, c.bf_temp_start, c.bf_temp_end, c.bf_explore_fraction)
        noise = schedule(progress, c.bf_noise_start, c.bf_noise_end, c.bf_explore_fraction)
        for ctrl in model.controllers:
            ctrl.tau.fill_(tau)
            ctrl.noise.fill_(noise)
            ctrl.straight_through = progress >= self.straight_through_from
        return {"tau": tau, "noise": noise}

    def __call__(self, model, batch, ctx):
        sched = self.set_schedule(model, ctx.progress)
        out = model(batch["input_ids"], batch["attention_mask"], controller_mode="soft")
        labels = batch["labels"]
        task = F.cross_entropy(out.logits, labels)
        s = torch.stack([r["s"] for r in out.controller], dim=1)  # (B, L)
        q = torch.stack([r["q"] for r in out.controller], dim=1)  # (B, L, H)
        c = self.cfg
        budget = F.relu(s.mean() - c.bf_target)
        hinge = (F.relu(c.bf_s_min - s) + F.relu(s - c.bf_s_max)).mean()
        ent = entropy(q).mean()
        loss = task + c.bf_lambda_budget * budget + hinge + c.bf_lambda_entropy * ent
        acc = float((out.logits.argmax(-1) == labels).float().mean())
        return loss, {"accuracy": acc, "cost": out.head_weights.detach().mean().item(), "s_mean": s.mean().item(),
                      "entropy": ent.item(), **sched}


def train_budgetformer(dense, train, cfg, val=None, callbacks=(), stop=None, device=None):
    """Add per-block controllers to a dense model and train the whole model under the schedule."""
    from .methods import _trainer, with_gating

    model = with_gating(dense, "budgetformer")
    objective = BudgetFormerObjective(cfg)
    steps_per_epoch = max(1, math.ceil(len(train) / cfg.batch_size))

    def evaluate_val(m):
        summary = budgetformer_summary(m, val, device=cfg.device)
        return {"val_acc": summary["accuracy"], "val_s_mean": summary["s_mean"], "val_attention_flops": summary["attention_flop_fraction"]}

    groups = [(list(model.controllers.parameters()), {"lr": cfg.gate_lr * 0.1})]
    # Four validation points per epoch and one before training: the training-dynamics view.
    trainer = _trainer(model, objective, train, cfg, "budgetformer", cfg.bf_epochs, seed_offset=4, param_groups=groups,
                       lr=cfg.phase_lr, callbacks=list(callbacks), stop=stop,
                       evaluate=evaluate_val if val is not None else None,
                       eval_every=max(1, steps_per_epoch // 4), eval_at_start=True)
    trainer.run()
    objective.set_schedule(model, 1.0)
    return model.eval()


# ---------------------------------------------------------------- evaluation and analyses
@torch.no_grad()
def controller_outputs(model, data, batch_size: int = 128, device: str = "cpu", mode: str = "hard", target=None,
                       random_heads: bool = False, seed: int = 0) -> dict:
    """Run a BudgetFormer model over ``data``: predictions, per-block s, q, chosen heads, per example.

    ``target`` fixes s for every input (ablation: no controller); ``random_heads`` keeps each block's
    head count but picks the heads at random (ablation: no scorer).
    """
    from .data import iterate_batches

    model.to(device).eval()
    g = torch.Generator().manual_seed(seed)
    out = {"pred": [], "conf": [], "label": [], "s": [], "q": [], "scores": [], "mask": [], "loss": []}
    hooks = []
    if random_heads:
        def randomise(module, args, output):
            w, rec = output
            k = w.sum(-1, keepdim=True)
            scores = torch.rand(w.shape, generator=g).to(w.device)
            rank = scores.argsort(-1).argsort(-1)
            w = (rank < k).to(w.dtype)
            rec["weights"] = w
            return w, rec

        hooks = [c.register_forward_hook(randomise) for c in model.controllers]
    try:
        for batch in iterate_batches(data, batch_size, device=device):
            res = model(batch["input_ids"], batch["attention_mask"], controller_mode=mode,
                        budget=target)
            prob = res.logits.float().softmax(-1)
            conf, pred = prob.max(-1)
            out["pred"].append(pred.cpu())
            out["conf"].append(conf.cpu())
            out["label"].append(batch["labels"].cpu())
            out["loss"].append(F.cross_entropy(res.logits.float(), batch["labels"], reduction="none").cpu())
            out["s"].append(torch.stack([r["s"] for r in res.controller], 1).cpu())
            out["q"].append(torch.stack([r["q"] for r in res.controller], 1).cpu())
            out["scores"].append(torch.stack([r["scores"] for r in res.controller], 1).cpu())
            out["mask"].append(res.head_weights.cpu())
    finally:
        for h in hooks:
            h.remove()
    return {k: torch.cat(v) for k, v in out.items()}


def attention_flop_fraction(model, mask: torch.Tensor, lengths) -> torch.Tensor:
    """Per example: attention FLOPs (QKV, scores, output) with the chosen heads / with all heads."""
    from .cost import layer_flops

    cfg = model.config
    fr = []
    for m, n in zip(mask, lengths):
        used = sum(layer_flops(cfg.d_model, int(k), cfg.head_dim, cfg.d_ffn, n).attention for k in m.sum(-1).tolist())
        full = cfg.n_layers * layer_flops(cfg.d_model, cfg.n_heads, cfg.head_dim, cfg.d_ffn, n).attention
        fr.append(used / full)
    return torch.tensor(fr)


def budgetformer_summary(model, data, device: str = "cpu", **kw) -> dict:
    """Accuracy, mean s, mean chosen-head fraction and attention-FLOP fraction over ``data``."""
    return summarize_outputs(model, controller_outputs(model, data, device=device, **kw), data)


def summarize_outputs(model, o: dict, data) -> dict:
    """``budgetformer_summary`` of outputs already computed by ``controller_outputs`` on ``data``."""
    flops = attention_flop_fraction(model, o["mask"], data.lengths())
    return {
        "method": "budgetformer",
        "accuracy": float((o["pred"] == o["label"]).float().mean()),
        "s_mean": float(o["s"].mean()),
        "est_cost": float(o["mask"].mean()),
        "attention_flop_fraction": float(flops.mean()),
        "entropy_mean": float(entropy(o["q"]).mean()),
        "n": len(data),
    }


# ---------------------------------------------------------------- structural per-example execution
class SlicedHeadCache:
    """Sliced attention modules per (block, head set), built on first use and kept (LRU, bounded).

    Per-input head choice means a different small weight matrix per input; copying it for every
    input would cost as much as the matmuls it saves. Selections settle on few head sets after the
    exploitation phase, so caching the sliced modules makes the steady state copy-free.
    """

    def __init__(self, model, max_entries: int = 512):
        from collections import OrderedDict

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
    requested b of an adaptive model (``adaptive.py``); BudgetFormer models choose without one.
    """
    from .encoder import attention_bias

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
    logits = model.classifier(x.mean(1) if pool_mask is None else masked_mean(x, attention_mask))
    return logits, chosen
