"""Streamlit glue: cached loaders, the shared model picker, the shared budget.

Models are cached once per process (``st.cache_resource``) and never mutated: every call passes its
own budget, so sessions at different budgets share one model safely. Measurements that depend only
on (model, head set) are cached with ``st.cache_data`` and shared by every session.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from baa_core import methods

from . import catalog, compute, live_store, safe

MODEL_KEY = "model_id"  # the sidebar picker's widget key
NEXT_MODEL_KEY = "model_id_next"  # a model to select at the next run (the picker's key is fixed once it is drawn)
HUB_NAME_KEY = "hub_model_name"
BUDGET_KEY = "shared_budget"  # not a widget key: survives page switches
HUB_OPTION = "hub:"
HUB_OPTION_LABEL = "Hugging Face classifier by name…"


# ---------------------------------------------------------------- this session, this server
def session_id() -> str:
    """A random token kept in this session's state: what owns a training job (it cannot be guessed or
    shared by another session, and it lives exactly as long as the session's state)."""
    import uuid

    return st.session_state.setdefault("owner_token", uuid.uuid4().hex)


# ---------------------------------------------------------------- loaders
@st.cache_resource(show_spinner="Loading the model…", max_entries=6)
def load_checkpoint_cached(path: str, version: float):
    from baa_core.io.checkpoint import load_checkpoint

    return load_checkpoint(path)


@st.cache_resource(show_spinner="Loading the Hugging Face classifier…", max_entries=2)
def load_hf_classifier(source: str, version: float):
    """A Hugging Face classifier (Hub name or allow-listed folder) with its own head, labels and tokenizer,
    as a dense BudgetedClassifier: its predictions are the model's own."""
    from baa_core.io.checkpoint import Checkpoint
    from baa_core.io.hf_classifier import load_classifier

    hf = load_classifier(source, require_trained_head=True)
    cfg = hf.model.config
    card = {"name": Path(source).name if Path(source).is_dir() else source, "task": None, "method": "dense",
            "model_kind": "hf", "family": hf.family, "base_model": source, "labels": hf.labels, "sweeps": {},
            "architecture": f"{hf.family}: {cfg.n_layers} layers x {cfg.n_heads} heads, d={cfg.d_model}",
            "notes": "its own fine-tuned head and labels; no head ranking yet (Budget explorer: post-hoc budgets, no training)"}
    return Checkpoint(hf.model, hf.tokenizer, card, None)


def hub_online() -> bool:
    """Whether the Hugging Face Hub answers (HF_HUB_OFFLINE or a 1.5 s connection check, remembered a minute)."""
    from baa_core.io.hf_classifier import hub_reachable

    return hub_reachable()


@dataclass
class EvalData:
    """The checkpoint's test split, tokenized with its own tokenizer, and a fixed sample of it."""

    texts: list[str]
    labels: list[int]
    test: object  # EncodedDataset
    sample: list[int]
    latency_batches: list[dict]
    source: str
    live_accuracy_auto: bool  # accuracy on the sample is cheap enough to compute at every slider move
    live_latency_auto: bool  # timing a head layout takes ~0.1 s: done without being asked
    digest: str = ""  # sha256 of the sample (indices, token ids, labels): part of the on-disk live cache's key


def data_unavailable_reason(card: dict, folder: Path | None = None) -> str | None:
    """Why live evaluation cannot run for this card's task, or None if its data is on hand
    (``folder``: the checkpoint's, where a CSV model keeps its data)."""
    from baa_core.io.data import DataError, data_available, default_data_dir
    from baa_core.pipeline import kept_csv_args

    task = card.get("task")
    if task in ("synthetic", "synthetic_marks"):
        return None
    if task in ("ag_news", "dbpedia14"):
        # Live data comes from a local data folder only: the app does not download datasets from the Hub.
        if default_data_dir() is None:
            return f"no local {task} data (../shared/data or $BAA_DATA_DIR), and the app does not fetch it from the Hub"
        return data_available(task)
    if task == "csv":
        try:
            kept_csv_args(card, folder or Path("."))
            return None
        except DataError as exc:
            return str(exc)
    return "this model has no task with data to evaluate on"


@st.cache_resource(show_spinner="Preparing the evaluation data…", max_entries=4)
def eval_data(path: str, version: float, _ckpt) -> EvalData:
    from baa_core.measure.latency import latency_batches, padded_lengths
    from baa_core.pipeline import kept_csv_args, prepare

    card = _ckpt.card
    task = card.get("task")
    kw = kept_csv_args(card, path) if task == "csv" else {}
    prep = prepare(task or "synthetic", checkpoint=_ckpt, splits=("test",), **kw)
    lengths = prep.test.lengths()
    n = compute.sample_size(_ckpt.model, sum(lengths) / max(1, len(lengths)))
    sample = compute.sample_indices(len(prep.test), n)
    batches = latency_batches(prep.test, 8, 4)
    model = _ckpt.model
    return EvalData(prep.data.test.texts, list(prep.data.test.labels), prep.test, sample, batches, prep.data.source,
                    compute.dense_flops(model, [lengths[i] for i in sample]) < compute.LIVE_AUTO_FLOPS,
                    compute.dense_flops(model, padded_lengths(batches)) * 16 < compute.LIVE_AUTO_FLOPS / 10,
                    live_store.data_digest(prep.test.ids, prep.test.labels, sample))


def get_eval_data(entry: catalog.ModelEntry, ckpt) -> tuple[EvalData | None, str | None]:
    """(data, None) when live evaluation can run, else (None, reason)."""
    if entry.path is None:
        return None, "a model loaded by name has no task data"
    reason = data_unavailable_reason(ckpt.card, entry.path)
    if reason:
        return None, reason
    try:
        return eval_data(str(entry.path), entry.version, ckpt), None
    except Exception as exc:  # data files can be malformed in many ways; the page falls back to the card
        return None, f"the evaluation data could not be prepared ({type(exc).__name__}: {str(exc)[:200]})"


@st.cache_resource(show_spinner=False, max_entries=16)
def _live_store(path: str, version: float, data_digest: str) -> live_store.LiveStore | None:
    """The on-disk live accuracies of one (checkpoint, sample), keyed by their contents (``live_store``);
    None when there is nothing to key them by (no folder, no sample digest) or the folder cannot be read."""
    if not data_digest or not Path(path).is_dir():
        return None
    try:
        return live_store.LiveStore(live_store.make_key(live_store.checkpoint_digest(path), data_digest))
    except OSError:
        return None


@st.cache_data(show_spinner=False, max_entries=512)
def live_accuracy_cached(path: str, version: float, mask_key: tuple, _ckpt, _data: EvalData) -> float:
    """Accuracy on the live sample with these heads: measured once per server (Streamlit's cache: sessions
    asking meanwhile wait for it) and once per (weights, sample, code) across restarts (the disk store)."""
    import torch

    def measure() -> float:
        point = compute.OperatingPoint(None, torch.tensor(mask_key, dtype=torch.float32), None)
        return compute.live_accuracy(_ckpt.model, _data.test, _data.sample, point)

    store = _live_store(path, version, _data.digest)
    return measure() if store is None else store.get_or_measure(mask_key, measure)


@st.cache_data(show_spinner="Timing dense vs sliced on this CPU…", max_entries=256)
def live_latency_cached(path: str, version: float, heads_per_layer: tuple, threads: int, _ckpt, _data: EvalData) -> dict:
    return compute.live_latency(_ckpt.model, _data.latency_batches, list(heads_per_layer), threads)


# ---------------------------------------------------------------- the shared picker
@dataclass
class Selected:
    entry: catalog.ModelEntry
    ckpt: object  # baa_core.io.checkpoint.Checkpoint

    @property
    def model(self):
        return self.ckpt.model

    @property
    def card(self):
        """The typed card (baa_core.io.card.Card), validated once when the model was loaded."""
        return self.ckpt.typed_card

    @property
    def key(self) -> tuple[str, float]:
        return (self.entry.id if self.entry.path is None else str(self.entry.path), self.entry.version)


def model_picker() -> None:
    """The sidebar's model picker: shipped models, yours, and a BERT by Hugging Face name."""
    entries = catalog.list_models()
    options = [e.id for e in entries] + [HUB_OPTION]
    labels = {e.id: e.label for e in entries}
    labels[HUB_OPTION] = HUB_OPTION_LABEL
    if st.session_state.get(NEXT_MODEL_KEY) in options:
        st.session_state[MODEL_KEY] = st.session_state.pop(NEXT_MODEL_KEY)
    if MODEL_KEY not in st.session_state and st.query_params.get("model") in options:
        st.session_state[MODEL_KEY] = st.query_params["model"]  # a link can name the model: ?model=shipped/NAME
    if st.session_state.get(MODEL_KEY) not in options:
        default = catalog.default_entry(entries)
        st.session_state[MODEL_KEY] = default.id if default else options[0]
    with st.sidebar:
        st.selectbox("Model", options, key=MODEL_KEY, format_func=lambda i: labels.get(i, i),
                     help="Shipped models (pretrained/), yours (the user models folder: checkpoints and Hugging Face "
                          "classifier folders), or a Hugging Face classifier by name.")
        if st.session_state[MODEL_KEY] == HUB_OPTION:
            st.text_input("Hugging Face name, or a folder in your models folder", key=HUB_NAME_KEY,
                          placeholder="e.g. textattack/bert-base-uncased-SST-2",
                          help="BERT, RoBERTa, XLM-RoBERTa, DistilBERT, ELECTRA or ALBERT with a trained classification "
                               "head; names need the Hub (or its local cache), folders must sit in your models folder.")
        st.caption(f"{sum(e.source == 'shipped' for e in entries)} shipped, "
                   f"{sum(e.source in ('yours', 'hf') for e in entries)} yours (in {safe.code(_short(catalog.user_models_dir()))})")


def select_model_next_run(model_id: str) -> None:
    """Pick ``model_id`` in the sidebar at the next rerun (e.g. a model this run just saved)."""
    st.session_state[NEXT_MODEL_KEY] = model_id


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(catalog.ROOT))
    except ValueError:
        return str(path)


def selected_entry() -> catalog.ModelEntry | None:
    choice = st.session_state.get(MODEL_KEY)
    if choice == HUB_OPTION:
        return catalog.hub_entry(st.session_state.get(HUB_NAME_KEY) or "")
    for e in catalog.list_models():
        if e.id == choice:
            return e
    return None


def require_model() -> Selected:
    """The picked model, loaded; or a clear message on the page and the page stops (the app keeps working)."""
    from baa_core.io.checkpoint import CheckpointError

    entry = selected_entry()
    if entry is None:
        st.info("No model is available yet: train one on the **Train** page, or pick *Hugging Face classifier by name* in "
                "the sidebar.")
        st.stop()
    if entry.source in ("hub", "hf"):
        return Selected(entry, _load_hf_or_stop(entry))
    if entry.needs:  # e.g. word embeddings from a Hub model while offline: say so at once
        st.error(f"This model cannot be loaded now: it {safe.md(entry.needs)}. Pick another model in the sidebar.")
        st.stop()
    try:
        sel = Selected(entry, load_checkpoint_cached(str(entry.path), entry.version))
    except CheckpointError as exc:
        st.error(f"This model cannot be loaded: {safe.message(exc)}. Pick another model in the sidebar.")
        st.stop()
    except Exception as exc:  # a checkpoint can be broken in ways the loader did not foresee
        st.error(f"This model cannot be loaded ({type(exc).__name__}: {safe.message(exc)}). Pick another model in the sidebar.")
        st.stop()
    if sel.card.problems:  # one sentence per malformed field of card.json; the page uses what is sound
        st.warning("This model's card.json has malformed fields; the page ignores them:\n\n"
                   + "\n".join(f"- {safe.md(p, 300)}" for p in sel.card.problems[:12])
                   + (f"\n- … and {len(sel.card.problems) - 12} more" if len(sel.card.problems) > 12 else ""))
    return sel


def _load_hf_or_stop(entry: catalog.ModelEntry):
    """A Hugging Face classifier for the picker, or one sentence on the page (offline names fail at once:
    the Hub's reachability is checked before transformers could retry)."""
    from baa_core.io.hf_classifier import ModelSourceError, UnsupportedModel

    try:
        source = str(entry.path) if entry.path is not None else catalog.resolve_source(entry.name)
    except catalog.SourceRefused as exc:
        if entry.name:
            st.warning(f"**{safe.md(entry.name, 120)}** cannot be opened: {safe.message(exc)}.")
        else:
            st.info(f"To open a Hugging Face classifier, {safe.message(exc)}.")
        st.stop()
    version = entry.version if entry.path is not None else (Path(source).stat().st_mtime if catalog.is_folder(source) else 0.0)
    try:
        return load_hf_classifier(source, version)
    except (ModelSourceError, UnsupportedModel) as exc:
        st.warning(f"**{safe.md(entry.name, 120)}** cannot be opened: {safe.message(exc)}.")
    except Exception as exc:  # a folder can be broken in ways the loader did not foresee
        st.error(f"**{safe.md(entry.name, 120)}** cannot be opened ({type(exc).__name__}: {safe.message(exc)}).")
    st.stop()


# ---------------------------------------------------------------- the shared budget
def budget_widget(model, key: str, label: str = "Budget (share of heads to keep)") -> float | None:
    """A budget slider whose value is shared by every page of this session. None for models without gates."""
    if not compute.has_budget(model):
        return None
    choices = compute.budget_choices(model)
    shared = compute.snap_budget(model, st.session_state.get(BUDGET_KEY))
    current = st.session_state.get(key)
    if current is None or min(abs(float(current) - c) for c in choices) > 1e-6:
        st.session_state[key] = shared

    if methods.method_for_model(model).one_model_per_budget:
        value = st.select_slider(label + " — trained budgets only", options=choices, key=key,
                                 help="A static-gate model has one gate set per budget it was trained for.")
    else:
        value = st.slider(label, min_value=choices[0], max_value=choices[-1], step=compute.BUDGET_STEP, key=key, format="%.2f",
                          help="k = round(b x layers x heads) heads stay on (at least one per layer).")
    value = round(float(value), 4)
    st.session_state[BUDGET_KEY] = value  # what the other pages start from
    return value


# ---------------------------------------------------------------- one input
SHARED_TEXT = "shared_text"  # the text the inspector and the attention page look at (not a widget key)


@st.cache_resource(max_entries=8)
def _latency_cache(path: str, version: float) -> dict:
    """Sliced models per head set for per-input timing, shared by sessions; the lock guards that cache
    (the timings themselves are serialised process-wide by ``baa_core.measure.latency.TIMING_LOCK``)."""
    import threading

    return {"lock": threading.Lock(), "cache": {}}


@st.cache_data(show_spinner="Running the model on this input…", max_entries=16)
def inspect_cached(path: str, version: float, text: str, budget: float | None, attentions: bool, latency: bool, _ckpt):
    """``baa_core.measure.inspection.inspect_text`` for one (model, text, budget), measured once and then reused."""
    from baa_core.measure.inspection import inspect_text

    run = functools.partial(inspect_text, _ckpt.model, _ckpt.tokenizer, text, budget=budget, attentions=attentions,
                            latency=latency, threads=1, label_names=_ckpt.typed_card.labels or None)
    if not latency:  # no timing, no shared slice cache: nothing to wait for
        return run()
    shared = _latency_cache(path, version)
    with shared["lock"]:
        return run(latency_cache=shared["cache"])


@dataclass
class LayoutViews:
    """One input under one head layout, as the Attention page draws it."""

    ins: object  # baa_core.measure.inspection.Inspection; attentions cut to the first n_tokens tokens
    weights: list  # bertviz_view.layout_weights: per layer, per head, base64 bytes or None (off)


@st.cache_data(show_spinner="Running the model on this input…", max_entries=32)
def attention_for_layout(path: str, version: float, text: str, layout: tuple | None, n_tokens: int, _ckpt,
                         _budget: float | None) -> LayoutViews:
    """Attention maps for one (model, text, head layout): cached per layout (the set of heads that run), not
    per budget. Budgets with the same layout run the same forward pass (the hard gates are 0/1), so any of
    them (``_budget``) computes the entry. ``layout`` is None where the model picks its own heads
    (BudgetFormer) or runs them all."""
    import torch
    from baa_core.measure.inspection import inspect_text
    from baa_core.measure.latency import TIMING_LOCK

    from app.ui import bertviz_view

    # One torch thread, under the lock the timings hold while they set the (process-wide) thread count: on a
    # busy 2-core machine MiniLM's forward took ~2 s with torch's default 2 threads and ~0.1 s with one.
    with TIMING_LOCK:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            ins = inspect_text(_ckpt.model, _ckpt.tokenizer, text, budget=_budget, attentions=True, latency=False,
                               label_names=_ckpt.card.get("labels") or None)
        finally:
            torch.set_num_threads(threads)
    ins.attentions = [a[:, :n_tokens, :n_tokens].contiguous() for a in ins.attentions]
    return LayoutViews(ins, bertviz_view.layout_weights(ins.attentions, ins.head_weights))


def attention_or_stop(sel, text: str, budget: float | None, layout: tuple | None, n_tokens: int) -> LayoutViews:
    """``attention_for_layout`` for the selected model; bad input ends the page run with a message."""
    with _input_errors("Nothing to draw"):
        return attention_for_layout(*sel.key, text, layout, n_tokens, sel.ckpt, budget)


def input_warnings(ins, max_len: int) -> None:
    """What every page that runs one text says about it: cut to the model's length, mostly unknown words
    (counted without [CLS] / [SEP], so MiniLM warns like the word model)."""
    if ins.truncated:
        st.warning(f"The text is longer than the model reads: only its first {len(ins.tokens)} tokens were used "
                   f"(max length {max_len}).")
    if ins.mostly_unknown:
        st.warning(f"{ins.unknown_tokens} of the {ins.content_tokens} tokens of this text are unknown to this model's "
                   "vocabulary ([UNK]): its prediction and attention say little about this text.")


@contextlib.contextmanager
def _input_errors(nothing: str):
    from baa_core.measure.inspection import InputError

    try:
        yield
    except InputError as exc:
        st.warning(f"{nothing}: {safe.message(exc)}.")
        st.stop()
    except ValueError as exc:
        st.error(f"The model cannot run on this input: {safe.message(exc)}")
        st.stop()


def inspect_or_stop(sel, text: str, budget: float | None, *, attentions: bool, latency: bool, nothing: str):
    """``inspect_cached`` for the selected model; bad input ends the page run with a message, not a traceback."""
    with _input_errors(nothing):
        return inspect_cached(*sel.key, text, budget, attentions, latency, sel.ckpt)


def default_text(card: dict, data: EvalData | None) -> str:
    if data is not None and data.texts:
        return data.texts[data.sample[0] if data.sample else 0]
    if card.get("task") == "synthetic":
        return "p q a [M] c r s t u v w x y z b d"
    return "Stocks rallied on Wall Street after the central bank held interest rates steady."


def text_input(card: dict, data: EvalData | None, key: str) -> tuple[str, int | None]:
    """A text box or a dataset example, shared between pages (per task) through SHARED_TEXT. Returns (text, example index)."""
    task = card.get("task") or "any"
    shared = st.session_state.setdefault(SHARED_TEXT, {})
    options = ["Type text", "Dataset example"] if data is not None else ["Type text"]
    mode_key, idx_key = f"{key}_mode", f"{key}_index"
    if st.session_state.get(mode_key) not in options:
        st.session_state[mode_key] = options[0]
    mode = st.radio("Input", options, key=mode_key, horizontal=True)
    if mode == "Dataset example":
        n = len(data.texts)
        if not isinstance(st.session_state.get(idx_key), int) or not 0 <= st.session_state[idx_key] < n:
            st.session_state[idx_key] = data.sample[0] if data.sample else 0
        idx = int(st.number_input(f"Test example (0-{n - 1})", min_value=0, max_value=n - 1, step=1, key=idx_key))
        text = data.texts[idx]
        label = data.labels[idx]
        st.markdown(f"> {safe.md(text, 600)}")
        st.caption(f"true label: **{safe.md(card.label_name(label))}** · {safe.md(data.source)}")
        shared[task] = text
        return text, idx
    box_key = f"{key}_text_{task}"  # one box per task: a news headline means nothing to the synthetic model
    if box_key not in st.session_state:
        st.session_state[box_key] = shared.get(task) or default_text(card, data)
    text = st.text_area("Text", key=box_key, height=100, max_chars=None)
    shared[task] = text
    return text, None
