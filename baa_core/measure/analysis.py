"""The BudgetFormer paper's analyses as tidy records (lists of flat dicts) that the app draws.

* ``training_dynamics``: per epoch, s_mean on train and validation and validation accuracy.
* ``s_by_complexity``: s per test input against input complexity. Complexity is measured by an
  independent model: the cross-entropy loss on the true label of the dense warm-start model
  (BudgetFormer's starting point, before any controller existed; higher = harder), not by the
  BudgetFormer network itself, whose own loss would tie complexity to its own head choices. Tertiles
  of it are the Simple / Medium / Hard buckets; the Spearman rank correlation says whether s grows
  with it. The per-example values are kept in the card (``complexity``) so ``analyze`` can redo the
  view from a checkpoint without the dense model.
* ``s_block_class``: mean and standard deviation of s per block x class.
* ``q_entropy``: entropy of the relevance distribution q per block (log H is uniform).
* ``ablations``: the controller against a fixed budget without it, and against random heads.
* ``per_example_latency``: batch-1 structural latency per input against the FLOP-model prediction.
"""
from __future__ import annotations

import math
import statistics

import torch

from ..io.data import EncodedDataset
from ..model.gates import entropy
from ..model.structural import SlicedHeadCache, structural_forward
from ..model.surgery import slice_heads
from .cost import model_flops
from .latency import TIMING_LOCK, median_ci, percentile_spread
from .perinput import attention_flop_fraction, controller_outputs, total_flop_fraction

BUCKETS = ("Simple", "Medium", "Hard")
COMPLEXITY_MEASURE = ("cross-entropy on the true label of the dense warm-start model (an independent network: "
                      "BudgetFormer's starting point, before controller training); tertiles: Simple / Medium / Hard")


@torch.no_grad()
def per_example_loss(model, data: EncodedDataset, device: str = "cpu", batch_size: int = 128) -> torch.Tensor:
    """(N,) cross-entropy on the true label of ``model`` with every head on, in data order."""
    import torch.nn.functional as F

    from ..io.data import iterate_batches

    was_training = model.training
    model.to(device).eval()
    losses = []
    for batch in iterate_batches(data, batch_size, device=device):
        logits = model(batch["input_ids"], batch["attention_mask"]).logits.float()
        losses.append(F.cross_entropy(logits, batch["labels"], reduction="none").cpu())
    model.train(was_training)
    return torch.cat(losses) if losses else torch.empty(0)


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Average ranks (ties share their mean rank), as Spearman's rho needs."""
    order = x.argsort()
    ranks = torch.empty_like(x, dtype=torch.float64)
    ranks[order] = torch.arange(len(x), dtype=torch.float64)
    values, inverse = torch.unique(x, return_inverse=True)
    sums = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse, ranks)
    counts = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(ranks))
    return (sums / counts)[inverse]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = _ranks(a.double()), _ranks(b.double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def training_dynamics(history) -> list[dict]:
    """Per evaluation point of a BudgetFormer run (once per epoch): s on train (running) and val."""
    rows = []
    for e in history:
        if e.phase == "budgetformer" and e.val:
            rows.append({"epoch": round(e.epoch, 2), "s_mean_train": e.extra.get("s_mean"), "s_mean_val": e.val.get("val_s_mean"),
                         "val_accuracy": e.val.get("val_acc"), "attention_flops_val": e.val.get("val_attention_flops"),
                         "temperature": e.extra.get("tau"), "noise": e.extra.get("noise")})
    return rows


def s_by_complexity(outputs: dict, complexity: torch.Tensor, measure: str = COMPLEXITY_MEASURE) -> dict:
    """Per-example records and per-bucket summaries of s against complexity, with Spearman's rho."""
    s = outputs["s"].mean(1)  # (N,) mean over blocks
    n = len(s)
    order = complexity.argsort()
    bucket = torch.empty(n, dtype=torch.long)
    for i, chunk in enumerate(torch.tensor_split(order, 3)):
        bucket[chunk] = i
    examples = [{"index": i, "complexity": float(complexity[i]), "bucket": BUCKETS[int(bucket[i])], "s_mean": float(s[i]),
                 "label": int(outputs["label"][i]), "correct": bool(outputs["pred"][i] == outputs["label"][i]),
                 **{f"s_block{b}": float(outputs["s"][i, b]) for b in range(outputs["s"].shape[1])}} for i in range(n)]
    summary = []
    for i, name in enumerate(BUCKETS):
        vals = s[bucket == i].tolist()
        summary.append({"bucket": name, "n": len(vals), "s_mean": statistics.fmean(vals),
                        "s_std": statistics.pstdev(vals), "heads_fraction": float(outputs["mask"][bucket == i].mean())})
    return {"examples": examples, "summary": summary, "spearman_rho": spearman(complexity, s),
            "complexity_measure": measure}


def s_block_class(outputs: dict, label_names: list[str]) -> list[dict]:
    rows = []
    for block in range(outputs["s"].shape[1]):
        for c, name in enumerate(label_names):
            vals = outputs["s"][outputs["label"] == c, block]
            if len(vals):
                rows.append({"block": block, "class": name, "s_mean": float(vals.mean()),
                             "s_std": float(vals.std(unbiased=False)), "n": len(vals)})
    return rows


def q_entropy(outputs: dict) -> list[dict]:
    """Entropy of q per block: at the final (low) temperature, which the model runs with, and of
    softmax(scores) at temperature 1, which still shows how peaked the relevance scores are."""
    ent = entropy(outputs["q"])  # (N, L)
    ent1 = entropy(torch.softmax(outputs["scores"], -1))
    H = outputs["q"].shape[-1]
    return [{"block": b, "entropy_mean": float(ent[:, b].mean()), "entropy_std": float(ent[:, b].std(unbiased=False)),
             "entropy_t1_mean": float(ent1[:, b].mean()), "entropy_t1_std": float(ent1[:, b].std(unbiased=False)),
             "uniform_entropy": math.log(H)} for b in range(ent.shape[1])]


def ablations(model, data: EncodedDataset, device: str = "cpu", full: dict | None = None) -> list[dict]:
    """The controller vs a fixed budget (its own mean s for everyone) vs its budgets with random heads.

    ``full``: the controller's own ``controller_outputs`` on ``data``, when the caller has them already."""
    full = full if full is not None else controller_outputs(model, data, device=device)
    fixed_s = float(full["s"].mean())
    fixed = controller_outputs(model, data, device=device, target=fixed_s)
    rand = controller_outputs(model, data, device=device, random_heads=True)
    rows = []
    for name, o in (("controller (s and q)", full), (f"fixed budget s={fixed_s:.3f}, scorer kept", fixed),
                    ("controller's s, random heads", rand)):
        rows.append({"variant": name, "accuracy": float((o["pred"] == o["label"]).float().mean()),
                     "heads_fraction": float(o["mask"].mean()),
                     "attention_flop_fraction": float(attention_flop_fraction(model, o["mask"], data.lengths()).mean()),
                     "total_flop_fraction": float(total_flop_fraction(model, o["mask"], data.lengths()).mean())})
    return rows


def per_example_latency(model, data: EncodedDataset, n: int = 200, threads: int = 1, repeats: int = 5, seed: int = 0,
                        budget=None) -> dict:
    """Batch-1 latency of the structural path per input vs the FLOP model's prediction.

    prediction_i = dense_ms_i * FLOPs(chosen heads)_i / FLOPs(all heads)_i, with dense_ms_i measured
    on the same input right beside it. Reported: the median of measured / predicted, and the median
    speedup over the dense model. ``budget``: an adaptive model's b (``structural_forward``).
    """
    import random

    from torch.utils import benchmark


    model.eval()
    cfg = model.config
    dense = slice_heads(model, torch.ones(cfg.n_layers, cfg.n_heads)).eval()
    cache = SlicedHeadCache(model)
    idx = random.Random(seed).sample(range(len(data)), min(n, len(data)))

    rows = []
    with TIMING_LOCK:  # one timing at a time in this process (bench.TIMING_LOCK says why)
        prev = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                for i in idx:
                    ids = torch.tensor([data.ids[i]])
                    _, chosen = structural_forward(model, ids, cache, budget=budget)  # warm the cache for this input
                    t_s = benchmark.Timer("f()", globals={"f": lambda: structural_forward(model, ids, cache, budget=budget)},
                                          num_threads=threads)
                    t_d = benchmark.Timer("f()", globals={"f": lambda: dense(ids)}, num_threads=threads)
                    s_ms, d_ms = [], []
                    for _ in range(repeats):  # interleaved, as in bench.compare_latency
                        s_ms.append(t_s.timeit(1).median * 1e3)
                        d_ms.append(t_d.timeit(1).median * 1e3)
                    T = ids.shape[1]
                    frac = model_flops(cfg, [len(c["heads"]) for c in chosen], [T]).total / model_flops(cfg, None, [T]).total
                    sm, dm = statistics.median(s_ms), statistics.median(d_ms)
                    rows.append({"index": i, "tokens": T, "latency_ms": sm, "dense_ms": dm, "predicted_ms": dm * frac,
                                 "ratio": sm / (dm * frac), "speedup": dm / sm, "flop_fraction": frac})
        finally:
            torch.set_num_threads(prev)
    speedups, ratios = [r["speedup"] for r in rows], [r["ratio"] for r in rows]
    return {"examples": rows, "median_ratio": statistics.median(ratios), "ratio_ci": list(median_ci(ratios)),
            "median_speedup": statistics.median(speedups), "speedup_ci": list(median_ci(speedups)),
            "speedup_spread": list(percentile_spread(speedups)),
            "median_flop_speedup": statistics.median(1 / r["flop_fraction"] for r in rows),
            "cache": {"hits": cache.hits, "misses": cache.misses, "head_sets": len(cache.entries)}, "threads": threads, "n": len(rows)}


def budgetformer_analysis(model, test: EncodedDataset, label_names: list[str], history=(), device: str = "cpu",
                          latency_examples: int = 200, max_examples: int = 2000, threads: int = 1,
                          outputs: dict | None = None, complexity: torch.Tensor | None = None,
                          complexity_measure: str = COMPLEXITY_MEASURE) -> dict:
    """Everything the app's BudgetFormer views need, for the card.

    ``outputs``: ``controller_outputs(model, test)``, when the caller has them already (one pass over
    the test set serves the summary, the analyses and the ablations). ``complexity``: per test example,
    from an independent model (``per_example_loss`` of the dense warm start); without it the
    s-by-complexity view is left out rather than computed from the BudgetFormer network itself."""
    outputs = outputs if outputs is not None else controller_outputs(model, test, device=device)
    result = {"training_dynamics": training_dynamics(history),
              "s_block_class": s_block_class(outputs, label_names), "q_entropy": q_entropy(outputs),
              "ablations": ablations(model, test, device, full=outputs)}
    if complexity is not None and len(complexity) == len(test):
        by_c = s_by_complexity(outputs, complexity, complexity_measure)
        by_c["examples"] = by_c["examples"][:max_examples]
        result["s_by_complexity"] = by_c
        result["complexity"] = {"measure": complexity_measure, "values": [round(float(v), 4) for v in complexity]}
    if latency_examples:
        result["per_example_latency"] = per_example_latency(model.cpu(), test, latency_examples, threads)
    return result
