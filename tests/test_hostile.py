"""Hostile inputs and faults, library side (issue 14): one test (or a few) per class of defect.

Each class found in the trial gets a test that fails if the class comes back: a flag that would hang
training, a card that would crash a page, a save that would replace someone's folder, a config.json
that would allocate gigabytes, a folder that would unpickle or run code, an error that would print a
traceback, a CSV whose faults would be trained on silently, a half-written upload, a Hub source that
would wait out retries offline. The app's side of the same classes is in test_app_hostile.py.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
import torch

from baa_core.cli import main
from baa_core.io.card import Card
from baa_core.io.checkpoint import CheckpointError, TargetExistsError, folder_stamp, load_checkpoint, read_card, save_checkpoint
from baa_core.io.data import DataError, EncodedDataset, load_csv
from baa_core.io.tokenizers import WordTokenizer
from baa_core.model.config import ConfigError, ModelConfig
from baa_core.model.encoder import BudgetedClassifier
from tests.conftest import tiny_config

TOK = WordTokenizer(["[PAD]", "[UNK]"] + [f"w{i}" for i in range(48)])


@pytest.fixture
def saved(tmp_path):
    model = BudgetedClassifier(tiny_config(gating="baa")).eval()
    return save_checkpoint(tmp_path / "ckpt", model, TOK, {"name": "ckpt", "sweeps": {}})


def _edit_config(folder: Path, **model_fields) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model"].update(model_fields)
    (folder / "config.json").write_text(json.dumps(cfg))


# ---------------------------------------------------------------- 1. nothing to train on must not hang
@pytest.mark.parametrize("flags", [["--max-train", "0"], ["--max-train", "-5"], ["--batch-size", "-1"], ["--batch-size", "0"],
                                   ["--threads", "-3"], ["--dense-epochs", "-1"], ["--latency-batches", "-2"],
                                   ["--max-test", "0"], ["--lr", "0"]])
def test_numeric_flags_are_validated_by_argparse(tmp_path, flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--task", "synthetic", "--out", str(tmp_path / "m"), *flags])
    assert exit_info.value.code == 2
    assert "must be" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("command", [["sweep", "X", "--threads", "0"], ["bench", "X", "--threads", "-3"],
                                     ["sweep", "X", "--latency-batches", "-1"], ["analyze", "X", "--threads", "0"]])
def test_measuring_commands_refuse_nonpositive_threads(command, capsys):
    with pytest.raises(SystemExit):
        main(command)
    assert "must be at least" in capsys.readouterr().err


def _run_with_deadline(fn, seconds: float = 60.0):
    """Run ``fn`` in a thread; return its exception (or None). A hang fails the test instead of the suite."""
    box: dict = {}

    def target():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["exc"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "training hung"
    return box.get("exc")


def test_trainer_refuses_an_empty_epoch_and_a_pass_that_yields_no_batch(monkeypatch):
    from baa_core import train as train_module
    from baa_core.train import Trainer

    model = BudgetedClassifier(tiny_config())
    objective = lambda m, b, ctx: (m(b["input_ids"], b["attention_mask"]).logits.sum(), {})
    empty = EncodedDataset([], torch.empty(0, dtype=torch.long))
    exc = _run_with_deadline(lambda: Trainer(model, objective, empty).run())
    assert isinstance(exc, ValueError) and "0 training examples" in str(exc)
    data = EncodedDataset([[2, 3, 4]] * 10, torch.zeros(10, dtype=torch.long))
    exc = _run_with_deadline(lambda: Trainer(model, objective, data, batch_size=-1).run())
    assert isinstance(exc, ValueError) and "batch size" in str(exc)
    monkeypatch.setattr(train_module, "iterate_batches", lambda *a, **k: iter(()))  # a data source that yields nothing
    exc = _run_with_deadline(lambda: Trainer(model, objective, data).run())
    assert isinstance(exc, ValueError) and "no progress" in str(exc)


def test_cancel_is_checked_outside_the_batch_loop(monkeypatch):
    from baa_core import train as train_module
    from baa_core.train import Trainer, TrainingCancelled

    model = BudgetedClassifier(tiny_config())
    data = EncodedDataset([[2, 3, 4]] * 10, torch.zeros(10, dtype=torch.long))
    monkeypatch.setattr(train_module, "iterate_batches", lambda *a, **k: iter(()))
    stop = threading.Event()
    stop.set()
    exc = _run_with_deadline(lambda: Trainer(model, lambda *a: None, data, stop=stop).run())
    assert isinstance(exc, TrainingCancelled)


def test_train_config_refuses_bad_recipes():
    from baa_core.methods import TrainConfig

    for bad in ({"batch_size": 0}, {"batch_size": 2.5}, {"dense_epochs": -1.0}, {"lr": 0.0}, {"threads": -1},
                {"hard_epochs": float("nan")}):
        with pytest.raises(ConfigError):
            TrainConfig(**bad)


# ---------------------------------------------------------------- 3. malformed card.json: typed, one sentence per bad field
MALFORMED_CARDS = [
    ({"sweeps": {"baa": [{"budget": "0.5", "accuracy": "high", "est_cost": 0.5}]}}, ["sweeps.baa[0].budget", "sweeps.baa[0].accuracy"]),
    ({"sweeps": "oops"}, ["sweeps is the text 'oops'"]),
    ({"sweeps": [1, 2]}, ["sweeps is a list"]),
    ({"sweeps": {"baa": "x", "static": [3, {"budget": 0.5, "accuracy": 0.9}]}}, ["sweeps.baa", "sweeps.static[0]"]),
    ({"sweeps": {"baa": [{"budget": 0.5, "accuracy": float("nan"), "accuracy_std": 0.13}]}}, ["sweeps.baa[0].accuracy is nan"]),
    ({"labels": ["only-one"]}, ["labels names 1 classes but the model has 3"]),
    ({"labels": "abc", "name": ["x"], "csv_file": "../../etc/passwd"}, ["labels", "name", "csv_file"]),
    ({"analysis": {"per_example_latency": {"median_ratio": float("inf")}}}, ["analysis.per_example_latency.median_ratio"]),
]


@pytest.mark.parametrize("raw, faults", MALFORMED_CARDS)
def test_malformed_cards_are_validated_once_with_one_sentence_per_bad_field(raw, faults):
    card = Card.from_dict({"name": "m", "task": "synthetic", **raw}, n_classes=3)
    assert len(card.problems) >= len(faults)
    for fault in faults:
        assert any(fault in p for p in card.problems), (fault, card.problems)
    assert all(p.count(".") <= 8 and "\n" not in p for p in card.problems)  # sentences, not dumps
    for rows in card.sweeps.values():  # what is kept is sound
        for row in rows:
            assert isinstance(row, dict)
            for key in ("budget", "accuracy", "accuracy_std"):
                assert row.get(key) is None or (isinstance(row[key], float) and 0 <= row[key] <= 1)
    assert card.labels in ([], ["a", "b", "c"])
    assert card.csv_file is None


def test_a_sound_card_has_no_problems_and_reads_like_the_dict():
    raw = {"name": "m", "task": "synthetic", "method": "baa", "labels": ["a", "b", "c"], "weights_seed": 0,
           "sweeps": {"baa": [{"budget": 0.5, "accuracy": 0.9, "heads_per_layer": [2, 2]}]}, "future_field": 1}
    card = Card.from_dict(raw, n_classes=3)
    assert card.problems == []
    assert card.get("task") == "synthetic" and card["sweeps"]["baa"][0]["accuracy"] == 0.9 and card.get("future_field") == 1
    assert card.label_name(1) == "b" and card.label_name(7) == "7"


def test_every_shipped_card_reads_with_no_problems():
    # the app warns on every page for a card's malformed field: a shipped model must never cause that
    # (two adaptive cards once stored per-block *means* under the whole-number key heads_per_layer)
    root = Path(__file__).resolve().parents[1] / "pretrained"
    folders = sorted(p for p in root.iterdir() if (p / "card.json").exists())
    assert len(folders) >= 6
    for folder in folders:
        config = json.loads((folder / "config.json").read_text())
        card = Card.from_dict(json.loads((folder / "card.json").read_text()), n_classes=config.get("n_classes"))
        assert card.problems == [], (folder.name, card.problems[:3])
    adaptive = Card.from_dict(json.loads((root / "ag_news-minilm-adaptive" / "card.json").read_text()))
    assert all(len(r["mean_heads_per_layer"]) == 6 for r in adaptive.sweeps["adaptive"])


def test_the_app_never_formats_nan_as_a_percentage():
    from app.ui.compute import pct

    assert [pct(v) for v in (float("nan"), None, "0.5", float("inf"), 0.5)] == ["-", "-", "-", "-", "50.00%"]


# ---------------------------------------------------------------- 4. data loss: existing targets are refused unless asked
def test_cli_refuses_an_existing_out_before_training(tmp_path, capsys, monkeypatch):
    from baa_core import pipeline

    out = tmp_path / "copied-model"
    out.mkdir()
    (out / "my-notes.txt").write_text("keep me")
    monkeypatch.setattr(pipeline, "prepare", lambda *a, **k: pytest.fail("data was loaded before the target was checked"))
    assert main(["train", "--task", "synthetic", "--out", str(out)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (out / "my-notes.txt").read_text() == "keep me"


def test_save_never_replaces_what_appeared_meanwhile(saved):
    model = BudgetedClassifier(tiny_config(gating="dense"))
    with pytest.raises(TargetExistsError):
        save_checkpoint(saved, model, TOK, {"name": "ckpt"})
    agreed = folder_stamp(saved)
    (saved / "extra.txt").write_text("someone copied files in meanwhile")
    with pytest.raises(TargetExistsError, match="changed since"):
        save_checkpoint(saved, model, TOK, {"name": "ckpt"}, overwrite=True, expect=agreed)
    moved = save_checkpoint(saved, model, TOK, {"name": "ckpt"}, overwrite=True, expect=agreed, if_taken="rename")
    assert moved.name == "ckpt-2" and read_card(moved)["name"] == "ckpt-2"
    assert (saved / "extra.txt").exists() and load_checkpoint(saved).config.gating == "baa"  # untouched
    replaced = save_checkpoint(saved, model, TOK, {"name": "ckpt"}, overwrite=True, expect=folder_stamp(saved))
    assert replaced == saved and load_checkpoint(saved).config.gating == "dense" and not (saved / "extra.txt").exists()


# ---------------------------------------------------------------- 5. config.json is checked before anything is allocated
@pytest.mark.parametrize("fields, message", [
    ({"vocab_size": 100_000_000}, "vocab_size=100000000 is out of range"),
    ({"vocab_size": 4_000_000}, "out of range"),
    ({"vocab_size": 900_000}, "does not match its config.json"),  # within the limits: the header says otherwise
    ({"d_model": 4096, "n_heads": 8, "d_ffn": 60_000, "n_layers": 120}, "parameters"),
    ({"n_heads": 0}, "n_heads=0 is out of range"),
    ({"n_layers": -1}, "n_layers=-1 is out of range"),
    ({"max_len": "16"}, "max_len must be a whole number"),
])
def test_a_hostile_config_is_refused_before_the_model_is_built(saved, fields, message, monkeypatch):
    import baa_core.io.checkpoint as checkpoint_module

    real = checkpoint_module.BudgetedClassifier

    def only_on_meta(cfg):  # building for real before the shapes were checked is the defect
        assert torch.empty(0).device.type == "meta", "a model was allocated before its config was checked"
        return real(cfg)

    monkeypatch.setattr(checkpoint_module, "BudgetedClassifier", only_on_meta)
    _edit_config(saved, **fields)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(saved)
    from baa_core.io.checkpoint import check_files

    assert check_files(saved) is not None  # the picker flags it without loading anything


def test_model_config_limits_in_one_sentence():
    with pytest.raises(ConfigError, match="n_heads=0"):
        ModelConfig(vocab_size=10, n_classes=2, n_heads=0)
    with pytest.raises(ConfigError, match="parameters"):
        ModelConfig(vocab_size=999_999, n_classes=2, d_model=4096, n_heads=8)


# ---------------------------------------------------------------- 7. no pickles, no remote code
def test_typed_names_open_hub_names_and_folders_in_the_models_folder_only(tmp_path, monkeypatch):
    from app.ui import catalog

    monkeypatch.setenv("BAA_USER_MODELS", str(tmp_path / "models"))
    mine = tmp_path / "models" / "mine"
    mine.mkdir(parents=True)
    assert catalog.resolve_source("prajjwal1/bert-mini") == "prajjwal1/bert-mini"
    assert catalog.resolve_source("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert catalog.resolve_source("mine") == str(mine.resolve())
    for probe in ("/etc", "/etc/passwd", "../../etc", str(tmp_path), "~", "x/y/z", "mine/../../.."):
        with pytest.raises(catalog.SourceRefused):
            catalog.resolve_source(probe)
    for probe in ("a" * 256, "mine\x00", "a\nb", "/" + "a" * 300 + "\x00"):  # names the OS would refuse with an error
        with pytest.raises(catalog.SourceRefused, match="characters"):
            catalog.resolve_source(probe)
    with pytest.raises(catalog.SourceRefused, match="only folders inside your models folder"):
        catalog.resolve_source("/" + "a" * 300)  # a path: too long for the OS, refused as any outside path
    deep = tmp_path / "models" / ("d" * 120) / ("e" * 120)  # a real folder with a path over 200 characters
    deep.mkdir(parents=True)
    assert catalog.resolve_source(str(deep)) == str(deep.resolve())
    assert catalog.is_folder("a" * 300) is False and catalog.is_folder("a\x00b") is False


def test_pickle_only_folders_and_remote_code_are_refused(tmp_path):
    from baa_core.io.hf_classifier import ModelSourceError
    from baa_core.io.pretrained import load_pretrained

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (pickled / "pytorch_model.bin").write_bytes(b"not even a pickle")
    with pytest.raises(ModelSourceError, match="no safetensors weights"):
        load_pretrained(str(pickled), 2)
    custom = tmp_path / "custom"
    custom.mkdir()
    marker = tmp_path / "remote-code-ran"
    (custom / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (custom / "config.json").write_text(json.dumps({"model_type": "evil", "auto_map": {"AutoConfig": "modeling_evil.C",
                                                                                      "AutoModel": "modeling_evil.M"}}))
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(custom / "model.safetensors"))
    with pytest.raises(ValueError, match="trust_remote_code"):  # transformers refuses; nothing of the folder's code runs
        load_pretrained(str(custom), 2)
    assert not marker.exists(), "custom code from the folder ran"


def test_every_transformers_call_pins_safetensors_and_no_remote_code():
    """Every ``X.from_pretrained(...)`` in the library and the app passes trust_remote_code=False, and
    every model (not tokenizer / config) load also use_safetensors=True, directly or through a kwargs dict."""
    import ast

    root = Path(__file__).resolve().parents[1]
    checked = 0
    for path in list((root / "baa_core").rglob("*.py")) + list((root / "app").rglob("*.py")):
        tree = ast.parse(path.read_text())
        dicts = {}  # name -> keyword names set to True/False in a dict(...) or {...} assigned to it
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                v = node.value
                if isinstance(v, ast.Call) and getattr(v.func, "id", "") == "dict":
                    dicts[node.targets[0].id] = {k.arg: getattr(k.value, "value", None) for k in v.keywords}
                elif isinstance(v, ast.Dict):
                    dicts[node.targets[0].id] = {getattr(k, "value", None): getattr(x, "value", None) for k, x in zip(v.keys, v.values)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained"):
                continue
            if isinstance(node.func.value, ast.Name) and node.func.value.id in ("cls", "HFTokenizer"):
                continue  # the project's own wrapper (it calls AutoTokenizer with the flag)
            kw = {k.arg: getattr(k.value, "value", None) for k in node.keywords if k.arg}
            for k in node.keywords:
                if k.arg is None and isinstance(k.value, ast.Name):
                    kw.update(dicts.get(k.value.id, {}))
            where = f"{path.relative_to(root)}:{node.lineno}"
            assert kw.get("trust_remote_code") is False, where
            owner = getattr(node.func.value, "id", "")
            if owner.startswith("AutoModel"):
                assert kw.get("use_safetensors") is True, where
            checked += 1
    assert checked >= 4


# ---------------------------------------------------------------- 8. one line and exit 2 (known) or 1 with --debug hint (unknown)
def test_cli_known_errors_are_one_line_and_exit_2(tmp_path, capsys, saved, monkeypatch):
    from baa_core import pipeline

    monkeypatch.setattr(pipeline, "prepare", lambda *a, **k: pytest.fail("work started before the checks"))
    assert main(["train", "--task", "synthetic", "--out", "/etc/passwd/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write /etc/passwd/x") and err.count("\n") == 1
    if not torch.cuda.is_available():
        assert main(["train", "--task", "synthetic", "--device", "cuda", "--out", str(tmp_path / "g")]) == 2
        assert "sees none" in capsys.readouterr().err
    assert main(["train", "--task", "synthetic", "--device", "tpu9", "--out", str(tmp_path / "g")]) == 2
    assert capsys.readouterr().err.startswith("error: --device")
    _edit_config(saved, n_heads=0)
    assert main(["sweep", str(saved)]) == 2
    err = capsys.readouterr().err
    assert "n_heads=0 is out of range" in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_unknown_errors_are_one_line_with_the_debug_hint(monkeypatch, capsys, tmp_path):
    from baa_core import cli

    def boom(args):
        raise RuntimeError("something nobody foresaw\nwith a second line")

    monkeypatch.setitem(cli.COMMANDS, "sweep", boom)
    (tmp_path / "m").mkdir()
    assert main(["sweep", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert err == "error: RuntimeError: something nobody foresaw with a second line (run with --debug for the traceback)\n"
    with pytest.raises(RuntimeError):
        main(["--debug", "sweep", str(tmp_path / "m")])


# ---------------------------------------------------------------- 9. CSV content: counted, refused, limited, explained
def _csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_csv_empty_labels_and_texts_are_left_out_and_counted(tmp_path):
    rows = [(f"text {i}", "a" if i % 2 else "b") for i in range(60)] + [("no label here", "")] * 3 + [("  ", "a")] * 2
    data = load_csv(_csv(tmp_path / "d.csv", rows))
    assert data.label_names == ["a", "b"]
    assert data.extra["warnings"] == ["d.csv: 3 rows with an empty label and 2 rows with an empty text left out (60 of 65 rows kept)"]
    assert all(t.strip() for t in data.train.texts + data.val.texts + data.test.texts)


def test_csv_classes_too_small_for_a_test_row_are_refused_with_counts(tmp_path):
    rows = [(f"text {i}", "a" if i % 2 else "b") for i in range(60)] + [("lonely", "rare"), ("twice", "odd"), ("again", "odd")]
    with pytest.raises(DataError, match=r"2 classes have too few rows to get a test row: 'odd' \(2 rows\), 'rare' \(1 row\)"):
        load_csv(_csv(tmp_path / "d.csv", rows))


def test_csv_max_train_and_max_test_are_honoured(tmp_path):
    rows = [(f"text {i}", "abc"[i % 3]) for i in range(300)]
    data = load_csv(_csv(tmp_path / "d.csv", rows), max_train=60, max_test=30)
    assert len(data.train) == 60 and len(data.test) == 30
    assert sorted(set(data.train.labels)) == [0, 1, 2] and data.extra["max_train"] == 60
    from baa_core.pipeline import prepare

    prep = prepare(csv=str(tmp_path / "d.csv"), max_train=45, max_test=21)
    assert len(prep.train) == 45 and len(prep.test) == 21


@pytest.mark.parametrize("content, message", [
    (b"text,label\n" + b"good row,a\n" * 30 + b"caf\xe9 au lait,b\n", "line 32 has the byte 0xe9"),
    (b"text;label\n" + b"a;b\n" * 30, "semicolon-separated"),
    (b"text\tlabel\n" + b"a\tb\n" * 30, "tab-separated"),
    (b"text,label\n" + b"a,b\n" * 5 + b"hello, world,b\n" + b"a,b\n" * 20, "line 7 has 3 fields but the header has 2"),
    (b"text,label\n", "no data rows"),
    (b"", "is empty"),
    (b"text,label\n" + b"a,b\n" * 30 + b'"an unclosed quote,b\n' + b"a,b\n" * 3, "EOF inside string starting at row 31"),
])
def test_csv_parse_errors_name_the_real_cause_and_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_csv(path)


def test_cli_csv_warnings_are_printed(tmp_path, capsys):
    rows = [(f"{'alpha beta' if i % 2 else 'gamma delta'} {i}", "a" if i % 2 else "b") for i in range(60)] + [("x", "")] * 4
    csv_path = _csv(tmp_path / "w.csv", rows)
    assert main(["train", "--csv", str(csv_path), "--method", "dense", "--out", str(tmp_path / "m"), "--dense-epochs", "0.2",
                 "--latency-batches", "0", "--max-train", "30"]) == 0
    err = capsys.readouterr().err
    assert "warning: w.csv: 4 rows with an empty label left out" in err
    assert read_card(tmp_path / "m")["sizes"]["train"] == 30


# ---------------------------------------------------------------- 10. uploads and leftovers
def test_uploads_are_atomic_verified_on_reuse_and_leftovers_cleaned(tmp_path):
    from app.ui import uploads

    content = b"text,label\n" + b"row,a\n" * 50
    path = uploads.store_upload(content, tmp_path)
    assert path.read_bytes() == content
    path.write_bytes(content[:20])  # a truncated copy under the digest's name
    again = uploads.store_upload(content, tmp_path)
    assert again == path and path.read_bytes() == content
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".partial-")]
    old, fresh = time.time() - 7200, time.time()
    for name in (".m.partial-1234abcd", ".m.old-1234abcd", "keep-me"):
        (tmp_path / name).mkdir()
    (tmp_path / "keep-me" / ".card.json.abcd1234").write_text("{}")
    (tmp_path / ".uploads" / ".partial-deadbeef-x.csv").write_text("half")
    (tmp_path / ".fresh.partial-99999999").mkdir()  # a save in progress right now: kept
    for p in [tmp_path / ".m.partial-1234abcd", tmp_path / ".m.old-1234abcd", tmp_path / "keep-me" / ".card.json.abcd1234",
              tmp_path / ".uploads" / ".partial-deadbeef-x.csv"]:
        os.utime(p, (old, old))
    removed = uploads.clean_leftovers(tmp_path, now=fresh)
    assert sorted(removed) == sorted([".m.partial-1234abcd", ".m.old-1234abcd", "keep-me/.card.json.abcd1234",
                                      ".uploads/.partial-deadbeef-x.csv"])
    assert (tmp_path / ".fresh.partial-99999999").exists() and (tmp_path / "keep-me").exists() and path.exists()
    uploads.discard(path)
    assert not path.exists()


# ---------------------------------------------------------------- 11. an external Hub source fails fast offline
def test_a_checkpoint_needing_the_hub_fails_fast_offline(saved, monkeypatch):
    from baa_core.io import sources

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = json.loads((saved / "config.json").read_text())
    cfg["external"] = {"source": "someone/not-cached-bert", "tensors": []}
    (saved / "config.json").write_text(json.dumps(cfg))
    assert sources.hub_source_problem("someone/not-cached-bert").endswith("unreachable from here (offline)")
    assert sources.hub_source_problem("all-MiniLM-L6-v2") is None
    # a checkpoint whose embeddings live in that Hub model: refused at once, with the reason
    model = BudgetedClassifier(tiny_config(gating="baa", embedding="bert", type_vocab_size=2)).eval()
    folder = save_checkpoint(saved.parent / "needs-hub", model, TOK, {"name": "needs-hub"},
                             external={"source": "someone/not-cached-bert", "tensors": ["embeddings.word_embeddings.weight"]})
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("the Hub was asked while offline"))
    with pytest.raises(CheckpointError, match="unreachable"):
        load_checkpoint(folder)
