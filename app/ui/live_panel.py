"""The live budget panel: a Streamlit Custom Components v2 element that redraws in the browser while the
slider is dragged, from operating points measured once per model (``baa_core.measure.operating_points``).

No Streamlit rerun happens during a drag: the browser has every distinct operating point (mask, soft
gates, cost, accuracy with its 95% interval and source, latency, FLOP bound) and redraws the readout,
metrics, layer x head grid, Pareto chart and per-input probabilities on every ``input`` event. On
release (or a key press) it sends the budget once, as the ``commit`` trigger; ``on_commit`` stores it
as the session's shared budget before the page runs, so the rest of the page and the other pages use it.

The payload (plain JSON; ``panel_payload`` builds it, pure):

    {"id", "mode": "explorer" | "inspector" | "overview", "commit": bool, "sig", "layers", "heads",
     "range": [lo, hi], "range_note", "budget",
     "points": [{"b", "lo", "hi", "k", "total", "cost", "hpl", "mask": [L*H 0/1], "gates": [L*H],
                 "acc": {"v", "lo", "hi", "n", "src", "detail"} | null, "live": {...} | null,
                 "lat": {"ms", "dense_ms", "speedup", "threads"} | null, "flop": float | null, "vs_all": str}],
     "stops": [indices of the points the slider stops at: those with an accuracy],
     "series": [{"name", "color", "dash", "pts": [[cost, acc, lo, hi, label]]}], "y": [lo, hi],
     "input": null | {"labels", "truth", "at": [null | {"probs": [...], "mask"?: [L*H], "s"?: [per block]}]}}

Per-input models under one knob (``adaptive``) get the same panel from their card (``adaptive_payload``):
one point per measured budget, ``mask``/``gates`` null (each input picks its own heads; the grid shows the
mean heads per block, ``hpl``), and optional ``metric_labels``, ``cost_sub``, ``grid_caption``, ``ktxt``
and ``lat.sub`` to name what differs. With the evaluation sample's shares at each budget, every point also
carries ``shist`` ({"counts": [inputs per bin of mean s over blocks, SHARE_BINS bins over [0, 1]], "mean",
"realised", "n"}): the histogram of per-input budgets the browser redraws while the slider moves.

``input.at`` is aligned with ``points``: one entry per operating point for the current text. ``mask`` and
``s`` are optional per-input fields (a per-input method such as ``adaptive`` sets each input's heads and
budget s as a function of b; the panel then draws s(b) and that input's own heads).
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import streamlit as st

from baa_core import methods

from . import compute, figures, safe, state

STATIC = Path(__file__).resolve().parents[1] / "static" / "live_panel"
_COMPONENT = st.components.v2.component(
    "baa_live_panel",
    html="<div class='baa-live'></div>",
    css=(STATIC / "panel.css").read_text(encoding="utf-8"),
    js=(STATIC / "panel.js").read_text(encoding="utf-8"),
)
MIN_SPAN = 0.02  # the accuracy axis is at least 2 points tall: a 0.3-point band must not look like a cliff


# ---------------------------------------------------------------- pure helpers
def _acc(a) -> dict | None:
    if a is None:
        return None
    return {"v": round(a.value, 6), "lo": round(a.low, 6), "hi": round(a.high, 6), "n": a.n, "src": a.source, "detail": a.detail}


def vs_all_heads(point, full) -> str:
    """One sentence comparing a point's accuracy with every head's, in the same source where both have it."""
    if full is None or point is full:
        return "every head runs" if point is full else ""
    for src in ("card", "live"):
        a, b = getattr(point, src), getattr(full, src)
        if a is not None and b is not None:
            diff = 100 * (a.value - b.value)
            verdict = ("a tie: the 95% intervals overlap" if a.ties(b)
                       else "beyond noise: the 95% intervals do not overlap")
            return f"vs every head (b = {full.budget:.2f}, {src}): {diff:+.2f} pt, {verdict}"
    return "no accuracy of the same source at every head to compare with"


def accuracy_axis(values: list[tuple[float, float, float]], min_span: float = MIN_SPAN) -> list[float]:
    """[lo, hi] of the accuracy axis: every value and its interval inside, at least ``min_span`` tall."""
    if not values:
        return [0.0, 1.0]
    lo, hi = min(v[1] for v in values), max(v[2] for v in values)
    span = max((hi - lo) * 1.15, min_span)
    mid = (lo + hi) / 2
    lo, hi = mid - span / 2, mid + span / 2
    if hi > 1.0:
        lo, hi = lo - (hi - 1.0), 1.0
    if lo < 0.0:
        lo, hi = 0.0, hi - lo
    return [math.floor(lo * 1e4) / 1e4, min(math.ceil(hi * 1e4) / 1e4, 1.0)]  # rounded outwards


def chart_series(card: dict, own_method: str, points: list, live_label: str) -> list[dict]:
    """The Pareto chart's lines: every method in the card and the live sample's points, each with its
    interval. The model's own method is drawn for this checkpoint (a multi-seed card's first seed, 95%
    interval over test examples), so the current point sits on its line; the other methods are other
    models: their mean over seeds ± std, or one run with its 95% interval."""
    from baa_core.measure.operating_points import card_accuracy

    series: dict[str, dict] = {}
    for r in compute.card_rows(card):
        if r.get("est_cost") is None:
            continue
        mine = r["method"] == own_method
        if mine or not r.get("accuracy_seeds"):
            a = card_accuracy(card, r)
            acc, lo, hi = a.value, a.low, a.high
        else:
            acc, std = r["accuracy"], float(r.get("accuracy_std") or 0)
            lo, hi = acc - std, acc + std
        name = methods.label(r["method"]) + (f" ({r['from_model']}'s card)" if r.get("from_model")  # another model's rows
                                             else " (card, this checkpoint)" if mine and r.get("accuracy_seeds") else " (card)")
        s = series.setdefault(r["method"], {"name": name, "color": methods.color(r["method"]) or "#555", "dash": False, "pts": []})
        s["pts"].append([round(r["est_cost"], 5), round(acc, 6), round(lo, 6), round(hi, 6), f"b={r.get('budget', '-')}"])
    live = [p for p in points if p.live is not None]
    if live:
        series["live"] = {"name": live_label, "color": figures.LIVE_COLOR, "dash": True,
                          "pts": [[round(p.est_cost, 5), round(p.live.value, 6), round(p.live.low, 6), round(p.live.high, 6),
                                   f"b={p.budget:g}"] for p in live]}
    for s in series.values():
        s["pts"].sort(key=lambda x: x[0])
    return list(series.values())


def range_note(lo: float, hi: float, below: dict | None, measured_only: bool = True) -> str:
    note = (f"The slider covers the budgets this model was trained for, {lo:.2f} to {hi:.2f} (training drew each "
            f"example's budget from that range), and stops " + ("only at operating points with a measured accuracy." if measured_only
                                                                 else "at every distinct operating point (ticks)."))
    if below:
        at = f"at b = {below['budget']:.2f} this model would run"
        if below["same_heads"]:
            note += f" Below {lo:.2f} the gates are extrapolated ({at} the same heads as at {lo:.2f})."
        elif below["heads"] == below["heads_at_lowest"]:
            note += (f" Below {lo:.2f} the gates are extrapolated: {at} as many heads as at {lo:.2f} but other ones, a head "
                     f"set it never trained with, so accuracy there can collapse while cost and heads read the same.")
        else:
            note += (f" Below {lo:.2f} the gates are extrapolated: {at} {below['heads']} heads instead of "
                     f"{below['heads_at_lowest']}, a head set it never trained with, so accuracy there can collapse.")
    return note


def panel_payload(points: list, *, panel_id: str, mode: str, card: dict, own_method: str, budget_range: tuple[float, float],
                  below: dict | None = None, live_label: str = "live sample") -> dict:
    """Everything the panel draws, as JSON-ready data (the budget and the per-input part are added per run)."""
    L, H = points[0].mask.shape if points else (0, 0)
    full = max(points, key=lambda p: (p.active_heads, p.budget)) if points else None
    out_points = []
    for p in points:
        lat = None if p.latency is None else {"ms": p.latency.get("latency_ms"), "dense_ms": p.latency.get("dense_latency_ms"),
                                              "speedup": p.latency.get("speedup"), "threads": p.latency.get("threads") or 1}
        out_points.append({
            "b": p.budget, "lo": p.budget_lo, "hi": p.budget_hi, "k": p.active_heads, "total": p.total_heads,
            "cost": round(p.est_cost, 5), "hpl": p.heads_per_layer, "mask": [int(v) for v in p.mask.flatten().tolist()],
            "gates": [round(float(v), 3) for v in p.gates.flatten().tolist()], "acc": _acc(p.accuracy), "live": _acc(p.live),
            "lat": lat, "flop": None if p.flop_speedup is None else round(float(p.flop_speedup), 4), "vs_all": vs_all_heads(p, full),
        })
    measured = [i for i, p in enumerate(points) if p.accuracy is not None]
    stops = measured if (measured and mode != "overview") else list(range(len(points)))
    series = chart_series(card, own_method, points, live_label) if mode == "explorer" else []
    ys = [(pt[1], pt[2], pt[3]) for s in series for pt in s["pts"]]
    ys += [(p.accuracy.value, p.accuracy.low, p.accuracy.high) for p in points if p.accuracy is not None]
    payload = {"id": panel_id, "mode": mode, "commit": mode != "overview", "layers": int(L), "heads": int(H),
               "range": list(budget_range), "range_note": range_note(*budget_range, below, bool(measured) and mode != "overview"), "points": out_points,
               "stops": stops, "series": series, "y": accuracy_axis(ys)}
    payload["sig"] = hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return payload


SHARE_BINS = 40  # the per-input budget histogram's bins over [0, 1]: 0.025 wide, as the server-side one (adaptive_figures)


def share_histogram(values: list[float], realised: float) -> dict:
    """The ``shist`` of one point: inputs per bin of s (the last bin holds 1.0), their mean, the realised cost."""
    counts = [0] * SHARE_BINS
    for v in values:
        counts[min(SHARE_BINS - 1, max(0, int(float(v) * SHARE_BINS)))] += 1
    n = len(values)
    return {"counts": counts, "mean": round(sum(values) / n, 4) if n else None, "realised": round(float(realised), 4), "n": n}


def adaptive_payload(card: dict, *, panel_id: str, layers: int, heads: int, sibling_rows: list[dict] | None = None,
                     mode: str = "explorer", sample_shares: dict | None = None) -> dict:
    """The panel's data for a per-input model under one budget knob (``adaptive``), from its card's sweep: one
    point per measured budget (full test split, 95% interval), realised cost, mean heads per input and per
    block, latency where the card timed it. No mask: each input picks its own heads, so the grid shows how
    many heads an input runs per block on average. ``sibling_rows``: other models' rows drawn on the chart
    (BudgetFormer of the same task). ``sample_shares``: {budget: (per-input mean s, realised cost)} on the
    evaluation sample, drawn as each point's histogram of per-input budgets (``shist``)."""
    from baa_core.measure.operating_points import card_accuracy

    rows = sorted((r for r in (card.get("sweeps") or {}).get("adaptive") or []
                   if r.get("accuracy") is not None and r.get("est_cost") is not None and r.get("budget") is not None),
                  key=lambda r: r["budget"])
    accs = [card_accuracy(card, r) for r in rows]
    full = accs[-1] if accs else None
    points = []
    for r, a in zip(rows, accs):
        b, total = float(r["budget"]), int(r.get("total_heads") or layers * heads)
        hpl = [round(float(v), 2) for v in (r.get("heads_per_layer") or r.get("mean_heads_per_layer") or [])]
        if len(hpl) != layers:  # an older card without per-block means: spread the mean evenly
            hpl = [round(float(r.get("active_heads") or r["est_cost"] * total) / layers, 2)] * layers
        k = round(float(r.get("active_heads") or sum(hpl)), 1)
        lat = None
        if r.get("speedup") and r.get("latency_ms") and r.get("dense_latency_ms"):
            lat = {"ms": r["latency_ms"], "dense_ms": r["dense_latency_ms"], "speedup": r["speedup"], "threads": r.get("threads") or 1,
                   "sub": f"card, batch 1: median over {r.get('latency_inputs', '?')} test inputs"}
        if a is full:
            vs = f"the highest budget the card measured (b = {rows[-1]['budget']:.2f})"
        elif full is not None:
            vs = (f"vs b = {rows[-1]['budget']:.2f}, the highest measured (card): {100 * (a.value - full.value):+.2f} pt, "
                  + ("a tie: the 95% intervals overlap" if a.ties(full) else "beyond noise: the 95% intervals do not overlap"))
        else:
            vs = ""
        points.append({"b": b, "lo": b, "hi": b, "k": k, "total": total, "cost": round(float(r["est_cost"]), 5), "hpl": hpl,
                       "mask": None, "gates": None, "acc": _acc(a), "live": None, "lat": lat,
                       "flop": None if r.get("flop_speedup") is None else round(float(r["flop_speedup"]), 4), "vs_all": vs,
                       "ktxt": f"{k:.1f} of {total} heads per input, on average"})
        shares = (sample_shares or {}).get(b)
        if shares is not None and len(shares[0]):
            points[-1]["shist"] = share_histogram(*shares)
    chart_card = {**card, "sweeps": {**(card.get("sweeps") or {}), **({"budgetformer": sibling_rows} if sibling_rows else {})}}
    series = chart_series(chart_card, "adaptive", [], "live") if points and mode == "explorer" else []
    ys = [(pt[1], pt[2], pt[3]) for s_ in series for pt in s_["pts"]]
    lo_hi = [points[0]["b"], points[-1]["b"]] if points else [0.0, 1.0]
    payload = {"id": panel_id, "mode": mode, "commit": True, "layers": int(layers), "heads": int(heads), "range": lo_hi,
               "range_note": (f"The slider covers the budgets this model was trained for, {lo_hi[0]:.2f} to {lo_hi[1]:.2f}, and stops "
                              f"at the {len(points)} budgets its card measured on the full test split. Each input picks its own "
                              f"heads: b sets the average share, and every number is a mean over test inputs."),
               "points": points, "stops": list(range(len(points))), "series": series, "y": accuracy_axis(ys),
               "metric_labels": ["accuracy", "realised cost", "heads per input (mean)", "latency, ms/input",
                                 "speedup vs dense", "FLOP-model bound"],
               "cost_sub": "mean share of heads run over inputs and blocks",
               "grid_caption": ("Heads an input runs per block at this budget, on average (the number; lit cells count them, "
                                "the last one in part). Which heads run varies by input: see the Per-input inspector."
                                if mode != "inspector" else "The heads this text runs at this budget: blue runs, grey is off")}
    payload["sig"] = hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return payload


# ---------------------------------------------------------------- cached per model
@st.cache_resource(show_spinner="Measuring every operating point of the model (once)…", max_entries=8)
def points_cached(path: str, version: float, live: bool, _ckpt, _data):
    """The model's operating points (``baa_core.measure.operating_points``), with live-sample accuracy when
    ``live`` (small models with their data on hand). Shared by every session; never mutated."""
    from baa_core.measure.latency import padded_lengths
    from baa_core.measure.operating_points import operating_points

    model = _ckpt.model
    lengths = padded_lengths(_data.latency_batches) if _data is not None else None
    card = _ckpt.typed_card.as_dict()  # validated once (baa_core.io.card): no string, NaN or misshapen field gets here
    mean_len = (card.get("latency") or {}).get("mean_padded_length")
    if lengths is None and isinstance(mean_len, (int, float)) and mean_len > 0:
        lengths = [round(mean_len)] * 8
    def run_live(mask):
        return state.live_accuracy_cached(path, version, tuple(tuple(int(v) for v in r) for r in mask.tolist()), _ckpt, _data)

    return operating_points(model, card, lengths=lengths or [model.config.max_len],
                            live=run_live if live and _data is not None else None, live_n=len(_data.sample) if _data is not None else 0)


@st.cache_resource(max_entries=16)
def payload_cached(path: str, version: float, live: bool, mode: str, panel_id: str, _ckpt, _data) -> dict:
    from baa_core.measure.operating_points import below_range, trained_range

    points = points_cached(path, version, live, _ckpt, _data)
    card = _ckpt.typed_card.as_dict()
    lo_hi = trained_range(card)
    name = methods.label(methods.method_for_model(_ckpt.model).name).split(" (")[0]  # "BAA", "static gates"
    label = f"{name} live ({len(_data.sample)}-example sample)" if _data is not None else "live"
    return panel_payload(points, panel_id=panel_id, mode=mode, card=card, budget_range=lo_hi,
                         own_method=methods.method_for_model(_ckpt.model).name,
                         below=below_range(_ckpt.model, lo_hi[0]), live_label=label)


@st.cache_data(show_spinner="Running this text at every operating point…", max_entries=32)
def input_at_points(path: str, version: float, text: str, stops: tuple[int, ...], _ckpt, _points) -> dict:
    """The per-input part of the payload: class probabilities of ``text`` at each stop (null elsewhere)."""
    from baa_core.measure.inspection import encode_text
    from baa_core.measure.operating_points import probs_at_points

    enc = encode_text(_ckpt.tokenizer, text, _ckpt.model.config.max_len)
    probs = probs_at_points(_ckpt.model, enc.input_ids, enc.attention_mask, [_points[i].mask for i in stops])
    at = [None] * len(_points)
    for i, p in zip(stops, probs):
        at[i] = {"probs": [round(v, 5) for v in p]}
    return {"labels": list(_ckpt.typed_card.labels or _ckpt.model.config.labels or [str(i) for i in range(len(probs[0]))]),
            "at": at}


# ---------------------------------------------------------------- on the page
def _on_commit(key: str) -> None:
    value = (st.session_state.get(key) or {}).get("commit")
    if value is not None:
        st.session_state[state.BUDGET_KEY] = round(float(value), 4)


def show(sel, data, *, key: str, mode: str = "explorer", text: str | None = None, truth: int | None = None):
    """Draw the panel for the selected model; returns (points, committed budget, its point, the stops' indices).

    The committed budget is the session's shared budget, snapped to a stop of this model."""
    from baa_core.measure.operating_points import point_at

    live = bool(data is not None and data.live_accuracy_auto)
    base = payload_cached(*sel.key, live, mode, key, sel.ckpt, data if mode != "overview" else None)
    points = points_cached(*sel.key, live, sel.ckpt, data if mode != "overview" else None)
    stops = [points[i] for i in base["stops"]]
    shared = st.session_state.get(state.BUDGET_KEY)
    point = point_at(stops, shared if shared is not None else 0.5) if stops else None
    payload = {**base, "budget": None if point is None else point.budget}
    if mode == "inspector" and point is not None:
        try:
            payload["input"] = {**input_at_points(*sel.key, text, tuple(base["stops"]), sel.ckpt, points), "truth": truth}
        except ValueError:  # empty or unusable text (InputError): the page says why below the panel
            pass
    _COMPONENT(key=key, data=payload, on_commit_change=lambda: _on_commit(key))
    return points, (None if point is None else point.budget), point, base["stops"]


def show_adaptive(sel, *, key: str, mode: str = "explorer", sibling_rows: list[dict] | None = None, text: str | None = None,
                  truth: int | None = None, sample_shares: dict | None = None):
    """The live panel for an adaptive model (card numbers, see ``adaptive_payload``). Returns (the committed
    budget, the text's ``Inspection`` at it): the budget is the session's shared budget snapped to a budget the
    card measured (None: the card has none); ``mode="inspector"`` with a ``text`` also draws the text's own
    heads, class probabilities and s(b) at every budget, and the inspection comes from that same run (so a
    release of the slider runs no model); otherwise it is None."""
    cfg = sel.model.config
    base = adaptive_payload(sel.ckpt.typed_card.as_dict(), panel_id=key, layers=cfg.n_layers, heads=cfg.n_heads,
                            sibling_rows=sibling_rows, mode=mode, sample_shares=sample_shares)
    if not base["points"]:
        return None, None
    shared = st.session_state.get(state.BUDGET_KEY)
    shared = 0.5 if shared is None else float(shared)
    budgets = [p["b"] for p in base["points"]]
    budget = min(budgets, key=lambda b: (abs(b - shared), b))
    payload, ins = {**base, "budget": budget}, None
    if mode == "inspector" and text is not None:
        try:
            per = adaptive_input_at(*sel.key, text, tuple(budgets), sel.ckpt)
            payload["input"] = {"labels": per["labels"], "at": per["at"], "truth": truth}
            ins = per["inspections"][budgets.index(budget)]
        except ValueError:  # empty or unusable text (InputError): the page says why below the panel
            pass
    _COMPONENT(key=key, data=payload, on_commit_change=lambda: _on_commit(key))
    return budget, ins


@st.cache_data(show_spinner="Running this text at every budget…", max_entries=32)
def adaptive_input_at(path: str, version: float, text: str, budgets: tuple[float, ...], _ckpt) -> dict:
    """The per-input part of an adaptive model's panel: at each budget, the text's class probabilities, the heads it
    runs (its own mask) and s per block; and the whole ``Inspection`` at each budget (what the inspector shows at
    the committed one). One forward pass per budget (``inspect_text``, one torch thread)."""
    import torch

    from baa_core.measure.inspection import inspect_text
    from baa_core.measure.latency import TIMING_LOCK

    with TIMING_LOCK:  # the thread count is process-wide: set it as the Attention page does, under the timings' lock
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            inspections = [inspect_text(_ckpt.model, _ckpt.tokenizer, text, budget=b, attentions=False, latency=False,
                                        label_names=_ckpt.typed_card.labels or None) for b in budgets]
        finally:
            torch.set_num_threads(threads)
    at = [{"probs": [round(v, 5) for v in ins.probs], "mask": [int(v > 0) for v in ins.head_weights.flatten().tolist()],
           "s": [round(float(v), 4) for v in (ins.s or [])]} for ins in inspections]
    return {"labels": list(inspections[0].label_names) if inspections else [], "at": at, "inspections": inspections}


def inspection_or_stop(sel, text: str, points: list, stops: list[int], point):
    """The ``Inspection`` of ``text`` at a committed point, assembled from the per-input run the panel
    already made (one batch per text), so a release of the slider runs no model. Bad text ends the page
    run with one sentence, as ``state.inspect_or_stop`` does."""
    from baa_core.measure.cost import model_flops
    from baa_core.measure.inspection import Inspection, InputError, encode_text

    cfg = sel.model.config
    try:
        enc = encode_text(sel.ckpt.tokenizer, text, cfg.max_len)
        per = input_at_points(*sel.key, text, tuple(stops), sel.ckpt, points)
    except InputError as exc:
        st.warning(f"Nothing to inspect: {safe.message(exc)}.")
        st.stop()
    except ValueError as exc:
        st.error(f"The model cannot run on this input: {safe.message(exc)}")
        st.stop()
    probs = per["at"][next(i for i, p in enumerate(points) if p is point)]["probs"]
    T = enc.input_ids.shape[1]
    return Inspection(tokens=enc.tokens, truncated=enc.truncated, label_names=per["labels"], probs=probs,
                      prediction=max(range(len(probs)), key=probs.__getitem__), head_weights=point.mask, attentions=None,
                      gate_values=point.gates, flops=model_flops(cfg, point.heads_per_layer, [T]).total,
                      dense_flops=model_flops(cfg, None, [T]).total, unknown_tokens=enc.unknown_tokens,
                      content_tokens=enc.content_tokens)


def show_live_accuracy(container, accuracy: float, n: int) -> None:
    """A live-sample accuracy as a metric, with its 95% Wilson interval under it (a sample of n inputs)."""
    from baa_core.measure.operating_points import wilson_interval

    lo, hi = wilson_interval(accuracy, n)
    container.metric(f"accuracy, live ({n} test examples)", f"{accuracy:.1%}",
                     help="this sample, computed here now; the card's number in the panel is the whole test split's")
    container.caption(f"95% interval (Wilson, n = {n}): [{lo:.1%}, {hi:.1%}]")
