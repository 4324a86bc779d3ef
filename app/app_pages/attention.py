"""Attention: bertviz's head view and model view of the model at the chosen budget (heads that are off drawn as
off), plotly heat maps per block with heads sorted by importance, and exports (figures, CSV, offline HTML).
The attention data is cached per head layout (the heads that run), not per budget; the views are one
component that redraws in place; the other tabs only run when open."""
import numpy as np
import pandas as pd
import streamlit as st

from app.ui import attention_views, bertviz_view, compute, figures, safe, state

MAX_TOKENS = 64  # what the views draw; the model itself reads up to its max_len

sel = state.require_model()
model, card = sel.model, sel.card
st.title("Attention")
st.caption(f"**{safe.md(sel.entry.name)}** · {safe.md(card.architecture)} · method {safe.code(card.method)}")
data, _ = state.get_eval_data(sel.entry, sel.ckpt)
budget = state.budget_widget(model, key="attention_budget")
text, _ = state.text_input(card, data, key="attention")

point = compute.operating_point(model, budget)
layout = point.key if budget is not None else None  # BudgetFormer and dense models: one entry per text
views = state.attention_or_stop(sel, text, budget, layout, MAX_TOKENS)
ins = views.ins
notes = st.container()  # always there, so the views below keep their place (and stay mounted) when a note comes or goes
with notes:
    state.input_warnings(ins, model.config.max_len)
attn = ins.attentions
T = attn[0].shape[-1]
tokens = ins.tokens[:T]
active = ins.head_weights > 0
importance, imp_name = compute.head_importance(ins, point)
ranks = None if importance is None else figures.head_ranks(importance.tolist())
off = [f"block {b} head {h}" for b in range(active.shape[0]) for h in range(active.shape[1]) if not active[b, h]]
st.caption((f"Budget {budget:.2f}: " if budget is not None else "") + f"{int(active.sum())} of {active.numel()} heads run; "
           + (f"off (drawn grey, no lines): {', '.join(off[:24])}{' …' if len(off) > 24 else ''}." if off else "every head runs."))
if T < len(ins.tokens):
    notes.info(f"The views show the first {T} of {len(ins.tokens)} tokens (the model read all {len(ins.tokens)}).")

views_tab, maps_tab, export_tab = st.tabs(["Head view and model view (bertviz)", "Heat maps", "Export"],
                                          key="attention_tab", on_change="rerun")
if views_tab.open:
    with views_tab:
        head_notes = None if importance is None else [[f"{imp_name} {float(v):.3g}, rank {ranks[b][h]}" for h, v in enumerate(row)]
                                                      for b, row in enumerate(importance.tolist())]
        attention_views.show(bertviz_view.view_payload(views.weights, tokens, active, head_notes))
        st.caption("bertviz's head view (left: pick the layer; each colour is a head, click one to toggle it, double-click to "
                   "keep only it; hover a token to focus it) and model view (every layer and head; click one for its detail). "
                   "Heads that are off at this budget are grey: crossed swatches, thumbnails marked *off*. Drawn in the "
                   "browser from one byte per weight; nothing is fetched, so it works offline.")
if maps_tab.open:
    with maps_tab:
        block = st.selectbox("Block", list(range(len(attn))), key="attention_map_block", format_func=lambda b: f"block {b}")
        H = attn[block].shape[0]
        # heads that run first, then by importance (rank 1 first), ties by index
        order = sorted(range(H), key=lambda h: (not active[block, h], ranks[block][h] if ranks else h))
        fmt = st.radio("Figure export format (camera button in each chart's toolbar)", ["PNG", "SVG"], horizontal=True,
                       key="attention_export_fmt")
        fig = figures.render_attention_heatmaps(attn[block].tolist(), tokens, order, active[block].tolist(), block,
                                                None if importance is None else importance[block].tolist(), imp_name)
        st.plotly_chart(fig, key="attention_heatmaps", width="content",
                        config=figures.export_config(fmt, f"{sel.entry.name}-block{block}-attention"))
        st.caption(f"Rows: the token attending (from); columns: the token attended to. Heads that run first, then by "
                   + {"score": "the controller's raw relevance score r (the heads it picks for this input are its top r).",
                      "gate": "their gate at this budget.",
                      "index": "index (this model has no gates or relevance scores)."}[imp_name])
if export_tab.open:
    with export_tab:
        def attention_csv() -> str:
            frames = []
            for b in range(len(attn)):
                H = attn[b].shape[0]
                h, i, j = (x.reshape(-1) for x in np.meshgrid(np.arange(H), np.arange(T), np.arange(T), indexing="ij"))
                frames.append(pd.DataFrame({"block": b, "head": h, "active": active[b].numpy()[h], "from_index": i,
                                            "from_token": np.array(tokens, dtype=object)[i], "to_index": j,
                                            "to_token": np.array(tokens, dtype=object)[j], "weight": attn[b].numpy().reshape(-1)}))
            return pd.concat(frames).to_csv(index=False)

        c = st.columns(4)
        c[0].download_button("Attention weights (CSV)", attention_csv, "attention.csv", "text/csv", key="attention_csv",
                             on_click="ignore")
        c[1].download_button("Heads (CSV)", pd.DataFrame(compute.heads_table(ins, point)).to_csv(index=False), "heads.csv", "text/csv",
                             key="attention_heads_csv", on_click="ignore")
        c[2].download_button("Head view (HTML, offline)", lambda: bertviz_view.head_view_html(attn, tokens, active),
                             "head_view.html", "text/html", key="attention_head_html", on_click="ignore")
        c[3].download_button("Model view (HTML, offline)", lambda: bertviz_view.model_view_html(attn, tokens, active),
                             "model_view.html", "text/html", key="attention_model_html", on_click="ignore")
        st.caption("Heads (CSV): on/off, and for BudgetFormer the raw score r, its rank and q. The HTML files are bertviz's "
                   "own views (d3 and jQuery inlined, so they open offline in any browser), built when you click. Figures: "
                   "each plotly chart's camera button saves PNG or SVG in the browser (format on the Heat maps tab).")
