import math

import pytest
import torch

from baa_core.measure.perinput import controller_outputs
from baa_core.methods.budgetformer import schedule
from baa_core.model.gates import hard_head_mask, soft_head_weights
from baa_core.model.structural import SlicedHeadCache, structural_forward
from baa_core.io.data import EncodedDataset
from baa_core.model.encoder import BudgetedClassifier

from .conftest import padded_batch, tiny_config


@pytest.fixture
def bf_model():
    torch.manual_seed(0)
    model = BudgetedClassifier(tiny_config(gating="budgetformer", controller_hidden=16)).eval()
    with torch.no_grad():  # spread the scores and budgets so inputs choose different heads
        for c in model.controllers:
            c.input.weight.normal_(0, 1.0)
            c.budget_out.bias.fill_(0.0)
    return model


def test_hard_mask_keeps_ceil_s_times_h_heads():
    scores = torch.tensor([[0.1, 0.9, 0.5, -1.0], [3.0, 2.0, 1.0, 0.0]])
    s = torch.tensor([0.3, 0.76])  # ceil(1.2) = 2, ceil(3.04) = 4
    m = hard_head_mask(s, scores)
    assert m.tolist() == [[0, 1, 1, 0], [1, 1, 1, 1]]
    assert hard_head_mask(torch.tensor([0.0]), scores[:1]).sum() == 1  # at least one head


def test_soft_weights_become_the_hard_mask_at_low_temperature():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(64, 8, generator=g)
    s = torch.rand(64, generator=g) * 0.9 + 0.05
    s = torch.where((s * 8 - torch.round(s * 8)).abs() < 0.05, s + 0.02, s)  # keep away from ties at integers
    soft = soft_head_weights(s, scores, tau=1e-3)
    torch.testing.assert_close(soft, hard_head_mask(s, scores), atol=1e-3, rtol=0)


def test_soft_weights_pass_gradients_to_budget_and_scores():
    scores = torch.randn(4, 6, requires_grad=True)
    s = torch.full((4,), 0.5, requires_grad=True)
    soft_head_weights(s, scores, tau=0.5).sum().backward()
    assert s.grad.abs().sum() > 0 and scores.grad.abs().sum() > 0


def test_batched_and_structural_execution_give_the_same_predictions(bf_model):
    ids, mask = padded_batch(B=6, T=12)
    data = EncodedDataset([ids[i, : int(mask[i].sum())].tolist() for i in range(6)], torch.zeros(6, dtype=torch.long))
    batched = controller_outputs(bf_model, data, batch_size=6)
    cache = SlicedHeadCache(bf_model)
    chosen_sets = set()
    for i, x in enumerate(data.ids):
        logits, chosen = structural_forward(bf_model, torch.tensor([x]), cache)
        assert int(logits.argmax()) == int(batched["pred"][i])
        heads = [list(c["heads"]) for c in chosen]
        assert heads == [torch.nonzero(row).flatten().tolist() for row in batched["mask"][i]]
        chosen_sets.add(str(heads))
        alone = bf_model(torch.tensor([x])).logits
        torch.testing.assert_close(logits, alone, rtol=1e-4, atol=1e-5)
    assert len(chosen_sets) > 1, "inputs should not all pick the same heads in this test"


def test_schedule_explores_then_anneals():
    assert schedule(0.1, 2.0, 0.1, 0.4) == 2.0
    assert schedule(1.0, 2.0, 0.1, 0.4) == pytest.approx(0.1)
    mid = schedule(0.7, 2.0, 0.1, 0.4)
    assert 0.1 < mid < 2.0 and mid == pytest.approx(math.sqrt(2.0 * 0.1))


def test_budgetformer_trains_and_records_analyses():
    from baa_core.measure.analysis import budgetformer_analysis, spearman
    from baa_core.io.data import encode, marked_token_task, synthetic_vocab
    from baa_core.io.tokenizers import WordTokenizer
    from baa_core.measure.evaluate import validation_hook
    from baa_core.methods import METHODS, TrainConfig
    from baa_core.train import run_method

    tok = WordTokenizer(synthetic_vocab(), lowercase=False)
    data = encode(marked_token_task(256, 12, seed=1), tok, 16)
    cfg = tiny_config(vocab_size=len(tok), n_classes=8, n_layers=2, max_len=16, controller_hidden=8)
    tcfg = TrainConfig(batch_size=64, dense_epochs=0.5, bf_epochs=1)
    events = []
    dense = run_method(METHODS["dense"], BudgetedClassifier(cfg), data, tcfg)
    bf = METHODS["budgetformer"]
    model = run_method(bf, dense, data, tcfg, validate=validation_hook(bf, data), callbacks=[events.append])
    assert model.config.gating == "budgetformer" and float(model.controllers[0].tau) == pytest.approx(tcfg.bf_temp_end)
    from baa_core.measure.analysis import per_example_loss

    complexity = per_example_loss(dense, data)  # an independent model's loss: the dense warm start's
    result = budgetformer_analysis(model, data, list("abcdefgh"), events, latency_examples=3, complexity=complexity)
    assert {"training_dynamics", "s_by_complexity", "s_block_class", "q_entropy", "ablations", "per_example_latency"} <= set(result)
    assert [r["bucket"] for r in result["s_by_complexity"]["summary"]] == ["Simple", "Medium", "Hard"]
    assert "dense warm-start" in result["s_by_complexity"]["complexity_measure"]
    assert result["complexity"]["values"][0] == pytest.approx(float(complexity[0]), abs=1e-4)
    assert "s_by_complexity" not in budgetformer_analysis(model, data, list("abcdefgh"), latency_examples=0)
    dyn = result["training_dynamics"]
    assert dyn[0]["epoch"] == 0 and dyn[-1]["epoch"] == pytest.approx(1.0) and len(dyn) >= 3
    assert all(r["s_mean_val"] is not None for r in dyn)
    assert len(result["ablations"]) == 3
    assert spearman(torch.tensor([1.0, 2, 3, 4]), torch.tensor([10.0, 20, 30, 40])) == pytest.approx(1.0)
    assert spearman(torch.tensor([1.0, 2, 3, 4]), torch.tensor([4.0, 3, 2, 1])) == pytest.approx(-1.0)
