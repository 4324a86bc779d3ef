"""Budget explorer: drag the budget and watch accuracy, estimated cost, the layer x head grid, latency and
the current point on the Pareto chart move together. The panel redraws in the browser from every operating
point of the model, measured once; releasing the slider sets the session's budget (one rerun of the panel's
fragment)."""
import pandas as pd
import streamlit as st

from app.ui import compute, export_view, figures, live_panel, posthoc_panel, safe, state
from baa_core import methods

sel = state.require_model()
model, card = sel.model, sel.card
st.title("Budget explorer")
st.caption(f"**{safe.md(sel.entry.name)}** · {safe.md(card.architecture)} · task {safe.code(card.task)} · method {safe.code(card.method)}")

data, no_data = state.get_eval_data(sel.entry, sel.ckpt)
rows = compute.card_rows(card)
live_auto = bool(data and data.live_accuracy_auto)
if data:
    st.caption((f"**Live**: accuracy on a fixed sample of {len(data.sample)} test examples, computed here by the sliced model, "
                f"with a 95% interval. " if live_auto else "**Live**: this model is too big to evaluate every point here; "
                "press the button below for one point. ")
               + f"**Card**: the full test-split sweep recorded when the model was made ({safe.md(card.created or 'date unknown')}); "
                 "the panel shows the card's number where it has one.", help=f"Data: {safe.md(data.source)}")
else:
    st.caption(f"No live evaluation here: {safe.md(no_data)}. Every number below is from the card "
               f"({safe.md(card.created or 'date unknown')}).")

# ---------------------------------------------------------------- adaptive (issue 10): per-input heads under one knob
from app.ui import adaptive_panels  # noqa: E402

if adaptive_panels.applies(model):
    adaptive_panels.explorer(sel, data)
    st.stop()
# ---------------------------------------------------------------- end adaptive

# ---------------------------------------------------------------- models without a budget knob
if not compute.has_budget(model):
    if methods.method_for_model(model).per_input:
        st.info(f"{safe.md(methods.label(card.get('method')))} chooses its heads **per input**, so there is no global budget to slide. Its measured point "
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

# ---------------------------------------------------------------- the live panel (drag: browser only; release: one fragment rerun)
@st.fragment
def live_part():
    """The panel and everything that depends on the committed budget: a release reruns only this."""
    points, budget, point, _ = live_panel.show(sel, data, key="explorer_live")
    if point is None:
        st.info("This model has no operating point inside its trained budget range.")
        return
    st.caption(f"Budget **{budget:.2f}** · set for this session: the other pages start from it. Any budget from "
               f"{point.budget_lo:.3f} to {point.budget_hi:.3f} runs these {point.active_heads} heads; the model has "
               f"{len(points)} distinct operating points between {points[0].budget_lo:.2f} and {points[-1].budget_hi:.2f}.")
    left, mid, right = st.columns([3, 3, 2])
    with left:
        if st.toggle("Measure this point's latency live on this CPU", key="explorer_latency_live", disabled=data is None,
                     help="Times the sliced and the dense model on the same test batches, interleaved, 1 thread (cached per head layout)."):
            lat = state.live_latency_cached(*sel.key, tuple(point.heads_per_layer), 1, sel.ckpt, data)
            st.metric("latency, live", f"{lat['latency_ms']:.2f} ms/batch", f"{lat['speedup']:.2f}x vs dense {lat['dense_latency_ms']:.2f} ms",
                      delta_color="off", delta_arrow="off", help=f"{lat['rounds']} rounds over {lat['batches']} batches of 8, 1 thread")
    with mid:
        if data and not live_auto and point.live is None and st.button(f"Evaluate b = {budget:.2f} on the live sample", key="explorer_live_point_btn"):
            acc = state.live_accuracy_cached(*sel.key, point.key, sel.ckpt, data)
            live_panel.show_live_accuracy(st, acc, len(data.sample))
    with right:
        acc = point.accuracy
        current = None if acc is None else {"est_cost": point.est_cost, "accuracy": acc.value, "label": f"now: b={budget:.2f}"}
        st.download_button("Pareto chart, this point (SVG)", figures.render_pareto_svg(rows, current), f"{sel.entry.name}-pareto-b{budget:.2f}.svg",
                           "image/svg+xml", key="explorer_pareto_svg", disabled=not rows)


live_part()
with st.expander("The card's sweeps (every method, full test split)"):
    if rows:
        st.plotly_chart(figures.render_pareto(rows), key="explorer_pareto_interactive", config=figures.EXPORT_CONFIG)
        table = pd.DataFrame(rows)
        st.dataframe(table, hide_index=True, key="explorer_card_rows")
        st.download_button("Download as CSV", table.to_csv(index=False), f"{sel.entry.name}-sweeps.csv", "text/csv", key="explorer_csv")
    else:
        st.write("This card has no sweeps.")
    st.caption(f"Produced by {safe.code(card.command or 'unknown')}")

export_view.render_export(sel, data)
