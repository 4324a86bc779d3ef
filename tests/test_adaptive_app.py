"""The adaptive method in the app (issue 10), through AppTest: the slider moves every input's budget.

A tiny untrained adaptive model on the synthetic_marks task (its data is generated, so the live
sample exists) with a card made by ``adaptive_sweep``; no browser, no network.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")


@pytest.fixture(scope="module")
def adaptive_dirs(tmp_path_factory):
    from baa_core.io.checkpoint import save_checkpoint
    from baa_core.io.data import encode, iterate_batches, load_task, synthetic_vocab
    from baa_core.io.tokenizers import WordTokenizer
    from baa_core.measure.adaptive import adaptive_sweep, tracking
    from baa_core.methods.adaptive import calibrate
    from baa_core.model.config import ModelConfig
    from baa_core.model.encoder import BudgetedClassifier

    root = tmp_path_factory.mktemp("adaptive_app")
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
    card = {"name": "tiny-adaptive", "task": "synthetic_marks", "method": "adaptive", "model_kind": "word",
            "base_model": None, "architecture": "2 layers x 4 heads, d=32", "labels": list(data.label_names),
            "data": data.source, "sweeps": {"adaptive": rows}, "command": "tests/test_adaptive_app.py (tiny test model)",
            "created": "2026-01-01", "notes": "untrained test fixture",
            "adaptive": {"tracking": tracking(model, test, [0.25, 0.5, 0.75, 1.0])}}
    save_checkpoint(root / "pretrained" / "tiny-adaptive", model, tok, card)
    (root / "user_models").mkdir()
    return root


@pytest.fixture
def env(adaptive_dirs, monkeypatch):
    monkeypatch.setenv("BAA_PRETRAINED_DIR", str(adaptive_dirs / "pretrained"))
    monkeypatch.setenv("BAA_USER_MODELS", str(adaptive_dirs / "user_models"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BAA_DATA_DIR", str(adaptive_dirs / "no-data-here"))
    return adaptive_dirs


def new_app(page: str) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.selectbox(key="model_id").set_value("shipped/tiny-adaptive").run()
    at.switch_page(f"app_pages/{page}.py").run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_the_slider_moves_every_inputs_budget(env):
    at = new_app("budget_explorer")
    assert_clean(at)
    seen = {}
    for budget in (0.25, 0.75):
        at.slider(key="explorer_budget").set_value(budget).run()
        assert_clean(at)
        seen[budget] = float(metric(at, "realised cost"))
        assert metric(at, "accuracy").endswith("%")
        assert any(f"Budget **{budget:.2f}**" in c.value and "live" in c.value for c in at.caption)
    assert seen[0.25] < seen[0.75]
    assert any("<svg" in m.value and "now: b=0.75" in m.value for m in at.markdown)  # the Pareto point
    assert len(at.get("plotly_chart")) >= 1  # the histogram of s_i(b)
    at.radio(key="explorer_adaptive_colour").set_value("number of marks").run()
    assert_clean(at)


def test_the_inspector_draws_s_of_b_per_block_and_other_pages_get_a_budget(env):
    at = new_app("inspector")
    assert_clean(at)
    assert at.slider(key="inspector_budget").value == pytest.approx(0.5)
    assert any("as the slider moves" in m.value for m in at.markdown)
    at.slider(key="inspector_budget").set_value(0.2).run()
    assert_clean(at)
    for page in ("attention", "overview", "paper"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert_clean(at)
