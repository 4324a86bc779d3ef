"""Latency measurement on the CPU: fixed thread count, warm-up, repeated runs, median.

``torch.utils.benchmark.Timer`` does the timing: it pins the thread count for the measurement,
warms up, and ``blocked_autorange`` repeats the statement in blocks until enough time has been
measured, reporting the median. Models being compared are measured in interleaved rounds over the
same input batches, so a burst of load on the machine hits them alike.
"""
from __future__ import annotations

import random
import statistics
from dataclasses import dataclass

import torch
from torch.utils import benchmark

from .data import EncodedDataset, collate


def latency_batches(data: EncodedDataset, batch_size: int = 8, n_batches: int = 16, seed: int = 0,
                    max_len: int | None = None) -> list[dict[str, torch.Tensor]]:
    """Random test examples at their real lengths, batched and padded to each batch's longest."""
    rng = random.Random(seed)
    n = min(len(data), batch_size * n_batches)
    picked = rng.sample(range(len(data)), n)
    batches = []
    for start in range(0, n, batch_size):
        ids = [data.ids[i][:max_len] if max_len else data.ids[i] for i in picked[start : start + batch_size]]
        batches.append(collate(ids, data.pad_id))
    return batches


def padded_lengths(batches: list[dict[str, torch.Tensor]]) -> list[int]:
    """Token count each sequence is computed at (padded), for the FLOP model: one entry per sequence."""
    out = []
    for b in batches:
        B, T = b["input_ids"].shape
        out += [T] * B
    return out


@dataclass
class Latency:
    median_ms: float  # per batch
    iqr_ms: float
    threads: int
    n_batches: int


def _runner(model, batches):
    def run():
        with torch.inference_mode():
            for b in batches:
                model(b["input_ids"], b["attention_mask"])

    return run


def measure_latency(model, batches: list[dict[str, torch.Tensor]], threads: int = 1, min_run_time: float = 0.5) -> Latency:
    """Median wall time of one batch of ``model``'s forward pass, on the CPU with ``threads`` threads."""
    model.eval()
    run = _runner(model, batches)
    run()  # warm-up: first-call allocations and kernel selection stay out of the numbers
    m = benchmark.Timer(stmt="run()", globals={"run": run}, num_threads=threads).blocked_autorange(min_run_time=min_run_time)
    n = len(batches)
    return Latency(m.median * 1e3 / n, m.iqr * 1e3 / n, threads, n)


@dataclass
class Comparison:
    median_ms: dict[str, float]  # per batch
    speedup: dict[str, float]  # median over rounds of reference_ms / model_ms, same round
    rounds: int
    threads: int


def compare_latency(models: dict[str, torch.nn.Module], batches: list[dict[str, torch.Tensor]], threads: int = 1,
                    rounds: int = 15, reference: str = "dense", seed: int = 0) -> Comparison:
    """Time each model's pass over the same batches, ``rounds`` times, in a shuffled order each round.

    On a shared or throttled CPU, load comes and goes on a scale of seconds; timing the models side
    by side within each round and taking the median of the per-round ratios cancels most of it
    (median ms alone drifted by 15% between two runs here; the ratio by a few percent).
    """
    timers = {}
    for name, model in models.items():
        model.eval()
        timers[name] = benchmark.Timer(stmt="run()", globals={"run": _runner(model, batches)}, num_threads=threads)
        timers[name].timeit(1)  # warm-up
    samples: dict[str, list[float]] = {k: [] for k in models}
    rng = random.Random(seed)
    for _ in range(rounds):
        order = list(timers)
        rng.shuffle(order)
        for name in order:
            samples[name].append(timers[name].timeit(1).median * 1e3 / len(batches))
    ref = samples.get(reference)
    speedup = {k: statistics.median(r / v for r, v in zip(ref, vals)) for k, vals in samples.items()} if ref else {}
    return Comparison({k: statistics.median(v) for k, v in samples.items()}, speedup, rounds, threads)
