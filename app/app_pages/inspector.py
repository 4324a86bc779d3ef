"""Per-input inspector: one text (typed or from the dataset) -> prediction, the heads it used (per-block
budget s and relevance q for BudgetFormer; for BAA, the live panel: heads and class probabilities at every
operating point, moving with the slider), measured latency; and, for BudgetFormer, the dataset views from
its card (click a point to inspect that example)."""
import pandas as pd
import streamlit as st

from app.ui import adaptive_panels, compute, figures, live_panel, safe, state
from baa_core import methods

sel = state.require_model()
model, card = sel.model, sel.card
is_bf = methods.method_for_model(model).per_input  # heads chosen per input
st.title("Per-input inspector")
st.caption(f"**{safe.md(sel.entry.name)}** · {safe.md(card.architecture)} · method {safe.code(card.method)}")

data, no_data = state.get_eval_data(sel.entry, sel.ckpt)
adaptive = adaptive_panels.applies(model)  # issue 10: per-input heads under the global budget
if is_bf and not adaptive:
    st.caption("BudgetFormer: each block picks its own budget s and heads for this input; there is no global budget.")
text, index = state.text_input(card, data, key="inspector")
@st.fragment
def one_input():
    """The live panel and everything about the text at the committed budget: a release reruns only this."""
    budget = point = panel_ins = None
    truth = data.labels[index] if index is not None and data is not None else None
    if adaptive:  # the panel from the card's budgets, with this text's own heads, probabilities and s(b) at each
        budget, panel_ins = live_panel.show_adaptive(sel, key="inspector_live", mode="inspector", text=text, truth=truth)
        if budget is None:
            budget = state.budget_widget(model, key="inspector_budget")
    elif compute.has_budget(model):
        points, budget, point, stops = live_panel.show(sel, data, key="inspector_live", mode="inspector", text=text, truth=truth)
    # Timing takes 14+ forward passes (up to a second): on request, so a release of the slider answers at once
    # (without it, a budget model's numbers come from the panel's one batch per text: no model run on release).
    timed = st.toggle("Time this input on this CPU (batch 1, beside the dense model)", key="inspector_time")
    if point is not None and not timed:
        ins = live_panel.inspection_or_stop(sel, text, points, stops, point)
    elif panel_ins is not None and not timed:  # adaptive: the panel's run of this text at the committed budget
        ins = panel_ins
    else:
        ins = state.inspect_or_stop(sel, text, budget, attentions=False, latency=timed, nothing="Nothing to inspect")

    state.input_warnings(ins, model.config.max_len)  # cut text, mostly [UNK] (shared with the Attention page)
    if budget is not None:
        st.caption(f"At the committed budget **b = {budget:.2f}** (set when the slider is released):")
    c = st.columns(4)
    c[0].metric("prediction", safe.md(ins.label), help="argmax of the classifier's softmax")
    c[1].metric("confidence", f"{ins.confidence:.1%}")
    c[2].metric("heads used", f"{ins.active_heads} / {ins.head_weights.numel()}", help=f"FLOPs {ins.flops / ins.dense_flops:.1%} of dense")
    if ins.latency_ms is not None:
        c[3].metric("latency (batch 1)", f"{ins.latency_ms:.2f} ms", f"{ins.dense_latency_ms / ins.latency_ms:.2f}x vs dense {ins.dense_latency_ms:.2f} ms",
                    delta_color="off", delta_arrow="off", help="measured now on this CPU, 1 thread, median of 7 timings each paired with one of the dense model: the structural path (only the chosen heads' weights run) "
                                            "against the dense model on the same input")
    if index is not None:
        truth = data.labels[index]
        st.caption(f"True label: **{safe.md(card.label_name(truth))}** — "
                   f"{'correct' if truth == ins.prediction else 'wrong'}.")

    if budget is None:  # BAA models have all of this in the live panel above
        left, right = st.columns([1, 2])
        with left:
            st.markdown("**Class probabilities**")
            st.plotly_chart(figures.render_probs(ins.label_names or [str(i) for i in range(len(ins.probs))], ins.probs, ins.prediction),
                            key="inspector_probs", config=figures.EXPORT_CONFIG)
        if is_bf and ins.s is not None:
            with right:
                st.markdown("**What each block chose for this input**")
                st.plotly_chart(figures.render_s_q(ins.s, ins.q.tolist(), ins.head_weights.tolist(), model.config.n_heads, ins.scores.tolist()),
                                key="inspector_sq", config=figures.EXPORT_CONFIG)
        else:  # full width: a 12-head grid does not fit a column
            st.markdown("**Heads active** (every head: this model has no budget gates)")
            st.html(figures.render_head_grid(ins.head_weights.tolist(), None))
    if adaptive:
        adaptive_panels.inspector_panel(sel, text, budget, ins)
    st.caption("Chosen heads: " + " · ".join(f"block {b}: {', '.join(map(str, hs)) or 'none'}" for b, hs in enumerate(ins.chosen_heads())))
    st.caption(f"Tokens ({len(ins.tokens)}): " + safe.md(" ".join(ins.tokens[:80])) + (" …" if len(ins.tokens) > 80 else ""))


one_input()

# ---------------------------------------------------------------- BudgetFormer: the dataset views from the card
analysis = card.analysis
if is_bf and analysis:
    st.divider()
    st.subheader("Across the test set (from the card)")
    st.caption("Computed by `baa_core.measure.analysis` on the test split when the model was made.")

    def inspect_clicked():
        points = st.session_state["inspector_scatter"].selection.get("points", [])
        if points and points[0].get("customdata") and data is not None:
            st.session_state["inspector_mode"] = "Dataset example"
            st.session_state["inspector_index"] = int(points[0]["customdata"][0])

    def card_part(field: str, draw) -> None:
        """Draw one part of the card's analysis; a malformed part gets one sentence instead of a traceback."""
        if not analysis.get(field):
            st.write("Not in this card.")
            return
        try:
            draw(analysis[field])
        except (TypeError, KeyError, ValueError, IndexError, AttributeError) as exc:
            st.warning(f"The card's analysis.{field} is malformed ({type(exc).__name__}: {safe.message(exc, 120)}); not drawn.")

    def draw_s_by_complexity(sbc: dict) -> None:
        if not sbc.get("examples"):
            st.write("Not in this card.")
            return
        measure = (sbc.get("complexity_measure") or "complexity").split(" (")[0]
        st.plotly_chart(figures.render_s_by_complexity(sbc["examples"], sbc.get("summary", []), sbc.get("spearman_rho"),
                                                       f"complexity: {measure}"),
                        key="inspector_scatter", on_select=inspect_clicked, selection_mode="points", config=figures.EXPORT_CONFIG)
        st.caption(f"Complexity: {safe.md(sbc.get('complexity_measure', 'not recorded'))}. "
                   + ("Click a point to inspect that example above." if data is not None
                      else f"Clicking a point needs the test data, which is not available here ({safe.md(no_data)})."))

    def draw_latency(lat: dict) -> None:
        st.markdown(f"Per-example structural latency (batch 1, {lat.get('threads', 1)} thread, {lat.get('n')} inputs): "
                    f"median measured / FLOP-model prediction **{lat['median_ratio']:.2f}**, median speedup over dense "
                    f"**{lat['median_speedup']:.2f}x** (FLOP bound {lat['median_flop_speedup']:.2f}x).")

    tabs = st.tabs(["s by input complexity", "block x class", "entropy of q", "training dynamics", "ablations and latency"])
    with tabs[0]:
        card_part("s_by_complexity", draw_s_by_complexity)
    card_charts = ((tabs[1], "s_block_class", figures.render_block_class, "inspector_block_class"),
                   (tabs[2], "q_entropy", figures.render_q_entropy, "inspector_entropy"),
                   (tabs[3], "training_dynamics", figures.render_dynamics, "inspector_dynamics"))
    for tab, field, render, chart_key in card_charts:
        with tab:
            card_part(field, lambda part, render=render, chart_key=chart_key:
                      st.plotly_chart(render(part), key=chart_key, config=figures.EXPORT_CONFIG))
    with tabs[4]:
        card_part("ablations", lambda part: st.dataframe(pd.DataFrame(part), hide_index=True, key="inspector_ablations"))
        if analysis.get("per_example_latency"):
            card_part("per_example_latency", draw_latency)
elif is_bf and not adaptive:
    st.info("This BudgetFormer card holds no dataset analyses.")
