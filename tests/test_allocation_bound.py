"""benchmarks/allocation_bound.py (issue 10, goal 2): outcomes are BAA's hard top-k layouts, and every allocation
keeps BAA's mean cost (at or under the target)."""
import importlib.util
from pathlib import Path

import pytest
import torch

from baa_core.io.data import EncodedDataset
from baa_core.measure.cost import model_flops
from baa_core.measure.evaluate import evaluate

from .conftest import padded_batch

_spec = importlib.util.spec_from_file_location(
    "allocation_bound", Path(__file__).resolve().parents[1] / "benchmarks" / "allocation_bound.py")
bound = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bound)

COSTS = torch.tensor([2 / 16, 4 / 16, 8 / 16, 1.0])  # k = 2, 4, 8, 16 of 16 heads


def test_outcomes_are_the_hard_top_k_layouts_as_evaluate_runs_them(tiny_model):
    # the soft gates (budget without hard=True) run every head, scaled: not a layout with k heads
    ids, mask = padded_batch(B=16, T=12)
    data = EncodedDataset([ids[i, : int(mask[i].sum())].tolist() for i in range(16)], torch.arange(16) % 3)
    grid = [3, 6, 9, 12]
    correct, _, sure, costs, lengths = bound.per_budget_outcomes(tiny_model, data, grid, batch_size=8)
    assert lengths.tolist() == mask.sum(-1).tolist()
    for j, k in enumerate(grid):
        ref = evaluate(tiny_model, data, budget=k / 12, hard=True)
        assert correct[j].tolist() == ref.correct.tolist()
        torch.testing.assert_close(sure[j], ref.confidences)
        assert abs(float(costs[j]) - ref.est_cost) < 1e-6


def test_two_level_gives_the_first_ranked_inputs_more_heads_without_passing_the_target_cost():
    N = 101
    correct = torch.zeros(len(COSTS), N, dtype=torch.bool)
    correct[3, ::2] = True  # with every head, every other input is right
    rank = torch.arange(N, dtype=torch.float)  # input N - 1 first
    got, cost = bound.two_level(correct, rank, COSTS, 0, 3, 0.25)
    assert 0.25 - float(COSTS[3] - COSTS[0]) / N <= cost <= 0.25
    n_hi = int(N * float((0.25 - COSTS[0]) / (COSTS[3] - COSTS[0])))
    assert got[-n_hi:].tolist() == correct[3, -n_hi:].tolist() and not got[:-n_hi].any()


def test_the_cascade_reruns_the_least_sure_inputs_and_pays_for_both_passes():
    N = 100
    correct = torch.zeros(len(COSTS), N, dtype=torch.bool)
    correct[2] = True  # 8 heads get everything right, 2 heads nothing
    sure = torch.ones(len(COSTS), N)
    sure[0, :30] = 0.4  # thirty inputs are unsure with 2 heads
    got, cost, rerun = bound.cascade(correct, sure, COSTS, 0, 2, 0.25)
    n_re = int(N * (0.25 - 2 / 16) / (8 / 16))  # 25 reruns fit in the cost
    assert cost == pytest.approx(2 / 16 + n_re / N * 8 / 16) and cost <= 0.25
    assert int(got.sum()) == n_re and bool(got[:30].sum() == n_re)  # the reruns went to unsure inputs
    assert int(rerun.sum()) == n_re and rerun[:30].sum() == n_re


def test_input_flops_are_the_flop_model_of_each_input_and_the_cascade_pays_every_ffn_twice(tiny_model):
    cfg = tiny_model.config
    grid, lengths = [3, 6, 12], torch.tensor([5, 9, 12])
    flops = bound.input_flops(cfg, grid, lengths)
    for j, k in enumerate(grid):
        per_layer = [k // cfg.n_layers] * cfg.n_layers
        for i, n in enumerate(lengths.tolist()):
            assert float(flops[j, i]) == pytest.approx(model_flops(cfg, per_layer, [n]).total)
    # every input reruns: both passes' FLOPs, more than the dense model's, so every BAA layout fits
    everyone = torch.ones(3, dtype=torch.bool)
    spent = bound.flops_share(flops, everyone, 0, 1)
    assert spent == pytest.approx(float((flops[0] + flops[1]).sum() / flops[2].sum())) and spent > 1
    correct = torch.tensor([[True, False, False], [True, True, False], [True, True, True]])
    assert bound.baa_at_flops(correct, flops, spent) == 2
    # BAA's layout is its best on the validation rows given, among those that fit; ties go to the cheaper one
    val = torch.tensor([[True, True, True], [True, True, True], [True, True, False]])
    assert bound.baa_at_flops(val, flops, spent) == 0
    # no rerun: only the cheap layout fits
    assert bound.baa_at_flops(correct, flops, bound.flops_share(flops, torch.zeros(3, dtype=torch.bool), 0, 1)) == 0


def test_the_cascade_against_baa_in_flops_is_fixed_on_validation_and_reported_on_test():
    # validation: only the cheap layout (index 0) is right, so BAA's layout under the FLOP budget is index 0;
    # on test it is the only one wrong: chosen on test, BAA's layout would be another one
    K, N = 4, 40
    costs = torch.tensor([2 / 16, 4 / 16, 8 / 16, 1.0])
    lengths = torch.full((N,), 10)
    cfg = type("C", (), {"n_layers": 2, "d_model": 16, "head_dim": 4, "d_ffn": 32})()
    flops = bound.input_flops(cfg, [2, 4, 8, 16], lengths)
    vc = torch.zeros(K, N, dtype=torch.bool)
    vc[0] = True
    tc = torch.zeros(K, N, dtype=torch.bool)
    tc[1:] = True
    sure = torch.rand(K, N, generator=torch.Generator().manual_seed(0))
    loss = torch.ones(K, N)
    val, test = (vc, loss, sure, costs, lengths), (tc, loss, sure, costs, lengths)
    row = bound.bound_rows(val, test, [2, 4, 8, 16], 16, 0.25, flops, flops)
    eq = row["cascade"]["versus_baa_at_equal_total_flops"]
    assert eq["baa_k"] == 2 and eq["val_total_flops_share"] == pytest.approx(eq["total_flops_share"])
    assert bound.baa_at_flops(tc, flops, eq["total_flops_share"]) != 0  # what choosing on test would have given
    assert "cost" not in eq and eq["baa_flops_share"] == pytest.approx(float(flops[0].sum() / flops[3].sum()))


def test_the_loss_oracle_spends_at_most_the_target_and_where_heads_lower_the_loss_most():
    N = 40
    loss = torch.ones(len(COSTS), N)
    loss[:, :10] = torch.tensor([3.0, 2.0, 1.0, 0.0])[:, None]  # ten inputs gain a lot from heads; the rest nothing
    correct = torch.zeros_like(loss, dtype=torch.bool)
    correct[:, :10] = loss[:, :10] <= 1.0  # right with 8 heads or more; the others never
    got, cost = bound.loss_lagrangian(correct, loss, COSTS, 0.3)
    assert cost <= 0.3 + 1e-9
    assert got[:10].all() and not got[10:].any()  # the heads went to the inputs that gain from them


def test_a_target_under_the_cheapest_layout_is_refused_instead_of_searched_forever():
    with pytest.raises(ValueError, match="under the cheapest"):
        bound.loss_lagrangian(torch.ones(4, 3, dtype=torch.bool), torch.ones(4, 3), COSTS, 0.1)
    assert bound.pairs_for(COSTS, float(COSTS[0])) == []
    assert (0, 3) in bound.pairs_for(COSTS, 0.25 + 1e-3)


def test_the_flop_budget_comes_from_the_validation_inputs_not_the_test_inputs():
    # validation FLOPs admit layouts 0 and 1 under the cascade's budget; test FLOPs would admit layout 2 too, which
    # validation rates best: a budget taken on test would pick it
    K, N = 4, 16
    costs = torch.tensor([2 / 16, 4 / 16, 8 / 16, 1.0])
    val_flops = torch.tensor([1.0, 2.0, 4.0, 8.0])[:, None].expand(K, N).clone()
    test_flops = torch.tensor([1.0, 1.1, 1.2, 8.0])[:, None].expand(K, N).clone()
    vc = torch.zeros(K, N, dtype=torch.bool)
    vc[1, : N // 2] = True
    vc[2] = True
    sure = torch.linspace(0.1, 0.9, N).expand(K, N).clone()
    loss = torch.ones(K, N)
    lengths = torch.full((N,), 8)
    val, test = (vc, loss, sure, costs, lengths), (vc.clone(), loss, sure, costs, lengths)
    eq = bound.bound_rows(val, test, [2, 4, 8, 16], 16, 0.25, test_flops, val_flops)["cascade"]["versus_baa_at_equal_total_flops"]
    on_test = bound.baa_at_flops(vc, test_flops, eq["total_flops_share"])
    on_val = bound.baa_at_flops(vc, val_flops, eq["val_total_flops_share"])
    assert on_test != on_val  # the case tells the two apart
    assert eq["baa_k"] == [2, 4, 8, 16][on_val]
