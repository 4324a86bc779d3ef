"""A Hugging Face classifier you bring, in the app (issue 13): a BERT fine-tuned here for a few steps from a
tiny config, saved to a folder in the user models folder, opens with its own labels and predictions,
and gets a post-hoc budget sweep with no training. Server paths outside that folder are refused."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import torch

pytest.importorskip("streamlit")
transformers = pytest.importorskip("transformers")
from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.app_fixtures import csv_bytes  # noqa: E402
from tests.hf_fixtures import one_thread, train_tiny_classifier  # noqa: E402

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
LABELS = ["business", "sports"]


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def user_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf_app")
    rows = list(csv.DictReader(io.StringIO(csv_bytes(80).decode())))
    train_tiny_classifier(root / "user_models" / "my-clf", [r["text"] for r in rows], [LABELS.index(r["label"]) for r in rows],
                          LABELS, steps=30)
    (root / "shipped").mkdir()
    return root


@pytest.fixture
def env(user_models, monkeypatch):
    monkeypatch.setenv("BAA_PRETRAINED_DIR", str(user_models / "shipped"))
    monkeypatch.setenv("BAA_USER_MODELS", str(user_models / "user_models"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BAA_DATA_DIR", str(user_models / "no-data-here"))
    return user_models / "user_models"


def _clean(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_a_fine_tuned_folder_opens_with_its_own_predictions_and_gets_posthoc_budgets(env):
    folder = env / "my-clf"
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(str(folder), use_safetensors=True).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    text = "the coach praised the players 7"
    with torch.no_grad():
        probs = hf(**tok([text], return_tensors="pt")).logits.softmax(-1)[0]
    expected = hf.config.id2label[int(probs.argmax())]

    at = AppTest.from_file(MAIN, default_timeout=120).run()
    assert "my-clf (yours: Hugging Face bert)" in at.selectbox(key="model_id").options
    at.selectbox(key="model_id").set_value("yours/my-clf").run()
    at.switch_page("app_pages/inspector.py").run()
    at.text_area(key="inspector_text_any").input(text).run()
    _clean(at)
    assert _metric(at, "prediction") == expected  # the model's own head and id2label, not a random one
    assert _metric(at, "confidence") == f"{float(probs.max()):.1%}"

    at.switch_page("app_pages/budget_explorer.py").run()
    _clean(at)
    at.file_uploader(key="posthoc_csv").set_value(("news.csv", csv_bytes(80), "text/csv")).run()
    _clean(at)
    at.button(key="posthoc_start").click().run()
    _clean(at)
    assert at.selectbox(key="model_id").value == "yours/my-clf-posthoc"
    saved = env / "my-clf-posthoc"
    from baa_core.io.checkpoint import load_checkpoint

    ckpt = load_checkpoint(saved)
    card = ckpt.card
    assert card["method"] == "posthoc" and card["train_time_s"] is None and card["labels"] == LABELS
    assert [r["budget"] for r in card["sweeps"]["posthoc"]][:2] == [0.1, 0.2]
    assert all(r["speedup"] is not None for r in card["sweeps"]["posthoc"])  # timed beside the dense model
    # no training: the classifier is the folder's own
    torch.testing.assert_close(ckpt.model.classifier.weight, hf.classifier.weight, rtol=0, atol=0)
    # the explorer now has a budget slider over the ranked heads, evaluated live on the stored CSV
    from tests.test_app_pages import panel, set_budget, shown

    set_budget(at, 0.5)  # what the live panel's release does
    _clean(at)
    assert shown(panel(at))["k"] == int(ckpt.model.gate.hard(0.5).sum())
    assert any("Live" in c.value for c in at.caption)


def test_server_paths_outside_the_user_models_folder_are_refused(env):
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.session_state["model_id"] = "hub:"
    for path in ("/etc", "../" * 6 + "etc", str(env.parent / "shipped")):
        at.session_state["hub_model_name"] = path
        at.switch_page("app_pages/inspector.py").run()
        assert not at.exception
        assert any("only folders inside your models folder" in w.value for w in at.warning), path
    at.session_state["hub_model_name"] = "my-clf"  # a folder in it, by name
    at.run()
    _clean(at)
    assert any(m.label == "prediction" for m in at.metric)


def test_names_the_os_refuses_get_one_sentence_not_a_traceback(env):
    # a 256-character name once reached Path.stat (ENAMETOOLONG) and a NUL reached Path.is_dir (ValueError)
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.session_state["model_id"] = "hub:"
    for name, says in (("a" * 256, "at most 200 characters"), ("a" * 120 + "/" + "b" * 120, "at most 200 characters"),
                       ("my\x00clf", "control characters"), ("x\ty", "control characters")):
        at.session_state["hub_model_name"] = name
        at.switch_page("app_pages/inspector.py").run()
        assert not at.exception, repr(name[:20])
        assert any(says in w.value for w in at.warning), repr(name[:20])
