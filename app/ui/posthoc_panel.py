"""Budgets for a Hugging Face classifier you brought, with no training (the Budget explorer shows this
for such a model): upload a CSV, rank its heads on held-out rows, sweep the budgets, save.

The run is ``baa_core.pipeline.posthoc_and_save`` (what ``python -m baa_core posthoc`` runs) on the model
already loaded, with a small ranking sample and few latency batches so it takes seconds, not
minutes; the result is a checkpoint in your models folder whose slider keeps the top-ranked heads.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from app.ui import catalog, safe, state, uploads, worker

IMPORTANCE_EXAMPLES = 256
LATENCY_BATCHES = 4


def _stored_upload(up) -> Path:
    """The upload stored once under its content hash (atomically; a stored copy is reused only if its
    digest matches: app/ui/uploads.py)."""
    key = f"posthoc_csv_digest_{up.file_id}"
    if key not in st.session_state:
        st.session_state[key] = hashlib.sha256(up.getvalue()).hexdigest()
    path = uploads.upload_path(catalog.user_models_dir(), st.session_state[key])
    return path if path.exists() else uploads.store_upload(up.getvalue(), catalog.user_models_dir(), st.session_state[key])


def render(sel) -> None:
    """The form: CSV, columns, a name, one button; the new model is selected once it is saved."""
    st.subheader("Budgets for this model, with no training")
    st.caption(f"Upload a sample of your data: the heads of **{safe.md(sel.entry.name)}** are ranked by how much the loss depends on "
               f"each (validation importance, up to {IMPORTANCE_EXAMPLES} held-out rows), the budgets 0.1-1.0 keep the "
               f"top-ranked heads and are evaluated on a held-out 20% by the sliced model, and each is timed beside the dense "
               f"model. Labels may be the model's own names ({safe.md(', '.join(sel.card.get('labels', [])[:6]))}) or its "
               f"integer ids.")
    limit_mb = int(st.get_option("server.maxUploadSize"))
    up = st.file_uploader(f"A CSV with a text column and a label column (up to {limit_mb} MB)", type=["csv"], key="posthoc_csv")
    if up is None:
        return
    if up.size > limit_mb * 2**20:
        st.error(f"{safe.md(up.name)} is {up.size / 2**20:.0f} MB; the limit is {limit_mb} MB.")
        return
    from baa_core.io.data import DataError, check_csv_file

    path = _stored_upload(up)
    try:
        check_csv_file(path)  # encoding, delimiter, ragged lines, no rows: the real cause, with its line
        columns = [str(c) for c in pd.read_csv(path, nrows=20, keep_default_na=False).columns]
    except (DataError, ValueError, OSError) as exc:  # not a CSV at all, empty, binary...
        st.error(f"{safe.md(up.name)} cannot be used: {safe.message(exc)}")
        uploads.discard(path)  # rejected: not kept
        st.session_state.pop(f"posthoc_csv_digest_{up.file_id}", None)
        return
    c1, c2 = st.columns(2)
    text_col = c1.selectbox("Text column", columns, index=columns.index("text") if "text" in columns else 0,
                            key=f"posthoc_text_col_{path.stem}")
    label_col = c2.selectbox("Label column", columns, index=columns.index("label") if "label" in columns else min(1, len(columns) - 1),
                             key=f"posthoc_label_col_{path.stem}")
    default = re.sub(r"[^A-Za-z0-9_.-]+", "-", sel.entry.name).strip("-.")[:50] + "-posthoc"
    name = st.text_input("Save as (folder name in your models folder)", value=default, key="posthoc_name").strip()
    problem = worker.check_name(name) or (
        f"a model called {name} already exists in your models folder; pick another name"
        if (catalog.user_models_dir() / name).exists() else None) or (
        "the text and label columns must differ" if text_col == label_col else None)
    if problem:
        st.caption(f"⚠ {safe.md(problem)}")
    if not st.button("Rank the heads and sweep the budgets (no training)", key="posthoc_start", type="primary",
                     disabled=bool(problem)):
        return
    from baa_core.io.checkpoint import CheckpointError
    from baa_core.pipeline import posthoc_and_save, prepare_posthoc

    out = catalog.user_models_dir() / name
    command = (f"python -m baa_core posthoc {sel.card.get('base_model') or sel.entry.name} --csv {up.name} --text-column "
               f"{text_col} --label-column {label_col} --importance-examples {IMPORTANCE_EXAMPLES} --latency-batches "
               f"{LATENCY_BATCHES} --out user_models/{name}  # from the app's Budget explorer")
    try:
        with st.spinner("Ranking the heads and sweeping the budgets…"):
            prep = prepare_posthoc(sel.ckpt, csv=path, text_column=text_col, label_column=label_col)
            posthoc_and_save(prep, out, importance_examples=IMPORTANCE_EXAMPLES, n_latency_batches=LATENCY_BATCHES,
                             command=command, name=name)
    except (ValueError, CheckpointError) as exc:  # DataError, label mismatch, too few rows, name taken: one sentence each
        st.error(f"The post-hoc sweep could not run: {safe.message(exc)}")
        return
    state.select_model_next_run(f"yours/{name}")
    st.rerun()
