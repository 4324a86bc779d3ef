"""Attention: bertviz head view and model view of the model at the chosen budget (inactive heads off),
plotly heat maps per block with heads sorted by importance, and exports (figures, CSV, HTML)."""
import numpy as np
import pandas as pd
import streamlit as st

from app.ui import figures, state

MAX_TOKENS = 64  # what the views draw; the model itself reads up to its max_len

sel = state.require_model()
model, card = sel.model, sel.card
st.title("Attention")
st.caption(f"**{sel.entry.name}** · {card.get('architecture', '')} · method `{card.get('method')}`")
data, _ = state.get_eval_data(sel.entry, sel.ckpt)
budget = state.budget_widget(model, key="attention_budget")
text, _ = state.text_input(card, data, key="attention")

ins = state.inspect_or_stop(sel, text, budget, attentions=True, latency=False, nothing="Nothing to draw")

T = min(len(ins.tokens), MAX_TOKENS)
tokens = ins.tokens[:T]
attn = [a[:, :T, :T] for a in ins.attentions]
active = ins.head_weights > 0
off = [f"block {b} head {h}" for b in range(active.shape[0]) for h in range(active.shape[1]) if not active[b, h]]
st.caption((f"Budget {budget:.2f}: " if budget is not None else "") + f"{int(active.sum())} of {active.numel()} heads run; "
           + (f"off (drawn empty / grey): {', '.join(off[:24])}{' …' if len(off) > 24 else ''}." if off else "every head runs."))
if T < len(ins.tokens):
    st.info(f"The views show the first {T} of {len(ins.tokens)} tokens (the model read all {len(ins.tokens)}).")
if ins.q is not None:  # per-input controllers: rank heads by their relevance
    importance, imp_name = ins.q, "q"
elif ins.gate_values is not None:
    importance, imp_name = ins.gate_values, "gate"
else:
    importance, imp_name = None, "index"

head_html, model_html = state.bertviz_html(*sel.key, text, budget, T, attn, tokens, active)
head_tab, model_tab, maps_tab, export_tab = st.tabs(["Head view (bertviz)", "Model view (bertviz)", "Heat maps", "Export"])
with head_tab:
    st.iframe(head_html, height=140 + 22 * T)
    st.caption("bertviz head view, drawn offline (d3 and jQuery inlined from app/static, no CDN). Colours are heads; heads that are "
               "off carry no attention. Pick the block in *Layer*; click a colour to toggle a head, hover a token to focus it.")
with model_tab:
    st.iframe(model_html, height=min(3000, 120 + 170 * len(attn)))
    st.caption("bertviz model view: every block (rows) and head (columns); blank thumbnails are heads that are off.")
with maps_tab:
    block = st.selectbox("Block", list(range(len(attn))), key="attention_map_block", format_func=lambda b: f"block {b}")
    if importance is None:
        order = list(range(attn[block].shape[0]))
    else:
        order = sorted(range(attn[block].shape[0]), key=lambda h: (-float(active[block, h]), -float(importance[block, h])))
    fmt = st.radio("Figure export format (camera button in each chart's toolbar)", ["PNG", "SVG"], horizontal=True,
                   key="attention_export_fmt")
    fig = figures.render_attention_heatmaps(attn[block].tolist(), tokens, order, active[block].tolist(), block,
                                            None if importance is None else importance[block].tolist(), imp_name)
    st.plotly_chart(fig, key="attention_heatmaps", config=figures.export_config(fmt, f"{sel.entry.name}-block{block}-attention"))
    st.caption(f"Heads sorted by {imp_name}" + (" (active heads first)." if importance is not None else " (this model has no "
               "gates or relevance scores)."))
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

    heads = pd.DataFrame([{"block": b, "head": h, "active": bool(active[b, h]),
                           imp_name: None if importance is None else float(importance[b, h])}
                          for b in range(active.shape[0]) for h in range(active.shape[1])])
    c = st.columns(4)
    c[0].download_button("Attention weights (CSV)", attention_csv, "attention.csv", "text/csv", key="attention_csv")
    c[1].download_button("Heads (CSV)", heads.to_csv(index=False), "heads.csv", "text/csv", key="attention_heads_csv")
    c[2].download_button("Head view (HTML, offline)", head_html, "head_view.html", "text/html", key="attention_head_html")
    c[3].download_button("Model view (HTML, offline)", model_html, "model_view.html", "text/html", key="attention_model_html")
    st.caption("Figures: each plotly chart's camera button saves PNG or SVG in the browser (pick the format on the Heat maps "
               "tab); no server-side renderer (kaleido/Chrome) is needed. The bertviz HTML files open offline in any browser.")
