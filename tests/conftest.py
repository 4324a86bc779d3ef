"""Shared fixtures: tiny models and data generated here, so tests run anywhere (no network, no ../shared)."""
from __future__ import annotations

import os
import tempfile

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The app keeps live accuracies on disk between server starts (app/ui/live_store.py): tests keep theirs
# in a folder of their own, not in the checkout's .cache/.
os.environ.setdefault("BAA_CACHE_DIR", tempfile.mkdtemp(prefix="baa-test-cache-"))

from baa_core.model.config import ModelConfig  # noqa: E402
from baa_core.model.encoder import BudgetedClassifier  # noqa: E402


def tiny_config(**kw) -> ModelConfig:
    base = dict(vocab_size=50, n_classes=3, d_model=32, n_heads=4, n_layers=3, d_ffn=48, max_len=24, dropout=0.0)
    base.update(kw)
    return ModelConfig(**base)


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return BudgetedClassifier(tiny_config(gating="baa")).eval()


def padded_batch(B: int = 5, T: int = 12, vocab: int = 50, seed: int = 0):
    """Random ids with a different amount of padding in each row (row 0 unpadded)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    for i in range(1, B):
        cut = int(torch.randint(1, T - 1, (1,), generator=g))
        ids[i, cut:] = 0
        mask[i, cut:] = 0
    return ids, mask
