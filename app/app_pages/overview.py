"""Overview: what an attention budget is, one picture of it, and the models on hand."""
import pandas as pd
import streamlit as st

from app.ui import catalog, figures, live_panel, safe, state
from baa_core import methods
from baa_core.model.gates import unnested_heads

st.title("Budgeted Attention Explorer")
st.markdown(
    "A transformer reads text with many **attention heads** in every block. Most inputs do not need all of them. "
    "An **attention budget** b says what share of the heads may run: at b = 0.5 a model keeps half its heads and "
    "physically drops the rest (their weights are sliced out), so it really runs faster on a CPU.\n\n"
    "- **BAA** (budgeted attention allocation) trains *one* model whose per-head gates open as the budget grows: "
    "pick any budget at run time.\n"
    "- **BudgetFormer** lets each block decide *per input* how many heads it needs (budget s) and which ones (relevance q).\n\n"
    "Every number in this app is measured by this project's code (live, or recorded in the model's card when it was "
    "trained); numbers from the papers are labelled as the paper's."
)

st.subheader("The picture: drag the budget, watch the heads switch on")
entries = catalog.list_models()
picked = state.selected_entry()
baa = [e for e in ([picked] if picked else []) + entries
       if e and getattr(methods.METHODS.get(e.card.get("method")), "slides", False) and e.path is not None and not e.problem and not e.needs]
if baa:
    entry = baa[0]
    try:
        sel = state.Selected(entry, state.load_checkpoint_cached(str(entry.path), entry.version))
        live_panel.show(sel, None, key="overview_live", mode="overview")
        st.caption(f"The layer x head grid of **{safe.md(entry.name)}**, computed from its weights. At a budget the top round(b x heads) "
                   f"gates run (at least one per block). This slider is the picture's own; the **Budget explorer** adds accuracy, "
                   f"latency and the Pareto chart.")
        st.markdown(figures.render_unnested_note(safe.md(entry.name), unnested_heads(sel.model.gate, [round(0.05 * i, 2) for i in range(2, 21)])))
    except Exception as exc:  # a broken checkpoint must not break the overview
        st.warning(f"The picture needs a BAA model; {safe.md(entry.name)} could not be loaded ({safe.message(exc, 200)}).")
else:
    st.info("No BAA model is on hand yet to draw the picture: train one on the **Train** page.")

st.subheader("Models on hand")
if entries:
    table = pd.DataFrame([{
        "model": e.name, "where": e.source, "task": e.card.task, "method": e.card.method,
        "architecture": e.card.architecture, "created": e.card.created, "status": e.status,
    } for e in entries])
    st.dataframe(table, hide_index=True, key="overview_models")
else:
    st.info("No models yet. Shipped models live in `pretrained/`; models you train go to the user models folder.")
st.caption(f"Shipped: {safe.code(catalog.pretrained_dir())} · yours: {safe.code(catalog.user_models_dir())}. Pick one in the sidebar; "
           f"every page uses that model.")
