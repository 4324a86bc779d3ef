"""How much can giving hard inputs more heads win at all? Bounds for issue 10's goal 2, on a BAA checkpoint.

A BAA model runs the same k heads (its nested top-k of 72) for every input. Here each input may get its own k
from BAA's own head order (so no retraining, no controller: only the allocation changes) at the same mean cost
as BAA's one size for all, chosen by an oracle:

* ``difficulty``: the hardest inputs get k_hi heads, the rest k_lo, with the share of hard inputs set so the
  mean cost is exactly the target (to one input). Difficulty is this model's own loss with every head on, on
  the true label: an oracle no controller has (it knows the label). The pair (k_lo, k_hi) is chosen on the
  **validation** split and reported once on test.
* ``loss``: each input's k minimises its own loss on the true label plus lambda * cost, lambda set so the mean
  cost is at most the target: the allocation the method's training objective (task loss under a mean-cost
  penalty) asks for, if a controller learned it perfectly. It knows the labels too.
* ``labels`` (unreachable, for scale): each input gets the fewest heads (from the grid) with which it is
  classified correctly, and the fewest of all if none; the cost it spends is reported (it is under the target).

So ``difficulty`` is what the method's principle (more heads where the input is harder) could win with a
perfect difficulty signal; a trained controller that reads only the pooled embeddings sees less.

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
from baa_core.io.data import iterate_batches  # noqa: E402
from baa_core.measure.evaluate import bootstrap_ci  # noqa: E402
from baa_core.pipeline import prepare  # noqa: E402

HEAD_GRID = (6, 9, 12, 15, 18, 21, 24, 27, 30, 36, 42, 48, 54, 63, 72)  # total heads run (of L * H); >= 1 per block


def per_budget_outcomes(model, data, grid, batch_size: int = 64, device: str = "cpu"):
    """(K, N) correct and (K, N) loss on the true label, with k = grid[j] heads (BAA's top k), and the costs k / (L H)."""
    cfg = model.config
    total = cfg.n_layers * cfg.n_heads
    correct, loss = [[] for _ in grid], [[] for _ in grid]
    model.eval()
    with torch.inference_mode():
        for batch in iterate_batches(data, batch_size, device=device):
            for j, k in enumerate(grid):
                logits = model(batch["input_ids"], batch["attention_mask"], budget=k / total).logits.float()
                correct[j].append((logits.argmax(-1) == batch["labels"]).cpu())
                loss[j].append(F.cross_entropy(logits, batch["labels"], reduction="none").cpu())
    return torch.stack([torch.cat(c) for c in correct]), torch.stack([torch.cat(x) for x in loss]), \
        torch.tensor([k / total for k in grid])


def two_level(correct, hardness, costs, lo: int, hi: int, target: float):
    """Hardest inputs get grid[hi], the rest grid[lo]; as many hard ones as the target cost allows -> (correct (N,), cost)."""
    N = correct.shape[1]
    n_hi = int(round(N * float((target - costs[lo]) / (costs[hi] - costs[lo]))))
    n_hi = max(0, min(N, n_hi))
    order = hardness.argsort(descending=True)
    pick = torch.full((N,), lo, dtype=torch.long)
    pick[order[:n_hi]] = hi
    return correct[pick, torch.arange(N)], float(costs[pick].mean())


def loss_lagrangian(correct, loss, costs, target: float, steps: int = 60):
    """k_i = argmin_k loss[k, i] + lam * cost[k], the smallest lam whose mean cost is <= target -> (correct (N,), cost)."""
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
    return [(lo, hi) for lo in range(len(costs)) for hi in range(len(costs)) if costs[lo] < target - 1e-9 < costs[hi]]


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
    prep = prepare(card["task"], kind=card.get("model_kind", "word"), base=card.get("base_model"), data_dir=args.data_dir,
                   seed=card["train_config"].get("seed", 0), max_train=sizes.get("max_train"),
                   max_test=args.max_test or sizes.get("max_test"), checkpoint=ckpt, splits=("val", "test"))
    total = ckpt.config.n_layers * ckpt.config.n_heads
    grid = [k for k in HEAD_GRID if ckpt.config.n_layers <= k <= total] if total == 72 else \
        sorted({max(ckpt.config.n_layers, round(f * total)) for f in (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0)})
    split = {}
    for name in ("val", "test"):
        correct, loss, costs = per_budget_outcomes(ckpt.model.to(args.device), getattr(prep, name), grid, device=args.device)
        split[name] = (correct, loss, costs)  # hardness: loss[-1], the loss with every head on (the grid ends there)
    rows = []
    for target in args.targets:
        k = round(target * total)
        if k not in grid:
            raise SystemExit(f"target {target} is not k / {total} for a k on the grid {grid}")
        j = grid.index(k)
        if not pairs_for(split["val"][2], target):
            raise SystemExit(f"target {target} is at the floor of one head per block ({grid[0]} of {total}): no input can get fewer")
        vc, vl, costs = split["val"]
        vh = vl[-1]
        best = max(pairs_for(costs, target), key=lambda p: float(two_level(vc, vh, costs, *p, target)[0].float().mean()))
        tc, tl, _ = split["test"]
        th = tl[-1]
        by_loss, loss_cost = loss_lagrangian(tc, tl, costs, target)
        uniform = tc[j]
        chosen, cost = two_level(tc, th, costs, *best, target)
        first_right = torch.where(tc.any(0), tc.float().argmax(0), torch.zeros_like(tc[0], dtype=torch.long))
        lab = tc.any(0)
        diff = (chosen.double() - uniform.double())
        row = {"model": Path(args.model).name, "target_cost": target, "n_test": int(tc.shape[1]),
               "baa_accuracy": float(uniform.double().mean()), "baa_accuracy_ci": list(bootstrap_ci(uniform.double())),
               "difficulty_oracle": {"k_lo": grid[best[0]], "k_hi": grid[best[1]], "cost": cost,
                                     "accuracy": float(chosen.double().mean()),
                                     "accuracy_ci": list(bootstrap_ci(chosen.double())),
                                     "difference": float(diff.mean()), "difference_ci": list(bootstrap_ci(diff)),
                                     "chosen_on": "validation", "val_accuracy": float(two_level(vc, vh, costs, *best, target)[0].float().mean()),
                                     "val_baa_accuracy": float(vc[j].float().mean())},
               "loss_oracle": {"accuracy": float(by_loss.double().mean()), "cost": loss_cost,
                               "difference": float((by_loss.double() - uniform.double()).mean()),
                               "difference_ci": list(bootstrap_ci(by_loss.double() - uniform.double())),
                               "note": "minimises each test input's own loss + lambda * cost: knows the labels"},
               "labels_oracle": {"accuracy": float(lab.double().mean()), "cost": float(costs[first_right].mean()),
                                 "note": "knows each test label: unreachable, for scale"},
               "all_heads_accuracy": float(tc[-1].double().mean())}
        rows.append(row)
        if not args.json:
            d = row["difficulty_oracle"]
            print(f"cost {target:.2f}: BAA {100 * row['baa_accuracy']:.2f}%; difficulty oracle (k {d['k_lo']}/{d['k_hi']}, "
                  f"chosen on val) {100 * d['accuracy']:.2f}% at cost {d['cost']:.3f}, difference {100 * d['difference']:+.2f} pt "
                  f"[{100 * d['difference_ci'][0]:+.2f}, {100 * d['difference_ci'][1]:+.2f}]; all heads "
                  f"{100 * row['all_heads_accuracy']:.2f}%; loss oracle {100 * row['loss_oracle']['accuracy']:.2f}% at cost "
                  f"{row['loss_oracle']['cost']:.3f}; label oracle {100 * row['labels_oracle']['accuracy']:.2f}% "
                  f"at cost {row['labels_oracle']['cost']:.3f}")
    if args.json:
        print(json.dumps({"rows": rows, "grid": grid,
                          "command": "python benchmarks/allocation_bound.py " + " ".join(sys.argv[1:])}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
