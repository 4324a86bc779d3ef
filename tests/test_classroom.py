"""Issue 12, "ready for a classroom": the Attention page's data per head layout, the Train page's defaults,
BudgetFormer head ranks, [UNK] warnings on BERT models, heat-map labels. AppTest and pure helpers, tiny
models built here (no network, no ../shared); the browser side is in tests/test_browser_attention.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.app_fixtures import assert_clean, build_model_dirs

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    dirs = build_model_dirs(tmp_path_factory.mktemp("classroom_models"))
    _tiny_bert_baa(dirs["user_models"] / "tiny-bert-baa")
    return dirs


def _tiny_bert_baa(folder: Path) -> None:
    """A BAA model on a tiny random BERT with a WordPiece tokenizer ([CLS] ... [SEP]), like MiniLM's."""
    transformers = pytest.importorskip("transformers")
    from baa_core.io.pretrained import load_pretrained
    from baa_core.io.checkpoint import save_checkpoint
    from baa_core.model.surgery import with_gating

    src = folder.parent / ".tiny-bert-src"
    src.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "team", "won", "match", "bank", "rates", "rose"]
    (src / "vocab.txt").write_text("\n".join(vocab) + "\n")
    cfg = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.BertModel(cfg, add_pooling_layer=False).save_pretrained(src)
    transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(src)
    model, tok = load_pretrained(str(src), n_classes=2, labels=["sports", "business"])
    model = with_gating(model, "baa").eval()
    save_checkpoint(folder, model, tok, {"name": "tiny-bert-baa", "task": "ag_news", "method": "baa", "model_kind": "bert",
                                         "labels": ["sports", "business"], "sweeps": {}})


@pytest.fixture
def env(model_dirs, monkeypatch):
    monkeypatch.setenv("BAA_PRETRAINED_DIR", str(model_dirs["pretrained"]))
    monkeypatch.setenv("BAA_USER_MODELS", str(model_dirs["user_models"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BAA_DATA_DIR", str(model_dirs["pretrained"].parent / "no-data-here"))
    return model_dirs


def new_app(model: str = "shipped/tiny-baa", page: str | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.selectbox(key="model_id").set_value(model).run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    return at


def views_data(at: AppTest) -> dict:
    """The data the Attention page sent to its bertviz component."""
    (component,) = at.get("bidi_component")
    return json.loads(component.proto.json)


# ---------------------------------------------------------------- Attention page: per head layout
def test_attention_data_is_cached_per_head_layout_not_per_budget(env, monkeypatch):
    import streamlit as st

    import baa_core.measure.inspection as inspection
    from baa_core.io.checkpoint import load_checkpoint

    calls = []
    real = inspection.inspect_text
    monkeypatch.setattr(inspection, "inspect_text", lambda *a, **k: calls.append(k.get("budget")) or real(*a, **k))
    st.cache_data.clear()
    gate = load_checkpoint(env["pretrained"] / "tiny-baa").model.gate
    same = [b for b in (0.45, 0.5, 0.55) if torch.equal(gate.hard(b), gate.hard(0.5))]
    assert len(same) >= 2  # the fixture's gates give budgets that share a layout
    at = new_app(page="attention")
    first = views_data(at)
    for b in same:
        at.slider(key="attention_budget").set_value(b).run()
        assert_clean(at)
        assert views_data(at)["weights"] == first["weights"]
    assert len(calls) == 1, calls  # one forward pass for the whole layout
    at.slider(key="attention_budget").set_value(0.25).run()
    assert len(calls) == 2
    data = views_data(at)
    # heads that are off carry no attention and are marked off for both views
    hard = gate.hard(0.25)
    assert data["active"] == hard.int().tolist()
    assert all((w is None) == (not on) for wrow, arow in zip(data["weights"], data["active"]) for w, on in zip(wrow, arow))
    T = len(data["tokens"])
    import base64
    some = next(w for row in data["weights"] for w in row if w)
    assert len(base64.b64decode(some)) == T * T  # one byte per token pair


def test_attention_payload_is_small_and_only_the_open_tab_runs(env):
    at = new_app(page="attention")
    assert_clean(at)
    assert not at.get("plotly_chart")  # the heat maps tab is not open: its figure is not built
    assert len(json.dumps(views_data(at))) < 20_000
    at.session_state["attention_tab"] = "Heat maps"
    at.run()
    assert_clean(at)
    assert not at.get("bidi_component") and at.get("plotly_chart")


def test_heat_maps_sort_heads_and_label_tokens_on_both_axes(env):
    from baa_core.io.checkpoint import load_checkpoint

    at = new_app(page="attention")
    at.session_state["attention_tab"] = "Heat maps"
    at.run()
    assert_clean(at)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    gates = load_checkpoint(env["pretrained"] / "tiny-baa").model.gate(0.5)[0].detach()
    active = load_checkpoint(env["pretrained"] / "tiny-baa").model.gate.hard(0.5)[0]
    titles = [a["text"] for a in fig["layout"]["annotations"] if a["text"].startswith("head ")]
    shown = [int(t.split()[1]) for t in titles]
    expected = sorted(range(4), key=lambda h: (not active[h], -float(gates[h])))
    assert shown == expected
    axes = {k: v for k, v in fig["layout"].items() if k.startswith(("xaxis", "yaxis"))}
    assert len(axes) == 8
    for name, axis in axes.items():
        assert axis.get("showticklabels", True), name
        assert len(axis["tickvals"]) == len(fig["data"][0]["x"]), name  # every token labelled


def test_heads_csv_and_ranks_use_budgetformer_raw_scores():
    """q = softmax(r / tau) rounds to 0 for all but one head once tau is small: ranks must come from r."""
    from app.ui import compute, figures
    from baa_core.model.config import ModelConfig
    from baa_core.model.encoder import BudgetedClassifier
    from baa_core.measure.inspection import inspect_text
    from baa_core.io.tokenizers import WordTokenizer

    torch.manual_seed(3)
    cfg = ModelConfig(vocab_size=20, n_classes=2, d_model=32, n_heads=8, n_layers=2, d_ffn=32, max_len=12, dropout=0.0,
                      gating="budgetformer", controller_hidden=8)
    model = BudgetedClassifier(cfg).eval()
    with torch.no_grad():
        for c in model.controllers:
            c.tau.fill_(1e-3)  # the end of the annealing schedule, sharper than trained models
            c.input.weight[c.hidden:].normal_(0, 50.0)  # well separated scores
    tok = WordTokenizer(["[PAD]", "[UNK]"] + [f"w{i}" for i in range(18)], lowercase=False)
    ins = inspect_text(model, tok, "w1 w2 w3 w4 w5", attentions=False)
    assert ins.scores is not None
    assert (ins.q == 0).sum() > 4  # q underflows: ranking by it would be index order
    values, name = compute.head_importance(ins, compute.operating_point(model, None))
    assert name == "score" and torch.equal(values, ins.scores)
    ranks = figures.head_ranks(ins.scores.tolist())
    for layer in range(2):
        chosen = {h for h in range(8) if ins.head_weights[layer, h] > 0}
        assert {h for h in range(8) if ranks[layer][h] <= len(chosen)} == chosen  # the picked heads are the top ranks
    fig = figures.render_s_q(ins.s, ins.q.tolist(), ins.head_weights.tolist(), 8, ins.scores.tolist())
    text = fig.data[1].text
    for layer in range(2):
        marked = sorted(int(t.split()[0][1:]) for t in text[layer] if "✓" in t)
        assert marked == list(range(1, len(marked) + 1)), text[layer]
    rows = compute.heads_table(ins, compute.operating_point(model, None))
    assert {"score", "rank", "q"} <= set(rows[0])
    assert [r["rank"] for r in rows[:8]] == ranks[0]


# ---------------------------------------------------------------- [UNK] on a BERT tokenizer
@pytest.mark.parametrize("page", ["inspector", "attention"])
def test_emoji_only_text_warns_on_a_bert_model_like_on_the_word_model(env, page):
    box = "text_ag_news"  # the card's task (no data here: typed text only)
    at = new_app("yours/tiny-bert-baa", page)
    assert_clean(at)
    at.text_area(key=f"{page}_{box}").input("🙂🚀🎉").run()
    assert not at.exception
    assert any("[UNK]" in w.value for w in at.warning), [w.value for w in at.warning]
    at.text_area(key=f"{page}_{box}").input("the team won the match").run()
    assert_clean(at)
    assert not any("[UNK]" in w.value for w in at.warning)


def test_unknown_share_leaves_out_special_tokens(env):
    from baa_core.io.checkpoint import load_checkpoint
    from baa_core.measure.inspection import encode_text

    tok = load_checkpoint(env["user_models"] / "tiny-bert-baa").tokenizer
    enc = encode_text(tok, "🙂", 16)
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    assert (enc.unknown_tokens, enc.content_tokens) == (1, 1)


# ---------------------------------------------------------------- Train page
def _advanced(at: AppTest) -> dict:
    out = {}
    for key in ("train_dense_epochs", "train_budget_epochs", "train_hard_epochs", "train_bf_epochs"):
        try:
            out[key] = at.number_input(key=key).value
        except KeyError:
            pass
    return out


def _preset(task: str, kind: str, method: str) -> dict:
    from baa_core.pipeline import default_train_config

    p = default_train_config(task, kind)
    out = {"train_dense_epochs": p.dense_epochs}
    if method == "budgetformer":
        out["train_bf_epochs"] = p.bf_epochs
    else:
        out.update(train_budget_epochs=p.budget_epochs, train_hard_epochs=p.hard_epochs)
    return out


def test_train_page_resets_the_recipe_and_name_when_task_model_or_method_change(env):
    at = new_app(page="train")
    assert _advanced(at) == _preset("synthetic", "word", "baa")
    assert at.text_input(key="train_name").value == "synthetic-word-baa"
    at.number_input(key="train_dense_epochs").set_value(9.0).run()  # a user's own value, then a new choice
    for task, kind, method in (("ag_news", "word", "baa"), ("csv", "word", "baa"), ("csv", "bert", "baa"),
                               ("csv", "bert", "budgetformer"), ("synthetic", "word", "static")):
        at.radio(key="train_task").set_value(task).run()
        at.radio(key="train_kind").set_value(kind).run()
        at.radio(key="train_method").set_value(method).run()
        assert not at.exception
        assert _advanced(at) == _preset(task, kind, method), (task, kind, method)
        expected = f"{task}-{kind}-{method}" + ("-0.5" if method == "static" else "")
        assert at.text_input(key="train_name").value == expected
        assert any(f"{_preset(task, kind, method)['train_dense_epochs']:g}" in c.value for c in at.caption
                   if c.value.startswith("Defaults"))


def test_marker_labels_at_the_top_of_a_plot_stay_below_the_plotly_toolbar():
    """A vertical line's label ("b = 0.75") sits at the top of the plot, where plotly's toolbar appears on hover."""
    from app.ui import adaptive_figures, figures

    hist = adaptive_figures.render_s_histogram({"s": [0.5, 0.7], "label": [0, 1], "budget": 0.75})
    curves = adaptive_figures.render_s_curves({"budgets": [0.1, 1.0], "s": [[0.1, 0.9]], "heads": [[1, 4]], "n_heads": 4}, 0.75)
    for fig in (hist, curves):
        assert any(a.text == "b = 0.75" for a in fig.layout.annotations)
        assert fig.layout.margin.t >= figures.MODEBAR_PX


def test_s_q_table_ranks_heads_by_raw_score_and_fits_its_column():
    import re

    from app.ui import figures

    html = figures.render_s_q_html([0.5], [[1.0, 0.0, 0.0, 0.0]], [[1, 1, 0, 0]], 4, scores=[[0.1, 0.9, 0.5, 0.2]])
    assert [c for c, _ in re.findall(r">#(\d)( ✓)?</td>", html)] == ["4", "1", "2", "3"]  # by r, not by q or index
    assert "table-layout:fixed" in html and "0.500 → 2/4" in html
