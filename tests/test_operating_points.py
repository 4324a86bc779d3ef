"""baa_core.measure.operating_points (every distinct hard operating point, measured once) and the live panel's
pure payload helpers: the points are exactly the masks the model runs, the card's numbers land on the
right points with an interval, and the payload never offers a stop without a number."""
from __future__ import annotations

import itertools
import json

import pytest
import torch

from baa_core.model.encoder import BudgetedClassifier
from baa_core.measure.operating_points import (
    Accuracy,
    below_range,
    budget_runs,
    measured,
    operating_points,
    point_at,
    probs_at_points,
    trained_range,
    wilson_interval,
)
from tests.conftest import padded_batch, tiny_config


def spread_gates(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.gate.intercept.copy_(torch.randn(model.gate.intercept.shape, generator=g) * 2)
        model.gate.raw_sensitivity.copy_(torch.randn(model.gate.raw_sensitivity.shape, generator=g))
    return model


@pytest.mark.parametrize("seed", range(3))
def test_points_are_the_masks_the_model_runs_over_the_trained_range(tiny_model, seed):
    model = spread_gates(tiny_model, seed)
    points = operating_points(model, None)
    assert points[0].budget_lo == pytest.approx(0.1) and points[-1].budget_hi == pytest.approx(1.0)
    for p, q in itertools.pairwise(points):
        assert q.budget_lo == pytest.approx(p.budget_hi + 0.001)  # the runs tile the grid
        assert not torch.equal(p.mask, q.mask)  # a new point only where the mask changes
    for p in points:
        assert p.budget_lo - 1e-9 <= p.budget <= p.budget_hi + 1e-9
        assert torch.equal(p.mask, model.gate.hard(p.budget))
        assert torch.allclose(p.gates, model.gate(p.budget))
        assert p.est_cost == pytest.approx(p.active_heads / p.total_heads)
    for b in torch.linspace(0.1, 1.0, 37).tolist():  # any budget in range runs its point's mask
        b = round(b, 3)
        assert torch.equal(point_at(points, b).mask, model.gate.hard(b)), b


def test_card_rows_land_on_their_points_with_intervals(tiny_model):
    model = spread_gates(tiny_model)
    rows = []
    for b in (0.25, 0.5, 1.0):
        mask = model.gate.hard(b)
        rows.append({"budget": b, "accuracy": 0.8, "n": 400, "heads_per_layer": mask.sum(-1).int().tolist(),
                     "latency_ms": 2.0, "dense_latency_ms": 3.0, "speedup": 1.5, "flop_speedup": 1.7, "threads": 1})
    rows[1].update(accuracy=0.75, accuracy_seeds=[0.7, 0.8], accuracy_std=0.05, seeds=2)
    card = {"sweeps": {"baa": rows}, "seeds": [3, 4], "train_config": {"min_budget": 0.2, "max_budget": 1.0}}
    points = operating_points(model, card, lengths=[10] * 4)
    assert points[0].budget_lo == pytest.approx(0.2)
    with_card = {p.budget: p for p in points if p.card is not None}
    assert set(with_card) == {0.25, 0.5, 1.0}  # a run holding a card budget is shown at that budget
    assert with_card[0.25].card.value == 0.8 and with_card[0.25].card.n == 400
    assert (with_card[0.25].card.low, with_card[0.25].card.high) == pytest.approx(wilson_interval(0.8, 400))
    assert with_card[0.5].card.value == 0.7 and "seed 3" in with_card[0.5].card.detail  # this checkpoint = first seed
    assert with_card[0.25].latency["speedup"] == 1.5 and with_card[0.25].flop_speedup == 1.7
    others = [p for p in points if p.card is None]
    assert all(p.flop_speedup and p.flop_speedup >= 1.0 for p in others)  # from the FLOP model at the given lengths


def test_live_accuracy_is_attached_with_its_sample_size(tiny_model):
    seen = []
    points = operating_points(spread_gates(tiny_model), None, live=lambda m: seen.append(m) or 0.5, live_n=200)
    assert len(seen) == len(points)
    assert all(p.live.source == "live" and p.live.n == 200 and p.accuracy is p.live for p in points)


def test_static_model_has_one_point_per_trained_budget():
    torch.manual_seed(0)
    model = BudgetedClassifier(tiny_config(gating="static", static_budgets=[0.05, 0.25, 0.5])).eval()
    points = operating_points(model, None)
    assert [p.budget for p in points] == [0.25, 0.5]  # 0.05 lies outside the trained range
    assert [r[0] for r in budget_runs(model, 0.1, 1.0)] == [0.25, 0.5]


def test_intervals_and_ties():
    lo, hi = wilson_interval(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert wilson_interval(1.0, 50)[1] == 1.0 and wilson_interval(0.3, 0) == (0.0, 1.0)
    a, b, c = measured(0.90, 1000, "live"), measured(0.905, 1000, "live"), measured(0.95, 1000, "live")
    assert a.ties(b) and not a.ties(c) and not a.ties(None)


def test_trained_range_and_below_it(tiny_model):
    assert trained_range({"train_config": {"min_budget": 0.2, "max_budget": 0.9}}) == (0.2, 0.9)
    assert trained_range({"train_config": {"min_budget": "x"}}) == (0.1, 1.0)
    assert trained_range({"train_config": {"min_budget": 0.9, "max_budget": 0.2}}) == (0.1, 1.0)
    assert trained_range(None) == (0.1, 1.0)
    info = below_range(spread_gates(tiny_model), 0.1)
    assert info["budget"] == 0.05 and info["heads"] == tiny_model.config.n_layers  # one head per block at least
    assert info["same_heads"] == torch.equal(tiny_model.gate.hard(0.05), tiny_model.gate.hard(0.1))


def test_probs_at_points_equal_one_masked_run_each(tiny_model):
    from baa_core.model.surgery import slice_heads

    model = spread_gates(tiny_model)
    points = operating_points(model, None)
    ids, att = padded_batch(B=1, T=12)
    probs = probs_at_points(model, ids, att, [p.mask for p in points], chunk=3)
    assert len(probs) == len(points)
    for p, pr in zip(points, probs):
        ref = slice_heads(model, p.mask)(ids, att).logits.softmax(-1)[0]
        assert torch.allclose(torch.tensor(pr), ref, atol=1e-5)


# ---------------------------------------------------------------- the panel's payload (pure helpers)
def test_payload_stops_only_where_there_are_numbers_and_is_json(tiny_model):
    from app.ui import live_panel

    model = spread_gates(tiny_model)
    b = 0.5
    rows = [{"budget": b, "accuracy": 0.8, "n": 400, "est_cost": float(model.gate.hard(b).mean()), "method": "baa"},
            {"budget": 1.0, "accuracy": 0.82, "n": 400, "est_cost": 1.0, "method": "baa"}]
    card = {"sweeps": {"baa": rows}}
    points = operating_points(model, card)
    payload = live_panel.panel_payload(points, panel_id="x", mode="explorer", card=card, own_method="baa",
                                       budget_range=(0.1, 1.0), below=below_range(model, 0.1))
    json.dumps(payload)
    stops = [payload["points"][i] for i in payload["stops"]]
    assert [s["b"] for s in stops] == [0.5, 1.0] and all(s["acc"] for s in stops)
    assert len(payload["points"]) == len(points) > 2
    assert len(payload["points"][0]["mask"]) == model.config.total_heads
    assert "tie" in stops[0]["vs_all"] and stops[1]["vs_all"] == "every head runs"
    assert payload["y"][1] - payload["y"][0] >= live_panel.MIN_SPAN - 1e-9
    assert "0.05" in payload["range_note"]
    overview = live_panel.panel_payload(points, panel_id="o", mode="overview", card=card, own_method="baa", budget_range=(0.1, 1.0))
    assert overview["stops"] == list(range(len(points))) and not overview["commit"] and not overview["series"]


def test_accuracy_axis_never_zooms_a_small_band_into_a_cliff():
    from app.ui.live_panel import accuracy_axis, vs_all_heads

    lo, hi = accuracy_axis([(0.881, 0.879, 0.883), (0.886, 0.884, 0.888)])
    assert hi - lo >= 0.02 - 1e-9 and lo <= 0.879 and hi >= 0.888
    lo, hi = accuracy_axis([(1.0, 0.996, 1.0)])
    assert hi == 1.0 and hi - lo >= 0.02 - 1e-9
    lo, hi = accuracy_axis([(0.3, 0.25, 0.35), (0.9, 0.88, 0.92)])
    assert lo <= 0.25 and hi >= 0.92

    class P:
        def __init__(self, card, live, budget=1.0):
            self.card, self.live, self.budget = card, live, budget

    full = P(measured(0.90, 7600, "card"), None)
    assert "beyond noise" in vs_all_heads(P(measured(0.85, 7600, "card"), None), full)
    assert "tie" in vs_all_heads(P(measured(0.899, 7600, "card"), None), full)
    assert "no accuracy" in vs_all_heads(P(None, measured(0.9, 500, "live")), full)
    assert isinstance(full.card, Accuracy)
