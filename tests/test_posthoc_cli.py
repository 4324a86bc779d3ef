"""``python -m baa_core posthoc`` and ``train --kind hf`` on a Hugging Face classifier folder (issue 13):
no training for post-hoc (the predictions stay the model's own), a card with the sweep, labels that
follow the model's head, and one-sentence errors for refused models."""
from __future__ import annotations

import csv
import io
import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from baa_core.cli import main  # noqa: E402
from tests.app_fixtures import csv_bytes  # noqa: E402
from tests.hf_fixtures import one_thread, train_tiny_classifier  # noqa: E402

LABELS = ["sports", "business"]  # not the CSV's sorted order: labels must follow the head by name


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("posthoc_cli")
    (root / "data.csv").write_bytes(csv_bytes(80))
    rows = list(csv.DictReader(io.StringIO(csv_bytes(80).decode())))
    train_tiny_classifier(root / "clf", [r["text"] for r in rows], [LABELS.index(r["label"]) for r in rows], LABELS, steps=30)
    return root


def test_posthoc_ranks_sweeps_and_saves_without_training(folders, capsys):
    out = folders / "clf-posthoc"
    rc = main(["posthoc", str(folders / "clf"), "--csv", str(folders / "data.csv"), "--out", str(out),
               "--budgets", "0.25,0.5,1.0", "--latency-batches", "1", "--importance-examples", "32"])
    assert rc == 0, capsys.readouterr().err
    card = json.loads((out / "card.json").read_text())
    assert card["method"] == "posthoc" and card["model_kind"] == "hf" and card["family"] == "bert"
    assert card["labels"] == LABELS and card["label_alignment"] == "by name" and card["importance_examples"] == 32
    rows = card["sweeps"]["posthoc"]
    assert [r["budget"] for r in rows] == [0.25, 0.5, 1.0] and rows[0]["active_heads"] == 2 and rows[0]["speedup"] > 0
    assert card["sweeps"]["dense"][0]["accuracy"] == rows[-1]["accuracy"]  # budget 1.0 keeps every head
    assert (out / "data.csv").exists()
    # the saved model is the folder's, untouched: with every head on, the same logits as transformers
    from baa_core.io.checkpoint import load_checkpoint

    ckpt = load_checkpoint(out)
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(str(folders / "clf"), use_safetensors=True).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(folders / "clf"))
    enc = tok(["the team won the match 4", "shares fell"], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model(enc["input_ids"], enc["attention_mask"], budget=1.0, hard=True).logits,
                                   hf(**enc).logits, atol=1e-4, rtol=0)
    # and `sweep` re-evaluates it from the CSV stored beside it
    assert main(["sweep", str(out), "--budgets", "0.5", "--json", "--latency-batches", "0"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["accuracy"] == rows[1]["accuracy"] and line["method"] == "posthoc"


def test_train_kind_hf_keeps_the_head_and_its_labels(folders):
    out = folders / "clf-static"
    rc = main(["train", "--csv", str(folders / "data.csv"), "--kind", "hf", "--base", str(folders / "clf"), "--method",
               "static", "--budget", "0.5", "--budget-epochs", "0.5", "--hard-epochs", "0.5", "--latency-batches", "0",
               "--out", str(out)])
    assert rc == 0
    card = json.loads((out / "card.json").read_text())
    assert card["labels"] == LABELS and card["model_kind"] == "hf" and card["train_config"]["dense_epochs"] == 0
    assert card["sweeps"]["static"][0]["active_heads"] == 4


def test_refused_and_missing_models_are_one_sentence(folders, tmp_path, capsys):
    deberta = tmp_path / "deberta"
    transformers.DebertaV2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=32,
                                 vocab_size=50).save_pretrained(str(deberta))
    (deberta / "model.safetensors").write_bytes(b"")
    for model, says in ((str(deberta), "disentangled attention"), ("someone/not-cached", "Hugging Face Hub is switched off")):
        assert main(["posthoc", model, "--csv", str(folders / "data.csv"), "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and len(err.splitlines()) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\n" + "".join(f"w{i},cat\nw{i},dog\n" for i in range(15)))
    assert main(["posthoc", str(folders / "clf"), "--csv", str(bad), "--out", str(tmp_path / "y")]) == 2
    assert "do not match the model's (sports, business)" in capsys.readouterr().err
