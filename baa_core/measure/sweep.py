"""Budget sweeps: accuracy, estimated cost, active heads and measured latency at each budget.

A sweep row always has the keys ``budget, accuracy, est_cost, active_heads, total_heads,
latency_ms, dense_latency_ms, speedup, flop_speedup`` (scripts and the app rely on these names),
plus ``method``, ``heads_per_layer``, ``threads``, ``n`` (test examples), ``accuracy_ci`` (95%
bootstrap interval over the test examples, ``evaluate.bootstrap_ci``) and, when latency is timed,
``speedup_ci`` (95% bootstrap interval of the median per-round ratio), ``speedup_spread`` (2.5-97.5
percentiles of the per-round ratios) and ``latency_rounds``.

Accuracy is measured on the sliced model itself, the model that also gets timed: what is reported
is what runs. (Tests check that sliced and masked execution agree.) A head set that closes a whole
layer (the no-attention control) cannot be built structurally; it is evaluated masked and not timed.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..io.data import EncodedDataset
from ..methods import operating_point
from ..model.encoder import BudgetedClassifier
from ..model.surgery import all_heads_mask, slice_heads
from .cost import flop_speedup, heads_per_layer
from .evaluate import bootstrap_ci, evaluate, pack_correct
from .latency import compare_latency, padded_lengths

ROW_KEYS = ("budget", "accuracy", "est_cost", "active_heads", "total_heads", "latency_ms", "dense_latency_ms",
            "speedup", "flop_speedup")


def sweep(
    model: BudgetedClassifier,
    test: EncodedDataset,
    budgets: list[float],
    *,
    mask_for: Callable[[float], torch.Tensor] | None = None,
    model_for: Callable[[float], BudgetedClassifier] | None = None,
    method: str = "baa",  # the name its rows carry
    latency_batches: list[dict] | None = None,
    threads: int = 1,
    rounds: int = 15,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
    latency_cache: dict | None = None,
    keep_correct: bool = False,
) -> list[dict]:
    """One row per budget. ``mask_for(b)`` picks the heads (default: the model's own gates) and
    ``model_for(b)`` the weights (default: ``model``; per-budget baselines pass their own).
    Latency is measured only when ``latency_batches`` are given; the dense reference is ``model``
    with every head, timed in the same interleaved rounds. Timings depend only on how many heads
    each layer keeps, so they are cached by that layout (pass ``latency_cache`` to share it).
    ``keep_correct`` adds ``correct``: which test examples were right, packed (``evaluate.pack_correct``),
    so that seeds and paired differences can be bootstrapped later (results files, not cards)."""
    mask_for = mask_for or (lambda b: operating_point(model, b))
    total = model.config.total_heads
    lengths = padded_lengths(latency_batches) if latency_batches else None
    rows = []
    timed = latency_cache if latency_cache is not None else {}
    for b in budgets:
        weights = model_for(b) if model_for else model
        mask = mask_for(b).cpu()
        structural = bool((mask.sum(-1) > 0).all())
        if structural:
            sliced = slice_heads(weights.cpu().eval(), mask)
            res = evaluate(sliced.to(device), test, device=device)
            sliced.cpu()
        else:  # a closed layer: masked execution (the no-attention control)
            res = evaluate(weights.to(device), test, head_mask=mask.to(device), device=device)
            weights.cpu()
        acc = res.accuracy
        hpl = heads_per_layer(mask)
        row = {"budget": float(b), "accuracy": acc, "accuracy_ci": list(bootstrap_ci(res.correct.float())),
               "est_cost": float(mask.mean()), "active_heads": int(mask.sum()),
               "total_heads": total, "method": method, "heads_per_layer": hpl, "n": len(test),
               "latency_ms": None, "dense_latency_ms": None, "speedup": None, "flop_speedup": None, "threads": threads}
        if keep_correct:
            row["correct"] = pack_correct(res.correct)
        if latency_batches and structural:
            row["flop_speedup"] = flop_speedup(model.config, hpl, lengths)
            key = tuple(hpl)
            if key not in timed:  # latency depends only on how many heads each layer keeps
                dense = slice_heads(model.cpu().eval(), all_heads_mask(model.config))
                timed[key] = compare_latency({"dense": dense, "sliced": sliced}, latency_batches, threads, rounds)
            c = timed[key]
            row.update(c.row_fields("sliced"))
        if progress:
            progress(f"{method} budget {b:g}: accuracy {acc:.4f}" + (f", speedup {row['speedup']:.2f}x" if row["speedup"] else ""))
        rows.append(row)
    return rows
