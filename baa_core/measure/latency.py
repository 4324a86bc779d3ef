"""Latency measurement on the CPU: fixed thread count, warm-up, repeated runs, median.

``torch.utils.benchmark.Timer`` does the timing: it pins the thread count for the measurement,
warms up, and ``blocked_autorange`` repeats the statement in blocks until enough time has been
measured, reporting the median. Models being compared are measured in interleaved rounds over the
same input batches, so a burst of load on the machine hits them alike.
"""
from __future__ import annotations

import math
import random
import statistics
import threading
from dataclasses import dataclass

import torch
from torch.utils import benchmark

from ..io.data import EncodedDataset, collate

# torch's thread count is process-wide and Timer(num_threads=...) sets it while timing: two timings
# at once (two app sessions, or a timing beside training) would disturb each other. One at a time.
TIMING_LOCK = threading.RLock()


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


def _runner(model, batches):
    def run():
        with torch.inference_mode():
            for b in batches:
                model(b["input_ids"], b["attention_mask"])

    return run


@dataclass
class Comparison:
    median_ms: dict[str, float]  # per batch
    speedup: dict[str, float]  # median over rounds of reference_ms / model_ms, same round
    rounds: int
    threads: int
    ratios: dict[str, list[float]] | None = None  # per round: reference_ms / model_ms

    def speedup_ci(self, name: str) -> tuple[float, float]:
        """95% bootstrap interval of the median per-round ratio (narrows as rounds are added)."""
        return median_ci(self.ratios[name]) if self.ratios and name in self.ratios else (1.0, 1.0)

    def speedup_spread(self, name: str) -> tuple[float, float]:
        """2.5 and 97.5 percentiles of the per-round ratios: how much single rounds vary."""
        return percentile_spread(self.ratios[name]) if self.ratios and name in self.ratios else (1.0, 1.0)

    def row_fields(self, name: str) -> dict:
        """The latency columns of a sweep row for model ``name`` (keys documented in sweep.py)."""
        return {"latency_ms": self.median_ms[name], "dense_latency_ms": self.median_ms["dense"],
                "speedup": self.speedup[name], "speedup_ci": list(self.speedup_ci(name)),
                "speedup_spread": list(self.speedup_spread(name)), "latency_rounds": self.rounds}


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation quantile of an already sorted list (numpy's default rule)."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def percentile_spread(values: list[float], level: float = 0.95) -> tuple[float, float]:
    v = sorted(values)
    if not v:
        raise ValueError("no values")
    a = (1.0 - level) / 2
    return _quantile(v, a), _quantile(v, 1.0 - a)


def median_ci(values: list[float], level: float = 0.95, samples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of ``values`` (seeded: reproducible)."""
    if not values:
        raise ValueError("no values")
    rng = random.Random(seed)
    n = len(values)
    medians = sorted(statistics.median(rng.choices(values, k=n)) for _ in range(samples))
    a = (1.0 - level) / 2
    return _quantile(medians, a), _quantile(medians, 1.0 - a)


def compare_latency(models: dict[str, torch.nn.Module], batches: list[dict[str, torch.Tensor]], threads: int = 1,
                    rounds: int = 15, reference: str = "dense", seed: int = 0, min_timing_ms: float = 0.0) -> Comparison:
    """Time each model against the reference on the same batches, ``rounds`` times.

    Each round visits the models in a shuffled order and times every one right beside a fresh
    timing of the reference (the pair in random order); the speedup is the median over rounds of
    reference / model within each pair. On this shared CPU, load comes and goes on a scale of
    seconds: pairs timed back to back see the same load, so their ratio is steady even when the
    plain milliseconds drift by 10-25% from round to round. A timing repeats the pass until it
    lasts ``min_timing_ms`` (sub-millisecond passes, e.g. one input at batch 1, are too short to
    time once).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    if reference not in models:
        raise ValueError(f"the reference model {reference!r} is not among {list(models)}")
    samples: dict[str, list[float]] = {k: [] for k in models}
    ratios: dict[str, list[float]] = {k: [] for k in models if k != reference}
    rng = random.Random(seed)
    with TIMING_LOCK:
        timers = {}
        for name, model in models.items():
            model.eval()
            timers[name] = benchmark.Timer(stmt="run()", globals={"run": _runner(model, batches)}, num_threads=threads)
            timers[name].timeit(1)  # warm-up
        warm = timers[reference].timeit(1).median * 1e3
        number = max(1, math.ceil(min_timing_ms / max(warm, 1e-3)))
        ms = lambda name: timers[name].timeit(number).median * 1e3 / len(batches)  # noqa: E731
        for _ in range(rounds):
            order = list(ratios)
            rng.shuffle(order)
            for name in order:
                if rng.random() < 0.5:
                    ref, other = ms(reference), ms(name)
                else:
                    other, ref = ms(name), ms(reference)
                samples[reference].append(ref)
                samples[name].append(other)
                ratios[name].append(ref / other)
    speedup = {k: statistics.median(v) for k, v in ratios.items()}
    speedup[reference] = 1.0
    return Comparison({k: statistics.median(v) for k, v in samples.items()}, speedup, rounds, threads, ratios)
