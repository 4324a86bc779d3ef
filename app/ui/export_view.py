"""Export this budget: the explorer's one-line call that writes the sliced model at the current budget
(``baa_core.pipeline.export_model``, the same function as ``python -m baa_core export``) and offers the
folder as a zip.

The export is measured right after it is written, like the CLI's, but on the explorer's live sample
(or, without data, latency on random tokens and no accuracy) and with fewer timing rounds, so it takes
seconds rather than minutes; the card inside the zip says which.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from app.ui import compute, state

RESULT_KEY = "export_result"  # the last export of this session: its key, file name, zip bytes and card


def export_name(model_name: str, budget: float) -> str:
    """A folder / file name for the export: the model's name with the budget, safe on any filesystem."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", model_name).strip("-.") or "model"
    return f"{safe}-b{budget:.2f}"


def run_export(ckpt, budget: float, *, int8: bool, onnx: bool, data=None) -> tuple[bytes, dict]:
    """Export into a temporary folder, measure it, and return (zip bytes, card); the folder is removed."""
    from baa_core.io.export import zip_folder
    from baa_core.pipeline import export_model

    with tempfile.TemporaryDirectory(prefix="baa-export-") as tmp:
        out = Path(tmp) / export_name(ckpt.name, budget)
        card = export_model(ckpt, out, budget, int8=int8, onnx=onnx, test=data.test if data else None,
                            indices=data.sample if data else None, data_note="" if data else "no test data on this machine",
                            rounds=3, n_latency_batches=2, threads=1, command="app: Budget explorer, Export this budget")
        return zip_folder(out), card


def render_export(sel, data=None) -> None:
    """An "Export this budget" button and, once exported, the zip's download button and what was measured."""
    from baa_core.model.runtimes import MissingPackage, onnx_missing

    model = sel.model
    if not compute.has_budget(model):
        return
    budget = compute.snap_budget(model, st.session_state.get(state.BUDGET_KEY))
    why_no_onnx = onnx_missing()
    with st.expander("Export this budget: take home the sliced model"):
        st.caption("Writes the model at the current budget with only its active heads (a safetensors folder that "
                   "`baa_core.io.checkpoint.load_checkpoint` opens, a Hugging Face-style `config.json`, the tokenizer), "
                   "measures it after export" + (f" on the live sample ({len(data.sample)} test examples)" if data else
                                                 " (no test data here: latency only)") +
                   ", and offers it as a zip. The command line does the same on the full test split: "
                   "`python -m baa_core export MODEL --budget B --out DIR [--int8] [--onnx]`.")
        left, right = st.columns(2)
        onnx = left.checkbox("ONNX file (runs in ONNX Runtime, no project code)", key="export_onnx", disabled=bool(why_no_onnx),
                             help=why_no_onnx or "model.onnx with dynamic batch and length")
        int8 = right.checkbox("int8 (dynamic, Linear layers)", key="export_int8",
                              help="Measured after export; with ONNX also writes model.int8.onnx (ONNX Runtime's quantizer).")
        key = (sel.key, budget, bool(onnx), bool(int8))
        # The label does not name the budget: the slider lives in a fragment, so this part of the page can be a
        # few slider moves behind until the click reruns it and reads the budget afresh.
        if st.button("Export the current budget", key="export_button", type="primary"):
            with st.spinner(f"Exporting and measuring the sliced model at budget {budget:.2f}…"):
                try:
                    blob, card = run_export(sel.ckpt, budget, int8=int8, onnx=onnx and not why_no_onnx, data=data)
                except (ValueError, MissingPackage) as exc:
                    st.error(f"Could not export: {exc}")
                    return
            st.session_state[RESULT_KEY] = {"key": key, "name": export_name(sel.ckpt.name, budget), "zip": blob, "card": card}
        done = st.session_state.get(RESULT_KEY)
        if not done or done["key"] != key:
            return
        e = done["card"]["export"]
        st.download_button(f"Download {done['name']}.zip ({len(done['zip']) / 1e6:.1f} MB)", done["zip"], f"{done['name']}.zip",
                           "application/zip", key="export_download")
        st.caption(f"{e['active_heads']}/{e['total_heads']} heads, per layer {e['heads_per_layer']}; accuracy on "
                   f"{e['accuracy_data']}; latency: {done['card']['latency']['inputs']}, 1 thread, batches of 8, each "
                   f"variant timed beside the dense model.")
        table = pd.DataFrame(e["variants"])[["variant", "accuracy", "n", "ms_per_batch", "speedup_vs_dense"]]
        st.dataframe(table, hide_index=True, key="export_variants")
