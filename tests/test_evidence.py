"""The rules of evidence as code: intervals, validation-only selection, controls, seeds merged.

Intervals are checked on cases whose answer is known; selection is run with a test split that
raises on any access; cards are checked for the fields a reviewer reads."""
import json

import pytest
import torch

from baa_core.measure.latency import median_ci, percentile_spread
from baa_core.measure.evaluate import bootstrap_ci, pack_correct, unpack_correct
from baa_core.protocol import aggregate_rows, paired_difference


# ---------------------------------------------------------------- intervals
def test_bootstrap_ci_is_deterministic_and_exact_on_constant_values():
    v = torch.tensor([1.0, 0.0] * 200)
    assert bootstrap_ci(v) == bootstrap_ci(v.clone())
    assert bootstrap_ci(torch.ones(50)) == (1.0, 1.0)
    assert bootstrap_ci(torch.zeros(50)) == (0.0, 0.0)
    assert bootstrap_ci(v, seed=1) != bootstrap_ci(v, seed=2)  # the seed is the only source of randomness


def test_bootstrap_ci_matches_the_normal_approximation_for_a_proportion():
    v = torch.tensor([1.0, 0.0] * 200)  # p = 0.5, n = 400: the 95% interval is about 0.5 +- 0.049
    lo, hi = bootstrap_ci(v)
    assert lo < 0.5 < hi
    assert 0.085 < hi - lo < 0.11
    wider = bootstrap_ci(torch.tensor([1.0, 0.0] * 25))  # n = 50: about 0.5 +- 0.139
    assert wider[1] - wider[0] > 2 * (hi - lo)


def test_bootstrap_ci_refuses_empty_values():
    with pytest.raises(ValueError):
        bootstrap_ci(torch.empty(0))


def test_speedup_spread_and_median_interval_on_known_ratios():
    ratios = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert percentile_spread(ratios) == pytest.approx((1.2, 8.8))  # linear interpolation, as numpy
    lo, hi = median_ci(ratios)
    assert lo <= 5.0 <= hi and median_ci(ratios) == (lo, hi)
    assert median_ci([1.5] * 7) == (1.5, 1.5)
    tight = median_ci([1.50 + 0.01 * (i % 5) for i in range(200)])
    assert tight[1] - tight[0] <= 0.02  # many rounds: the interval of the median is narrow


def test_correct_bits_round_trip():
    hits = torch.tensor([True, False, True, True, False, False, False, True, True, False, True])
    assert torch.equal(unpack_correct(pack_correct(hits)), hits)


def _row(seed, hits, budget=0.5, **kw):
    hits = torch.tensor(hits, dtype=torch.bool)
    return {"budget": budget, "accuracy": float(hits.double().mean()), "seed": seed, "correct": pack_correct(hits),
            "est_cost": 0.5, "active_heads": 4, "total_heads": 8, "heads_per_layer": [2, 2], **kw}


def test_seed_rows_average_and_bootstrap_the_mean_and_say_whose_layout_they_show():
    rows = [_row(0, [1, 1, 0, 0] * 25, latency_ms=1.0), _row(1, [1, 1, 1, 0] * 25, latency_ms=2.0)]
    agg = aggregate_rows(rows)
    assert agg["accuracy"] == pytest.approx(0.625) and agg["seeds"] == 2
    assert agg["accuracy_seeds"] == [0.5, 0.75] and agg["accuracy_std"] > 0
    lo, hi = agg["accuracy_ci"]
    assert lo < 0.625 < hi
    assert agg["layout_seed"] == 0 and agg["latency_ms"] == 1.0 and "correct" not in agg


def test_paired_difference_calls_ties_and_wins():
    same = [_row(0, [1, 0] * 100)]
    d = paired_difference(same, same, "a", "b")
    assert d["difference"] == 0 and d["ci"] == [0.0, 0.0] and d["verdict"] == "tie"
    better = [_row(0, [1, 1] * 100)]
    d = paired_difference(better, same, "baa", "dense")
    assert d["difference"] == pytest.approx(0.5) and d["verdict"] == "baa higher"
    close = [_row(0, [1, 0] * 99 + [1, 1])]
    assert paired_difference(close, same, "a", "b")["verdict"] == "tie"  # one example more: within the interval
    assert paired_difference(better, [_row(1, [1, 0] * 100)], "a", "b") is None  # no common seed, no pairing


# ---------------------------------------------------------------- selection sees no test data
class _Withheld:
    """A test split that fails the moment anything reads it."""

    pad_id = 0

    def __getattr__(self, name):
        raise AssertionError(f"the selection touched the test split ({name})")

    def __len__(self):
        raise AssertionError("the selection touched the test split (len)")


@pytest.fixture(scope="module")
def tiny_prep():
    from baa_core.pipeline import prepare

    from baa_core.io.data import EncodedDataset

    prep = prepare("synthetic", max_train=300, max_test=200)
    prep.model_config.d_model, prep.model_config.d_ffn = 32, 32
    prep.val = EncodedDataset(prep.val.ids[:200], prep.val.labels[:200], prep.val.pad_id)  # small: the test is about which split
    return prep


def _tiny_tcfg(**kw):
    from baa_core.methods import TrainConfig

    return TrainConfig(batch_size=32, lr=5e-3, dense_epochs=0.3, budget_epochs=0.3, hard_epochs=0.2, warmup_steps=2, **kw)


def test_selection_uses_the_validation_split_only(tiny_prep, monkeypatch):
    import dataclasses

    from baa_core import pipeline, protocol

    guarded = dataclasses.replace(tiny_prep, test=_Withheld(),
                                  data=dataclasses.replace(tiny_prep.data, test=_Withheld()))
    seen = []
    real = protocol.validation_score

    def spy(model, method, val, *a, **kw):
        seen.append(val)
        return real(model, method, val, *a, **kw)

    monkeypatch.setattr(protocol, "validation_score", spy)
    grid = (protocol.GridAxis("embedding_init_std", (0.02, 1.0), "dense", "model"), protocol.GridAxis("adapt_lr", (5e-3, 1e-3)))
    chosen = protocol.select_and_fit(guarded, "baa", _tiny_tcfg(), grid, fit=pipeline.fit, fit_dense=pipeline.fit_dense)
    assert all(v is tiny_prep.val for v in seen) and len(seen) == 4  # 2 dense points, then 2 BAA points
    stages = chosen.record["stages"]
    assert [s["stage"] for s in stages] == ["dense", "method"]
    assert all(len(s["scores"]) == 2 for s in stages)
    for s in stages:  # the chosen point is the best score, ties to the first
        best = max(x["score"] for x in s["scores"])
        first_best = next(x for x in s["scores"] if x["score"] == best)
        assert all(first_best[k] == v for k, v in s["chosen"].items())
    assert chosen.prep.model_config.embedding_init_std == chosen.record["chosen"]["embedding_init_std"]
    assert chosen.tcfg.adapt_lr == chosen.record["chosen"]["adapt_lr"]
    assert chosen.model.config.gating == "baa" and chosen.dense.config.gating == "dense"


def test_selection_picks_the_higher_validation_score(tiny_prep, monkeypatch):
    from baa_core import pipeline, protocol

    monkeypatch.setattr(protocol, "validation_score",
                        lambda model, method, val, device="cpu", budget=None: 0.9 if method == "baa" and
                        model.gate is not None and _lr[0] == 1e-3 else 0.5)
    _lr = [None]
    real_fit = __import__("baa_core.pipeline", fromlist=["fit"]).fit

    def fit(prep, method, tcfg, **kw):
        _lr[0] = tcfg.adapt_lr
        return real_fit(prep, method, tcfg, **kw)

    monkeypatch.setattr("baa_core.pipeline.fit", fit)
    chosen = protocol.select_and_fit(tiny_prep, "baa", _tiny_tcfg(), (protocol.GridAxis("adapt_lr", (5e-3, 1e-3)),),
                                     fit=pipeline.fit, fit_dense=pipeline.fit_dense)
    assert chosen.record["chosen"] == {"adapt_lr": 1e-3}


# ---------------------------------------------------------------- cards carry the evidence
def test_a_trained_card_has_selection_controls_intervals_and_equal_epoch_dense(tmp_path):
    from baa_core.cli import main

    out = tmp_path / "synth"
    assert main(["train", "--task", "synthetic", "--method", "baa", "--out", str(out), "--dense-epochs", "0.2",
                 "--budget-epochs", "0.2", "--hard-epochs", "0.1", "--latency-batches", "1", "--budgets", "0.5,1.0",
                 "--max-train", "400", "--max-test", "200", "--select", "--controls"]) == 0
    card = json.loads((out / "card.json").read_text())
    sel = card["selection"]
    assert sel["tuned"] == ["adapt_lr"] and sel["test_split_used"] is False and "validation" in sel["split"]
    assert sel["per_seed"][0]["chosen"]["adapt_lr"] in sel["grid"]["adapt_lr"]
    c = card["controls"]
    assert set(c) == {"no_attention_eval", "no_attention_trained", "chance"}
    assert c["chance"]["uniform"] == pytest.approx(1 / 8)
    assert c["no_attention_trained"]["epochs"] == card["sweeps"]["baa"][0]["epochs"]
    assert card["sweeps"]["dense_equal"][0]["epochs"] == card["sweeps"]["baa"][0]["epochs"] > card["sweeps"]["dense"][0]["epochs"]
    for rows in card["sweeps"].values():
        for r in rows:
            lo, hi = r["accuracy_ci"]
            assert lo <= r["accuracy"] <= hi and "correct" not in r
    timed = card["sweeps"]["baa"][0]
    assert timed["speedup_ci"][0] <= timed["speedup"] <= timed["speedup_ci"][1] and timed["latency_rounds"] >= 1
    pairs = {(d["a"], d["b"]) for d in card["differences"]}
    assert ("baa@0.5", "dense_equal") in pairs and ("dense_equal", "dense") in pairs
    assert card["trained_on"]["device"] == "cpu" and card["commands"]["train"] == [card["command"]]


def test_a_plain_card_still_has_the_evaluated_control_and_chance(tmp_path):
    from baa_core.cli import main

    out = tmp_path / "plain"
    assert main(["train", "--task", "synthetic", "--method", "baa", "--out", str(out), "--dense-epochs", "0.2",
                 "--budget-epochs", "0.2", "--hard-epochs", "0.1", "--latency-batches", "0", "--budgets", "0.5",
                 "--max-train", "300", "--max-test", "200"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["selection"]["tuned"] == [] and "preset" in card["selection"]["note"]
    assert card["controls"]["no_attention_eval"]["accuracy"] is not None
    assert card["controls"]["no_attention_trained"] is None and card["controls"]["chance"]["majority_class"]


def _results(path, seed, task="synthetic", with_dense=True, command=None):
    per_seed = {"baa": [[_row(seed, [1, 0, 1, 1] * 50, method="baa", epochs=3.0)]]}
    if with_dense:
        per_seed["dense_equal"] = [[_row(seed, [1, 0, 0, 1] * 50, budget=1.0, method="dense_equal", epochs=3.0)]]
        per_seed["no_attention"] = []
    else:
        per_seed = {"no_attention": [[_row(seed, [0, 0, 0, 1] * 50, budget=1.0, method="no_attention", epochs=3.0)]]}
    path.write_text(json.dumps({"task": task, "kind": "word", "architecture": "2 layers", "data": "d", "seeds": [seed],
                                "per_seed": per_seed, "command": command or f"compare --seeds {seed}",
                                "commands": [command or f"compare --seeds {seed}"], "threads": 1,
                                "selection_records": [], "selection_axes": [],
                                "chance": {"uniform": 0.5, "majority_class_accuracy": 0.5}}))
    return str(path)


def test_merge_joins_seeds_and_controls_and_records_every_command(tmp_path, tiny_model):
    from baa_core.io.checkpoint import read_card, save_checkpoint
    from baa_core.io.tokenizers import WordTokenizer
    from baa_core.pipeline import merge_results

    ck = save_checkpoint(tmp_path / "ck", tiny_model, WordTokenizer(["[PAD]", "[UNK]", "a"]), {"name": "ck"})
    files = [_results(tmp_path / "s1.json", 1), _results(tmp_path / "s0.json", 0),
             _results(tmp_path / "na.json", 0, with_dense=False, command="compare --methods no_attention")]
    merged = merge_results(files, str(ck), command="python -m baa_core compare --merge ...")
    assert merged["seeds"] == [0, 1]
    card = read_card(ck)
    assert card["seeds"] == [0, 1] and card["sweeps"]["baa"][0]["seeds"] == 2
    assert card["sweeps"]["baa"][0]["layout_seed"] == 0  # the lowest seed's row leads, whatever the file order
    assert card["commands"]["merge"] == "python -m baa_core compare --merge ..."
    assert len(card["commands"]["train"]) == 3
    assert card["controls"]["no_attention_trained"]["seeds"] == 1
    d = next(x for x in card["differences"] if (x["a"], x["b"]) == ("baa@0.5", "dense_equal"))
    assert d["difference"] == pytest.approx(0.25) and d["verdict"] == "baa@0.5 higher"
    with pytest.raises(ValueError, match="repeat seeds"):
        merge_results([files[1], files[1]])
    _results(tmp_path / "other.json", 2, task="ag_news")
    with pytest.raises(ValueError, match="cannot merge"):
        merge_results([files[0], str(tmp_path / "other.json")])


def test_every_shipped_card_carries_selection_controls_and_intervals():
    """Issue 11, goal 1, on what ships: selection, the three controls as entries with intervals, and an
    accuracy interval on every row (a speedup interval on every timed row)."""
    import json
    from pathlib import Path

    cards = sorted(Path(__file__).resolve().parents[1].glob("pretrained/*/card.json"))
    assert cards, "no shipped checkpoints found"
    for path in cards:
        card = json.loads(path.read_text())
        name = path.parent.name
        assert card.get("selection"), f"{name}: no selection"
        c = card["controls"]
        for key in ("no_attention_eval", "no_attention_trained"):
            assert isinstance(c.get(key), dict) and 0 <= c[key]["accuracy"] <= 1, f"{name}: {key}"
            lo, hi = c[key]["accuracy_ci"]
            assert lo <= c[key]["accuracy"] <= hi, f"{name}: {key} interval"
        assert 0 < c["chance"]["uniform"] < 1, f"{name}: chance"
        for method, rows in card["sweeps"].items():
            for r in rows:
                assert r.get("accuracy_ci"), f"{name}/{method}: a row without an accuracy interval"
                if r.get("speedup") is not None:
                    assert r.get("speedup_ci"), f"{name}/{method}: a timed row without a speedup interval"


def test_controls_table_reads_entries_and_bare_numbers():
    from baa_core.protocol import controls_table

    entry = {"name": "a", "task": "t", "method": "baa", "sweeps": {"baa": [{"budget": 0.5, "accuracy": 0.9, "accuracy_ci": [0.88, 0.92]}]},
             "controls": {"no_attention_eval": {"accuracy": 0.4, "accuracy_ci": [0.38, 0.42]}, "no_attention_trained": {"accuracy": 0.6},
                          "chance": {"uniform": 0.25, "majority_class_accuracy": 0.3}}}
    bare = {"name": "b", "task": "t", "method": "adaptive", "sweeps": {"adaptive": [{"budget": 0.5, "accuracy": 0.8}]},
            "controls": {"no_attention_eval": 0.45, "chance": 0.25}}
    rows = controls_table([entry, bare])
    assert rows[0]["every head closed (evaluated)"] == 0.4 and rows[0]["trained with no attention"] == 0.6
    assert rows[1]["every head closed (evaluated)"] == 0.45 and rows[1]["trained with no attention"] is None
    assert rows[1]["chance (1/C)"] is None and rows[0]["accuracy (method)"] == 0.9
    # every measured number is shown with its interval where the card has one; 1/C is exact
    assert rows[0]["intervals"] == {"accuracy (method)": [0.88, 0.92], "every head closed (evaluated)": [0.38, 0.42]}
    odd = dict(entry, controls=dict(entry["controls"], no_attention_eval={"accuracy": 0.4, "accuracy_ci": [float("nan"), 0.4]},
                                    no_attention_trained={"accuracy": 0.6, "accuracy_ci": [True, False]}))
    assert list(controls_table([odd])[0]["intervals"]) == ["accuracy (method)"]  # NaN and booleans are no interval
    from app.ui.figures import format_controls

    shown = format_controls(rows)[0]
    assert shown["accuracy (method)"] == "90.0% [88.0%, 92.0%]" and shown["trained with no attention"] == "60.0%"
    assert shown["chance (1/C)"] == "25.0%" and "intervals" not in shown
