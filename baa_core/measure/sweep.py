"""Budget sweeps: accuracy, estimated cost, active heads and measured latency at each budget.

A sweep row always has the keys ``budget, accuracy, est_cost, active_heads, total_heads,
latency_ms, dense_latency_ms, speedup, flop_speedup`` (scripts and the app rely on these names),
plus ``method``, ``heads_per_layer``, ``threads`` and ``n`` (test examples).

Accuracy is measured on the sliced model itself, the model that also gets timed: what is reported
is what runs. (Tests check that sliced and masked execution agree.)
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..io.data import EncodedDataset
from ..methods import operating_point
from ..model.encoder import BudgetedClassifier
from ..model.surgery import all_heads_mask, slice_heads
from .cost import flop_speedup, heads_per_layer
from .evaluate import evaluate
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
) -> list[dict]:
    """One row per budget. ``mask_for(b)`` picks the heads (default: the model's own gates) and
    ``model_for(b)`` the weights (default: ``model``; per-budget baselines pass their own).
    Latency is measured only when ``latency_batches`` are given; the dense reference is ``model``
    with every head, timed in the same interleaved rounds. Timings depend only on how many heads
    each layer keeps, so they are cached by that layout (pass ``latency_cache`` to share it)."""
    mask_for = mask_for or (lambda b: operating_point(model, b))
    total = model.config.total_heads
    lengths = padded_lengths(latency_batches) if latency_batches else None
    rows = []
    timed = latency_cache if latency_cache is not None else {}
    for b in budgets:
        weights = model_for(b) if model_for else model
        mask = mask_for(b).cpu()
        sliced = slice_heads(weights.cpu().eval(), mask)
        acc = evaluate(sliced.to(device), test, device=device).accuracy
        sliced.cpu()
        hpl = heads_per_layer(mask)
        row = {"budget": float(b), "accuracy": acc, "est_cost": float(mask.mean()), "active_heads": int(mask.sum()),
               "total_heads": total, "method": method, "heads_per_layer": hpl, "n": len(test),
               "latency_ms": None, "dense_latency_ms": None, "speedup": None, "flop_speedup": None, "threads": threads}
        if latency_batches:
            row["flop_speedup"] = flop_speedup(model.config, hpl, lengths)
            key = tuple(hpl)
            if key not in timed:  # latency depends only on how many heads each layer keeps
                dense = slice_heads(model.cpu().eval(), all_heads_mask(model.config))
                timed[key] = compare_latency({"dense": dense, "sliced": sliced}, latency_batches, threads, rounds)
            c = timed[key]
            row.update(latency_ms=c.median_ms["sliced"], dense_latency_ms=c.median_ms["dense"], speedup=c.speedup["sliced"])
        if progress:
            progress(f"{method} budget {b:g}: accuracy {acc:.4f}" + (f", speedup {row['speedup']:.2f}x" if row["speedup"] else ""))
        rows.append(row)
    return rows
