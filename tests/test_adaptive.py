"""Adaptive (issue 10): s_i(b) monotone in b, batched == structural, calibration, checkpoints, CLI."""
import json

import pytest
import torch

from baa_core.io.data import EncodedDataset, count_marks, iterate_batches, mark_kinds, marked_token_task
from baa_core.measure.adaptive import adaptive_outputs, monotone_violations, s_curves, tracking
from baa_core.methods.adaptive import calibrate as calibrate_on_batches
from baa_core.model.adaptive import CALIBRATION_GRID, realised_fraction, set_calibration
from baa_core.model.config import ConfigError
from baa_core.model.encoder import BudgetedClassifier
from baa_core.model.structural import SlicedHeadCache, structural_forward

from .conftest import padded_batch, tiny_config


def _random_adaptive(reads: str = "embedding", seed: int = 0, n_heads: int = 4, scores: str = "input") -> BudgetedClassifier:
    torch.manual_seed(seed)
    model = BudgetedClassifier(tiny_config(gating="adaptive", controller_hidden=16, adaptive_input=reads,
                                           adaptive_scores=scores, n_heads=n_heads, d_model=8 * n_heads)).eval()
    with torch.no_grad():  # spread offsets, sensitivities and scores so inputs differ
        for c in model.controllers:
            c.input.weight.normal_(0, 1.0)  # head scores far apart (static scores ignore these rows)
            c.input.bias[c.hidden :].normal_(0, 1.0)
            c.input.weight[: c.hidden].normal_(0, c.input.in_features ** -0.5)  # f(h) of order 1: s not saturated
            c.budget_out.weight.normal_(0, 2 * c.hidden ** -0.5)
            c.raw_alpha.fill_(float(torch.randn(())))
            if c.score_slope is not None:  # budget-dependent ranking: which heads run changes with b
                c.score_slope.normal_(0, 3.0)
    return model


def _tiny_plain_model(n_layers: int) -> BudgetedClassifier:
    torch.manual_seed(0)
    return BudgetedClassifier(tiny_config(vocab_size=50, n_classes=3, n_layers=n_layers, max_len=16))


def calibrate(model, data, **kw) -> dict:
    return calibrate_on_batches(model, iterate_batches(data, 64), **kw)


def _dataset(n: int = 40, T: int = 12, seed: int = 0) -> EncodedDataset:
    ids, mask = padded_batch(B=n, T=T, seed=seed)
    return EncodedDataset([ids[i, : int(mask[i].sum())].tolist() for i in range(n)], torch.randint(0, 3, (n,)))


@pytest.mark.parametrize("scores", ["input", "input+budget", "static"])
@pytest.mark.parametrize("table", [[], [[0.1, -2.0], [0.5, 0.3], [0.9, 3.0]]])
def test_s_is_monotone_in_the_budget_for_every_input_and_block(table, scores):
    model = _random_adaptive("embedding", scores=scores)
    if table:
        set_calibration(model, table)
    data = _dataset()
    budgets = [0.01, 0.03] + CALIBRATION_GRID + [0.999]
    v = monotone_violations(model, data, budgets)
    assert v["s_decreases"] == 0 and v["heads_decrease"] == 0 and v["pairs"] == 40 * 3
    # and s really moves with b: the test would pass on a constant model otherwise
    lo, hi = adaptive_outputs(model, data, 0.05)["s"], adaptive_outputs(model, data, 0.95)["s"]
    assert (hi > lo + 1e-3).float().mean() > 0.9


def test_block_input_mode_is_monotone_in_its_first_block():
    model = _random_adaptive("block")
    data = _dataset()
    s = torch.stack([adaptive_outputs(model, data, b)["s"][:, 0] for b in CALIBRATION_GRID])  # (n_b, N)
    assert bool((s[1:] >= s[:-1] - 1e-6).all())


@pytest.mark.parametrize("reads,scores", [("embedding", "input"), ("block", "input"), ("embedding", "input+budget"),
                                          ("embedding", "static")])
def test_batched_masked_and_structural_per_input_paths_agree(reads, scores):
    model = _random_adaptive(reads, scores=scores)
    data = _dataset(n=8)
    cache = SlicedHeadCache(model)
    seen = set()
    for b in (0.2, 0.5, 0.8):
        batched = adaptive_outputs(model, data, b, batch_size=8)
        for i, x in enumerate(data.ids):
            logits, chosen = structural_forward(model, torch.tensor([x]), cache, budget=b)
            heads = [list(c["heads"]) for c in chosen]
            assert heads == [torch.nonzero(row).flatten().tolist() for row in batched["mask"][i]]
            torch.testing.assert_close(logits, model(torch.tensor([x]), budget=b).logits, rtol=1e-4, atol=1e-5)
            assert int(logits.argmax()) == int(batched["pred"][i])
            seen.add(str(heads))
    assert len(seen) > 3, "inputs and budgets should not all pick the same heads in this test"


def test_structural_path_with_padding_at_batch_1_matches_the_unpadded_input():
    # a padded single input takes its means over the real tokens only, as the batched path does
    model = _random_adaptive("embedding")
    cache = SlicedHeadCache(model)
    for x in _dataset(n=6).ids:
        ids = torch.tensor([x + [0] * 5])
        mask = torch.tensor([[1] * len(x) + [0] * 5])
        plain_logits, plain = structural_forward(model, torch.tensor([x]), cache, budget=0.4)
        logits, padded = structural_forward(model, ids, cache, budget=0.4, attention_mask=mask)
        assert [c["heads"] for c in padded] == [c["heads"] for c in plain]
        torch.testing.assert_close(logits, plain_logits, rtol=1e-4, atol=1e-5)


def test_per_input_head_counts_round_as_the_batched_rule_does_at_every_boundary():
    # the per-input path counts heads on Python floats; ceil(s * H - 1e-6) must round as in float32 tensors
    from baa_core.model.gates import hard_head_mask
    from baa_core.model.structural import head_counts

    for H in (4, 12, 16):
        edges = torch.tensor([k / H for k in range(H + 1)], dtype=torch.float64)
        near = torch.cat([edges + d for d in (0.0, 1e-7, -1e-7, 4e-8, -4e-8, 1e-6 / H, -1e-6 / H)]).float().clamp(0, 1)
        s = torch.cat([near, torch.nextafter(near, torch.ones_like(near)), torch.nextafter(near, torch.zeros_like(near)),
                       torch.rand(20000, generator=torch.Generator().manual_seed(H))])
        expected = hard_head_mask(s, torch.zeros(len(s), H)).sum(-1).long().tolist()
        assert head_counts(s.tolist(), H) == expected


def test_budget_dependent_scores_change_which_heads_run_but_never_how_many_fall():
    """adaptive_scores="input+budget": the head ranking moves with b (as BAA's gates do); the count
    ceil(s_i(b) * H) still never falls as b rises, so the slider never takes heads away from an input.
    (Later blocks read a block input that depends on the earlier blocks' heads at b, so only the first
    block's sets are nested with input-only scores.)"""
    data = _dataset()
    fixed, moving = _random_adaptive(scores="input"), _random_adaptive(scores="input+budget")
    swaps = {"input": 0, "input+budget": 0}
    for name, model in (("input", fixed), ("input+budget", moving)):
        prev = None
        for b in CALIBRATION_GRID:
            mask = adaptive_outputs(model, data, b)["mask"].bool()  # (N, L, H)
            if prev is not None:
                assert bool((mask.sum(-1) >= prev.sum(-1)).all())
                # block 0 (its input does not depend on b): did an input lose a head it ran at a lower b?
                swaps[name] += int((prev[:, 0] & ~mask[:, 0]).any(-1).sum())
            prev = mask
    assert swaps["input"] == 0, "with input-only scores the first block's kept heads are nested in b"
    assert swaps["input+budget"] > 0, "the budget-dependent ranking should reorder heads somewhere in this test"


def _static_order(controller) -> torch.Tensor:
    """A static-score block's head order: its scorer's bias, best first."""
    return controller.input.bias[controller.hidden :].argsort(descending=True)


def test_static_scores_give_every_input_a_prefix_of_one_order_per_block():
    """adaptive_scores="static": inputs differ only in how many heads they run; in each block, every
    (input, budget) runs the first k of one learned order, so the head sets are nested across inputs
    and budgets. The scorer's weight rows are ignored (here drawn at random), on both paths."""
    model, data = _random_adaptive(scores="static"), _dataset()
    counts = set()
    for layer in range(model.config.n_layers):
        order = _static_order(model.controllers[layer])
        for b in (0.1, 0.3, 0.6, 0.9):
            mask = adaptive_outputs(model, data, b)["mask"][:, layer].bool()  # (N, H)
            for row in mask:
                k = int(row.sum())
                counts.add(k)
                assert sorted(torch.nonzero(row).flatten().tolist()) == sorted(order[:k].tolist())
    assert len(counts) > 2, "inputs and budgets should run different numbers of heads in this test"


def test_hard_adaptation_can_distil_from_the_dense_model():
    from baa_core.methods.adaptive import AdaptiveObjective, plan
    from baa_core.methods.base import TrainConfig
    from baa_core.model.config import ConfigError as CE

    torch.manual_seed(0)
    dense = BudgetedClassifier(tiny_config(n_heads=4, d_model=32))
    cfg = TrainConfig(ad_teacher="dense", ad_hard_lr_scale=0.5, ad_epochs=1, ad_hard_epochs=1)
    model, phases = plan(dense, cfg)
    assert [p.name for p in phases] == ["adaptive", "adaptive-hard"] and phases[1].lr == pytest.approx(cfg.phase_lr * 0.5)
    objective = phases[1].objective(model)
    assert isinstance(objective, AdaptiveObjective) and objective.teacher.config.gating != "adaptive"
    ids, mask = padded_batch(B=6)
    ctx = type("Ctx", (), {"progress": 0.5, "generator": torch.Generator().manual_seed(0)})()
    loss, info = objective(model.train(), {"input_ids": ids, "attention_mask": mask, "labels": torch.zeros(6, dtype=torch.long)}, ctx)
    loss.backward()
    assert torch.isfinite(loss) and "distill" in info
    with pytest.raises(CE, match="teacher must be"):
        TrainConfig(ad_teacher="oracle")


def test_an_adaptive_model_asks_for_a_budget():
    model = _random_adaptive()
    ids, mask = padded_batch(B=2)
    with pytest.raises(ValueError, match="needs a budget"):
        model(ids, mask)
    with pytest.raises(ValueError, match=r"budget must lie in \(0, 1\]"):
        model(ids, mask, budget=1.5)


def test_calibration_reaches_the_requested_head_fraction():
    model = _random_adaptive("embedding", n_heads=8)
    data = _dataset(n=200, seed=1)
    before = tracking(model, data, [0.2, 0.4, 0.6, 0.8])["worst_realised"]["gap"]
    report = calibrate(model, data)
    after = tracking(model, data, [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert abs(before) > 0.05, "the random model should need calibrating"
    assert abs(after["worst_realised"]["gap"]) <= 0.02
    assert [r[0] for r in report["table"]] == CALIBRATION_GRID == [r[0] for r in model.config.budget_calibration]
    # the realised fraction is the heads that run: ceil(s * H) / H per block, at least one
    s = torch.tensor([[0.0, 0.13, 0.5, 1.0]])
    assert realised_fraction(s, 8).tolist() == pytest.approx([(1 + 2 + 4 + 8) / 4 / 8])


def test_block_mode_calibration_runs_the_blocks():
    model = _random_adaptive("block", n_heads=8)
    data = _dataset(n=100, seed=2)
    calibrate(model, data, grid=[0.3, 0.6], iters=12)
    for b in (0.3, 0.6):
        assert abs(adaptive_outputs(model, data, b)["realised"] - b) <= 0.03


def test_bad_calibration_tables_are_refused_in_one_sentence():
    for table, words in (([[0.5, 0.0], [0.4, 0.0]], "increasing budgets"), ([[0.2, 3.0], [0.3, -3.0]], "never decrease"),
                         ([[1.5, 0.0]], "lie in (0, 1]"), ([[0.5]], "pairs")):
        with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
            tiny_config(gating="adaptive", budget_calibration=table)


def test_checkpoint_round_trip_keeps_the_calibration_and_the_outputs(tmp_path):
    from baa_core.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from baa_core.io.tokenizers import WordTokenizer

    model = _random_adaptive()
    set_calibration(model, [[0.2, -1.0], [0.6, 0.5], [1.0, 0.0]])
    tok = WordTokenizer(["[PAD]", "[UNK]"] + [f"w{i}" for i in range(48)])
    save_checkpoint(tmp_path / "m", model, tok, {"name": "m", "method": "adaptive"})
    loaded = load_checkpoint(tmp_path / "m").model
    assert loaded.config.budget_calibration == model.config.budget_calibration
    ids, mask = padded_batch(B=4)
    for b in (0.15, 0.5, 0.9):
        a, c = model(ids, mask, budget=b), loaded(ids, mask, budget=b)
        torch.testing.assert_close(a.logits, c.logits)
        assert torch.equal(a.head_weights, c.head_weights)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["model"]["budget_calibration"] = [[0.5, 0.0], [0.4, 0.0]]
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not describe a valid model"):
        load_checkpoint(tmp_path / "m")


def test_s_curves_give_one_curve_per_block_with_the_heads_run():
    model = _random_adaptive()
    ids, mask = padded_batch(B=1)
    c = s_curves(model, ids, mask)
    assert len(c["s"]) == 3 and len(c["s"][0]) == len(c["budgets"]) == len(CALIBRATION_GRID)
    for curve, heads in zip(c["s"], c["heads"]):
        assert all(b >= a - 1e-6 for a, b in zip(curve, curve[1:])) and all(b >= a for a, b in zip(heads, heads[1:]))
        assert all(1 <= k <= 4 for k in heads)


def test_synthetic_marks_task_has_known_difficulty():
    plain = marked_token_task(200, 16, seed=5)
    assert plain.texts == marked_token_task(200, 16, seed=5, max_marks=1).texts  # the original task is unchanged
    data = marked_token_task(400, 16, seed=5, max_marks=4)
    marks = [count_marks(t) for t in data.texts]
    assert set(marks) == {1, 2, 3, 4}
    kinds = [mark_kinds(t) for t in data.texts]
    assert set(kinds) == {1, 2} and all(k == 1 for k, m in zip(kinds, marks) if m == 1)
    for text, label in zip(data.texts, data.labels):
        tokens = text.split()
        marked = [tokens[p + 1] for p, t in enumerate(tokens) if t == "[M]"] + \
                 [tokens[p - 1] for p, t in enumerate(tokens) if t == "[L]"]
        assert len(marked) == count_marks(text) and "abcdefgh"[label] == max(marked)


@pytest.fixture(scope="module")
def adaptive_checkpoint(tmp_path_factory):
    from baa_core.cli import main

    out = tmp_path_factory.mktemp("adaptive") / "marks"
    rc = main(["train", "--task", "synthetic_marks", "--method", "adaptive", "--out", str(out), "--dense-epochs", "0.3",
               "--ad-epochs", "0.3", "--ad-hard-epochs", "0.2", "--latency-batches", "1", "--budgets", "0.3,0.6",
               "--max-train", "800", "--max-test", "200"])
    assert rc == 0
    return out


def test_train_and_sweep_json_for_an_adaptive_checkpoint(adaptive_checkpoint, capsys):
    from baa_core.cli import main
    from baa_core.measure.sweep import ROW_KEYS

    card = json.loads((adaptive_checkpoint / "card.json").read_text())
    assert card["method"] == "adaptive" and card["task"] == "synthetic_marks"
    analysis = card["adaptive"]
    assert {"calibration", "tracking", "monotone", "s_by_complexity", "s_by_marks"} <= set(analysis)
    assert "dense warm-start" in analysis["s_by_complexity"][0]["complexity_measure"]
    capsys.readouterr()
    assert main(["sweep", str(adaptive_checkpoint), "--budgets", "0.25,0.5", "--json", "--latency-batches", "1"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [r["budget"] for r in rows] == [0.25, 0.5]
    for r in rows:
        assert set(ROW_KEYS) | {"s_mean", "s_std"} <= set(r)
        assert r["method"] == "adaptive" and r["total_heads"] == 16 and r["speedup"] > 0
        assert 0 < r["est_cost"] <= 1 and 0 < r["s_mean"] < 1 and r["s_std"] >= 0
    assert rows[0]["est_cost"] <= rows[1]["est_cost"]


def test_bench_update_card_times_an_adaptive_model_per_input(adaptive_checkpoint, tmp_path, capsys):
    """``bench --update-card`` on a per-input model: each of the card's adaptive rows gets batch-1
    latency with an interval and the measured / FLOP-predicted ratio; the command is recorded."""
    import shutil

    from baa_core.cli import main

    folder = tmp_path / "m"
    shutil.copytree(adaptive_checkpoint, folder)
    budgets = [r["budget"] for r in json.loads((folder / "card.json").read_text())["sweeps"]["adaptive"]]
    assert main(["bench", str(folder), "--update-card", "--latency-inputs", "3"]) == 0
    assert f"updated the latency columns of {len(budgets)} rows" in capsys.readouterr().out
    card = json.loads((folder / "card.json").read_text())
    assert "bench" in card["latency"]["command"] and card["latency"]["environment"]
    for r in card["sweeps"]["adaptive"]:
        assert r["latency_inputs"] == 3 and r["speedup"] > 0 and r["latency_ratio_to_flop_model"] > 0
        lo, hi = r["speedup_ci"]
        assert lo <= r["speedup"] <= hi


def test_cli_trains_a_static_order_adaptive_model_whose_inputs_differ_only_in_how_many_heads(tmp_path):
    """``train --adaptive-scores static`` records the choice in the checkpoint; after training (the order
    learned), every input at every budget runs a prefix of one order per block, on both paths."""
    from baa_core.cli import main
    from baa_core.io.checkpoint import load_checkpoint

    out = tmp_path / "static"
    assert main(["train", "--task", "synthetic_marks", "--method", "adaptive", "--adaptive-scores", "static", "--out", str(out),
                 "--dense-epochs", "0.2", "--ad-epochs", "0.2", "--ad-hard-epochs", "0.1", "--latency-batches", "1",
                 "--budgets", "0.3", "--max-train", "300", "--max-test", "40"]) == 0
    ckpt = load_checkpoint(out)
    assert ckpt.config.adaptive_scores == "static"
    for c in ckpt.model.controllers:  # the order was learned: the scores spread well beyond their 1e-3 start
        assert float(c.input.bias[c.hidden :].detach().std()) > 3e-3
    model, data = ckpt.model, _dataset(n=12)
    data = EncodedDataset([[3 + t % (ckpt.config.vocab_size - 3) for t in x] for x in data.ids], data.labels)
    cache = SlicedHeadCache(model)
    for b in (0.2, 0.5, 0.8):
        batched = adaptive_outputs(model, data, b)
        for i, x in enumerate(data.ids):
            _, chosen = structural_forward(model, torch.tensor([x]), cache, budget=b)
            for layer, c in enumerate(chosen):
                order = _static_order(model.controllers[layer])
                assert sorted(c["heads"]) == sorted(order[: len(c["heads"])].tolist())
                assert list(c["heads"]) == torch.nonzero(batched["mask"][i, layer]).flatten().tolist()


def _shipped_adaptive():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "pretrained"
    return sorted(p for p in root.iterdir() if (p / "card.json").exists()
                  and json.loads((p / "card.json").read_text()).get("method") == "adaptive")


def test_shipped_adaptive_models_are_monotone_in_the_budget_for_every_input():
    """The promise on the weights we ship: s_i(b) and the heads run never fall as b rises."""
    from baa_core.io.checkpoint import load_checkpoint

    shipped = _shipped_adaptive()
    assert shipped, "no adaptive checkpoint in pretrained/"
    for folder in shipped:
        model = load_checkpoint(folder).model
        cfg = model.config
        assert cfg.adaptive_input == "embedding" and cfg.budget_calibration, folder.name
        g = torch.Generator().manual_seed(0)
        ids = [torch.randint(3, cfg.vocab_size, (int(n),), generator=g).tolist()
               for n in torch.randint(4, min(cfg.max_len, 48) + 1, (64,), generator=g)]
        data = EncodedDataset(ids, torch.zeros(64, dtype=torch.long), cfg.pad_id)
        v = monotone_violations(model, data, [0.01] + CALIBRATION_GRID)
        assert v["s_decreases"] == 0 and v["heads_decrease"] == 0, (folder.name, v)


def test_marginal_value_moves_only_the_per_input_offsets():
    """The finite-difference surrogate (TrainConfig.ad_fd_weight) is centred within each budget group:
    the shared level and alpha get no gradient from it, each input's offset network does."""
    from baa_core.methods.adaptive import marginal_value
    from baa_core.methods.base import TrainConfig

    model = _random_adaptive(n_heads=4).train()
    ids, mask = padded_batch(B=8)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": torch.arange(8) % 2}
    b = torch.full((8,), 0.5)
    group = torch.tensor([0, 1] * 4)
    out = model(ids, mask, budget=b, controller_mode="soft")
    s_logits = [torch.logit(r["s"], eps=1e-6) for r in out.controller]
    cfg = TrainConfig(ad_fd_weight=1.0)
    loss, info = marginal_value(model, batch, b, group, 2, s_logits, cfg)
    loss.backward()
    for c in model.controllers:
        assert abs(float(c.level.grad)) < 1e-6 and abs(float(c.raw_alpha.grad)) < 1e-6
    assert any(float(c.budget_out.weight.grad.abs().sum()) > 0 for c in model.controllers)
    model.eval()
    z = torch.zeros(8, requires_grad=True)  # a leaf in place of logit(s): its gradient is weight * centred g / B
    marginal_value(model, batch, b, group, 2, [z], TrainConfig(ad_fd_weight=2.0))[0].backward()
    with torch.no_grad():  # g by hand: d loss_i / d u on the hard path, centred per group
        u = torch.logit(b)
        loss_at = lambda v: torch.nn.functional.cross_entropy(  # noqa: E731
            model(ids, mask, budget=torch.sigmoid(v), controller_mode="hard").logits, batch["labels"], reduction="none")
        g = (loss_at(u + 0.5) - loss_at(u - 0.5)) / 1.0
        for k in (0, 1):
            g[group == k] -= g[group == k].mean()
    assert g.abs().max() > 0  # the heads matter for some input here, so the check below has a sign to get wrong
    torch.testing.assert_close(z.grad, 2.0 * g / 8)  # descent raises logit(s) where loss falls with heads (g < 0)
    assert TrainConfig().ad_fd_weight == 0.0  # off unless asked for (not adopted: see the cards' selection)
    with pytest.raises(ConfigError):
        TrainConfig(ad_fd_delta=0.0)


def test_frozen_encoder_and_kept_controllers_options_freeze_what_they_say():
    # ad_freeze_encoder: the budget-conditioned phase trains the controllers only;
    # ad_hard_keep_controllers: hard adaptation keeps the controllers, running offset mean included
    from baa_core.methods import METHODS, TrainConfig
    from baa_core.train import Trainer

    dense = _tiny_plain_model(n_layers=2)
    data = _dataset(n=64, seed=1)
    cfg = TrainConfig(batch_size=16, ad_epochs=1, ad_hard_epochs=1, ad_freeze_encoder=True, ad_hard_keep_controllers=True)
    model, phases = METHODS["adaptive"].plan(dense, cfg)

    def snapshot(controllers: bool) -> dict:
        state = {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith("controllers.") == controllers}
        if controllers:
            state.update({n: b.clone() for n, b in model.named_buffers() if n.startswith("controllers.")})
        return state

    encoder0, controllers0 = snapshot(False), snapshot(True)
    Trainer.for_phase(model, phases[0], data, cfg).run()
    assert all(torch.equal(p, encoder0[n]) for n, p in snapshot(False).items())
    moved = snapshot(True)
    assert any(not torch.equal(p, controllers0[n]) for n, p in moved.items()), "the controllers should have trained"
    Trainer.for_phase(model, phases[1], data, cfg).run()
    assert all(torch.equal(p, moved[n]) for n, p in snapshot(True).items())
    assert any(not torch.equal(p, encoder0[n]) for n, p in snapshot(False).items()), "the encoder should have adapted"
    assert all(p.requires_grad for p in model.controllers.parameters()), "a phase's freeze ends with the phase"


def test_a_parameter_group_at_learning_rate_0_gets_no_gradient_and_no_share_of_the_clip():
    from baa_core.methods.base import Phase
    from baa_core.methods.dense import DenseObjective
    from baa_core.train import Trainer

    model = _tiny_plain_model(n_layers=1)
    data = _dataset(n=32, seed=1)
    seen = []

    class Spy(DenseObjective):
        def __call__(self, m, batch, ctx):
            seen.append(m.embeddings.word_embeddings.weight.requires_grad)
            return super().__call__(m, batch, ctx)

    model.embeddings.position_embeddings.weight.requires_grad_(False)  # frozen before the phase: stays frozen after
    groups = lambda m: [(list(m.embeddings.parameters()), {"lr": 0.0})]  # noqa: E731
    phase = Phase("frozen-embeddings", 1, lambda m: Spy(), 1e-2, param_groups=groups)
    from baa_core.methods import TrainConfig

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    Trainer.for_phase(model, phase, data, TrainConfig(batch_size=8)).run()
    assert seen and not any(seen)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if n.startswith("embeddings."))
    assert any(not torch.equal(p, before[n]) for n, p in model.named_parameters() if not n.startswith("embeddings."))
    assert model.embeddings.word_embeddings.weight.requires_grad
    assert not model.embeddings.position_embeddings.weight.requires_grad


def test_difficulty_push_moves_the_worse_inputs_offsets_up_within_each_budget_group_only():
    from baa_core.methods import TrainConfig
    from baa_core.methods.adaptive import difficulty_push

    # group 0: input 0 is wrong, input 1 right; group 1: both equally wrong (no push between them)
    logits = torch.tensor([[0.0, 4.0], [4.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 0, 0])
    group = torch.tensor([0, 0, 1, 1])
    z = torch.zeros(4, requires_grad=True)
    loss, info = difficulty_push(logits, labels, group, 2, [z], TrainConfig(ad_difficulty_weight=2.0))
    loss.backward()
    step = -z.grad  # gradient descent's direction
    assert step[0] > 0 > step[1]  # the wrong one up, the right one down
    assert torch.allclose(step[2:], torch.zeros(2)) and info["difficulty_spread"] > 0
    assert abs(float(step[:2].sum())) < 1e-6  # centred: the group's mean offset (the shared level) gets nothing


def test_training_with_the_difficulty_signal_runs_and_spreads_the_offsets():
    from baa_core.methods import METHODS, TrainConfig
    from baa_core.train import run_method

    dense = _tiny_plain_model(n_layers=2)
    data = _dataset(n=64, seed=1)
    seen = []
    model = run_method(METHODS["adaptive"], dense, data, TrainConfig(batch_size=16, ad_epochs=1, ad_hard_epochs=1,
                                                                     ad_difficulty_weight=5.0),
                       callbacks=[lambda e: seen.append(e.extra.get("difficulty_spread"))])
    assert [v for v in seen if v is not None], "the signal should report every logged step"
    assert isinstance(model, BudgetedClassifier)


def test_shares_without_the_blocks_are_the_full_forwards_shares():
    """What the explorer draws while the slider moves: s_i(b) from the embeddings and controllers alone."""
    from baa_core.io.data import EncodedDataset
    from baa_core.measure.adaptive import adaptive_outputs, shares_at

    model = _random_adaptive()
    ids, mask = padded_batch(B=12)
    data = EncodedDataset([ids[i, : int(mask[i].sum())].tolist() for i in range(12)], torch.arange(12) % 2)
    budgets = [0.15, 0.5, 0.9]
    s = shares_at(model, data, budgets, batch_size=5)  # batches that split the data unevenly
    assert s.shape == (3, 12, model.config.n_layers)
    for k, b in enumerate(budgets):
        torch.testing.assert_close(s[k], adaptive_outputs(model, data, b)["s"])
    assert (s[1:] >= s[:-1]).all() and not torch.equal(s[0], s[2])  # monotone in b, and b matters
    with pytest.raises(ValueError, match="embedding output"):
        shares_at(_random_adaptive(reads="block"), data, [0.5])
    model.train()
    with pytest.raises(ValueError, match=r"lie in \(0, 1\]"):  # every budget checked before any work
        shares_at(model, data, [0.5, 0.0])
    assert model.training  # the caller's mode is kept, also on a refusal
