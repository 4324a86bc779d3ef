"""Bootstrap intervals of a mean over test examples: one rule for every accuracy the project reports.

A leaf module (torch only), so that evaluation, sweeps and the per-input analyses can all use it
without importing each other.
"""
from __future__ import annotations

import torch

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0


def bootstrap_ci(values, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
                 chunk: int = 250) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one per test example).

    Examples are resampled with replacement ``samples`` times from a generator seeded with ``seed``:
    the same values always give the same interval. Paired values (a_i - b_i on the same examples)
    give the interval of a difference."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    n = v.numel()
    if n == 0:
        raise ValueError("a bootstrap interval needs at least one value")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), not {level}")
    g = torch.Generator().manual_seed(seed)
    means = []
    for start in range(0, samples, chunk):  # (chunk, n) indices at a time keeps memory small
        idx = torch.randint(0, n, (min(chunk, samples - start), n), generator=g)
        means.append(v[idx].mean(dim=1))
    means = torch.cat(means)
    alpha = (1.0 - level) / 2
    lo, hi = torch.quantile(means, torch.tensor([alpha, 1.0 - alpha], dtype=torch.float64)).tolist()
    return float(lo), float(hi)
