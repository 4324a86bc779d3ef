"""The adaptive method in the app (issue 10), through AppTest: the slider moves every input's budget.

A tiny untrained adaptive model on the synthetic_marks task (its data is generated, so the live
sample exists) with a card made by ``adaptive_sweep``; no browser, no network.
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.app_fixtures import assert_clean, metric, panel  # noqa: E402

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")


@pytest.fixture(scope="module")
def adaptive_dirs(tmp_path_factory):
    from tests.app_fixtures import build_adaptive

    root = tmp_path_factory.mktemp("adaptive_app")
    build_adaptive(root / "pretrained" / "tiny-adaptive")
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


def test_the_slider_moves_every_inputs_budget(env):
    """The explorer's live panel carries every budget of the card (the browser redraws from it while dragging);
    a release (here: the session's budget, which the panel's commit sets) moves the live sample's numbers."""
    from app.ui import state
    from baa_core.io.checkpoint import load_checkpoint

    at = new_app("budget_explorer")
    assert_clean(at)
    card = load_checkpoint(env / "pretrained" / "tiny-adaptive").card
    rows = {r["budget"]: r for r in card["sweeps"]["adaptive"]}
    data = panel(at)
    assert [p["b"] for p in data["points"]] == sorted(rows) and data["stops"] == [0, 1, 2] and data["range"] == [0.25, 0.75]
    for p in data["points"]:  # the card's numbers, with a 95% interval, and per-block mean heads for the grid
        r = rows[p["b"]]
        assert p["acc"]["v"] == pytest.approx(r["accuracy"]) and p["acc"]["lo"] <= p["acc"]["v"] <= p["acc"]["hi"]
        assert p["cost"] == pytest.approx(r["est_cost"], abs=1e-5) and p["mask"] is None and len(p["hpl"]) == 2
        assert sum(p["hpl"]) == pytest.approx(r["active_heads"], abs=0.02)
    assert data["budget"] == 0.5  # the session's default budget
    seen = {}
    for budget in (0.25, 0.75):
        at.session_state[state.BUDGET_KEY] = budget
        at.run()
        assert_clean(at)
        assert panel(at)["budget"] == budget
        seen[budget] = float(metric(at, "realised cost, live"))
        assert any(f"Budget **{budget:.2f}**" in c.value for c in at.caption)
    assert seen[0.25] < seen[0.75]
    assert any("<svg" in m.value and "s_i(b)" in m.value and "b = 0.75" in m.value for m in at.markdown)  # the histogram
    at.radio(key="explorer_adaptive_colour").set_value("number of marks").run()
    assert_clean(at)


def test_adaptive_payload_is_pure_and_compares_with_every_head():
    from app.ui.live_panel import adaptive_payload

    rows = [{"budget": b, "accuracy": 0.8 + b / 10, "est_cost": b, "active_heads": 16 * b, "total_heads": 16, "n": 1000,
             "heads_per_layer": [8 * b, 8 * b]} for b in (0.1, 0.5, 1.0)]
    rows[1].update(latency_ms=1.0, dense_latency_ms=2.0, speedup=2.0, latency_inputs=40)
    data = adaptive_payload({"sweeps": {"adaptive": rows}}, panel_id="x", layers=2, heads=8)
    assert data["range"] == [0.1, 1.0] and [p["k"] for p in data["points"]] == [1.6, 8.0, 16.0]
    assert data["points"][1]["lat"]["speedup"] == 2.0 and data["points"][0]["lat"] is None
    assert "beyond noise" in data["points"][0]["vs_all"] and data["points"][2]["vs_all"].startswith("the highest budget")
    assert adaptive_payload({"sweeps": {}}, panel_id="x", layers=2, heads=8)["points"] == []


def test_the_inspector_draws_s_of_b_per_block_and_other_pages_get_a_budget(env, monkeypatch):
    from app.ui import state

    at = new_app("inspector")
    assert_clean(at)
    data = panel(at, "inspector_live")  # the live panel: this text's own heads, probabilities and s at every budget
    assert data["budget"] == 0.5 and len(data["input"]["at"]) == len(data["points"]) == 3
    for a in data["input"]["at"]:
        assert len(a["mask"]) == 8 and len(a["s"]) == 2 and sum(a["probs"]) == pytest.approx(1, abs=1e-3)
    heads = [sum(a["mask"]) for a in data["input"]["at"]]
    assert heads == sorted(heads) and heads[0] < heads[-1]  # s_i(b) never falls as b rises: nor do its heads
    assert any("<svg" in m.value and "s(b) per block" in m.value for m in at.markdown)  # the s(b) curves
    sq = [h.proto.body for h in at.get("html") if "budget s" in h.proto.body]  # what each block chose, as a table
    assert sq and sq[0].count("<tr>") == 3 and "✓" in sq[0]
    def no_model_run(*args, **kwargs):
        raise AssertionError("a release ran the model: the panel's run of this text has every budget")

    monkeypatch.setattr(state, "inspect_cached", no_model_run)
    at.session_state[state.BUDGET_KEY] = 0.25  # what the panel's release does
    at.run()
    assert_clean(at)
    assert panel(at, "inspector_live")["budget"] == 0.25
    assert any("b = 0.25" in c.value for c in at.caption)
    for page in ("attention", "overview", "paper"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert_clean(at)


def test_a_model_too_big_for_the_live_sample_waits_for_the_toggle_then_follows_the_slider(env, tmp_path, monkeypatch):
    """A release must answer at once: where one budget's live sample costs seconds (MiniLM), the explorer runs
    it only on request, and the panel's card numbers stay; once asked, it follows the slider."""
    import shutil

    from app.ui import compute

    shutil.copytree(env / "pretrained" / "tiny-adaptive", tmp_path / "pretrained" / "big-adaptive")
    (tmp_path / "user_models").mkdir()
    monkeypatch.setenv("BAA_PRETRAINED_DIR", str(tmp_path / "pretrained"))
    monkeypatch.setenv("BAA_USER_MODELS", str(tmp_path / "user_models"))
    monkeypatch.setattr(compute, "LIVE_AUTO_FLOPS", 0.0)  # every model counts as too big
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.selectbox(key="model_id").set_value("shipped/big-adaptive").run()
    at.switch_page("app_pages/budget_explorer.py").run()
    assert_clean(at)
    assert panel(at)["points"] and not [m for m in at.metric if m.label == "realised cost, live"]
    at.toggle(key="explorer_adaptive_follow").set_value(True).run()
    assert_clean(at)
    assert float(metric(at, "realised cost, live")) > 0
    assert any(c.value.startswith("95% interval (Wilson") for c in at.caption)  # live accuracy on a sample: an interval
    # from then on a release moves the per-input budgets too (it once dropped them until a button was pressed again)
    first = float(metric(at, "mean s_i(b), live"))
    from app.ui import state

    at.session_state[state.BUDGET_KEY] = 0.25  # what the panel's release does
    at.run()
    assert_clean(at)
    assert float(metric(at, "mean s_i(b), live")) != first


def test_the_server_warms_every_card_budget_of_a_small_adaptive_model(env, monkeypatch):
    """So that the first release at each budget answers at once (warmup._warm_caches runs at server start)."""
    from app.ui import adaptive_panels, warmup

    seen = []
    monkeypatch.setattr(adaptive_panels, "live_point", lambda path, version, b, ckpt, data: seen.append(b))
    warmup._warm_caches()
    assert seen == [0.25, 0.5, 0.75]


def test_s_histogram_svg_counts_every_input_once_in_its_bin():
    import re

    from app.ui.adaptive_figures import render_s_histogram_svg

    xs, groups = [0.1, 0.11, 0.5, 0.5, 0.5, 0.999, 1.0], [0, 1, 0, 0, 1, 1, 0]
    svg = render_s_histogram_svg({"s": xs, "label": groups, "budget": 0.5}, groups, ["x<y", "z"])
    counts = [int(n) for n in re.findall(r"</?title>?[^<]*?: (\d+) inputs", svg)]
    assert sum(counts) == len(xs) and "x&lt;y" in svg and "x<y" not in svg  # labels are escaped
    assert "b = 0.50" in svg and f"mean {sum(xs) / len(xs):.3f}" in svg


def test_another_models_rows_on_the_chart_are_named_by_that_model():
    # the adaptive explorer draws BudgetFormer's point from a sibling card: its legend says whose card it is
    from app.ui.live_panel import chart_series

    card = {"sweeps": {"adaptive": [{"budget": 0.5, "est_cost": 0.5, "accuracy": 0.9, "accuracy_ci": [0.88, 0.92]}],
                       "budgetformer": [{"est_cost": 0.48, "accuracy": 0.89, "accuracy_ci": [0.87, 0.91],
                                         "from_model": "ag_news-minilm-budgetformer"}]}}
    names = [s["name"] for s in chart_series(card, "adaptive", [], "live")]
    assert any(n.endswith("(ag_news-minilm-budgetformer's card)") for n in names), names
    assert any(n.endswith("(card)") and "budgetformer" not in n for n in names), names


def test_every_budget_of_the_panel_carries_the_samples_per_input_budgets(env):
    """What the browser redraws while the slider moves: at each budget, the histogram of the live sample's
    per-input budgets, the same numbers as a full run of the model on that sample at that budget."""
    at = new_app("budget_explorer")
    assert_clean(at)
    data = panel(at)
    assert all("shist" in p for p in data["points"])
    n = data["points"][0]["shist"]["n"]
    for p in data["points"]:
        assert len(p["shist"]["counts"]) == 40 and sum(p["shist"]["counts"]) == n  # 0.025 wide, as the page's histogram
    means = [p["shist"]["mean"] for p in data["points"]]
    assert means == sorted(means) and means[0] < means[-1]  # the sample's budgets rise with b
    # small models run the live sample at once: its full-run numbers at the committed budget are on the page
    shown = next(p for p in data["points"] if p["b"] == data["budget"])["shist"]
    assert abs(shown["mean"] - float(metric(at, "mean s_i(b), live"))) < 1e-3
    assert abs(shown["realised"] - float(metric(at, "realised cost, live"))) < 1e-3


def test_a_card_row_at_budget_zero_does_not_break_the_explorer(env, tmp_path, monkeypatch):
    # the card check accepts budgets in [0, 1]; the model takes (0, 1]: the panel's per-input budgets skip that row
    import json
    import shutil

    folder = tmp_path / "pretrained" / "zero-adaptive"
    shutil.copytree(env / "pretrained" / "tiny-adaptive", folder)
    card = json.loads((folder / "card.json").read_text())
    card["sweeps"]["adaptive"].append(dict(card["sweeps"]["adaptive"][0], budget=0.0))
    (folder / "card.json").write_text(json.dumps(card))
    monkeypatch.setenv("BAA_PRETRAINED_DIR", str(tmp_path / "pretrained"))
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.selectbox(key="model_id").set_value("shipped/zero-adaptive").run()
    at.switch_page("app_pages/budget_explorer.py").run()
    assert_clean(at)
    assert sum("shist" in p for p in panel(at)["points"]) >= 3
