"""Train: choose a task, a model and a method; training runs in a background thread while this page
shows a progress bar and live loss / accuracy / cost curves; Cancel stops it between steps. The
result is saved atomically to your models folder and appears in the model picker of every page."""
import hashlib
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from app.ui import catalog, figures, state, worker
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
st.title("Train a model")
job = jobs.get(st.session_state.get("train_job_id")) or jobs.running()


# ---------------------------------------------------------------- the running (or last) job
@st.fragment(run_every=2.0 if job is not None and job.running else None)
def job_panel():
    snap = job.snapshot()
    label = {"queued": "Starting", "preparing": "Preparing the data", "training": "Training", "measuring": "Measuring the sweep",
             "done": "Done", "cancelled": "Cancelled", "failed": "Failed"}[snap["status"]]
    st.progress(snap["progress"], text=f"{label} **{snap['name']}** · {snap['elapsed_s']:.0f} s · {snap['message'][:160]}")
    if snap["events"] and job.running:  # light SVG while it runs, the interactive chart once it has ended
        st.markdown(figures.render_training_curves_svg(snap["events"]), unsafe_allow_html=True)
    elif snap["events"]:
        st.plotly_chart(figures.render_training_curves(snap["events"]), key="train_curves", config=figures.EXPORT_CONFIG)
    if snap["events"]:
        last = snap["events"][-1]
        st.caption(f"phase `{last['phase']}` step {last['step']}/{last['total_steps']} · loss {last['loss']:.4f} · "
                   f"accuracy {last['accuracy']:.3f} · cost {last['cost']:.3f}")
    if job.running:
        st.button("Cancel training", key="train_cancel", on_click=job.cancel, type="secondary")
    elif snap["status"] == "done":
        st.success(f"Saved **{snap['name']}** to `{job.out}`. It is in the model picker (sidebar) of every page now.")
        for method, rows in (job.result or {}).get("sweeps", {}).items():
            st.caption(f"{method}: measured on the test split")
            st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"train_result_{method}")
        st.caption("The latency columns were timed inside the app while it was drawing this page, so they carry more "
                   "noise than a quiet terminal run. To re-time them and update the card: "
                   f"`python -m baa_core bench {job.out} --update-card`.")
    elif snap["status"] == "cancelled":
        st.warning(f"Training was cancelled: {snap['message']}")
    elif snap["status"] == "failed":
        st.error(f"Training failed: {snap['message']}")
    if not job.running and st.session_state.get("train_seen_end") != job.id:
        st.session_state["train_seen_end"] = job.id
        st.rerun()  # the whole app, so the sidebar lists the new model


if job is not None:
    job_panel()
    st.divider()

# ---------------------------------------------------------------- what to train
running = jobs.running()
st.subheader("New training run")
task = st.radio("Task", list(TASKS), format_func=TASKS.get, key="train_task", horizontal=True, on_change=reset_recipe)
problem = None
csv_path, text_col, label_col = None, "text", "label"
if task in ("ag_news", "dbpedia14"):
    problem = state.data_unavailable_reason({"task": task})
    if problem:
        st.warning(f"{TASKS[task]} cannot be trained here: {problem}.")
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
        st.error(problem)
    else:
        # Hash and store each upload once (not on every rerun of this page): the file can be large. It keeps its
        # own (sanitised) file name inside a folder named by its content, so cards and messages name the user's file.
        digest = st.session_state.get(f"train_csv_digest_{up.file_id}")
        folder = catalog.user_models_dir() / ".uploads" / (digest or "")
        if digest is None:
            content = up.getvalue()
            digest = st.session_state[f"train_csv_digest_{up.file_id}"] = hashlib.sha256(content).hexdigest()[:16]
            folder = catalog.user_models_dir() / ".uploads" / digest
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / f"{csv_name}.csv").exists():
                (folder / f"{csv_name}.csv").write_bytes(content)
        csv_path = folder / f"{csv_name}.csv"
        try:
            head = pd.read_csv(csv_path, nrows=20)
            columns = [str(c) for c in head.columns]
        except Exception as exc:  # not a CSV at all, empty, binary...
            columns = []
            problem = f"{csv_name}.csv could not be read as a CSV ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
            st.error(problem)
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
        st.warning(base_problem)
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
name_problem = worker.check_name(name, catalog.user_models_dir())
if name_problem:
    st.caption(f"⚠ {name_problem}")

blocked = problem or name_problem or (f"{running.request.name} is training; one run at a time on this machine" if running else None)
if st.button("Start training", type="primary", key="train_start", disabled=bool(blocked)):
    from baa_core.io.data import DataError, load_csv

    try:
        if task == "csv":
            load_csv(csv_path, text_col, label_col)  # wrong columns, too few rows, one class: say so now, not in the thread
        request = worker.TrainRequest(name=name, task=task, method=method, kind=kind, base=base, budget=budget,
                                      csv_path=str(csv_path) if csv_path else None, text_column=text_col, label_column=label_col,
                                      max_train=max_train, overrides=overrides, latency_batches=latency_batches)
        new = jobs.start(request, catalog.user_models_dir())
        st.session_state["train_job_id"] = new.id
        st.rerun()
    except DataError as exc:
        st.error(f"This CSV cannot be trained on: {exc}")
    except RuntimeError as exc:
        st.error(str(exc))
if blocked:
    st.caption(f"Not ready: {blocked}.")
