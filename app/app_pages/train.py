"""Train: choose a task, a model and a method; training runs in a separate, lower-priority process
while this page shows a progress bar and live loss / accuracy / cost curves. The job belongs to this
session: only it can cancel; other sessions see who is training and queue behind it. The result is
saved atomically to your models folder (an existing model is replaced only after you confirm) and
appears in the model picker of every page."""
import hashlib
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from app.ui import catalog, figures, safe, state, uploads, worker
from baa_core import methods
from baa_core.io.data import TASKS as data_tasks
from baa_core.pipeline import default_train_config

TASK_NAMES = {"synthetic": "Synthetic marked-token task", "ag_news": "AG News", "dbpedia14": "DBpedia14"}
TASKS = {t: TASK_NAMES.get(t, t) for t in data_tasks} | {"csv": "Uploaded CSV"}
KINDS = {"word": "Word-level transformer (from scratch)", "bert": "BERT-family encoder (fine-tuned)"}
TRAINABLE = [m for m in methods.ordered(methods.METHODS) if methods.METHODS[m].trainable and m != "dense"]


@st.cache_resource
def job_registry() -> worker.JobRegistry:
    return worker.JobRegistry()


@st.cache_data(show_spinner="Checking the CSV…", max_entries=32)
def csv_check(path: str, digest: str, text_column: str, label_column: str) -> tuple[list[str], str | None]:
    """(warnings, refusal) of baa_core.io.data.load_csv for this file and these columns, computed once."""
    from baa_core.io.data import DataError, load_csv

    try:
        return load_csv(path, text_column, label_column).extra.get("warnings", []), None
    except DataError as exc:
        return [], str(exc)


def recipe_defaults(task: str, kind: str, method: str, budget: float | None) -> dict:
    """The advanced fields and the "Save as" name for this choice: the CLI's preset and TASK-KIND-METHOD[-BUDGET]."""
    preset = default_train_config("csv" if task == "csv" else task, kind)
    return {"train_dense_epochs": float(preset.dense_epochs), "train_budget_epochs": float(preset.budget_epochs),
            "train_hard_epochs": float(preset.hard_epochs), "train_bf_epochs": float(preset.bf_epochs), "train_max_rows": 0,
            "train_latency_batches": 8,
            "train_name": f"{task}-{kind}-{method}" + (f"-{budget:g}" if methods.METHODS[method].one_model_per_budget and budget
                                                       else "")}


def reset_recipe() -> None:
    """A new task, model kind, method or static budget: its defaults replace what the fields held (the old
    task's epochs and name would otherwise stay, under a caption that names the new preset)."""
    ss = st.session_state
    for k, v in recipe_defaults(ss.get("train_task", "synthetic"), ss.get("train_kind", "word"), ss.get("train_method", "baa"),
                                ss.get("train_static_budget", 0.5)).items():
        ss[k] = v


jobs = job_registry()
me = state.session_id()
st.title("Train a model")
job = jobs.get(st.session_state.get("train_job_id"))
job = job if job is not None and job.owner == me else None  # a session sees, and controls, only its own job
running = jobs.running()


# ---------------------------------------------------------------- this session's job (running, waiting or ended)
@st.fragment(run_every=2.0 if job is not None and not job.ended else None)
def job_panel():
    snap = job.snapshot()
    if snap["status"] == "queued":
        pos, ahead = jobs.position(job), jobs.running()
        busy = (f"**{safe.md(ahead.request.name)}** is training (started at {worker.fmt_clock(ahead.started)})"
                if ahead is not None else "the previous training is finishing")
        st.info(f"Queued: **{safe.md(snap['name'])}** is number {pos or 1} of {jobs.waiting()} waiting; it starts by itself "
                f"when it is its turn. Now {busy}.")
        st.button("Leave the queue", key="train_leave_queue", on_click=jobs.cancel, args=(job.id, me))
        return
    label = {"preparing": "Preparing the data", "training": "Training", "measuring": "Measuring the sweep",
             "done": "Done", "cancelled": "Cancelled", "failed": "Failed"}.get(snap["status"], "Starting")
    st.progress(snap["progress"], text=f"{label} **{safe.md(snap['name'])}** · {snap['elapsed_s']:.0f} s · "
                                       f"{safe.md(snap['message'], 160)}")
    if snap["events"] and not job.ended:  # light SVG while it runs, the interactive chart once it has ended
        st.markdown(figures.render_training_curves_svg(snap["events"]), unsafe_allow_html=True)
    elif snap["events"]:
        st.plotly_chart(figures.render_training_curves(snap["events"]), key="train_curves", config=figures.EXPORT_CONFIG)
    if snap["events"]:
        last = snap["events"][-1]
        num = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        st.caption(f"phase {safe.code(last['phase'])} step {last['step']}/{last['total_steps']} · loss {num(last['loss'])} · "
                   f"accuracy {num(last['accuracy'])} · cost {num(last['cost'])}")
    if not job.ended:
        st.button("Cancel training", key="train_cancel", on_click=jobs.cancel, args=(job.id, me), type="secondary")
    elif snap["status"] == "done":
        result = job.result or {}
        st.success(f"Saved **{safe.md(job.out.name)}** to {safe.code(job.out)}. It is in the model picker (sidebar) of every "
                   f"page now." + (f" ({safe.md(snap['message'].split('; ', 1)[-1])}.)" if result.get("renamed") else ""))
        for warning in result.get("warnings", []):
            st.warning(safe.md(warning))
        for method, rows in result.get("sweeps", {}).items():
            st.caption(f"{safe.md(method)}: measured on the test split")
            st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"train_result_{method}")
        st.caption("The latency columns were timed inside the app while it was drawing this page, so they carry more "
                   "noise than a quiet terminal run. To re-time them and update the card: "
                   f"{safe.code(f'python -m baa_core bench {job.out} --update-card')}.")
    elif snap["status"] == "cancelled":
        st.warning(f"Training was cancelled: {safe.md(snap['message'])}")
    elif snap["status"] == "failed":
        st.error(f"Training failed: {safe.md(snap['message'])}")
    if job.ended and st.session_state.get("train_seen_end") != job.id:
        st.session_state["train_seen_end"] = job.id
        st.rerun()  # the whole app, so the sidebar lists the new model


if job is not None:
    job_panel()
if running is not None and running is not job:
    st.info(f"Busy: **{safe.md(running.request.name)}** is training, started at {worker.fmt_clock(running.started)}"
            f"{f'; {jobs.waiting()} more waiting' if jobs.waiting() else ''}. A training you start now is queued and "
            f"starts by itself when it is its turn (one at a time on this machine); only the session that started a "
            f"training can cancel it.")
if job is not None or running is not None:
    st.divider()

# ---------------------------------------------------------------- what to train
st.subheader("New training run")
task = st.radio("Task", list(TASKS), format_func=TASKS.get, key="train_task", horizontal=True, on_change=reset_recipe)
problem = None
csv_path, text_col, label_col, digest = None, "text", "label", None
if task in ("ag_news", "dbpedia14"):
    problem = state.data_unavailable_reason({"task": task})
    if problem:
        st.warning(f"{TASKS[task]} cannot be trained here: {safe.md(problem)}.")
elif task == "csv":
    limit_mb = int(st.get_option("server.maxUploadSize"))
    up = st.file_uploader(f"A CSV with a header row, a text column and a label column (up to {limit_mb} MB)", type=["csv"],
                          key="train_csv")
    # the file's own name, made safe to store and to show (no markdown, no path)
    csv_name = up and (re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(up.name).stem).strip("._")[:80] or "upload")
    if up is None:
        problem = "upload a CSV first"
    elif up.size > limit_mb * 1024 * 1024:
        problem = f"{csv_name}.csv is {up.size / 2**20:.0f} MB; the limit is {limit_mb} MB"
        st.error(safe.md(problem))
    else:
        from baa_core.io.data import DataError, check_csv_file

        # Hash and store each upload once per session (the file can be large). It keeps its own (sanitised) file
        # name inside a folder named by its content, so cards and messages name the user's file; it is written
        # atomically, and a stored copy is reused only if its digest matches (app/ui/uploads.py).
        digest = st.session_state.get(f"train_csv_digest_{up.file_id}")
        if digest is None:
            digest = st.session_state[f"train_csv_digest_{up.file_id}"] = hashlib.sha256(up.getvalue()).hexdigest()
        csv_path = uploads.upload_path(catalog.user_models_dir(), digest, csv_name)
        if not csv_path.exists():
            csv_path = uploads.store_upload(up.getvalue(), catalog.user_models_dir(), digest, csv_name)
        try:
            check_csv_file(csv_path)  # encoding, delimiter, ragged lines, no rows: the real cause, with its line
            head = pd.read_csv(csv_path, nrows=20, keep_default_na=False)
            columns = [str(c) for c in head.columns]
        except (DataError, ValueError, OSError) as exc:
            columns = []
            problem = f"{csv_name}.csv cannot be used: {exc}"
            st.error(safe.md(problem))
            uploads.discard(csv_path)  # rejected: not kept
            st.session_state.pop(f"train_csv_digest_{up.file_id}", None)
            csv_path = None
        if columns:
            st.dataframe(head.head(5), hide_index=True, key="train_csv_preview")
            c1, c2 = st.columns(2)
            text_col = c1.selectbox("Text column", columns, index=columns.index("text") if "text" in columns else 0,
                                    key=f"train_text_col_{digest}")
            label_col = c2.selectbox("Label column", columns, key=f"train_label_col_{digest}",
                                     index=columns.index("label") if "label" in columns else min(1, len(columns) - 1))
            if text_col == label_col:
                problem = "the text and label columns must differ"
                st.error(f"This CSV cannot be trained on as chosen: {problem}.")
            else:
                warnings, refusal = csv_check(str(csv_path), digest, text_col, label_col)
                for w in warnings:
                    st.warning(safe.md(w))
                if refusal:
                    problem = refusal
                    st.error(f"This CSV cannot be trained on: {safe.md(refusal)}")

kind = st.radio("Model", list(KINDS), format_func=KINDS.get, key="train_kind", horizontal=True, on_change=reset_recipe)
base = None
if kind == "bert":
    base = st.text_input("Encoder (Hugging Face name or folder)", value=catalog.DEFAULT_BERT, key="train_base").strip()
    base_problem = None
    try:
        base = catalog.resolve_source(base)  # folders only inside your models folder
    except catalog.SourceRefused as exc:
        base_problem = str(exc)
    if base_problem is None and not catalog.is_offline_name(base) and not state.hub_online():
        base_problem = f"the Hugging Face Hub is unreachable, so {base} cannot be fetched ({catalog.DEFAULT_BERT} works offline)"
    if base_problem:
        problem = problem or base_problem
        st.warning(safe.md(base_problem))
    st.caption("BERT-family fine-tuning runs on the CPU here: expect tens of minutes on AG News; use *max training rows* below.")
method = st.radio("Method", TRAINABLE, format_func=methods.label, key="train_method", horizontal=True, on_change=reset_recipe)
budget = None
if methods.METHODS[method].one_model_per_budget:
    budget = st.select_slider("The static model's budget", [0.25, 0.5, 0.75], value=0.5, key="train_static_budget",
                              on_change=reset_recipe)

preset = default_train_config("csv" if task == "csv" else task, kind)
for field, value in recipe_defaults(task, kind, method, budget).items():
    st.session_state.setdefault(field, value)  # first visit, or a field that was hidden (Streamlit dropped its state)
with st.expander("Advanced"):
    c = st.columns(4)
    overrides = {"dense_epochs": c[0].number_input("dense epochs", 0.05, 50.0, key="train_dense_epochs")}
    if methods.METHODS[method].per_input:
        overrides["bf_epochs"] = c[1].number_input("BudgetFormer epochs", 0.05, 50.0, key="train_bf_epochs")
    else:
        overrides["budget_epochs"] = c[1].number_input("budget epochs", 0.05, 50.0, key="train_budget_epochs")
        overrides["hard_epochs"] = c[2].number_input("hard-gate epochs", 0.0, 50.0, key="train_hard_epochs")
    max_train = int(c[3].number_input("max training rows (0 = all)", 0, 10_000_000, step=500, key="train_max_rows")) or None
    latency_batches = int(st.number_input("latency batches of 8 for the card (0 = skip timing)", 0, 64, key="train_latency_batches"))
    shown = ("dense_epochs", "bf_epochs") if methods.METHODS[method].per_input else ("dense_epochs", "budget_epochs", "hard_epochs")
    st.caption(f"Defaults are the CLI's preset for this task and model ({', '.join(f'{f} {getattr(preset, f):g}' for f in shown)}); "
               f"changing the task, model or method puts them back. The rest of the recipe: `{preset.to_dict()}`")

name = st.text_input("Save as (folder name in your models folder)", key="train_name").strip()
name_problem = worker.check_name(name)
replace = None  # the folder_stamp of the model this session agreed to replace
if name_problem:
    st.caption(f"⚠ {name_problem}")
else:
    from baa_core.io.checkpoint import folder_stamp

    target = catalog.user_models_dir() / name
    stamp_key = f"train_replace_stamp_{name}"
    if target.exists():
        st.checkbox(f"Replace the existing model **{safe.md(name)}** (it is deleted when the new one is saved)",
                    key=f"train_replace_{name}",
                    on_change=lambda: st.session_state.update({stamp_key: folder_stamp(target)}))
        if st.session_state.get(f"train_replace_{name}") and st.session_state.get(stamp_key) is not None:
            replace = st.session_state[stamp_key]
            if folder_stamp(target) != replace:  # something else is there now: agree to that one explicitly
                st.warning(f"**{safe.md(name)}** changed since you ticked *Replace*; untick and tick it again to replace "
                           f"this version.")
                replace = None
        if replace is None:
            name_problem = f"a model called {name} already exists; tick *Replace* or pick another name"
            st.caption(f"⚠ {safe.md(name_problem)}")

blocked = problem or name_problem
label = "Queue training" if running is not None else "Start training"
if st.button(label, type="primary", key="train_start", disabled=bool(blocked)) and not blocked:
    try:
        request = worker.TrainRequest(name=name, task=task, method=method, kind=kind, base=base, budget=budget,
                                      csv_path=str(csv_path) if csv_path else None, text_column=text_col, label_column=label_col,
                                      max_train=max_train, overrides=overrides, latency_batches=latency_batches)
        new = jobs.submit(request, catalog.user_models_dir(), me, replace=replace)
        st.session_state["train_job_id"] = new.id
        st.rerun()
    except RuntimeError as exc:
        st.error(safe.message(exc))
if blocked:
    st.caption(f"Not ready: {safe.md(blocked)}.")
