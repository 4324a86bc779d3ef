"""Seeded initialisation: torch seeds its global generator differently in every process, so a network
or gate built without a seed is a different one on every run, whatever the training's seed says."""
from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def seeded_rng(seed: int | None):
    """Run the block with torch's CPU generator seeded (``None``: as it is), and restore it after."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
