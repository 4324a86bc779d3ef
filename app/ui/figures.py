"""render_* functions: data in, plotly figure out. No Streamlit, no model calls, nothing measured here.

Every string that can come from a user (class names, tokens of typed text, method names in a card)
goes through ``safe.plot`` before it reaches Plotly, and through ``html.escape`` into the SVG charts."""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.ui.safe import plot as _text
from baa_core.methods import color as method_color, label as method_label

ON, OFF, ACCENT = "#2f6fde", "#e4e6eb", "#e8590c"
LIVE_COLOR = "#1098ad"  # the app's own live measurement; each method's colour lives in its registry entry
PHASE_PALETTE = ["#2f6fde", "#2b8a3e", "#e8590c", "#ae3ec9", "#1098ad", "#212529"]


def export_config(fmt: str = "png", filename: str = "figure") -> dict:
    """Plotly's camera button saves the figure in the browser (no kaleido, no Chrome on the server)."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": fmt.lower(), "filename": filename, "scale": 2}}


EXPORT_CONFIG = export_config()


MODEBAR_PX = 34  # plotly's toolbar (camera, zoom...) sits in this band at the top right; titles go below it


def _layout(fig: go.Figure, height: int, title: str | None = None) -> go.Figure:
    """Size, margins, legend below. No template: st.plotly_chart applies Streamlit's theme (and setting a
    template deep-copies it, ~40 ms a figure, which the slider would feel).
    Titles never sit under plotly's toolbar: the figure title starts below its band and subplot titles
    (annotations above the top row) get their own line under that."""
    legend = len(fig.data) > 1 and fig.layout.showlegend is not False
    subplot_titles = any(a.yref and str(a.yref).endswith("paper") and a.yanchor == "bottom" for a in fig.layout.annotations)
    top = (MODEBAR_PX + 26 if title else 10 if not subplot_titles else MODEBAR_PX) + (24 if subplot_titles else 0)
    # a marker's label at the top of the plot ("b = 0.75" on a vertical line) would sit under the toolbar too
    if any(str(a.yref or "").endswith("domain") and a.y == 1 for a in fig.layout.annotations):
        top = max(top, MODEBAR_PX)
    fig.update_layout(height=height + (90 if legend else 0) + max(0, top - 40),
                      margin=dict(l=10, r=10, t=top, b=110 if legend else 10),
                      title=None if title is None else dict(text=title, x=0, xanchor="left", yref="container", y=1,
                                                            yanchor="top", pad=dict(t=MODEBAR_PX)),
                      legend=dict(orientation="h", yanchor="bottom", y=0.0, x=0, yref="container"))
    return fig


def render_head_grid(mask, values=None, value_name: str = "gate") -> str:
    """Layer x head grid as an HTML table: blue = the head runs, grey = off; each cell shows its gate (or q) value.

    HTML, not plotly: it sits in the slider's panel and redraws on every move, and a table costs the
    browser next to nothing to draw (a plotly heat map costs ~100 ms of a 300 ms budget).
    """
    L, H = len(mask), len(mask[0])
    # The table takes the width it is given and splits it evenly (fixed layout, no minimum cell width), so a
    # 12-head grid fits a column or a narrow window instead of running off the page; text that does not fit a
    # cell is cut, and the full text is in each cell's tooltip.
    clip = "overflow:hidden;white-space:nowrap;text-overflow:clip"
    head = "".join(f"<th style='font-weight:normal;padding:2px 0;color:#555;{clip}'>{'h' if H > 6 else 'head '}{h}</th>" for h in range(H))
    rows = []
    for layer in range(L):
        cells = []
        for h in range(H):
            on = mask[layer][h] > 0
            v = None if values is None else float(values[layer][h])
            value = "" if v is None else f"<br><span style='font-size:0.8em'>{v:.{2 if H > 6 else 3}f}</span>"
            style = (f"background:{ON if on else OFF};color:{'white' if on else '#333'};padding:6px 0;text-align:center;"
                     f"border-radius:4px;{clip}")
            tip = f"block {layer}, head {h}: {'on' if on else 'off'}" + ("" if v is None else f", {value_name} {v:.3f}")
            cells.append(f"<td style='{style}' title='{tip}'>{'on' if on else 'off'}{value}</td>")
        rows.append(f"<tr><th style='font-weight:normal;padding-right:8px;color:#555;text-align:right;{clip}'>block {layer}</th>"
                    f"{''.join(cells)}</tr>")
    return (f"<table style='border-collapse:separate;border-spacing:3px;font-size:0.85em;width:100%;max-width:{90 + 64 * H}px;"
            f"table-layout:fixed'><colgroup><col style='width:64px'>{'<col>' * H}</colgroup><tr><th></th>{head}</tr>"
            + "".join(rows) + "</table>")


def render_pareto(rows: list[dict], live: list[dict] | None = None, live_label: str = "live") -> go.Figure:
    """Accuracy against estimated attention cost, one trace per method (the slider's panel draws the
    current point with ``render_pareto_svg``)."""
    fig = go.Figure()
    methods: dict[str, list[dict]] = {}
    for r in rows:
        methods.setdefault(r["method"], []).append(r)
    for method, rs in methods.items():
        rs = sorted(rs, key=lambda r: (r.get("est_cost") or 0, r.get("budget") or 0))
        fig.add_trace(go.Scatter(
            x=[r.get("est_cost") for r in rs], y=[r["accuracy"] for r in rs], mode="lines+markers" if len(rs) > 1 else "markers",
            name=_text(method_label(method)) + " (card)", marker=dict(size=9, color=method_color(method)),
            line=dict(color=method_color(method)),
            customdata=[[r.get("budget"), r.get("speedup"), r.get("active_heads"), r.get("total_heads")] for r in rs],
            hovertemplate="budget %{customdata[0]}<br>cost %{x:.3f}<br>accuracy %{y:.4f}<br>speedup %{customdata[1]:.2f}x"
                          "<br>heads %{customdata[2]}/%{customdata[3]}<extra></extra>"))
    if live:
        live = sorted(live, key=lambda r: r["est_cost"])
        fig.add_trace(go.Scatter(x=[r["est_cost"] for r in live], y=[r["accuracy"] for r in live], mode="lines+markers",
                                 name=_text(live_label), line=dict(dash="dot", color=LIVE_COLOR),
                                 marker=dict(size=6, color=LIVE_COLOR)))
    fig.update_xaxes(title="estimated attention cost (active heads / all heads)", range=[0, 1.05])
    fig.update_yaxes(title="accuracy")
    return _layout(fig, 380)


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = max(hi - lo, 1e-9)
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def render_pareto_svg(rows: list[dict], current: dict | None = None, live: list[dict] | None = None,
                      live_label: str = "live", width: int = 620, height: int = 340) -> str:
    """The Pareto chart as one SVG string: accuracy against estimated cost, one line per method, the
    current point as a star. SVG, not plotly, because it redraws on every slider move: the browser draws
    it in about a millisecond (a plotly chart remounts, ~150 ms here), and the string is the SVG export."""
    from html import escape

    # key -> (legend label, colour, dash, rows): one series per method in the card, one for the live sample
    series: dict[str, tuple[str, str, str, list[dict]]] = {}
    for r in rows:
        if r.get("est_cost") is not None and r.get("accuracy") is not None:
            m = r["method"]
            series.setdefault(m, (method_label(m) + " (card)", method_color(m) or "#555", "", []))[3].append(r)
    if live:
        series["live sample"] = (live_label, LIVE_COLOR, " stroke-dasharray='4 3'", list(live))
    ys = [r["accuracy"] for *_, rs in series.values() for r in rs] + ([current["accuracy"]] if current else [])
    if not ys:
        return "<p>No measured points to draw.</p>"
    lo, hi = min(ys), max(ys)
    # At least 2 accuracy points tall: a 0.2-point gap drawn across the whole chart would look large.
    span, mid = max((hi - lo) * 1.2, 0.02), (lo + hi) / 2
    lo, hi = max(0.0, mid - span / 2), min(1.01, mid + span / 2)
    L, R, T, B = 58, 16, 12, 46
    legend_rows = (len(series) + (1 if current else 0) + 1) // 2
    H = height + 20 * legend_rows
    pw, ph = width - L - R, height - T - B
    X = lambda x: L + pw * x / 1.05  # noqa: E731
    Y = lambda y: T + ph * (1 - (y - lo) / (hi - lo or 1))  # noqa: E731
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {H}' width='100%' style='max-width:{width}px;"
           f"font-family:sans-serif;font-size:11px' role='img' aria-label='accuracy against estimated attention cost'>",
           f"<rect x='0' y='0' width='{width}' height='{H}' fill='white'/>"]
    for t in _nice_ticks(0, 1.0):
        out.append(f"<line x1='{X(t):.1f}' x2='{X(t):.1f}' y1='{T}' y2='{T + ph}' stroke='#eee'/>"
                   f"<text x='{X(t):.1f}' y='{T + ph + 14}' text-anchor='middle' fill='#555'>{t:g}</text>")
    for t in _nice_ticks(lo, hi):
        out.append(f"<line x1='{L}' x2='{L + pw}' y1='{Y(t):.1f}' y2='{Y(t):.1f}' stroke='#eee'/>"
                   f"<text x='{L - 6}' y='{Y(t) + 4:.1f}' text-anchor='end' fill='#555'>{t:.4g}</text>")
    out.append(f"<text x='{L + pw / 2}' y='{T + ph + 32}' text-anchor='middle' fill='#333'>estimated attention cost "
               f"(active heads / all heads)</text><text transform='translate(14 {T + ph / 2}) rotate(-90)' text-anchor='middle' "
               f"fill='#333'>accuracy</text><rect x='{L}' y='{T}' width='{pw}' height='{ph}' fill='none' stroke='#ccc'/>")
    legend = []
    for method, (name, color, dash, rs) in series.items():
        rs = sorted(rs, key=lambda r: (r["est_cost"], r.get("budget") or 0))
        if len(rs) > 1:
            pts = " ".join(f"{X(r['est_cost']):.1f},{Y(r['accuracy']):.1f}" for r in rs)
            out.append(f"<polyline points='{pts}' fill='none' stroke='{color}' stroke-width='2'{dash}/>")
        for r in rs:
            tip = f"{method} budget {r.get('budget', '-')}: cost {r['est_cost']:.3f}, accuracy {r['accuracy']:.4f}"
            if r.get("speedup"):
                tip += f", speedup {r['speedup']:.2f}x"
            out.append(f"<circle cx='{X(r['est_cost']):.1f}' cy='{Y(r['accuracy']):.1f}' r='{3 if dash else 4}' "
                       f"fill='{color}'><title>{escape(tip)}</title></circle>")
        legend.append((color, name, dash))
    if current:
        cx, cy = X(current["est_cost"]), Y(current["accuracy"])
        star = " ".join(f"{cx + (10 if i % 2 == 0 else 4) * math.sin(i * math.pi / 5):.1f},"
                        f"{cy - (10 if i % 2 == 0 else 4) * math.cos(i * math.pi / 5):.1f}" for i in range(10))
        out.append(f"<polygon points='{star}' fill='{ACCENT}' stroke='white'><title>{escape(current.get('label', 'now'))}: "
                   f"cost {current['est_cost']:.3f}, accuracy {current['accuracy']:.4f}</title></polygon>")
        legend.append((ACCENT, current.get("label", "now"), None))
    for i, (color, label, dash) in enumerate(legend):
        lx, ly = L + (i % 2) * (pw / 2), height + 4 + 20 * (i // 2)
        mark = (f"<polygon points='{lx + 9},{ly - 6} {lx + 11},{ly - 1} {lx + 16},{ly - 1} {lx + 12},{ly + 2} {lx + 14},{ly + 7} "
                f"{lx + 9},{ly + 4} {lx + 4},{ly + 7} {lx + 6},{ly + 2} {lx + 2},{ly - 1} {lx + 7},{ly - 1}' fill='{color}'/>"
                if dash is None else f"<line x1='{lx}' x2='{lx + 18}' y1='{ly}' y2='{ly}' stroke='{color}' stroke-width='2'{dash}/>")
        out.append(f"{mark}<text x='{lx + 24}' y='{ly + 4}' fill='#333'>{escape(label)}</text>")
    out.append("</svg>")
    return "".join(out)


def render_probs(labels: list[str], probs: list[float], prediction: int) -> go.Figure:
    order = sorted(range(len(probs)), key=lambda i: probs[i])[-10:]
    fig = go.Figure(go.Bar(x=[probs[i] for i in order], y=[_text(labels[i]) if i < len(labels) else str(i) for i in order],
                           orientation="h",
                           marker_color=[ACCENT if i == prediction else ON for i in order],
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_xaxes(range=[0, 1], title="probability")
    return _layout(fig, 60 + 26 * len(order))


def head_ranks(values) -> list[list[int]]:
    """Per block, each head's rank by ``values`` (1 = highest; ties by head index), e.g. BudgetFormer's raw
    scores r: the controller picks its top heads by r, and q = softmax(r / tau) rounds to 0 for all but the
    top head once tau is small, so ranks by q would fall back to index order."""
    out = []
    for row in values:
        order = sorted(range(len(row)), key=lambda h: (-float(row[h]), h))
        out.append([order.index(h) + 1 for h in range(len(row))])
    return out


def render_s_q(s: list[float], q, mask, n_heads: int, scores=None) -> go.Figure:
    """BudgetFormer, one input: budget s per block (bars, with ceil(s*H)/H) and q per head (chosen heads marked),
    heads ranked by their raw scores r (``scores``; by q when they are not given)."""
    L = len(s)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.3, 0.7], subplot_titles=("budget s per block", "rank by relevance score r (✓ = runs)"))
    fig.add_trace(go.Bar(y=[f"block {l}" for l in range(L)], x=s, orientation="h", marker_color=ACCENT, name="s",
                         text=[f"{v:.3f} → {max(1, math.ceil(v * n_heads - 1e-6))}/{n_heads}" for v in s], textposition="auto",
                         hovertemplate="%{y}: s=%{x:.3f}<extra></extra>"), 1, 1)
    # After training q is nearly one-hot, so its values alone hide the order the heads are picked in:
    # each cell shows the head's rank by r (#1 = most relevant), q is in the colour and on hover.
    ranks = head_ranks(scores if scores is not None else q)
    text = [[f"#{ranks[l][h]}" + (" ✓" if mask[l][h] > 0 else "") for h in range(n_heads)] for l in range(L)]
    r = scores if scores is not None else q
    fig.add_trace(go.Heatmap(z=[[float(v) for v in row] for row in q], x=[f"h{h}" for h in range(n_heads)],
                             y=[f"block {l}" for l in range(L)], text=text, texttemplate="%{text}", colorscale="Oranges",
                             customdata=[[float(v) for v in row] for row in r],
                             zmin=0, zmax=1, showscale=False, xgap=2, ygap=2,
                             hovertemplate="%{y} %{x}: q=%{z:.3g}, score r=%{customdata:.3f}, %{text}<extra></extra>"),
                  1, 2)
    fig.update_xaxes(range=[0, 1], row=1, col=1)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_yaxes(autorange="reversed", showticklabels=False, row=1, col=2)
    return _layout(fig, 90 + 40 * L)


def render_s_q_html(s: list[float], q, mask, n_heads: int, scores=None) -> str:
    """``render_s_q`` as an HTML table: per block its budget s (a bar, with ceil(s*H)/H heads) and each head's
    rank by the raw score r (by q when not given; ✓ = runs), shaded by q. HTML, not plotly, because it
    follows every release of the slider on the inspector: a table draws in about a millisecond where a plotly
    chart remounts in 150-400 ms here. Fixed table layout: a 12-head row fits the column it is given."""
    from html import escape

    ranks = head_ranks(scores if scores is not None else q)
    r = scores if scores is not None else q
    clip = "overflow:hidden;white-space:nowrap"
    head = "".join(f"<th style='font-weight:normal;color:#555;{clip}'>h{h}</th>" for h in range(n_heads))
    rows = []
    for layer, sv in enumerate(s):
        k = max(1, math.ceil(float(sv) * n_heads - 1e-6))
        bar = (f"<div style='background:#eef0f2;border-radius:3px;height:16px;position:relative' title='block {layer}: s = {float(sv):.3f}'>"
               f"<div style='background:{ACCENT};opacity:0.8;height:100%;width:{100 * min(1.0, float(sv)):.1f}%;border-radius:3px'></div>"
               f"<span style='position:absolute;left:4px;top:0;font-size:0.8em;line-height:16px'>{float(sv):.3f} → {k}/{n_heads}</span></div>")
        cells = []
        for h in range(n_heads):
            qv = float(q[layer][h])
            on = mask[layer][h] > 0
            shade = f"rgba(230,85,13,{0.12 + 0.88 * max(0.0, min(1.0, qv)):.2f})"  # Oranges, by q
            tip = escape(f"block {layer} head {h}: rank {ranks[layer][h]} by score, q={qv:.3g}, r={float(r[layer][h]):.3f}"
                         + (", runs" if on else ", off"))
            cells.append(f"<td style='background:{shade};color:{'white' if qv > 0.6 else '#212529'};text-align:center;padding:4px 0;"
                         f"border-radius:3px;font-size:0.8em;{clip}{';font-weight:600' if on else ''}' title='{tip}'>"
                         f"#{ranks[layer][h]}{' ✓' if on else ''}</td>")
        rows.append(f"<tr><th style='font-weight:normal;color:#555;text-align:right;padding-right:6px;{clip}'>block {layer}</th>"
                    f"<td style='padding-right:8px'>{bar}</td>{''.join(cells)}</tr>")
    return (f"<table style='border-collapse:separate;border-spacing:3px;width:100%;table-layout:fixed;font-size:0.85em'>"
            f"<colgroup><col style='width:58px'><col style='width:26%'>{'<col>' * n_heads}</colgroup>"
            f"<tr><th></th><th style='font-weight:normal;color:#555;text-align:left'>budget s</th>{head}</tr>"
            + "".join(rows) + "</table><div style='font-size:0.8em;color:#6c757d'>cells: each head's rank by its relevance "
            "score r (#1 = most relevant; ✓ = runs), shaded by q</div>")


def render_attention_heatmaps(attn, tokens: list[str], order: list[int], active: list[bool], block: int,
                              importance=None, importance_name: str = "gate", max_cols: int = 4,
                              max_width: int = 1100) -> go.Figure:
    """One block's heads as heat maps in ``order`` (most important first); inactive heads grey and titled 'off'.
    Every map labels its tokens on both axes (from-token rows, to-token columns), so the figure grows with
    the number of tokens; it has a fixed width (show it with width="content")."""
    n, T = len(order), len(tokens)
    cell, font = (12, 10) if T <= 20 else (9, 8) if T <= 40 else (7, 7)  # px per token, tick font size
    raw = [f"{i}:{t}" for i, t in enumerate(tokens)]
    short = [lab if len(lab) <= 14 else lab[:13] + "…" for lab in raw]
    label_px = int(10 + 0.62 * font * max(len(x) for x in short))  # room for the longest tick label
    labels, short = [_text(x) for x in raw], [_text(x) for x in short]  # typed text: tags shown, not applied
    side = T * cell
    cols = max(1, min(max_cols, n, (max_width - 20) // (side + label_px + 30)))  # square maps, as many as fit
    rows = math.ceil(n / cols)
    width = 20 + cols * (side + label_px + 30)
    height = rows * (side + label_px + 44)
    titles = []
    for h in order:
        imp = "" if importance is None else f" {importance_name}={float(importance[h]):.3g}"
        titles.append(f"head {h}{imp}" + ("" if active[h] else " (off)"))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=(label_px + 30) / width,
                        vertical_spacing=(label_px + 44) / height)
    # One colour scale for the block, up to its largest weight: with many tokens each weight is small,
    # and a fixed 0..1 scale would leave every map nearly white.
    zmax = max((float(max(max(row) for row in attn[h])) for h in order), default=1.0) or 1.0
    ticks = dict(tickmode="array", tickvals=labels, ticktext=short, tickfont=dict(size=font), automargin=True)
    for i, h in enumerate(order):
        r, c = i // cols + 1, i % cols + 1
        fig.add_trace(go.Heatmap(z=[[float(v) for v in row] for row in attn[h]], x=labels, y=labels, zmin=0, zmax=zmax,
                                 colorscale="Blues" if active[h] else "Greys", showscale=i == 0,
                                 colorbar=dict(title="attention weight", len=min(1.0, 1.0 / rows + 0.2), y=1, yanchor="top"),
                                 opacity=1.0 if active[h] else 0.35,
                                 hovertemplate=f"head {h}: from %{{y}} to %{{x}}: %{{z:.3f}}<extra></extra>"), r, c)
        fig.update_yaxes(autorange="reversed", row=r, col=c, **ticks)
        fig.update_xaxes(tickangle=-90, row=r, col=c, **ticks)
    fig.update_annotations(font_size=12)
    fig.update_layout(width=width, showlegend=False)
    return _layout(fig, height, f"block {block}: heads sorted by {importance_name}")


def render_training_curves(events: list[dict]) -> go.Figure:
    """Live loss, accuracy and mean cost against the global step, coloured by phase."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("loss (EMA)", "training accuracy (EMA)", "mean gate cost (EMA)"))
    phases: dict[str, list[dict]] = {}
    for e in events:
        phases.setdefault(e["phase"], []).append(e)
    palette = PHASE_PALETTE
    for i, (phase, es) in enumerate(phases.items()):
        color = palette[i % len(palette)]
        for col, key in ((1, "loss"), (2, "accuracy"), (3, "cost")):
            fig.add_trace(go.Scatter(x=[e["global_step"] for e in es], y=[e[key] for e in es], mode="lines", name=_text(phase),
                                     legendgroup=phase, showlegend=col == 1, line=dict(color=color)), 1, col)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_yaxes(range=[0, 1.02], row=1, col=3)
    fig.update_xaxes(title="step")
    return _layout(fig, 300)


def render_training_curves_svg(events: list[dict], width: int = 900, panel_height: int = 170, max_points: int = 400) -> str:
    """The live curves as one SVG string (loss, training accuracy, mean cost against the step, one colour per
    phase). Redrawn every second while training runs, so it must cost the browser nothing; the interactive
    plotly version (render_training_curves) is shown once training has ended."""
    from html import escape

    if not events:
        return ""
    step = max(1, len(events) // max_points)
    events = events[::step] + ([events[-1]] if (len(events) - 1) % step else [])
    palette = PHASE_PALETTE
    phases = list(dict.fromkeys(e["phase"] for e in events))
    x_max = max(e["global_step"] for e in events) or 1
    panels = (("loss (EMA)", "loss", None), ("training accuracy (EMA)", "accuracy", (0.0, 1.0)), ("mean gate cost (EMA)", "cost", (0.0, 1.0)))
    pw, gap, L, T, B = (width - 40) / 3, 20, 40, 22, 24
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {panel_height + 24}' width='100%' "
           f"style='font-family:sans-serif;font-size:11px' role='img' aria-label='training curves'>"]
    for i, (title, key, fixed) in enumerate(panels):
        x0 = i * (pw + gap)
        values = [e[key] for e in events if e.get(key) is not None]
        lo, hi = fixed or (min(values, default=0.0), max(values, default=1.0))
        hi = hi if hi > lo else lo + 1.0
        ph, w = panel_height - T - B, pw - L
        X = lambda s, x0=x0, w=w: x0 + L + w * s / x_max  # noqa: E731
        Y = lambda v, lo=lo, hi=hi, ph=ph: T + ph * (1 - (v - lo) / (hi - lo))  # noqa: E731
        out.append(f"<text x='{x0 + L}' y='14' fill='#333'>{title}</text><rect x='{x0 + L}' y='{T}' width='{w:.1f}' "
                   f"height='{ph}' fill='none' stroke='#ccc'/><text x='{x0 + L - 4}' y='{T + 4}' text-anchor='end' "
                   f"fill='#555'>{hi:.3g}</text><text x='{x0 + L - 4}' y='{T + ph + 4}' text-anchor='end' fill='#555'>{lo:.3g}</text>"
                   f"<text x='{x0 + L + w:.1f}' y='{T + ph + 14}' text-anchor='end' fill='#555'>step {x_max}</text>")
        for j, phase in enumerate(phases):
            pts = " ".join(f"{X(e['global_step']):.1f},{Y(e[key]):.1f}" for e in events if e["phase"] == phase and e.get(key) is not None)
            out.append(f"<polyline points='{pts}' fill='none' stroke='{palette[j % len(palette)]}' stroke-width='1.5'/>")
    for j, phase in enumerate(phases):
        x = L + j * 130
        out.append(f"<line x1='{x}' x2='{x + 16}' y1='{panel_height + 12}' y2='{panel_height + 12}' "
                   f"stroke='{palette[j % len(palette)]}' stroke-width='2'/><text x='{x + 20}' y='{panel_height + 16}' "
                   f"fill='#333'>{escape(phase)}</text>")
    out.append("</svg>")
    return "".join(out)


def render_s_by_complexity(examples: list[dict], summary: list[dict], rho: float | None = None,
                           x_title: str = "complexity (dense model's loss)") -> go.Figure:
    """Each test input's mean s against its complexity (click a point to inspect it), and the bucket means."""
    colors = {"Simple": "#2b8a3e", "Medium": "#f59f00", "Hard": "#e03131"}
    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35],
                        subplot_titles=("each input (click one to inspect it)", "mean s by complexity bucket"))
    for bucket in ("Simple", "Medium", "Hard"):
        es = [e for e in examples if e["bucket"] == bucket]
        if not es:
            continue
        fig.add_trace(go.Scatter(x=[e["complexity"] for e in es], y=[e["s_mean"] for e in es], mode="markers", name=bucket,
                                 marker=dict(size=6, color=colors[bucket], opacity=0.7), customdata=[[e["index"]] for e in es],
                                 hovertemplate="example %{customdata[0]}<br>complexity %{x:.3f}<br>mean s %{y:.3f}<extra></extra>"),
                      1, 1)
    fig.add_trace(go.Bar(x=[_text(s["bucket"]) for s in summary], y=[s["s_mean"] for s in summary],
                         error_y=dict(type="data", array=[s.get("s_std", 0) for s in summary]),
                         marker_color=[colors.get(s["bucket"], ON) for s in summary], showlegend=False,
                         hovertemplate="%{x}: mean s %{y:.3f}<extra></extra>"), 1, 2)
    fig.update_xaxes(title=x_title, type="log", row=1, col=1)
    fig.update_yaxes(title="mean s over blocks", row=1, col=1)
    title = None if rho is None else f"Spearman rank correlation of s with complexity: {rho:+.3f}"
    return _layout(fig, 380, title)


def render_block_class(rows: list[dict]) -> go.Figure:
    """Mean and standard deviation of s per block x class, side by side."""
    blocks = sorted({r["block"] for r in rows})
    classes = list(dict.fromkeys(r["class"] for r in rows))
    get = {(r["block"], r["class"]): r for r in rows}
    fig = make_subplots(rows=1, cols=2, subplot_titles=("mean s", "std of s"), horizontal_spacing=0.12)
    for col, key, scale in ((1, "s_mean", "Oranges"), (2, "s_std", "Purples")):
        z = [[get[(b, c)][key] if (b, c) in get else None for c in classes] for b in blocks]
        fig.add_trace(go.Heatmap(z=z, x=[_text(c) for c in classes], y=[f"block {b}" for b in blocks], colorscale=scale,
                                 showscale=False,
                                 texttemplate="%{z:.2f}", hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>"), 1, col)
        fig.update_yaxes(autorange="reversed", row=1, col=col)
    return _layout(fig, 120 + 40 * len(blocks))


def render_q_entropy(rows: list[dict]) -> go.Figure:
    fig = go.Figure(go.Bar(x=[f"block {r['block']}" for r in rows], y=[r["entropy_mean"] for r in rows],
                           error_y=dict(type="data", array=[r.get("entropy_std", 0) for r in rows]), marker_color=ACCENT,
                           name="entropy of q"))
    if rows:
        u = rows[0]["uniform_entropy"]
        fig.add_hline(y=u, line_dash="dot", annotation_text=f"uniform over heads (log H = {u:.2f})")
    fig.update_yaxes(title="entropy of q (nats)", rangemode="tozero")
    return _layout(fig, 300)


def render_dynamics(rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    for key, name, color in (("s_mean_train", "s mean (train, running)", ACCENT), ("s_mean_val", "s mean (validation)", "#ae3ec9"),
                             ("val_accuracy", "validation accuracy", ON)):
        fig.add_trace(go.Scatter(x=[r["epoch"] for r in rows], y=[r.get(key) for r in rows], mode="lines+markers", name=name,
                                 line=dict(color=color)))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(range=[0, 1.02])
    return _layout(fig, 320)


def render_paper_vs_here(items: list[dict]) -> go.Figure:
    """Grouped bars: the paper's number and ours, per figure with a counterpart here (same unit only)."""
    fig = go.Figure()
    xs = [i["label"] for i in items]
    ours = [i["ours"] for i in items]
    cis = [i.get("ours_ci") or [v, v] for i, v in zip(items, ours)]
    fig.add_trace(go.Bar(x=xs, y=[i["paper"] for i in items], name="the paper's number (quoted)", marker_color="#adb5bd"))
    fig.add_trace(go.Bar(x=xs, y=ours, name="measured here (card, 95% interval)", marker_color=ON,
                         error_y={"type": "data", "symmetric": False, "array": [hi - v for v, (_, hi) in zip(ours, cis)],
                                  "arrayminus": [v - lo for v, (lo, _) in zip(ours, cis)]}))
    fig.update_layout(barmode="group")
    fig.update_yaxes(tickformat=".0%", title="accuracy (test split)")
    return _layout(fig, 380)


def format_controls(rows: list[dict]) -> list[dict]:
    """``controls_table`` rows for display: accuracies as percentages, each with its 95% interval where there is one."""
    out = []
    for r in rows:
        ci = r.get("intervals") or {}
        shown = {}
        for key, value in r.items():
            if key == "intervals":
                continue
            if isinstance(value, float):
                value = f"{value:.1%}" + (f" [{ci[key][0]:.1%}, {ci[key][1]:.1%}]" if key in ci else "")
            shown[key] = value
        out.append(shown)
    return out


def render_unnested_note(model_name: str, cases: list[dict]) -> str:
    """One sentence (markdown) on why the kept head sets are not nested, with a measured example."""
    text = ("Each gate only rises with b, but the hard point keeps the top round(b x heads) gates, and the curves of "
            "heads with different sensitivities cross: the kept sets are **not nested**, so a head can run at one "
            "budget and be off at a slightly larger one.")
    if not cases:
        return text + f" On **{model_name}** no such pair occurs between budgets 0.05 apart."
    c = cases[0]
    return (text + f" On **{model_name}**: block {c['layer']} head {c['head']} runs at b = {c['on_at']:.2f} and is off at "
            f"b = {c['off_at']:.2f} ({len(cases)} such pairs between budgets 0.05 apart).")
