import pytest
import torch

from baa_core.model.gates import BudgetGate, StaticGates, heads_for_budget, straight_through, topk_head_mask


@pytest.mark.parametrize("seed", range(5))
def test_budget_gate_is_monotone_in_budget_for_random_parameters(seed):
    torch.manual_seed(seed)
    gate = BudgetGate(4, 6)
    with torch.no_grad():
        gate.intercept.normal_(0, 3)
        gate.raw_sensitivity.normal_(0, 3)
    grid = torch.linspace(0.001, 1.0, 400)
    g = gate(grid)  # (400, L, H)
    assert g.shape == (400, 4, 6)
    assert (g[1:] - g[:-1] >= -1e-7).all(), "a head closed when the budget grew"


def test_budget_gate_matches_formula_and_clips_budget():
    gate = BudgetGate(1, 2)
    with torch.no_grad():
        gate.intercept.copy_(torch.tensor([[0.5, -1.0]]))
        gate.raw_sensitivity.copy_(torch.tensor([[0.0, 2.0]]))
    b = 0.3
    z = torch.log(torch.tensor(b / (1 - b)))
    expected = torch.sigmoid(gate.intercept + torch.nn.functional.softplus(gate.raw_sensitivity) * z)
    assert torch.allclose(gate(b), expected)
    assert torch.isfinite(gate(1.0)).all() and torch.isfinite(gate(1e-9)).all()


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_budget_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="budget"):
        BudgetGate(2, 2)(bad)


def test_topk_keeps_k_heads_and_one_per_layer():
    torch.manual_seed(0)
    scores = torch.rand(3, 4)
    scores[2] = -10  # a layer nobody would pick
    for k in range(3, 13):
        m = topk_head_mask(scores, k)
        assert int(m.sum()) == k
        assert (m.sum(-1) >= 1).all()
    assert int(topk_head_mask(scores, 1).sum()) == 3  # never below one head per layer


def test_topk_batched_per_example_budgets():
    scores = torch.rand(4, 2, 3)
    m = topk_head_mask(scores, torch.tensor([2, 3, 4, 6]))
    assert m.sum(dim=(1, 2)).tolist() == [2, 3, 4, 6]


def test_heads_for_budget_rounds_and_clamps():
    assert heads_for_budget(0.5, 2, 4) == 4
    assert heads_for_budget(0.3, 6, 12) == 22  # 21.6 -> 22
    assert heads_for_budget(0.01, 6, 12) == 6
    assert heads_for_budget(1.0, 6, 12) == 72


@pytest.mark.parametrize("seed", range(6))
def test_hard_operating_point_is_topk_of_gates(seed):
    torch.manual_seed(seed)
    gate = BudgetGate(3, 4)
    with torch.no_grad():
        gate.intercept.normal_(0, 2)
        gate.intercept[2] -= 6  # a layer whose best head would lose to every other head
        gate.raw_sensitivity.normal_(0, 1)
    for budget in (0.2, 0.4, 0.5, 0.75):
        mask = gate.hard(budget).bool()
        g = gate(budget)
        assert int(mask.sum()) == heads_for_budget(budget, 3, 4) and (mask.sum(-1) >= 1).all()
        forced = torch.zeros_like(mask)
        forced[torch.arange(3), g.argmax(-1)] = True  # each layer's best head is kept whatever its rank
        free_kept = g[mask & ~forced]
        dropped = g[~mask]
        if free_kept.numel() and dropped.numel():
            # apart from the forced heads, nothing dropped outranks anything kept
            assert dropped.max() <= free_kept.min(), (budget, g, mask)
        assert mask[forced].all()


def test_kept_sets_need_not_be_nested_though_gates_are_monotone():
    from baa_core.model.gates import unnested_heads

    gate = BudgetGate(1, 2)
    with torch.no_grad():  # head 0: high at small budgets, flat; head 1: low at first, steep
        gate.intercept.copy_(torch.tensor([[1.0, 0.0]]))
        gate.raw_sensitivity.copy_(torch.tensor([[-10.0, 3.0]]))
    cases = unnested_heads(gate, [0.3, 0.7])
    assert gate(0.3)[0, 0] > gate(0.3)[0, 1] and gate(0.7)[0, 1] > gate(0.7)[0, 0]
    assert cases == [{"layer": 0, "head": 0, "on_at": 0.3, "off_at": 0.7}]


def test_straight_through_forward_hard_backward_soft():
    soft = torch.tensor([0.2, 0.9], requires_grad=True)
    hard = torch.tensor([0.0, 1.0])
    out = straight_through(hard, soft)
    assert torch.equal(out.detach(), hard)
    out.sum().backward()
    assert torch.equal(soft.grad, torch.ones(2))


def test_static_gates_refuse_untrained_budget():
    g = StaticGates(2, 3, [0.5])
    assert g(0.5).shape == (2, 3)
    with pytest.raises(ValueError, match="trained for budgets"):
        g(0.25)
