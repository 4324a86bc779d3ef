"""Budget explorer: one slider drives accuracy, estimated cost, the layer x head grid, measured CPU
latency and the current point on the Pareto chart of every method in the model's card."""
import pandas as pd
import streamlit as st

from app.ui import compute, figures, posthoc_panel, state
from baa_core import methods

sel = state.require_model()
model, card = sel.model, sel.card
st.title("Budget explorer")
st.caption(f"**{sel.entry.name}** · {card.get('architecture', '')} · task `{card.get('task')}` · method `{card.get('method')}`")

data, no_data = state.get_eval_data(sel.entry, sel.ckpt)
rows = compute.card_rows(card)
if data:
    live_auto = data.live_accuracy_auto
    st.caption(f"**Live**: accuracy on a fixed sample of {len(data.sample)} test examples, computed now by the sliced model"
               f"{'' if live_auto else ' when you press a button (this model is too big to evaluate at every slider move)'}. "
               f"**Card**: the full test-split sweep recorded when the model was made ({card.get('created', 'date unknown')}).",
               help=f"Data: {data.source}")
else:
    live_auto = False
    st.caption(f"No live evaluation here: {no_data}. Every number below is from the card ({card.get('created', 'date unknown')}).")

# ---------------------------------------------------------------- adaptive (issue 10): per-input heads under one knob
from app.ui import adaptive_panels  # noqa: E402

if adaptive_panels.applies(model):
    adaptive_panels.explorer(sel, data)
    st.stop()
# ---------------------------------------------------------------- end adaptive

# ---------------------------------------------------------------- models without a budget knob
if not compute.has_budget(model):
    if methods.method_for_model(model).per_input:
        st.info(f"{methods.label(card.get('method'))} chooses its heads **per input**, so there is no global budget to slide. Its measured point "
                "(mean share of heads used, accuracy) is on the chart; see the **Per-input inspector** for single inputs.")
    else:
        st.info("This model has no budget gates (it runs every head). Its measured point is on the chart, if its card has one; "
                "train a BAA model on the **Train** page to get a budget knob.")
    if rows:
        st.plotly_chart(figures.render_pareto(rows), key="explorer_pareto_static", config=figures.EXPORT_CONFIG)
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="explorer_rows_static")
    if data and st.button("Evaluate this model on the live sample", key="explorer_eval_nobudget"):
        point = compute.operating_point(model, None)
        acc = state.live_accuracy_cached(*sel.key, point.key, sel.ckpt, data)
        st.metric("accuracy (live sample)", f"{acc:.2%}")
    if sel.entry.source in ("hub", "hf"):  # a Hugging Face classifier you brought: post-hoc budgets, no training
        posthoc_panel.render(sel)
    st.stop()

# ---------------------------------------------------------------- the live sweep (for the chart)
own = methods.method_for_model(model).name
card_budgets = sorted({float(r["budget"]) for r in rows if r["method"] == own and r.get("budget")}) or \
    [b for b in compute.budget_choices(model) if round(b * 10) == b * 10]
live_rows = None
live_name = methods.label(own).split(" (")[0]  # the live sweep's line: "BAA", "post-hoc structural pruning"
if data and (live_auto or st.session_state.get("explorer_live_sweep_on")):
    # Small models: every slider stop is evaluated once per server (then each move is a cache hit).
    # Big ones, on request: the card's budgets only.
    live_rows, seen = [], set()
    with st.spinner("Evaluating the budgets on the live sample (once per server)…"):
        for b in compute.budget_choices(model) if live_auto else card_budgets:
            p = compute.operating_point(model, b)
            if p.key not in seen:
                seen.add(p.key)
                live_rows.append({"budget": b, "est_cost": p.est_cost,
                                  "accuracy": state.live_accuracy_cached(*sel.key, p.key, sel.ckpt, data)})
elif data:
    st.button("Recompute the sweep live on the sample", key="explorer_live_sweep_btn",
              on_click=lambda: st.session_state.update(explorer_live_sweep_on=True))


# ---------------------------------------------------------------- the panel the slider drives
@st.fragment
def budget_panel():
    budget = state.budget_widget(model, key="explorer_budget")
    point = compute.operating_point(model, budget)
    row = compute.card_row(card, own, budget)
    if data and (live_auto or st.session_state.get(f"explorer_live_{point.key}")):
        accuracy, acc_src = state.live_accuracy_cached(*sel.key, point.key, sel.ckpt, data), f"live, {len(data.sample)} examples"
    elif row is not None and row.get("accuracy_seeds"):
        # A multi-seed card: the weights on hand are its first seed's; the mean is over all of them.
        accuracy = row["accuracy_seeds"][0]
        acc_src = (f"card, this checkpoint (seed {card.get('weights_seed', (card.get('seeds') or [0])[0])}) on "
                   f"{row.get('n', '?')} test examples; mean of {len(row['accuracy_seeds'])} seeds "
                   f"{row['accuracy']:.2%} ± {row.get('accuracy_std', 0):.2%}")
    elif row is not None:
        accuracy, acc_src = row["accuracy"], f"card, {row.get('n', '?')} test examples"
    else:
        accuracy, acc_src = None, "not measured at this budget"
    lat = compute.card_latency(card, point.heads_per_layer)
    lat_src = "card"
    # timed when the toggle below asks for it, or by itself when the card lacks it and that takes ~0.1 s
    if data and (st.session_state.get("explorer_latency_live") or (lat is None and data.live_latency_auto)):
        lat, lat_src = state.live_latency_cached(*sel.key, tuple(point.heads_per_layer), 1, sel.ckpt, data), "live, this CPU"

    c = st.columns(5)
    c[0].metric("accuracy", "-" if accuracy is None else f"{accuracy:.2%}", help=f"source: {acc_src}")
    c[1].metric("estimated attention cost", f"{point.est_cost:.3f}", help="active heads / all heads (hard gates)")
    c[2].metric("active heads", f"{point.active_heads} / {point.total_heads}",
                help=f"per block: {point.heads_per_layer}; mean soft gate {point.soft_mass:.3f}")
    if lat:
        c[3].metric("latency, ms/batch", f"{lat['latency_ms']:.2f}",
                    help=f"CPU, batches of 8 test examples; dense: {lat['dense_latency_ms']:.2f} ms; source: {lat_src}")
        c[4].metric("speedup vs dense", f"{lat['speedup']:.2f}x", help=f"{lat.get('threads', 1)} thread(s); source: {lat_src}")
    else:
        c[3].metric("latency, ms/batch", "-", help="not in the card for this head layout; switch on live timing below")
        c[4].metric("speedup vs dense", "-")
    threads = lat.get("threads", 1) if lat else 1
    st.caption(f"Budget **{budget:.2f}** · accuracy: {acc_src} · latency: {lat_src + f', {threads} thread(s)' if lat else 'not measured'}"
               + (f" · the FLOP model's bound for this layout: {row['flop_speedup']:.2f}x" if row and row.get("flop_speedup") else ""))
    if data and not live_auto and not st.session_state.get(f"explorer_live_{point.key}"):
        st.button("Evaluate this budget live", key="explorer_live_point_btn",
                  on_click=lambda k=point.key: st.session_state.update({f"explorer_live_{k}": True}))
    wide = model.config.n_heads > 5  # a wide grid gets the full width, the chart goes below it
    left, right = (st.container(), st.container()) if wide else st.columns([2, 3])
    with left:
        st.markdown(f"**Heads at budget {budget:.2f}** (blue = runs, grey = off; soft gate value in each cell)")
        st.html(figures.render_head_grid(point.mask.tolist(), point.gate_values.tolist(), "gate"))
    with right:
        st.markdown("**Accuracy vs cost, every method in the card**")
        current = None if accuracy is None else {"est_cost": point.est_cost, "accuracy": accuracy, "label": f"now: b={budget:.2f}"}
        live_label = f"{live_name} live ({len(data.sample)}-example sample)" if data else "live"
        svg = figures.render_pareto_svg(rows, current, live_rows, live_label)
        st.markdown(svg, unsafe_allow_html=True)  # st.html's sanitizer drops inline SVG; markdown keeps it
        st.download_button("SVG", svg, f"{sel.entry.name}-pareto-b{budget:.2f}.svg", "image/svg+xml", key="explorer_pareto_svg",
                           help="Download this chart as SVG")


budget_panel()
st.toggle("Measure latency live on this CPU (instead of the card's numbers)", key="explorer_latency_live", disabled=data is None,
          help="Times the sliced and the dense model on the same test batches, interleaved, 1 thread. Each new head "
               "layout takes about a second to time on a text model (then it is cached).")

with st.expander("The card's sweeps (every method, full test split)"):
    if rows:
        st.plotly_chart(figures.render_pareto(rows, live_rows, f"{live_name} live (sample)"), key="explorer_pareto_interactive",
                        config=figures.EXPORT_CONFIG)
        table = pd.DataFrame(rows)
        st.dataframe(table, hide_index=True, key="explorer_card_rows")
        st.download_button("Download as CSV", table.to_csv(index=False), f"{sel.entry.name}-sweeps.csv", "text/csv",
                           key="explorer_csv")
    else:
        st.write("This card has no sweeps.")
    st.caption(f"Produced by `{card.get('command', 'unknown')}`")
