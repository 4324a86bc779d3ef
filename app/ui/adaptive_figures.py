"""render_* for adaptive models (issue 10): data in (plain lists), plotly figure out. Nothing measured here.

The data come from ``baa_core.measure.adaptive.operating_point_arrays`` (one budget, every input of the
evaluation sample) and ``baa_core.measure.adaptive.s_curves`` (one input, every budget), as plain lists, so a
browser-side panel can draw the same things from the same arrays.
"""
from __future__ import annotations

import math

import plotly.graph_objects as go

from app.ui.figures import ACCENT, ON, PHASE_PALETTE, _layout

DIFFICULTY_COLORS = ["#2b8a3e", "#f59f00", "#e8590c", "#e03131", "#862e9c"]


def render_s_histogram(point: dict, groups: list | None = None, group_names: list[str] | None = None,
                       value: str = "s", title_group: str = "class") -> go.Figure:
    """Histogram of every input's s_i(b) (mean over blocks), stacked by group (class, number of marks,
    correct or not), with the requested budget b marked. ``value``: "s" or "realised" (the heads run)."""
    xs = point[value]
    groups = groups if groups is not None else point["label"]
    keys = sorted(set(groups))
    names = group_names or [str(k) for k in keys]
    palette = DIFFICULTY_COLORS if title_group == "marks" else PHASE_PALETTE
    fig = go.Figure()
    for j, k in enumerate(keys):
        vals = [x for x, g in zip(xs, groups) if g == k]
        name = names[j] if j < len(names) else str(k)
        fig.add_trace(go.Histogram(x=vals, name=f"{title_group} {name}" if title_group == "marks" else name,
                                   xbins=dict(start=0.0, end=1.0001, size=0.025), marker_color=palette[j % len(palette)],
                                   hovertemplate=f"{name}: %{{y}} inputs at %{{x}}<extra></extra>"))
    b = point["budget"]
    fig.add_vline(x=b, line_dash="dot", line_color="#212529", annotation_text=f"b = {b:.2f}")
    mean = sum(xs) / max(1, len(xs))
    fig.add_vline(x=mean, line_color=ACCENT, annotation_text=f"mean {mean:.3f}", annotation_position="bottom right")
    fig.update_layout(barmode="stack", bargap=0.05)
    fig.update_xaxes(title=("per-input budget s_i(b), mean over blocks" if value == "s"
                            else "share of heads run per input (ceil(s·H)/H, mean over blocks)"), range=[0, 1.02])
    fig.update_yaxes(title="inputs")
    return _layout(fig, 300)


def render_s_histogram_svg(point: dict, groups: list | None = None, group_names: list[str] | None = None,
                           title_group: str = "class", width: int = 620, height: int = 300) -> str:
    """``render_s_histogram`` as one SVG string: the same bins (0.025 wide over 0..1), stacked by group, b and
    the mean marked. SVG, not plotly, because it follows every release of the slider: the browser draws it in
    about a millisecond, where a plotly chart remounts in 150-400 ms on this machine (measured by
    benchmarks/app_drag.py: release -> final p95 453 ms on ag_news-word-adaptive with the plotly chart)."""
    from html import escape

    xs = point["s"]
    groups = groups if groups is not None else point["label"]
    keys = sorted(set(groups))
    names = group_names or [str(k) for k in keys]
    palette = DIFFICULTY_COLORS if title_group == "marks" else PHASE_PALETTE
    n_bins, size = 40, 0.025
    counts = [[0] * n_bins for _ in keys]
    index = {k: j for j, k in enumerate(keys)}
    for x, g in zip(xs, groups):
        counts[index[g]][min(n_bins - 1, max(0, int(x / size)))] += 1
    top = max([sum(c[i] for c in counts) for i in range(n_bins)] + [1])
    L, R, T, B = 48, 12, 10, 40
    legend_rows = (len(keys) + 2) // 3
    H = height + 20 * legend_rows
    pw, ph = width - L - R, height - T - B
    X = lambda x: L + pw * x / 1.02  # noqa: E731
    Y = lambda y: T + ph * (1 - y / top)  # noqa: E731
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {H}' width='100%' style='max-width:{width}px;"
           f"font-family:sans-serif;font-size:11px' role='img' aria-label='histogram of per-input budgets'>",
           f"<rect x='0' y='0' width='{width}' height='{H}' fill='white'/>"]
    step = max(1, round(top / 5 / 10 ** int(math.log10(max(1, top / 5))))) * 10 ** int(math.log10(max(1, top / 5)))
    for t in range(0, top + 1, step):
        out.append(f"<line x1='{L}' x2='{L + pw}' y1='{Y(t):.1f}' y2='{Y(t):.1f}' stroke='#eee'/>"
                   f"<text x='{L - 6}' y='{Y(t) + 4:.1f}' text-anchor='end' fill='#555'>{t}</text>")
    for t in (0, 0.2, 0.4, 0.6, 0.8, 1.0):
        out.append(f"<text x='{X(t):.1f}' y='{T + ph + 14}' text-anchor='middle' fill='#555'>{t:g}</text>")
    out.append(f"<text x='{L + pw / 2}' y='{T + ph + 32}' text-anchor='middle' fill='#333'>per-input budget s_i(b), mean over "
               f"blocks</text><text transform='translate(12 {T + ph / 2}) rotate(-90)' text-anchor='middle' fill='#333'>inputs</text>"
               f"<rect x='{L}' y='{T}' width='{pw}' height='{ph}' fill='none' stroke='#ccc'/>")
    bw = X(size) - X(0)
    for i in range(n_bins):
        base = 0
        for j, c in enumerate(counts):
            if not c[i]:
                continue
            name = names[j] if j < len(names) else str(keys[j])
            out.append(f"<rect x='{X(i * size) + 0.5:.1f}' y='{Y(base + c[i]):.1f}' width='{max(0.5, bw - 1):.1f}' "
                       f"height='{Y(base) - Y(base + c[i]):.1f}' fill='{palette[j % len(palette)]}'><title>{escape(str(name))}: "
                       f"{c[i]} inputs at s in [{i * size:.3f}, {(i + 1) * size:.3f})</title></rect>")
            base += c[i]
    b = point["budget"]
    mean = sum(xs) / max(1, len(xs))
    out.append(f"<line x1='{X(b):.1f}' x2='{X(b):.1f}' y1='{T}' y2='{T + ph}' stroke='#212529' stroke-dasharray='3 3'/>"
               f"<text x='{X(b) + (4 if b < 0.85 else -4):.1f}' y='{T + 12}' text-anchor='{'start' if b < 0.85 else 'end'}' "
               f"fill='#212529'>b = {b:.2f}</text>"
               f"<line x1='{X(mean):.1f}' x2='{X(mean):.1f}' y1='{T}' y2='{T + ph}' stroke='{ACCENT}'/>"
               f"<text x='{X(mean) + (4 if mean < 0.85 else -4):.1f}' y='{T + ph - 6}' text-anchor='{'start' if mean < 0.85 else 'end'}' "
               f"fill='{ACCENT}'>mean {mean:.3f}</text>")
    for j, k in enumerate(keys):
        name = names[j] if j < len(names) else str(k)
        label = f"{title_group} {name}" if title_group == "marks" else str(name)
        lx, ly = L + (j % 3) * (pw / 3), height + 4 + 20 * (j // 3)
        out.append(f"<rect x='{lx:.1f}' y='{ly - 6}' width='12' height='12' fill='{palette[j % len(palette)]}'/>"
                   f"<text x='{lx + 18:.1f}' y='{ly + 4}' fill='#333'>{escape(label)}</text>")
    out.append("</svg>")
    return "".join(out)


def render_s_curves(curves: dict, budget: float | None = None) -> go.Figure:
    """s(b) of each block for one input as b runs from 0 to 1 (solid), the share of heads it runs
    (dashed steps, ceil(s·H)/H), and the current b marked."""
    fig = go.Figure()
    bs, H = curves["budgets"], curves["n_heads"]
    for layer, (s, k) in enumerate(zip(curves["s"], curves["heads"])):
        color = PHASE_PALETTE[layer % len(PHASE_PALETTE)]
        fig.add_trace(go.Scatter(x=bs, y=s, mode="lines", name=f"block {layer}: s", line=dict(color=color),
                                 hovertemplate=f"block {layer}: s=%{{y:.3f}} at b=%{{x:.2f}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=bs, y=[v / H for v in k], mode="lines", line=dict(color=color, dash="dash", shape="hv"),
                                 name=f"block {layer}: heads run / {H}", customdata=k,
                                 hovertemplate=f"block {layer}: %{{customdata}} of {H} heads at b=%{{x:.2f}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#adb5bd", dash="dot", width=1),
                             name="s = b", hoverinfo="skip"))
    if budget is not None:
        fig.add_vline(x=budget, line_dash="dot", line_color="#212529", annotation_text=f"b = {budget:.2f}")
    fig.update_xaxes(title="requested budget b", range=[0, 1.0])
    fig.update_yaxes(title="s(b) and share of heads", range=[0, 1.02])
    fig.update_layout(showlegend=len(curves["s"]) <= 6)
    return _layout(fig, 330)


def render_s_curves_svg(curves: dict, width: int = 620, height: int = 300) -> str:
    """``render_s_curves`` (without the b marker) as one SVG string: s(b) of each block (solid) and the share of
    heads it runs (dashed steps, ceil(s·H)/H) over b, and s = b. SVG, not plotly: it sits in the inspector's
    fragment, which every release of the slider reruns, and a plotly chart there re-renders on each release."""
    from html import escape

    bs, H = curves["budgets"], curves["n_heads"]
    L_, R, T, B = 44, 12, 10, 40
    n = len(curves["s"])
    legend_rows = (n + 1 + 2) // 3
    Ht = height + 20 * legend_rows
    pw, ph = width - L_ - R, height - T - B
    X = lambda x: L_ + pw * x  # noqa: E731
    Y = lambda y: T + ph * (1 - y / 1.02)  # noqa: E731
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {Ht}' width='100%' style='max-width:{width}px;"
           f"font-family:sans-serif;font-size:11px' role='img' aria-label='s(b) per block'>",
           f"<rect x='0' y='0' width='{width}' height='{Ht}' fill='white'/>"]
    for t in (0, 0.2, 0.4, 0.6, 0.8, 1.0):
        out.append(f"<line x1='{X(t):.1f}' x2='{X(t):.1f}' y1='{T}' y2='{T + ph}' stroke='#eee'/>"
                   f"<line x1='{L_}' x2='{L_ + pw}' y1='{Y(t):.1f}' y2='{Y(t):.1f}' stroke='#eee'/>"
                   f"<text x='{X(t):.1f}' y='{T + ph + 14}' text-anchor='middle' fill='#555'>{t:g}</text>"
                   f"<text x='{L_ - 6}' y='{Y(t) + 4:.1f}' text-anchor='end' fill='#555'>{t:g}</text>")
    out.append(f"<text x='{L_ + pw / 2}' y='{T + ph + 32}' text-anchor='middle' fill='#333'>requested budget b</text>"
               f"<text transform='translate(12 {T + ph / 2}) rotate(-90)' text-anchor='middle' fill='#333'>s(b) and share of heads</text>"
               f"<rect x='{L_}' y='{T}' width='{pw}' height='{ph}' fill='none' stroke='#ccc'/>"
               f"<line x1='{X(0):.1f}' y1='{Y(0):.1f}' x2='{X(1):.1f}' y2='{Y(1):.1f}' stroke='#adb5bd' stroke-dasharray='2 3'/>")
    legend = []
    for layer, (sv, k) in enumerate(zip(curves["s"], curves["heads"])):
        color = PHASE_PALETTE[layer % len(PHASE_PALETTE)]
        pts = " ".join(f"{X(b):.1f},{Y(v):.1f}" for b, v in zip(bs, sv))
        steps = []
        for i, (b, kk) in enumerate(zip(bs, k)):
            steps.append(f"{X(b):.1f},{Y(kk / H):.1f}")
            if i + 1 < len(bs):
                steps.append(f"{X(bs[i + 1]):.1f},{Y(kk / H):.1f}")
        tip = escape(f"block {layer}: s from {sv[0]:.3f} to {sv[-1]:.3f}; heads {k[0]} to {k[-1]} of {H}")
        out.append(f"<polyline points='{pts}' fill='none' stroke='{color}' stroke-width='2'><title>{tip}</title></polyline>"
                   f"<polyline points='{' '.join(steps)}' fill='none' stroke='{color}' stroke-width='1.5' stroke-dasharray='5 3'/>")
        legend.append((color, f"block {layer}"))
    legend.append(("#adb5bd", "s = b"))
    for i, (color, label) in enumerate(legend):
        lx, ly = L_ + (i % 3) * (pw / 3), height + 4 + 20 * (i // 3)
        out.append(f"<line x1='{lx:.1f}' x2='{lx + 18:.1f}' y1='{ly}' y2='{ly}' stroke='{color}' stroke-width='2'/>"
                   f"<text x='{lx + 24:.1f}' y='{ly + 4}' fill='#333'>{escape(label)}</text>")
    out.append("</svg>")
    return "".join(out)


def render_s_by_marks(rows: list[dict], budget: float | None = None) -> go.Figure:
    """Mean s by number of marks at each budget of the card (synthetic_marks): one line per count."""
    fig = go.Figure()
    for j, m in enumerate(sorted({r["marks"] for r in rows})):
        rs = sorted((r for r in rows if r["marks"] == m), key=lambda r: r["budget"])
        fig.add_trace(go.Scatter(x=[r["budget"] for r in rs], y=[r["s_mean"] for r in rs], mode="lines+markers",
                                 name=f"{m} mark{'s' if m > 1 else ''}", line=dict(color=DIFFICULTY_COLORS[j % 5]),
                                 error_y=dict(type="data", array=[r["s_std"] for r in rs], thickness=1)))
    if budget is not None:
        fig.add_vline(x=budget, line_dash="dot", annotation_text=f"b = {budget:.2f}")
    fig.update_xaxes(title="requested budget b")
    fig.update_yaxes(title="mean s over the inputs", rangemode="tozero")
    return _layout(fig, 300)


def render_tracking(rows: list[dict]) -> go.Figure:
    """Realised head fraction and mean s against the requested b (the card's tracking rows)."""
    fig = go.Figure()
    bs = [r["budget"] for r in rows]
    fig.add_trace(go.Scatter(x=bs, y=[r["realised"] for r in rows], mode="lines+markers", name="heads run (realised)",
                             line=dict(color=ON)))
    fig.add_trace(go.Scatter(x=bs, y=[r["s_mean"] for r in rows], mode="lines+markers", name="mean s",
                             line=dict(color=ACCENT)))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="= b", line=dict(color="#adb5bd", dash="dot")))
    fig.update_xaxes(title="requested budget b", range=[0, 1.02])
    fig.update_yaxes(title="share of heads", range=[0, 1.02])
    return _layout(fig, 280)
