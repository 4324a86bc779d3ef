import threading

import pytest
import torch

from baa_core.io.data import encode, marked_token_task, synthetic_vocab
from baa_core.io.tokenizers import WordTokenizer
from baa_core.methods import METHODS, TrainConfig
from baa_core.methods.dense import DenseObjective
from baa_core.model.encoder import BudgetedClassifier
from baa_core.train import Trainer, TrainingCancelled, run_method

from .conftest import tiny_config


@pytest.fixture(scope="module")
def synth():
    tok = WordTokenizer(synthetic_vocab(), lowercase=False)
    return tok, encode(marked_token_task(256, 12, seed=1), tok, 16)


def _cfg(tok):
    return tiny_config(vocab_size=len(tok), n_classes=8, n_layers=2, max_len=16)


def train_dense(cfg, data, tcfg, **kw):
    torch.manual_seed(tcfg.seed)
    return run_method(METHODS["dense"], BudgetedClassifier(cfg), data, tcfg, **kw)


def train_gated(dense, data, tcfg, **kw):
    return run_method(METHODS["baa"], dense, data, tcfg, **kw)


def test_training_is_reproducible_with_a_seed(synth):
    tok, data = synth
    tcfg = TrainConfig(batch_size=32, dense_epochs=1, seed=7)
    a = train_dense(_cfg(tok), data, tcfg)
    b = train_dense(_cfg(tok), data, tcfg)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), n


def test_callbacks_report_every_phase_and_progress(synth):
    tok, data = synth
    tcfg = TrainConfig(batch_size=32, dense_epochs=1, budget_epochs=1, hard_epochs=0.5)
    events = []
    dense = train_dense(_cfg(tok), data, tcfg, callbacks=[events.append])
    model = train_gated(dense, data, tcfg, callbacks=[events.append])
    phases = [e.phase for e in events]
    assert phases[0] == "dense" and "budget" in phases and phases[-1] == "hard"
    assert all(0 < e.fraction <= 1 for e in events)
    last_budget = [e for e in events if e.phase == "budget"][-1]
    assert last_budget.step == last_budget.total_steps
    assert model.config.gating == "baa" and dense.config.gating == "dense"


def test_cancel_between_steps(synth):
    tok, data = synth
    stop = threading.Event()
    seen = []

    def cb(e):
        seen.append(e.step)
        if e.step >= 2:
            stop.set()

    trainer = Trainer(BudgetedClassifier(_cfg(tok)), DenseObjective(), data, epochs=5, batch_size=8, callbacks=[cb],
                      stop=stop, log_every=1)
    with pytest.raises(TrainingCancelled):
        trainer.run()
    assert max(seen) <= 3


def test_budget_training_lowers_gate_mass_at_low_budgets(synth):
    tok, data = synth
    tcfg = TrainConfig(batch_size=32, dense_epochs=0.5, budget_epochs=2, hard_epochs=0, lambda_overshoot=5.0)
    dense = train_dense(_cfg(tok), data, tcfg)
    model = train_gated(dense, data, tcfg)
    with torch.no_grad():
        low, high = float(model.gate(0.2).mean()), float(model.gate(0.9).mean())
    assert low < high and low < 0.6


@pytest.mark.parametrize("method", ["baa", "adaptive"])
def test_the_same_seed_trains_the_same_model_whatever_ran_before(method):
    # torch seeds its global generator differently in every process: the fresh network and its new gates
    # must be initialised from the training seed, or one seed trains a different model on every run
    from baa_core.pipeline import default_train_config, fit, prepare

    task = "synthetic_marks" if method == "adaptive" else "synthetic"
    prep = prepare(task, seed=3, max_train=192, max_test=32)
    tcfg = default_train_config(task, "word", seed=3, dense_epochs=1, budget_epochs=0.5, hard_epochs=0.5,
                                ad_epochs=0.5, ad_hard_epochs=0.5, eval_every=0)
    models = []
    for draws in (1, 1000):
        torch.rand(draws)  # leave the global generator somewhere else before each run
        models.append(fit(prep, method, tcfg).model)
    for (n, p), (_, q) in zip(models[0].named_parameters(), models[1].named_parameters()):
        assert torch.equal(p, q), n
    other = fit(prep, method, default_train_config(task, "word", seed=4, dense_epochs=1, budget_epochs=0.5,
                                                   hard_epochs=0.5, ad_epochs=0.5, ad_hard_epochs=0.5, eval_every=0)).model
    assert not torch.equal(other.classifier.weight, models[0].classifier.weight)


def test_a_pretrained_encoders_fresh_head_is_drawn_from_the_seed_and_a_trained_head_is_kept():
    import dataclasses

    from baa_core.pipeline import prepare

    prep = prepare("synthetic", seed=0, max_train=32, max_test=8)
    torch.manual_seed(11)
    encoder = BudgetedClassifier(prep.model_config)
    fresh = dataclasses.replace(prep, init_model=encoder, trained_head=False)
    a, b, c = fresh.new_model(1), fresh.new_model(1), fresh.new_model(2)
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    assert torch.equal(a.blocks[0].attention.query.weight, encoder.blocks[0].attention.query.weight)  # the encoder as loaded
    trained = dataclasses.replace(prep, init_model=encoder, trained_head=True)
    assert torch.equal(trained.new_model(2).classifier.weight, encoder.classifier.weight)
