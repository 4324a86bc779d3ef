"""Take home a faster model: export at a budget, int8, ONNX Runtime with no project code, HF reference, bench-deploy.

Tiny random models built here (no network, no ../shared); ONNX tests skip when onnx/onnxscript/onnxruntime
are not installed.
"""
from __future__ import annotations

import copy
import importlib.util
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from baa_core.cli import main
from baa_core.io.checkpoint import load_checkpoint, save_checkpoint
from baa_core.io.data import SYNTH_VALUES, collate, encode, marked_token_task, synthetic_vocab
from baa_core.io.export import ExportError, check_target, word_tokenizer_json, zip_folder
from baa_core.io.tokenizers import WordTokenizer
from baa_core.measure.deploy import VARIANTS, bench_deploy, export_mask
from baa_core.model.encoder import BudgetedClassifier
from baa_core.model.runtimes import hf_reference, logits_of, quantize_int8
from baa_core.pipeline import export_model
from tests.conftest import padded_batch, tiny_config

HAVE_ONNX = all(importlib.util.find_spec(p) for p in ("onnx", "onnxscript", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="onnx, onnxscript and onnxruntime are not installed")


def _word_checkpoint(folder, gating="baa", **kw):
    tok = WordTokenizer(synthetic_vocab(), lowercase=False)
    torch.manual_seed(0)
    cfg = tiny_config(vocab_size=len(tok), n_classes=8, labels=list(SYNTH_VALUES), max_len=16, gating=gating, **kw)
    model = BudgetedClassifier(cfg).eval()
    if model.gate is not None and gating == "baa":
        with torch.no_grad():  # spread the gates so the budget picks an uneven layout
            model.gate.intercept.copy_(torch.linspace(-2, 2, cfg.total_heads).reshape(cfg.n_layers, cfg.n_heads))
    card = {"name": folder.name, "task": "synthetic", "method": gating if gating != "dense" else "dense", "model_kind": "word",
            "labels": list(SYNTH_VALUES), "sweeps": {}}
    save_checkpoint(folder, model, tok, card)
    return load_checkpoint(folder)


@pytest.fixture(scope="module")
def word_ckpt(tmp_path_factory):
    return _word_checkpoint(tmp_path_factory.mktemp("src") / "tiny-baa")


@pytest.fixture(scope="module")
def test_split(word_ckpt):
    return encode(marked_token_task(48, 16, seed=5), word_ckpt.tokenizer, 16)


class Exported:
    def __init__(self, folder, card):
        self.folder, self.card = Path(folder), card
        self.variants = card["export"]["variants"]


def _export(ckpt, out, budget, **kw):
    return Exported(out, export_model(ckpt, out, budget, **{"rounds": 1, "n_latency_batches": 1, **kw}))


@pytest.fixture(scope="module")
def exported(word_ckpt, test_split, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports") / "tiny-b050"
    return _export(word_ckpt, out, 0.5, int8=True, onnx=HAVE_ONNX, test=test_split, n_latency_batches=2)


# ---------------------------------------------------------------- export round trip
def test_exported_sliced_model_equals_masked_logits_at_that_budget(word_ckpt, exported):
    ckpt = load_checkpoint(exported.folder)
    cfg = ckpt.config
    mask = word_ckpt.model.gate.hard(0.5)
    assert cfg.heads_per_layer == mask.sum(-1).int().tolist() and cfg.gating == "dense"
    assert ckpt.model.gate is None and not any(k.startswith("gate.") for k in ckpt.model.state_dict())
    ids, att = padded_batch(5, 12, vocab=cfg.vocab_size)
    with torch.no_grad():
        masked = word_ckpt.model(ids, att, head_mask=mask).logits
        torch.testing.assert_close(ckpt.model(ids, att).logits, masked, atol=1e-5, rtol=1e-5)


def test_export_card_records_budget_heads_and_measurements_after_export(exported, test_split):
    card = json.loads((exported.folder / "card.json").read_text())
    e = card["export"]
    assert e["budget"] == 0.5 and e["heads_per_layer"] == [len(k) for k in e["kept_heads"]]
    assert e["accuracy_n"] == len(test_split) and e["max_abs_logit_diff_vs_masked"] <= 1e-5
    by = {v["variant"]: v for v in e["variants"]}
    assert {"dense", "sliced", "sliced_int8"} <= set(by)
    assert all(0.0 <= by[v]["accuracy"] <= 1.0 and by[v]["ms_per_batch"] > 0 for v in by)
    row = card["sweeps"]["baa"][0]
    assert row["accuracy"] == by["sliced"]["accuracy"] and row["heads_per_layer"] == e["heads_per_layer"]
    config = json.loads((exported.folder / "config.json").read_text())
    assert config["model_type"] == "bert" and config["heads_per_layer"] == e["heads_per_layer"]
    assert config["id2label"]["0"] == SYNTH_VALUES[0]
    if HAVE_ONNX:  # a user running the file elsewhere needs to know which opset it asks for
        assert e["onnx"]["opset"] == 23 and "Attention" in {n.op_type for n in _onnx_nodes(exported.folder / e["onnx"]["file"])}


def _onnx_nodes(path):
    import onnx

    return onnx.load(str(path)).graph.node


def test_export_config_reads_as_a_hugging_face_config(exported):
    from transformers import AutoConfig

    hf = AutoConfig.from_pretrained(str(exported.folder))
    assert hf.hidden_size == 32 and hf.num_attention_heads == 4 and hf.id2label[1] == SYNTH_VALUES[1]


def test_dense_model_exports_all_heads_and_budgetformer_is_refused(tmp_path):
    dense = _word_checkpoint(tmp_path / "dense", gating="dense")
    assert export_mask(dense.model, 0.5).sum() == dense.config.total_heads
    result = _export(dense, tmp_path / "out", 0.5)
    assert load_checkpoint(result.folder).config.layer_heads == dense.config.layer_heads
    assert "random token ids" in result.card["latency"]["inputs"] and result.card["export"]["accuracy_n"] == 0
    bf = _word_checkpoint(tmp_path / "bf", gating="budgetformer", controller_hidden=8)
    with pytest.raises(ValueError, match="per input"):
        export_model(bf, tmp_path / "bf-out", 0.5)
    assert not (tmp_path / "bf-out").exists()


def test_static_model_exports_only_its_trained_budgets(tmp_path):
    static = _word_checkpoint(tmp_path / "static", gating="static", static_budgets=[0.25, 0.5])
    _export(static, tmp_path / "ok", 0.25)
    with pytest.raises(ValueError, match="trained for budgets"):
        _export(static, tmp_path / "bad", 0.3)
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad*"))


def test_zip_holds_the_exported_folder(exported):
    with zipfile.ZipFile(io.BytesIO(zip_folder(exported.folder))) as zf:
        names = set(zf.namelist())
    assert f"{exported.folder.name}/model.safetensors" in names and f"{exported.folder.name}/card.json" in names


# ---------------------------------------------------------------- refusals
def test_existing_out_is_refused_unless_overwrite(word_ckpt, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="already exists"):
        export_model(word_ckpt, out, 0.5)
    with pytest.raises(ExportError, match="not a checkpoint folder"):  # --overwrite never deletes a non-checkpoint
        export_model(word_ckpt, out, 0.5, overwrite=True)
    assert (out / "keep.txt").read_text() == "mine"
    assert main(["export", str(word_ckpt.path), "--budget", "0.5", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "already exists" in err and "--overwrite" in err and "\n" not in err
    done = _export(word_ckpt, tmp_path / "again", 0.5)
    again = _export(word_ckpt, done.folder, 0.25, overwrite=True)
    assert json.loads((again.folder / "card.json").read_text())["export"]["budget"] == 0.25
    with pytest.raises(ExportError, match="model being exported"):
        check_target(word_ckpt.path, overwrite=True, source=word_ckpt.path)


def test_unwritable_target_is_refused_before_any_work(word_ckpt, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot write"):
        check_target(blocker / "out")
    assert main(["export", str(word_ckpt.path), "--budget", "0.5", "--out", str(blocker / "out")]) == 2


@pytest.mark.parametrize("budget", ["1.5", "0", "-0.2", "abc", "0.2,0.4", "nan"])
def test_bad_budget_is_refused_in_one_line(word_ckpt, tmp_path, capsys, budget):
    for argv in (["export", str(word_ckpt.path), "--budget", budget, "--out", str(tmp_path / "x")],
                 ["bench-deploy", str(word_ckpt.path), "--budget", budget]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "budget" in err and "\n" not in err
    assert not (tmp_path / "x").exists()


def test_gated_model_needs_a_budget(word_ckpt, tmp_path):
    with pytest.raises(ValueError, match="give the budget"):
        export_model(word_ckpt, tmp_path / "x", None)


# ---------------------------------------------------------------- int8
def _int8_close(q, model, ids, att):
    with torch.no_grad():
        ref = model(ids, att).logits
        got = logits_of(q(ids, att))
    assert (got - ref).abs().max() <= 0.05 * ref.abs().max() + 1e-3
    return got


def test_int8_logits_within_tolerance_of_fp32(exported):
    model = load_checkpoint(exported.folder).model
    ids, att = padded_batch(6, 12, vocab=model.config.vocab_size, seed=3)
    engine = torch.backends.quantized.engine
    q = quantize_int8(model, "torch")
    assert torch.backends.quantized.engine == engine  # only the packing used oneDNN
    assert not any(isinstance(m, torch.nn.Linear) and type(m) is torch.nn.Linear for m in q.modules())
    _int8_close(q, model, ids, att)
    if importlib.util.find_spec("torchao"):
        _int8_close(quantize_int8(model, "torchao"), model, ids, att)
    with pytest.raises(ValueError, match="int8 backend"):
        quantize_int8(model, "fp4")


# ---------------------------------------------------------------- Hugging Face reference
def test_hf_reference_logits_equal_the_dense_model_on_padded_batches(word_ckpt):
    pytest.importorskip("transformers")
    from baa_core.model.surgery import slice_heads

    dense = slice_heads(word_ckpt.model, torch.ones(word_ckpt.config.n_layers, word_ckpt.config.n_heads))
    hf = hf_reference(dense)
    assert hf.bert.config._attn_implementation == "sdpa"
    ids, att = padded_batch(5, 12, vocab=dense.config.vocab_size, seed=2)
    with torch.no_grad():
        torch.testing.assert_close(hf(ids, att), dense(ids, att).logits, atol=1e-4, rtol=1e-4)


def test_hf_reference_for_a_bert_family_model(tmp_path):
    transformers = pytest.importorskip("transformers")
    from baa_core.io.pretrained import load_pretrained

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(40)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    cfg = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=48, max_position_embeddings=32)
    torch.manual_seed(0)
    transformers.BertModel(cfg, add_pooling_layer=False).save_pretrained(tmp_path)
    model, _ = load_pretrained(str(tmp_path), n_classes=3)
    model.eval()
    ids, att = padded_batch(4, 10, vocab=len(vocab), seed=4)
    with torch.no_grad():
        torch.testing.assert_close(hf_reference(model)(ids, att), model(ids, att).logits, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- ONNX Runtime, with no project code
def test_word_tokenizer_json_tokenizes_like_the_word_tokenizer():
    from tokenizers import Tokenizer

    texts = ["The Quick, brown fox!", "don't stop-believing...", "unknownword ##x", "a  b\tc\n", "Café 3.5% über"]
    vocab = ["[PAD]", "[UNK]", "the", "quick", ",", "brown", "fox", "!", "don", "'", "t", "stop", "-", ".", "a", "b", "c",
             "3", "5", "%", "café", "über", "#"]
    for lowercase in (True, False):
        word = WordTokenizer(vocab, lowercase=lowercase)
        fast = Tokenizer.from_str(word_tokenizer_json(word))
        assert [fast.encode(t).ids for t in texts] == word.encode(texts, 100)


STANDALONE = r"""
import json, sys
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

folder, tokenizer_file, pad_id, max_len = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
texts = json.loads(sys.argv[5])
tok = Tokenizer.from_file(f"{folder}/{tokenizer_file}")
tok.enable_truncation(max_len)
session = ort.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
out = []
for group in (texts[:1], texts):  # batch 1, then a padded batch of several lengths
    ids = [e.ids for e in tok.encode_batch(group)]
    T = max(len(x) for x in ids)
    input_ids = np.array([x + [pad_id] * (T - len(x)) for x in ids], dtype=np.int64)
    mask = np.array([[1] * len(x) + [0] * (T - len(x)) for x in ids], dtype=np.int64)
    out.append(session.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})[0].tolist())
assert "torch" not in sys.modules and "baa_core" not in sys.modules and "transformers" not in sys.modules
print(json.dumps(out))
"""


def _run_standalone(folder, card, texts):
    onnx = card["export"]["onnx"]
    proc = subprocess.run([sys.executable, "-I", "-c", STANDALONE, str(folder), onnx["tokenizer"], str(onnx["pad_id"]),
                           str(onnx["max_length"]), json.dumps(texts)], capture_output=True, text=True, timeout=300, check=False,
                          cwd=str(folder))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [torch.tensor(x) for x in json.loads(proc.stdout)]


def _project_logits(ckpt, texts):
    from baa_core.io.data import collate

    ids = ckpt.tokenizer.encode(texts, ckpt.config.max_len)
    batch = collate(ids, ckpt.tokenizer.pad_id)
    with torch.no_grad():
        return ckpt.model(batch["input_ids"], batch["attention_mask"]).logits


@needs_onnx
def test_onnx_runtime_alone_gives_the_torch_logits_word_model(exported):
    texts = ["q r [M] c s t", "a b c d e f g h p q r s t u v w", "[M] h"]
    ckpt = load_checkpoint(exported.folder)
    one, many = _run_standalone(exported.folder, exported.card, texts)
    expected = _project_logits(ckpt, texts)
    torch.testing.assert_close(many, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(one, expected[:1], atol=1e-4, rtol=1e-4)
    by = {v["variant"]: v for v in exported.variants}
    assert by["onnx_sliced"]["max_abs_logit_diff"] <= 1e-4 and "onnx_sliced_int8" in by


@needs_onnx
def test_onnx_runtime_alone_gives_the_torch_logits_bert_model(tmp_path):
    transformers = pytest.importorskip("transformers")
    from baa_core.io.pretrained import load_pretrained
    from baa_core.model.surgery import with_gating

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(40)] + list("abcdefghij")
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    cfg = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=48, max_position_embeddings=32)
    torch.manual_seed(0)
    transformers.BertModel(cfg, add_pooling_layer=False).save_pretrained(tmp_path / "base")
    transformers.BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "base")
    model, tok = load_pretrained(str(tmp_path / "base"), n_classes=3)
    model = with_gating(model, "baa").eval()
    with torch.no_grad():
        model.gate.intercept.copy_(torch.linspace(-2, 2, 8).reshape(2, 4))
    save_checkpoint(tmp_path / "src", model, tok, {"name": "tiny-bert", "task": "synthetic", "method": "baa", "labels": []})
    src = load_checkpoint(tmp_path / "src")
    result = _export(src, tmp_path / "out", 0.5, onnx=True)
    texts = ["w1 w2 w3 a b", "w9", "c d e f g h i j w30 w31 w32"]
    one, many = _run_standalone(result.folder, result.card, texts)
    expected = _project_logits(load_checkpoint(result.folder), texts)
    torch.testing.assert_close(many, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(one, expected[:1], atol=1e-4, rtol=1e-4)


@needs_onnx
def test_onnx_int8_logits_within_tolerance(exported):
    from baa_core.model.runtimes import OnnxRunner

    model = load_checkpoint(exported.folder).model
    ids, att = padded_batch(6, 12, vocab=model.config.vocab_size, seed=7)
    with torch.no_grad():
        ref = model(ids, att).logits
    got = OnnxRunner(exported.folder / "model.int8.onnx")(ids, att)
    assert (got - ref).abs().max() <= 0.05 * ref.abs().max() + 1e-3


# ---------------------------------------------------------------- bench-deploy
def test_bench_deploy_rows_and_json_lines(word_ckpt, test_split, capsys):
    rows = bench_deploy(word_ckpt.model, 0.5, test_split, n_batches=2, rounds=2, onnx=HAVE_ONNX)
    names = [r["variant"] for r in rows]
    assert names == [v for v in VARIANTS if v in names]
    assert {"hf_dense", "dense", "sliced", "dense_int8", "sliced_int8"} <= set(names)
    if HAVE_ONNX:
        assert {"onnx_dense", "onnx_sliced", "onnx_sliced_int8"} <= set(names)
    by = {r["variant"]: r for r in rows}
    assert by["hf_dense"]["speedup_vs_hf_dense"] == 1.0 and by["hf_dense"]["max_abs_logit_diff"] <= 1e-4
    assert by["sliced"]["accuracy"] is not None and by["sliced"]["n"] == len(test_split)
    for r in rows:
        lo, hi = r["speedup_ci"]
        assert r["ms_per_batch"] > 0 and lo <= r["speedup_vs_hf_dense"] <= hi
    if HAVE_ONNX:  # each ONNX file against the torch model it was exported from, per round
        twins = {r["variant"]: r["vs_torch"] for r in rows if r["vs_torch"]}
        assert twins == {"onnx_dense": "dense", "onnx_sliced": "sliced", "onnx_sliced_int8": "sliced_int8"}
        onnx_sliced = by["onnx_sliced"]
        lo, hi = onnx_sliced["speedup_vs_torch_ci"]
        assert lo <= onnx_sliced["speedup_vs_torch"] <= hi
    assert main(["bench-deploy", str(word_ckpt.path), "--budget", "0.5", "--json", "--rounds", "1", "--n-batches", "1",
                 "--limit", "16", "--no-onnx"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["variant"] for x in lines] == ["hf_dense", "dense", "sliced", "dense_int8", "sliced_int8"]
    assert all({"variant", "ms_per_batch", "speedup_vs_hf_dense", "accuracy", "speedup_ci"} <= set(x) for x in lines)
    assert {x["variant"]: x["accuracy_from"] for x in lines} == {
        "hf_dense": "dense", "dense": "dense", "sliced": "sliced", "dense_int8": "dense_int8", "sliced_int8": "sliced_int8"}
    assert lines[0]["accuracy"] == lines[1]["accuracy"]  # HF's BERT runs the same fp32 weights: dense's accuracy


def test_onnx_speedup_over_its_torch_model_is_the_ratio_of_the_two_per_round_ratios(monkeypatch):
    """Per round, ONNX's speedup over HF divided by its torch twin's: 4x and 2x over HF -> 2x over torch
    (not 0.5x); with the twin as the reference, the ONNX file's own ratio."""
    import baa_core.measure.deploy as deploy
    from baa_core.measure.latency import Comparison

    ratios = {"sliced": [2.0, 2.0, 2.0], "onnx_sliced": [4.0, 3.0, 5.0], "onnx_dense": [0.9, 0.9, 0.9]}
    fake = Comparison({k: 1.0 for k in ["hf_dense", *ratios]}, {k: 1.0 for k in ["hf_dense", *ratios]}, 3, 1, ratios)
    monkeypatch.setattr(deploy, "compare_latency", lambda *a, **k: fake)
    runners = {name: (lambda i, m: torch.zeros(len(i), 2)) for name in ["hf_dense", *ratios]}
    batches = [{"input_ids": torch.ones(1, 3, dtype=torch.long), "attention_mask": torch.ones(1, 3, dtype=torch.long)}]
    out = deploy.measure_variants(runners, "hf_dense", batches=batches, test=None)
    assert out["onnx_sliced"]["vs_torch"] == "sliced" and out["onnx_sliced"]["speedup_vs_torch"] == 2.0
    assert "vs_torch" not in out["onnx_dense"]  # its torch twin ("dense") was not timed here
    twin_is_reference = Comparison({"sliced": 1.0, "onnx_sliced": 1.0}, {"sliced": 1.0, "onnx_sliced": 1.5}, 3, 1,
                                   {"onnx_sliced": [1.5, 1.5, 1.5]})
    monkeypatch.setattr(deploy, "compare_latency", lambda *a, **k: twin_is_reference)
    out = deploy.measure_variants({"sliced": runners["sliced"], "onnx_sliced": runners["onnx_sliced"]}, "sliced",
                                  batches=batches, test=None)
    assert out["onnx_sliced"]["speedup_vs_torch"] == 1.5


def test_accuracy_is_shared_only_by_variants_that_compute_the_same_logits(word_ckpt, test_split):
    from baa_core.measure.deploy import measure_variants, sliced_at

    small, _ = sliced_at(word_ckpt.model, 0.5)
    batches = [collate(test_split.ids[:4], test_split.pad_id)]
    wrong = copy.deepcopy(small)
    with torch.no_grad():
        wrong.classifier.bias += 1.0  # the same model but for its logits: must be evaluated, not share sliced's
    # named after the variants whose fp32 counterparts (FP32_OF) are "dense" and "sliced"
    runners = {"dense": small, "sliced": small, "onnx_sliced": copy.deepcopy(small), "dense_int8": quantize_int8(small),
               "onnx_dense": wrong}
    rows = measure_variants(runners, "dense", batches=batches, test=test_split, rounds=1)
    assert rows["onnx_sliced"]["accuracy_from"] == "sliced" and rows["onnx_sliced"]["accuracy"] == rows["sliced"]["accuracy"]
    assert "accuracy_from" not in rows["onnx_dense"] and rows["onnx_dense"]["max_abs_logit_diff"] > 0.5
    assert "accuracy_from" not in rows["dense_int8"]  # int8 is always evaluated itself
    every = measure_variants(runners, "sliced", batches=batches, test=test_split, rounds=1, share_accuracy=False)
    assert not any("accuracy_from" in r for r in every.values())


def test_timing_waits_for_the_timing_lock_but_accuracy_does_not(word_ckpt, test_split, tmp_path):
    import fcntl
    import threading

    from baa_core.measure.deploy import measure_variants

    lock = tmp_path / "measure.lock"
    said: list[str] = []
    batches = [collate(test_split.ids[:4], test_split.pad_id)]
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result: dict = {}

        def measure():
            result.update(measure_variants({"dense": word_ckpt.model, "again": word_ckpt.model}, "dense", batches=batches,
                                           test=test_split, rounds=1, timing_lock=lock, progress=said.append))

        worker = threading.Thread(target=measure, daemon=True)
        worker.start()
        for _ in range(600):  # until it queues for the lock (the accuracy pass comes first)
            if any(m.startswith("waiting for the timing lock") for m in said):
                break
            time.sleep(0.1)
        time.sleep(0.5)
        assert worker.is_alive() and any("accuracy" in m for m in said) and not any(m.startswith("timing") for m in said)
    worker.join(timeout=60)  # the lock is released when ``held`` closes
    assert not worker.is_alive() and any(m.startswith("timing") for m in said)
    assert result["again"]["ms_per_batch"] > 0


# ---------------------------------------------------------------- Hugging Face families (io/hf_classifier)
def _family_checkpoint(tmp_path, case: str, gated: bool):
    from baa_core.io.hf_classifier import load_classifier
    from baa_core.model.surgery import with_gating
    from tests.hf_fixtures import build_classifier, family_configs

    config = dict(family_configs())[case]
    hf = build_classifier(tmp_path / "hf", config)
    loaded = load_classifier(str(tmp_path / "hf"))
    model = loaded.model
    if gated:
        model = with_gating(model, "baa").eval()
        with torch.no_grad():
            model.gate.intercept.copy_(torch.linspace(-2, 2, model.config.total_heads).reshape(model.config.n_layers, -1))
    save_checkpoint(tmp_path / "src", model, loaded.tokenizer, {"name": case, "task": "csv", "method": "baa" if gated else "dense",
                                                                "labels": loaded.labels})
    return hf, config, load_checkpoint(tmp_path / "src")


def test_hf_reference_of_a_bert_classifier_is_its_own_sequence_classifier(tmp_path):
    pytest.importorskip("transformers")
    from tests.hf_fixtures import padded_ids

    hf, config, ckpt = _family_checkpoint(tmp_path, "bert", gated=False)
    ids, att = padded_ids(config)
    ref = hf_reference(ckpt.model)
    assert ref.bert.config._attn_implementation == "sdpa"
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=att).logits
        torch.testing.assert_close(ref(ids, att), expected, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ckpt.model(ids, att).logits, expected, atol=1e-4, rtol=1e-4)


@needs_onnx
@pytest.mark.parametrize("case", ["roberta", "albert"])
def test_onnx_export_of_other_families_equals_masked_and_torch(tmp_path, case):
    pytest.importorskip("transformers")
    _, _, src = _family_checkpoint(tmp_path, case, gated=True)
    with pytest.raises(ValueError, match="reference here is BERT's"):
        hf_reference(src.model)
    result = _export(src, tmp_path / "out", 0.5, onnx=True)
    texts = ["the team won the final", "shares fell", "a b c 12 34 fans cheered the late goal"]
    one, many = _run_standalone(result.folder, result.card, texts)
    expected = _project_logits(load_checkpoint(result.folder), texts)
    torch.testing.assert_close(many, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(one, expected[:1], atol=1e-4, rtol=1e-4)
    assert result.card["export"]["max_abs_logit_diff_vs_masked"] <= 1e-4
