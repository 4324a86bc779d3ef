"""Tiny checkpoints for the app's tests, built in a temp folder in a few seconds (no ../shared, no network).

``build_model_dirs(root)`` writes:

    root/pretrained/tiny-baa      BAA gates, synthetic task, card with measured baa / posthoc / dense sweeps
    root/pretrained/tiny-agnews   the same weights with a card saying "ag_news" (no data on hand: card numbers only)
    root/pretrained/tiny-static   static gates for budgets 0.25 and 0.5
    root/pretrained/tiny-bf       BudgetFormer controllers, card with baa_core.measure.analysis data
    root/user_models/broken       a corrupt checkpoint (garbage weights, truncated config.json)

``build_adaptive(folder)`` writes a tiny adaptive model (per-input heads under one budget knob) on its own.

The models are untrained (random weights, seeded): the tests check that the app shows what the
library computes, not that the models are good. Sweeps and analyses in the cards are measured by
baa_core on a small synthetic test set, like a real card.
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import torch

from baa_core.measure.latency import latency_batches
from baa_core.io.checkpoint import save_checkpoint
from baa_core.model.config import ModelConfig
from baa_core.io.data import SYNTH_VALUES, encode, marked_token_task, synthetic_vocab
from baa_core.model.encoder import BudgetedClassifier
from baa_core.methods.posthoc import posthoc_mask
from baa_core.measure.sweep import sweep
from baa_core.io.tokenizers import WordTokenizer

BUDGETS = [0.25, 0.5, 0.75, 1.0]


def tiny_config(**kw) -> ModelConfig:
    base = dict(vocab_size=len(synthetic_vocab()), n_classes=8, d_model=32, n_heads=4, n_layers=2, d_ffn=32, max_len=16,
                dropout=0.0, labels=list(SYNTH_VALUES), embedding_init_std=1.0)
    base.update(kw)
    return ModelConfig(**base)


def _card(name: str, method: str, sweeps: dict, **extra) -> dict:
    return {"name": name, "task": "synthetic", "method": method, "model_kind": "word", "base_model": None,
            "architecture": "2 layers x 4 heads, d=32, ffn=32, max_len=16", "labels": list(SYNTH_VALUES),
            "data": "synthetic marked-token task (test fixture)", "sweeps": sweeps, "command": "tests/app_fixtures.py (tiny test model)",
            "created": datetime.date.today().isoformat(), "notes": "untrained test fixture", **extra}


def build_model_dirs(root: Path) -> dict[str, Path]:
    root = Path(root)
    pre, user = root / "pretrained", root / "user_models"
    tok = WordTokenizer(synthetic_vocab(), lowercase=False)
    test = encode(marked_token_task(64, 16, seed=123), tok, 16)
    batches = latency_batches(test, 8, 2)

    torch.manual_seed(0)
    baa = BudgetedClassifier(tiny_config(gating="baa")).eval()
    with torch.no_grad():  # spread the gates so budgets pick different heads
        baa.gate.intercept.copy_(torch.linspace(-2, 2, 8).reshape(2, 4))
    importance = torch.rand(2, 4, generator=torch.Generator().manual_seed(1))
    sweeps = {
        "baa": sweep(baa, test, BUDGETS, latency_batches=batches, rounds=3),
        "posthoc": sweep(baa, test, BUDGETS, method="posthoc", mask_for=lambda b: posthoc_mask(importance, b)),
        "dense": sweep(baa, test, [1.0], method="dense", mask_for=lambda b: torch.ones(2, 4)),
    }
    save_checkpoint(pre / "tiny-baa", baa, tok, _card("tiny-baa", "baa", sweeps))
    # the same model labelled as an AG News one: its data is not on hand in the tests, so pages use the card only
    save_checkpoint(pre / "tiny-agnews", baa, tok, {**_card("tiny-agnews", "baa", sweeps), "task": "ag_news"})

    torch.manual_seed(1)
    static = BudgetedClassifier(tiny_config(gating="static", static_budgets=[0.25, 0.5])).eval()
    save_checkpoint(pre / "tiny-static", static, tok,
                    _card("tiny-static", "static", {"static": sweep(static, test, [0.25, 0.5], method="static")}))

    from baa_core.measure.analysis import budgetformer_analysis
    from baa_core.measure.perinput import budgetformer_summary

    torch.manual_seed(2)
    bf = BudgetedClassifier(tiny_config(gating="budgetformer", controller_hidden=8)).eval()
    analysis = budgetformer_analysis(bf, test=test, label_names=list(SYNTH_VALUES), latency_examples=4)
    save_checkpoint(pre / "tiny-bf", bf, tok, _card("tiny-bf", "budgetformer", {"budgetformer": [budgetformer_summary(bf, test)]},
                                                   analysis=analysis))

    broken = user / "broken"
    broken.mkdir(parents=True)
    (broken / "model.safetensors").write_bytes(b"this is not a safetensors file")
    (broken / "config.json").write_text('{"format": "baa-checkpoint", "model": {', encoding="utf-8")
    (broken / "card.json").write_text(json.dumps({"name": "broken", "task": "synthetic", "method": "baa"}), encoding="utf-8")
    return {"pretrained": pre, "user_models": user}


def csv_bytes(n: int = 60, columns=("text", "label")) -> bytes:
    """A small two-class CSV (sports vs. money words) with a header row."""
    sports = ["the team won the match", "a late goal in the final", "the coach praised the players", "fans cheered the win"]
    money = ["shares fell on the market", "the bank raised rates", "profits rose this quarter", "investors sold the stock"]
    lines = [",".join(columns)]
    for i in range(n):
        pool, label = (sports, "sports") if i % 2 == 0 else (money, "business")
        lines.append(f"{pool[i % 4]} {i},{label}")
    return ("\n".join(lines) + "\n").encode()


def build_adaptive(folder: Path) -> Path:
    """A tiny untrained adaptive model (per-input heads under one budget knob) on the synthetic_marks task (its
    data is generated, so the live sample exists), with a card made by ``adaptive_sweep`` at b = 0.25, 0.5, 0.75."""
    from baa_core.io.data import iterate_batches, load_task
    from baa_core.measure.adaptive import adaptive_sweep, tracking
    from baa_core.methods.adaptive import calibrate

    data = load_task("synthetic_marks", max_train=200, max_test=200)
    tok = WordTokenizer(synthetic_vocab("synthetic_marks"), lowercase=False)
    test, val = encode(data.test, tok, 16), encode(data.val, tok, 16)
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=len(tok), n_classes=len(data.label_names), d_model=32, n_heads=4, n_layers=2, d_ffn=32,
                      max_len=16, dropout=0.0, labels=list(data.label_names), gating="adaptive", controller_hidden=8)
    model = BudgetedClassifier(cfg).eval()
    with torch.no_grad():  # inputs differ in s
        for c in model.controllers:
            c.budget_out.weight.normal_(0, 1.0)
    calibrate(model, iterate_batches(val, 64))
    rows = adaptive_sweep(model, test, [0.25, 0.5, 0.75], latency_examples=2)
    card = {"name": folder.name, "task": "synthetic_marks", "method": "adaptive", "model_kind": "word",
            "base_model": None, "architecture": "2 layers x 4 heads, d=32", "labels": list(data.label_names),
            "data": data.source, "sweeps": {"adaptive": rows}, "command": "tests/app_fixtures.py (tiny test model)",
            "created": "2026-01-01", "notes": "untrained test fixture",
            "adaptive": {"tracking": tracking(model, test, [0.25, 0.5, 0.75, 1.0])}}
    save_checkpoint(folder, model, tok, card)
    return folder


def build_twelve_heads(pre: Path) -> dict[str, Path]:
    """Two tiny models with 12 heads per block, MiniLM's width: ``tiny-baa12`` (BAA gates, card with a baa sweep)
    and ``tiny-dense12`` (no gates). For checking that 12-head grids fit the page."""
    tok = WordTokenizer(synthetic_vocab(), lowercase=False)
    test = encode(marked_token_task(32, 16, seed=123), tok, 16)
    torch.manual_seed(3)
    baa = BudgetedClassifier(tiny_config(gating="baa", n_heads=12, d_model=48)).eval()
    with torch.no_grad():
        baa.gate.intercept.copy_(torch.linspace(-2, 2, 24).reshape(2, 12))
    arch = {"architecture": "2 layers x 12 heads, d=48, ffn=32, max_len=16"}
    out = {"baa": pre / "tiny-baa12", "dense": pre / "tiny-dense12"}
    save_checkpoint(out["baa"], baa, tok, {**_card("tiny-baa12", "baa", {"baa": sweep(baa, test, BUDGETS)}), **arch})
    dense = BudgetedClassifier(tiny_config(gating="dense", n_heads=12, d_model=48)).eval()
    save_checkpoint(out["dense"], dense, tok,
                    {**_card("tiny-dense12", "dense", {"dense": sweep(dense, test, [1.0], method="dense",
                                                                       mask_for=lambda b: torch.ones(2, 12))}), **arch})
    return out


def panel(at, key: str = "explorer_live") -> dict:
    """The live panel's payload as the page sent it to the browser (an AppTest run's bidi component)."""
    for el in at.get("bidi_component"):
        proto = el.proto
        data = json.loads(proto.mixed.json if proto.HasField("mixed") else proto.json)
        if data.get("id") == key:
            return data
    raise LookupError(f"no live panel {key!r} on the page")


def assert_clean(at) -> None:
    """An AppTest run showed no exception and no st.error."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metric(at, label: str) -> str:
    """The value of the st.metric labelled ``label``."""
    return next(m.value for m in at.metric if m.label == label)
