"""How much can per-input allocation win at equal cost? Oracles and a cascade on a BAA checkpoint (issue 10, goal 2).

A BAA model runs the same k heads (its hard top-k of L * H, nearly nested in k) for every input. Here each input
gets its own k from BAA's own top-k masks (no retraining, no controller: only the allocation changes), at BAA's
mean cost (to one input's share, never above it). Two-level allocations: inputs ranked by a signal, the first
get k_hi heads, the rest k_lo, as many first ones as the cost allows; the pair (k_lo, k_hi) is chosen on the
**validation** split for each signal and reported once on test, each beside the same pair given to random inputs
(the control: what the pair alone is worth, e.g. where BAA's accuracy curve dips at its own operating point).

Signals, from most to least information:

* ``loss_oracle``: each input's k minimises its own loss on the true label + lambda * cost (lambda: mean cost at
  most the target). What the method's training objective asks for, learned perfectly. Knows the labels.
* ``hard_at_lo``: the loss with k_lo heads on the true label (knows the labels): inputs the cheap layout gets
  wrong or nearly wrong get more heads.
* ``hard_all_heads``: the loss with every head on the true label (knows the labels): the inputs hardest overall.
* ``unsure_at_lo``: 1 - the top class probability with k_lo heads. No labels; but it needs the k_lo pass first,
  which this two-level allocation does not pay for. ``cascade`` pays for it: every input runs k_lo, the least
  sure run again with k_hi, cost = k_lo + the rerun share of k_hi. A real method, label-free.

    python benchmarks/allocation_bound.py pretrained/ag_news-minilm-baa --data-dir ../shared/data --json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baa_core.io.checkpoint import load_checkpoint  # noqa: E402
from baa_core.measure.cost import layer_flops  # noqa: E402
from baa_core.io.data import iterate_batches  # noqa: E402
from baa_core.measure.evaluate import bootstrap_ci  # noqa: E402
from baa_core.pipeline import prepare  # noqa: E402

HEAD_GRID = (6, 9, 12, 15, 18, 21, 24, 27, 30, 36, 42, 48, 54, 63, 72)  # total heads run (of L * H); >= 1 per block


def per_budget_outcomes(model, data, grid, batch_size: int = 64, device: str = "cpu"):
    """With k = grid[j] heads (BAA's hard top-k mask): (K, N) correct, (K, N) loss on the true label, (K, N) top
    class probability, the costs k / (L H) and (N,) token counts."""
    cfg = model.config
    total = cfg.n_layers * cfg.n_heads
    correct, loss, sure, lengths = [[] for _ in grid], [[] for _ in grid], [[] for _ in grid], []
    model.eval()
    with torch.inference_mode():
        for batch in iterate_batches(data, batch_size, device=device):
            lengths.append(batch["attention_mask"].sum(-1).cpu())
            for j, k in enumerate(grid):
                logits = model(batch["input_ids"], batch["attention_mask"], budget=k / total, hard=True).logits.float()
                correct[j].append((logits.argmax(-1) == batch["labels"]).cpu())
                loss[j].append(F.cross_entropy(logits, batch["labels"], reduction="none").cpu())
                sure[j].append(logits.softmax(-1).max(-1).values.cpu())
    return (torch.stack([torch.cat(c) for c in correct]), torch.stack([torch.cat(x) for x in loss]),
            torch.stack([torch.cat(p) for p in sure]), torch.tensor([k / total for k in grid]), torch.cat(lengths))


def input_flops(cfg, grid, lengths) -> torch.Tensor:
    """(K, N) encoder FLOPs of each input (its own token count, batch 1) with grid[j] heads in all: the head parts
    are linear in the number of heads, so only the total matters; every layer's FFN runs whatever the heads."""
    out = torch.empty(len(grid), len(lengths), dtype=torch.float64)
    for i, n in enumerate(lengths.tolist()):
        ffn = cfg.n_layers * layer_flops(cfg.d_model, 0, cfg.head_dim, cfg.d_ffn, n).ffn
        for j, k in enumerate(grid):
            out[j, i] = layer_flops(cfg.d_model, k, cfg.head_dim, cfg.d_ffn, n).attention + ffn
    return out


def two_level(correct, rank, costs, lo: int, hi: int, target: float):
    """The first inputs by ``rank`` (descending) get grid[hi], the rest grid[lo]; as many first ones as keep the
    mean cost at or under the target -> (correct (N,), cost)."""
    N = correct.shape[1]
    n_hi = max(0, min(N, int(N * float((target - costs[lo]) / (costs[hi] - costs[lo])) + 1e-9)))
    pick = torch.full((N,), lo, dtype=torch.long)
    pick[rank.argsort(descending=True)[:n_hi]] = hi
    return correct[pick, torch.arange(N)], float(costs[pick].mean())


def cascade(correct, sure, costs, lo: int, hi: int, target: float):
    """Every input runs grid[lo]; the least sure run again with grid[hi] (their answer replaces the first), as many
    as keep the mean cost of both passes at or under the target -> (correct (N,), cost, (N,) rerun or not)."""
    N = correct.shape[1]
    n_re = max(0, min(N, int(N * float((target - costs[lo]) / costs[hi]) + 1e-9)))
    again = (-sure[lo]).argsort(descending=True)[:n_re]  # least sure first
    out = correct[lo].clone()
    out[again] = correct[hi, again]
    rerun = torch.zeros(N, dtype=torch.bool)
    rerun[again] = True
    return out, float(costs[lo] + n_re / N * costs[hi]), rerun


def flops_share(flops, rerun, lo: int, hi: int) -> float:
    """The cascade's total encoder FLOPs (every input's k_lo pass, the reruns' k_hi pass, FFNs included) / dense."""
    return float(flops[lo].sum() + flops[hi][rerun].sum()) / float(flops[-1].sum())


def baa_at_flops(val_correct, val_flops, spent: float) -> int:
    """BAA's layout to compare with at a FLOP budget, chosen on **validation**: of its uniform layouts whose FLOPs
    (on the validation inputs) are at or under ``spent``, the most accurate there (its accuracy is not monotone
    in k); ties go to the cheaper layout."""
    shares = val_flops.sum(1) / val_flops[-1].sum()  # (K,)
    fits = [j for j in range(len(shares)) if float(shares[j]) <= spent + 1e-12] or [0]
    return max(fits, key=lambda j: (float(val_correct[j].double().mean()), -j))


def loss_lagrangian(correct, loss, costs, target: float, steps: int = 60):
    """k_i = argmin_k loss[k, i] + lam * cost[k], the smallest lam whose mean cost is <= target -> (correct (N,), cost)."""
    if target < float(costs.min()):
        raise ValueError(f"target {target} is under the cheapest layout's cost {float(costs.min()):.3f}")
    N = correct.shape[1]

    def pick(lam):
        return (loss + lam * costs[:, None]).argmin(0)  # (N,)

    lo, hi = 0.0, 1.0
    while float(costs[pick(hi)].mean()) > target:
        hi *= 2
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float(costs[pick(mid)].mean()) > target else (lo, mid)
    k = pick(hi)
    return correct[k, torch.arange(N)], float(costs[k].mean())


def pairs_for(costs, target: float):
    """(lo, hi) grid indices with cost[lo] < target < cost[hi]: the two-level allocations that can meet the target."""
    return [(lo, hi) for lo in range(len(costs)) for hi in range(len(costs)) if costs[lo] < target - 1e-9 < costs[hi]]


def cascade_pairs(costs, target: float):
    return [(lo, hi) for lo in range(len(costs)) for hi in range(lo + 1, len(costs)) if costs[lo] < target - 1e-9]


def _versus(chosen, uniform, cost, **extra) -> dict:
    diff = chosen.double() - uniform.double()
    return {"accuracy": float(chosen.double().mean()), "cost": cost, "difference": float(diff.mean()),
            "difference_ci": list(bootstrap_ci(diff)), **extra}


def signals(loss, sure, lo: int, n: int) -> dict:
    """Each two-level signal's ranking (higher = more heads) for a k_lo index: (N,) tensors."""
    return {"hard_at_lo": loss[lo], "hard_all_heads": loss[-1], "unsure_at_lo": 1 - sure[lo],
            "random": torch.rand(n, generator=torch.Generator().manual_seed(0))}


def bound_rows(val: tuple, test: tuple, grid: list[int], total: int, target: float, flops=None, val_flops=None) -> dict:
    """One target cost: BAA, every signal's two-level allocation (pair chosen on validation) with its random control,
    the cascade (with ``flops`` and ``val_flops``, the test and validation inputs' (K, N) FLOPs, also in total FLOPs
    against BAA at the same FLOPs), the loss oracle and the label oracle, all on test."""
    vc, vl, vs, costs = val[:4]
    tc, tl, ts = test[:3]
    j = grid.index(round(target * total))
    uniform = tc[j]
    row = {"target_cost": target, "n_test": int(tc.shape[1]), "baa_accuracy": float(uniform.double().mean()),
           "baa_accuracy_ci": list(bootstrap_ci(uniform.double())), "all_heads_accuracy": float(tc[-1].double().mean())}
    pairs = pairs_for(costs, target)
    for name in ("hard_at_lo", "hard_all_heads", "unsure_at_lo"):
        def val_acc(p, name=name):
            return float(two_level(vc, signals(vl, vs, p[0], vc.shape[1])[name], costs, *p, target)[0].float().mean())
        best = max(pairs, key=val_acc)
        ranks = signals(tl, ts, best[0], tc.shape[1])
        chosen, cost = two_level(tc, ranks[name], costs, *best, target)
        rand, rand_cost = two_level(tc, ranks["random"], costs, *best, target)
        row[name] = _versus(chosen, uniform, cost, k_lo=grid[best[0]], k_hi=grid[best[1]], val_accuracy=val_acc(best),
                            val_baa_accuracy=float(vc[j].float().mean()), random_same_pair=_versus(rand, uniform, rand_cost))
    c_pairs = cascade_pairs(costs, target)

    def val_cascade(p):
        return float(cascade(vc, vs, costs, *p, target)[0].float().mean())
    best = max(c_pairs, key=val_cascade)
    chosen, cost, rerun = cascade(tc, ts, costs, *best, target)
    row["cascade"] = _versus(chosen, uniform, cost, k_lo=grid[best[0]], k_hi=grid[best[1]], val_accuracy=val_cascade(best),
                             val_baa_accuracy=float(vc[j].float().mean()), rerun_share=float(rerun.double().mean()))
    if flops is not None and val_flops is not None:
        # The FLOP budget and BAA's layout under it are fixed on validation (the cascade's own FLOPs there), then
        # both are reported on test, paired.
        val_spent = flops_share(val_flops, cascade(vc, vs, costs, *best, target)[2], *best)
        jb = baa_at_flops(vc, val_flops, val_spent)
        test_shares = flops.sum(1) / flops[-1].sum()
        row["cascade"]["versus_baa_at_equal_total_flops"] = {
            "total_flops_share": flops_share(flops, rerun, *best), "val_total_flops_share": val_spent,
            "baa_k": grid[jb], "baa_flops_share": float(test_shares[jb]),
            **{k: v for k, v in _versus(chosen, tc[jb], cost).items() if k != "cost"}}
    by_loss, loss_cost = loss_lagrangian(tc, tl, costs, target)
    row["loss_oracle"] = _versus(by_loss, uniform, loss_cost)
    right = tc.any(0)
    first_right = torch.where(right, tc.float().argmax(0), torch.zeros_like(tc[0], dtype=torch.long))
    row["labels_oracle"] = {"accuracy": float(right.double().mean()), "cost": float(costs[first_right].mean()),
                            "note": "each input at the fewest heads that get its label right: unreachable, for scale"}
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a BAA checkpoint folder")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--targets", default="0.25,0.5", type=lambda t: [float(x) for x in t.split(",") if x.strip()])
    ap.add_argument("--max-test", type=int, default=None, help="first N test rows only (a quick look; not for reporting)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    ckpt = load_checkpoint(args.model)
    if ckpt.config.gating != "baa":
        raise SystemExit(f"{args.model} is a {ckpt.config.gating!r} model; this bound needs a BAA checkpoint")
    card = ckpt.card
    sizes = card.get("sizes") or {}
    total = ckpt.config.n_layers * ckpt.config.n_heads
    grid = [k for k in HEAD_GRID if ckpt.config.n_layers <= k <= total] if total == 72 else \
        sorted({max(ckpt.config.n_layers, round(f * total)) for f in (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0)})
    for target in args.targets:
        if round(target * total) not in grid:
            raise SystemExit(f"target {target} is not k / {total} for a k on the grid {grid}")
        if round(target * total) == grid[0]:
            raise SystemExit(f"target {target} is at the floor of one head per block ({grid[0]} of {total}): no input can get fewer")
    prep = prepare(card["task"], kind=card.get("model_kind", "word"), base=card.get("base_model"), data_dir=args.data_dir,
                   seed=card["train_config"].get("seed", 0), max_train=sizes.get("max_train"),
                   max_test=args.max_test or sizes.get("max_test"), checkpoint=ckpt, splits=("val", "test"))
    model = ckpt.model.to(args.device)
    val, test = (per_budget_outcomes(model, getattr(prep, name), grid, device=args.device) for name in ("val", "test"))
    flops, val_flops = input_flops(ckpt.config, grid, test[4]), input_flops(ckpt.config, grid, val[4])
    rows = [{"model": Path(args.model).name, **bound_rows(val, test, grid, total, t, flops, val_flops)} for t in args.targets]
    curve = [{"k": k, "cost": k / total, "total_flops_share": float(flops[j].sum() / flops[-1].sum()),
              "accuracy": float(test[0][j].double().mean())} for j, k in enumerate(grid)]
    if args.json:
        print(json.dumps({"rows": rows, "grid": grid, "baa_test_curve": curve,
                          "command": "python benchmarks/allocation_bound.py " + " ".join(sys.argv[1:])}, indent=1))
        return 0
    for r in rows:
        print(f"cost {r['target_cost']:.2f}: BAA {100 * r['baa_accuracy']:.2f}% (every head {100 * r['all_heads_accuracy']:.2f}%)")
        for name in ("hard_at_lo", "hard_all_heads", "unsure_at_lo", "cascade", "loss_oracle"):
            d = r[name]
            ctrl = d.get("random_same_pair")
            print(f"  {name:15s} {100 * d['difference']:+.2f} pt [{100 * d['difference_ci'][0]:+.2f}, "
                  f"{100 * d['difference_ci'][1]:+.2f}] at cost {d['cost']:.3f}"
                  + (f" (k {d['k_lo']}/{d['k_hi']})" if "k_lo" in d else "")
                  + (f"; random inputs, same pair: {100 * ctrl['difference']:+.2f}" if ctrl else ""))
        eq = r["cascade"]["versus_baa_at_equal_total_flops"]
        print(f"  cascade in total FLOPs: {eq['total_flops_share']:.3f} of dense; BAA's best on validation at or under "
              f"them there ({eq['val_total_flops_share']:.3f}), {eq['baa_k']} heads "
              f"({eq['baa_flops_share']:.3f}): {100 * eq['difference']:+.2f} pt [{100 * eq['difference_ci'][0]:+.2f}, "
              f"{100 * eq['difference_ci'][1]:+.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
