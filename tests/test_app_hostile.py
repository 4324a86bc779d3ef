"""Hostile inputs and faults, app side (issue 14), through Streamlit's AppTest: a training belongs to its
session and others queue; malformed cards, user strings, server paths, an existing name, a rejected
upload and a checkpoint that needs the Hub offline each get one clear message, never a crash, a
rendered link or a lost folder. Library-side tests of the same classes: test_hostile.py."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.app_fixtures import build_model_dirs, csv_bytes

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
MARKUP = ("caption", "markdown", "info", "warning", "error", "success")


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    return build_model_dirs(tmp_path_factory.mktemp("hostile_models"))


@pytest.fixture
def env(model_dirs, monkeypatch, tmp_path):
    user = tmp_path / "user_models"
    user.mkdir()
    monkeypatch.setenv("BAA_PRETRAINED_DIR", str(model_dirs["pretrained"]))
    monkeypatch.setenv("BAA_USER_MODELS", str(user))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BAA_DATA_DIR", str(tmp_path / "no-data-here"))
    return {"pretrained": model_dirs["pretrained"], "user_models": user}


def new_app(model: str = "shipped/tiny-baa", page: str | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=90)
    at.run()
    at.selectbox(key="model_id").set_value(model).run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    return at


def texts(at: AppTest) -> list[str]:
    """Every Markdown-rendered string on the page (element bodies, metric values, progress text)."""
    out = [e.value for kind in MARKUP for e in at.get(kind)]
    out += [m.value for m in at.metric] + [p.proto.text for p in at.get("progress")]
    return out


def copy_model(env, name: str, card_edit=None, config_edit=None, source: str = "tiny-baa") -> Path:
    dst = env["user_models"] / name
    shutil.copytree(env["pretrained"] / source, dst)
    if card_edit:
        card = json.loads((dst / "card.json").read_text())
        card_edit(card)
        (dst / "card.json").write_text(json.dumps(card))
    if config_edit:
        cfg = json.loads((dst / "config.json").read_text())
        config_edit(cfg)
        (dst / "config.json").write_text(json.dumps(cfg))
    return dst


# ---------------------------------------------------------------- 2. a training belongs to its session; others queue
def test_registry_owner_queue_and_positions(monkeypatch, tmp_path):
    from app.ui import worker

    def fake_watch(job):  # a "training" that lasts until it is cancelled: no child process in this test
        job._set("training", "fake")
        job.stop.wait(30)
        job._set("cancelled", "stopped")

    monkeypatch.setattr(worker.TrainingJob, "_watch", fake_watch)
    reg = worker.JobRegistry(max_queue=2)
    req = lambda name: worker.TrainRequest(name=name, task="synthetic", method="baa")
    a = reg.submit(req("a"), tmp_path, "alice")
    b = reg.submit(req("b"), tmp_path, "bob")
    c = reg.submit(req("c"), tmp_path, "carol")
    assert reg.running() is a and (reg.position(b), reg.position(c)) == (1, 2)
    with pytest.raises(RuntimeError, match="already have a training"):
        reg.submit(req("a2"), tmp_path, "alice")
    with pytest.raises(RuntimeError, match="already running or waiting"):
        reg.submit(req("b"), tmp_path, "dave")
    with pytest.raises(RuntimeError, match="already waiting"):
        reg.submit(req("e"), tmp_path, "erin")
    assert not reg.cancel(a.id, "bob") and not a.stop.is_set()  # only the owner cancels
    assert reg.cancel(b.id, "bob") and b.status == "cancelled" and reg.position(c) == 1  # leaving the queue
    assert reg.cancel(a.id, "alice")
    deadline = time.time() + 30
    while time.time() < deadline and reg.running() is not c:
        time.sleep(0.05)
    assert reg.running() is c and c.started is not None and not b.started  # the queue moved on, skipping b
    reg.cancel(c.id, "carol")
    c.thread.join(30)


def test_other_sessions_see_who_trains_and_queue_without_a_cancel_button(env):
    a = new_app(page="train")
    a.number_input(key="train_dense_epochs").set_value(50.0).run()
    a.text_input(key="train_name").input("first").run()
    a.button(key="train_start").click().run()
    assert not a.exception
    b = new_app(page="train")
    assert not b.exception
    assert any(i.value.startswith("Busy: **first** is training, started at") for i in b.info), [i.value for i in b.info]
    assert "train_cancel" not in {x.key for x in b.button}  # someone else's job: nothing to press
    assert b.button(key="train_start").label == "Queue training"
    b.text_input(key="train_name").input("second").run()
    b.button(key="train_start").click().run()
    assert any(i.value.startswith("Queued: **second** is number 1 of 1 waiting") for i in b.info), [i.value for i in b.info]
    assert "train_leave_queue" in {x.key for x in b.button}
    a.button(key="train_cancel").click().run()  # the owner cancels; the queued job starts by itself
    deadline = time.time() + 120
    while time.time() < deadline:
        b.run()
        if "train_cancel" in {x.key for x in b.button}:
            break
        time.sleep(1.0)
    assert "train_cancel" in {x.key for x in b.button}, [i.value for i in b.info]
    b.button(key="train_cancel").click().run()
    deadline = time.time() + 60
    while time.time() < deadline and not any("cancelled" in w.value for w in b.warning):
        time.sleep(1.0)
        b.run()
    assert not (env["user_models"] / "first").exists() and not (env["user_models"] / "second").exists()


# ---------------------------------------------------------------- 3. malformed card.json: one sentence per field, pages work
def test_pages_survive_a_malformed_card_and_say_what_is_wrong(env):
    def damage(card):
        rows = card["sweeps"]["baa"]
        rows[0]["accuracy"] = float("nan")
        rows[1]["budget"] = "0.5"
        rows[2] = "not a row"
        card["sweeps"]["posthoc"] = "oops"
        card["labels"] = ["a", "b"]
        card["analysis"] = [1, 2]

    copy_model(env, "damaged", damage)
    at = new_app("yours/damaged")
    assert any(o.startswith("⚠ damaged") for o in at.selectbox(key="model_id").options)
    for page in ("budget_explorer", "inspector", "attention", "paper", "overview"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not any("nan%" in t or "nan %" in t for t in texts(at)), page
    at.switch_page("app_pages/budget_explorer.py").run()
    warning = next(w.value for w in at.warning if "malformed fields" in w.value)
    for field in ("sweeps\\.baa\\[0\\]\\.accuracy", "sweeps\\.baa\\[1\\]\\.budget", "sweeps\\.baa\\[2\\]", "sweeps\\.posthoc",
                  "labels", "analysis"):
        assert field in warning, (field, warning)
    assert warning.count("\n- ") == 6


# ---------------------------------------------------------------- 6. user strings render as text, everywhere
INJECT = "[click](http://127.0.0.1:9/x) ![b](http://127.0.0.1:9/beacon) <b>bold</b> :red[c] $x$"


def test_user_strings_never_render_as_markup(env):
    markdown_it = pytest.importorskip("markdown_it")
    labels = [f"<b>l{i}</b> [x](http://127.0.0.1:9/l{i})" for i in range(8)]

    def inject(card):
        card.update(architecture=INJECT, labels=labels, command=INJECT + " `tick`", created=INJECT)

    copy_model(env, "evil[x](http:e)", inject)
    render = markdown_it.MarkdownIt("commonmark").render
    at = new_app("yours/evil[x](http:e)")
    for page in ("budget_explorer", "inspector", "attention", "overview"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, page
        for t in texts(at):
            html = render(t)
            assert "<a " not in html and "<img" not in html and "<b>" not in html, (page, t)
    assert any("\\[x\\]\\(http" in c.value for c in at.caption)  # the folder name, shown as typed
    # a model without a budget knob draws its class probabilities with Plotly: the labels' tags are shown, not applied
    copy_model(env, "evil-bf", inject, source="tiny-bf")
    at.run()  # the picker lists the new folder
    at.selectbox(key="model_id").set_value("yours/evil-bf").run()
    at.switch_page("app_pages/inspector.py").run()
    assert not at.exception
    probs = next(c for c in at.get("plotly_chart") if c.proto.id and "probability" in c.proto.spec)
    assert "<b>" not in probs.proto.spec and "&lt;b&gt;" in probs.proto.spec


def test_the_escaping_helpers():
    from app.ui import safe

    markdown_it = pytest.importorskip("markdown_it")
    render = markdown_it.MarkdownIt("commonmark").renderInline
    for s in (INJECT, "# heading\n\n- item\n> quote", "a\\*b", "``code`` and `x`", "<script>alert(1)</script>"):
        html = render(safe.md(s))
        assert "<a " not in html and "<img" not in html and "<script" not in html and "<em>" not in html
        assert markdown_it.MarkdownIt("commonmark").render(safe.md(s)).startswith("<p>")  # never a heading/list/quote
    assert render(safe.code("a `b` c")) == "<code>a `b` c</code>"
    assert safe.plot("<a href='x'>y</a>") == "&lt;a href='x'&gt;y&lt;/a&gt;"


# ---------------------------------------------------------------- 7. the name field: Hub names or folders in the models folder only
@pytest.mark.parametrize("name", ["/etc", "../../etc", "/root", "~/.ssh", "x/y/z"])
def test_the_picker_refuses_server_paths(env, name):
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.session_state["model_id"] = "hub:"
    at.session_state["hub_model_name"] = name
    at.switch_page("app_pages/budget_explorer.py").run()
    assert not at.exception and not at.error
    assert any("cannot be opened" in w.value and "models folder" in w.value for w in at.warning), [w.value for w in at.warning]


# ---------------------------------------------------------------- 4. an existing name is replaced only after "Replace"
def test_an_existing_model_is_replaced_only_after_confirmation(env):
    copy_model(env, "taken")
    at = new_app(page="train")
    at.text_input(key="train_name").input("taken").run()
    assert at.button(key="train_start").disabled
    assert any("already exists; tick" in c.value.replace("\\", "") for c in at.caption)
    at.checkbox(key="train_replace_taken").check().run()
    assert not at.exception and not at.button(key="train_start").disabled
    stamp = at.session_state["train_replace_stamp_taken"]
    (env["user_models"] / "taken" / "notes.txt").write_text("changed after the tick")
    at.run()
    assert at.button(key="train_start").disabled and any("changed since you ticked" in w.value for w in at.warning)
    from baa_core.io.checkpoint import folder_stamp

    assert stamp != folder_stamp(env["user_models"] / "taken")


# ---------------------------------------------------------------- 10. a rejected upload is not kept
def test_a_rejected_upload_is_removed_and_a_good_one_kept(env):
    at = new_app(page="train")
    at.radio(key="train_task").set_value("csv").run()
    at.file_uploader(key="train_csv").set_value(("bad.csv", b"text;label\n" + b"a;b\n" * 30, "text/csv")).run()
    assert not at.exception
    assert any("semicolon\\-separated" in e.value for e in at.error), [e.value for e in at.error]
    uploads = env["user_models"] / ".uploads"
    assert not (uploads.exists() and list(uploads.rglob("*")))  # nothing of the rejected file is kept
    at.file_uploader(key="train_csv").set_value(("good.csv", csv_bytes(60), "text/csv")).run()
    assert not at.exception and [p.name for p in uploads.rglob("*.csv")] == ["good.csv"]  # its own name, in its digest folder
    rows = b"text,label\n" + b"\n".join(f"row {i},{'a' if i % 2 else 'b'}".encode() for i in range(40)) + b"\n,a\n,b\nx,\n"
    at.file_uploader(key="train_csv").set_value(("gaps.csv", rows, "text/csv")).run()
    assert any("2 rows with an empty text" in w.value.replace("\\", "") and "1 row with an empty label" in
               w.value.replace("\\", "") for w in at.warning), [w.value for w in at.warning]


# ---------------------------------------------------------------- 11. a checkpoint that needs the Hub, offline
def test_a_checkpoint_needing_the_hub_is_flagged_and_fails_fast(env, monkeypatch):
    def needs_hub(cfg):
        cfg["external"] = {"source": "someone/not-cached-bert", "tensors": ["embeddings.word_embeddings.weight"]}

    copy_model(env, "needs-hub", config_edit=needs_hub)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("the Hub was asked while offline"))
    at = new_app()
    option = next(o for o in at.selectbox(key="model_id").options if "needs-hub" in o)
    assert option.startswith("⊘ needs-hub")
    at.selectbox(key="model_id").set_value("yours/needs-hub").run()
    at.switch_page("app_pages/budget_explorer.py").run()
    assert not at.exception
    assert any("cannot be loaded now" in e.value and "unreachable" in e.value for e in at.error), [e.value for e in at.error]
    at.switch_page("app_pages/overview.py").run()
    table = at.dataframe[0].value
    assert "unreachable" in table.loc[table["model"] == "needs-hub", "status"].iloc[0]

