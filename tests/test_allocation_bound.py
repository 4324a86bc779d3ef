"""benchmarks/allocation_bound.py (issue 10, goal 2): the oracle allocations keep BAA's mean cost."""
import importlib.util
from pathlib import Path

import torch

_spec = importlib.util.spec_from_file_location(
    "allocation_bound", Path(__file__).resolve().parents[1] / "benchmarks" / "allocation_bound.py")
bound = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bound)

COSTS = torch.tensor([2 / 16, 4 / 16, 8 / 16, 1.0])  # k = 2, 4, 8, 16 of 16 heads


def test_two_level_gives_the_hardest_inputs_more_heads_at_the_target_cost():
    N = 101
    correct = torch.zeros(len(COSTS), N, dtype=torch.bool)
    correct[3, ::2] = True  # with every head, every other input is right
    hardness = torch.arange(N, dtype=torch.float)  # input N - 1 is the hardest
    got, cost = bound.two_level(correct, hardness, COSTS, 0, 3, 0.25)
    assert abs(cost - 0.25) <= (COSTS[3] - COSTS[0]) / N + 1e-9
    n_hi = round(N * float((0.25 - COSTS[0]) / (COSTS[3] - COSTS[0])))
    assert got[-n_hi:].tolist() == correct[3, -n_hi:].tolist() and not got[:-n_hi].any()


def test_the_loss_oracle_spends_at_most_the_target_and_where_heads_lower_the_loss_most():
    N = 40
    loss = torch.ones(len(COSTS), N)
    loss[:, :10] = torch.tensor([3.0, 2.0, 1.0, 0.0])[:, None]  # ten inputs gain a lot from heads; the rest nothing
    correct = torch.zeros_like(loss, dtype=torch.bool)
    correct[:, :10] = loss[:, :10] <= 1.0  # right with 8 heads or more; the others never
    got, cost = bound.loss_lagrangian(correct, loss, COSTS, 0.3)
    assert cost <= 0.3 + 1e-9
    assert got[:10].all() and not got[10:].any()  # the heads went to the inputs that gain from them


def test_a_target_at_the_one_head_floor_has_no_two_level_allocation():
    assert bound.pairs_for(COSTS, float(COSTS[0])) == []
    assert (0, 3) in bound.pairs_for(COSTS, 0.25 + 1e-3)
