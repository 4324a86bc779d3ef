"""The adaptive method's panels (issue 10), called from the explorer and inspector pages.

One slider moves every input's budget: the explorer shows the distribution of s_i(b) over the
evaluation sample shifting with b, beside accuracy, realised cost, latency and the Pareto point
(BAA and BudgetFormer from their cards on the same chart); the inspector shows, for one input,
s(b) of each block as a curve over b with the current b marked. Figures come from
``adaptive_figures``; numbers from ``baa_core.measure.adaptive`` (live) or the card (the page says which).
"""
from __future__ import annotations

import streamlit as st

from app.ui import adaptive_figures, catalog, figures
from baa_core import methods

FOLLOW_KEY = "explorer_adaptive_follow"  # the session's choice to run the live sample at every released budget


def applies(model) -> bool:
    """Per-input heads under a global budget knob: the adaptive method's models."""
    m = methods.method_for_model(model)
    return m.per_input and m.has_budget


@st.cache_data(show_spinner="Running the controllers on the evaluation sample…", max_entries=256)
def live_point(path: str, version: float, budget: float, _ckpt, _data) -> dict:
    """``operating_point_arrays`` at one budget on the fixed evaluation sample (plain lists)."""
    from baa_core.io.data import EncodedDataset
    from baa_core.measure.adaptive import operating_point_arrays

    idx = _data.sample
    sample = EncodedDataset([_data.test.ids[i] for i in idx], _data.test.labels[idx], _data.test.pad_id)
    point = operating_point_arrays(_ckpt.model, sample, budget)
    point["index"] = list(idx)
    return point


@st.cache_data(show_spinner=False, max_entries=64)
def sample_shares(path: str, version: float, budgets: tuple[float, ...], _ckpt, _data) -> dict | None:
    """{budget: (each sample input's mean s over blocks, the realised cost)} at every budget of the card, from the
    embeddings and controllers alone (``shares_at``: no attention block runs, so milliseconds even for MiniLM);
    None where the shares read the blocks (then only the released budget is drawn, from a full run)."""
    from baa_core.io.data import EncodedDataset
    from baa_core.measure.adaptive import shares_at
    from baa_core.model.adaptive import realised_fraction

    idx = _data.sample
    if getattr(_ckpt.model.config, "adaptive_input", "embedding") != "embedding" or not budgets or not len(idx):
        return None
    sample = EncodedDataset([_data.test.ids[i] for i in idx], _data.test.labels[idx], _data.test.pad_id)
    s = shares_at(_ckpt.model, sample, list(budgets))  # (K, N, L)
    heads = _ckpt.model.config.n_heads
    return {b: (s[k].mean(1).tolist(), float(realised_fraction(s[k], heads).mean())) for k, b in enumerate(budgets)}


@st.cache_data(show_spinner=False, max_entries=64)
def curves_for(path: str, version: float, text: str, _ckpt) -> dict:
    from baa_core.measure.adaptive import s_curves
    from baa_core.measure.inspection import encode_text

    enc = encode_text(_ckpt.tokenizer, text, _ckpt.model.config.max_len)
    return s_curves(_ckpt.model, enc.input_ids, enc.attention_mask)


def _sibling_rows(card: dict, method: str) -> list[dict]:
    """Rows of ``method`` from another shipped/user card of the same task and model kind (same test split)."""
    for entry in catalog.list_models():
        c = entry.card or {}
        if c.get("method") == method and c.get("task") == card.get("task") and c.get("model_kind") == card.get("model_kind"):
            return [dict(r, method=method, from_model=entry.name) for r in (c.get("sweeps") or {}).get(method) or []
                    if r.get("accuracy") is not None]
    return []


def explorer(sel, data) -> None:
    """The budget explorer for an adaptive model: the live panel (card numbers, redrawn in the browser while
    the slider is dragged) and, for the committed budget, the live sample's per-input budgets."""
    from app.ui import live_panel

    card = sel.card
    siblings = [r for r in _sibling_rows(card, "budgetformer") if r.get("est_cost") is not None]

    # the card's budgets that a model accepts (a card may hold a row at 0.0; the check takes [0, 1])
    budgets = tuple(sorted({float(r["budget"]) for r in (card.get("sweeps") or {}).get("adaptive") or []
                            if r.get("budget") is not None and 0.0 < float(r["budget"]) <= 1.0}))
    shares = sample_shares(*sel.key, budgets, sel.ckpt, data) if data else None

    @st.fragment
    def live_part():
        """The panel and what depends on the committed budget: a release reruns only this."""
        budget, _ = live_panel.show_adaptive(sel, key="explorer_live", sibling_rows=siblings, sample_shares=shares)
        if budget is None:
            st.info("This model's card has no measured budget to show, so there is nothing to slide over.")
            return
        # Small models: the live sample at every budget of the card, computed once (the server warms it at its start),
        # so a release answers at once. Bigger ones (MiniLM: seconds per budget) start on request; from then on the
        # live sample follows the slider (each budget once per server), until the toggle is turned off.
        point = None
        if data:
            wanted = data.live_accuracy_auto or st.toggle(
                "Per-input budgets on the live sample, following the slider", key=FOLLOW_KEY,
                help="Runs the controllers over the evaluation sample at every budget you release on: seconds per new "
                     "budget on a model this size (each budget is computed once per server).")
            if wanted:
                point = live_point(*sel.key, budget, sel.ckpt, data)
        st.caption(f"Budget **{budget:.2f}** · set for this session: the other pages start from it. The panel's numbers are "
                   f"the card's (full test split); each input gets its own share of heads and the slider sets the average. "
                   f"s_i(b) never falls as b rises, for any input.")
        c = st.columns(3)
        if point is not None:
            live_panel.show_live_accuracy(c[0], point["accuracy"], len(point["s"]))
            c[1].metric("realised cost, live", f"{point['est_cost']:.3f}",
                        help="share of heads that run, averaged over inputs and blocks: mean of ceil(s·H)/H")
            c[2].metric("mean s_i(b), live", f"{point['s_mean']:.3f}",
                        help="the controllers' predicted budget, averaged over inputs and blocks (heads run = ceil(s·H) ≥ s·H)")
            marks = card.get("task") == "synthetic_marks"
            options = ["number of marks", "class", "correct?"] if marks else ["class", "correct?"]
            by = st.radio("Colour by", options, horizontal=True, key="explorer_adaptive_colour")
            if by == "number of marks":
                from baa_core.io.data import count_marks

                groups, names, kind = [count_marks(data.texts[i]) for i in point["index"]], None, "marks"
            elif by == "class":
                labels = card.get("labels") or []
                groups, kind = point["label"], "class"
                names = [labels[k] if k < len(labels) else str(k) for k in sorted(set(groups))]
            else:
                groups, names, kind = point["correct"], ["wrong", "correct"], "correct"
            st.markdown(adaptive_figures.render_s_histogram_svg(point, groups, names, title_group=kind), unsafe_allow_html=True)
        elif not data:
            st.info("No evaluation data on this machine, so the per-input budgets cannot be drawn; the numbers are the card's.")

    live_part()
    tracking = (card.get("adaptive") or {}).get("tracking")
    if tracking:
        with st.expander("Does the realised cost follow the slider? (card, test split)"):
            st.plotly_chart(adaptive_figures.render_tracking(tracking["rows"]), key="explorer_adaptive_tracking",
                            config=figures.EXPORT_CONFIG)
            w = tracking["worst_realised"]
            st.caption(f"Worst |realised − b| over b = 0.1 … 1.0: {abs(w['gap']):.3f} at b = {w['budget']:g} "
                       f"(one head per block is the floor: {tracking.get('floor', {}).get('min_realised', 0):.3f}).")


def inspector_panel(sel, text: str, budget: float, ins) -> None:
    """What each block chose for this input at b (an HTML table), and s(b) per block as a curve over b (SVG; the
    live panel above marks the current b on its own s(b)). Both are drawn in about a millisecond: the fragment
    they sit in reruns on every release of the slider."""
    left, right = st.columns([1, 1])
    with left:
        st.markdown(f"**What each block chose for this input at b = {budget:.2f}**")
        st.html(figures.render_s_q_html(ins.s, ins.q.tolist(), ins.head_weights.tolist(), sel.model.config.n_heads))
    with right:
        try:
            curves = curves_for(*sel.key, text, sel.ckpt)
        except ValueError:
            return  # the page has already said what is wrong with the text
        st.markdown("**This input's budget per block over every b** (solid: s(b); dashed: heads it runs)")
        st.markdown(adaptive_figures.render_s_curves_svg(curves), unsafe_allow_html=True)
