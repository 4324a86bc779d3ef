/*
 * The Attention page's bertviz head view and model view, as one Streamlit Components v2 component.
 *
 * A port of bertviz 1.4.1's head_view.js and model_view.js (Jesse Vig, Apache License 2.0,
 * github.com/jessevig/bertviz; based on tensor2tensor's attention.js): same layout, colours and
 * interactions (layer menu, head colour swatches: click toggles a head, double-click keeps only it; hover
 * a token to see its attention; model view: one thumbnail per layer x head, click one for the detail).
 * What differs, and why:
 *  - the attention lines are drawn on <canvas>, not as one SVG <line> per token pair: bertviz's SVG
 *    took ~2 s (head view) and ~7 s (model view) to draw MiniLM's 6 x 12 heads over 59 tokens here,
 *    and a budget step must redraw both in under 1 s;
 *  - weights arrive as one byte per token pair (round(255 w), base64), only for heads that run; pairs
 *    that round to 0 (w < 0.002, invisible at bertviz's opacity) draw nothing;
 *  - heads that are off at the budget are drawn as off: grey crossed swatches that cannot be switched
 *    on (head view) and grey thumbnails marked "off" (model view);
 *  - no d3, jQuery or require.js: nothing to fetch, so it works offline.
 * Data (from app/ui/bertviz_view.py view_payload): {id, tokens, active[L][H], weights[L][H] (base64 or
 * null), notes[L][H]}. The root element reports what it drew (data-requested, data-head-drawn,
 * data-model-drawn = the data's id; data-draw-ms; data-model-redrawn = thumbnails redrawn) for tests and
 * benchmarks/attention_step.py. A budget step redraws only the model-view thumbnails whose bytes changed.
 */
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const OFF_FILL = "#f1f3f5", OFF_STROKE = "#adb5bd", OFF_TEXT = "#868e96";
const SVG_NS = "http://www.w3.org/2000/svg";
// head view (bertviz head_view.js)
const TEXT_SIZE = 15, BOXWIDTH = 110, BOXHEIGHT = 22.5, MATRIX_WIDTH = 115, CHECKBOX_SIZE = 20, TEXT_TOP = 30;
// model view (bertviz model_view.js)
const DIV_WIDTH = 970, THUMBNAIL_PADDING = 5, DETAIL_WIDTH = 300, DETAIL_ATTENTION_WIDTH = 140, DETAIL_BOX_WIDTH = 80,
  DETAIL_BOX_HEIGHT = 18, DETAIL_PADDING = 15, DETAIL_HEADING_HEIGHT = 25, HEADING_TEXT_SIZE = 15, HEADING_PADDING = 5,
  MV_TEXT_SIZE = 13, TEXT_PADDING = 5, MAX_MODEL_HEIGHT = 1400;

export default function (component) {
  const { data, parentElement } = component;
  let root = parentElement.querySelector(":scope > .baa-av");
  if (!root) root = createRoot(parentElement);
  if (!data || data.id === root.getAttribute("data-requested")) return;
  root.setAttribute("data-requested", data.id);
  const st = root.__baa;
  st.data = data;
  st.T = data.tokens.length;
  st.L = data.active.length;
  st.H = data.active[0].length;
  st.cache = new Map();
  if (!(st.layer < st.L)) st.layer = 0;
  if (!st.userVis || st.userVis.length !== st.H) st.userVis = new Array(st.H).fill(true);
  st.hover = null;
  st.detail = null;
  st.detailKey = null;
  root.setAttribute("data-tokens", String(st.T));
  const t0 = performance.now();
  drawHeadView(st);
  const t1 = performance.now();
  afterPaint(() => root.setAttribute("data-head-drawn", data.id));
  drawModelView(st);
  // ms spent drawing each view (head/model), and "drawn" once the browser has painted a frame with them
  root.setAttribute("data-draw-ms", `${(t1 - t0).toFixed(1)}/${(performance.now() - t1).toFixed(1)}`);
  afterPaint(() => root.setAttribute("data-model-drawn", data.id));
}

// ------------------------------------------------------------------ helpers
function el(tag, attrs, parent, svg) {
  const e = svg ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}

function svgText(parent, text, attrs) {
  const t = el("text", attrs, parent, true);
  t.textContent = text;  // tokens are user text: never parsed as markup
  return t;
}

function titled(node, text) {
  el("title", {}, node, true).textContent = text;
  return node;
}

function afterPaint(fn) {
  requestAnimationFrame(() => requestAnimationFrame(fn));
}

function weights(st, layer, head) {
  const key = layer * st.H + head;
  if (!st.cache.has(key)) {
    const b64 = st.data.weights[layer][head];
    let w = null;
    if (b64) {
      const s = atob(b64);
      w = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) w[i] = s.charCodeAt(i);
    }
    st.cache.set(key, w);
  }
  return st.cache.get(key);
}

function isOn(st, layer, head) {
  return st.data.active[layer][head] > 0;
}

function note(st, layer, head) {
  const n = st.data.notes && st.data.notes[layer] && st.data.notes[layer][head];
  return `layer ${layer}, head ${head}` + (n ? `: ${n}` : "") + (isOn(st, layer, head) ? "" : " (off at this budget)");
}

function canvas(parent, width, height) {
  const c = el("canvas", { class: "baa-av-canvas" }, parent);
  const dpr = window.devicePixelRatio || 1;
  c.width = Math.ceil(width * dpr);
  c.height = Math.ceil(height * dpr);
  c.style.width = width + "px";
  c.style.height = height + "px";
  return c.getContext("2d");
}

// The attention lines are rasterised here, in JavaScript, into one image per view (then one putImageData):
// a canvas 2D context records each stroke and rasterises them all at paint time, which took 1.5-4 s for
// MiniLM's 60k-120k lines on this machine's software renderer. Lines keep bertviz's stroke width and
// opacity and are composited "over" in draw order like SVG, with anti-aliased edges.
function rgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [n >> 16, (n >> 8) & 255, n & 255];
}

class Raster {
  // premultiplied colour and alpha per pixel (``mono``: one colour per region, so alpha only)
  constructor(width, height, mono) {
    this.dpr = window.devicePixelRatio || 1;
    this.w = Math.ceil(width * this.dpr);
    this.h = Math.ceil(height * this.dpr);
    this.mono = mono;
    this.buf = new Float32Array(this.w * this.h * (mono ? 1 : 4));
  }

  // a line of ``width`` px from (x1, y1) to (x2, y2), colour c = [r, g, b] (ignored when mono), opacity a.
  // Walks the major axis one pixel at a time and covers the line's cross-section on the minor axis, with
  // fractional coverage at its edges and ends (anti-aliasing).
  line(x1, y1, x2, y2, width, c, a) {
    const d = this.dpr, W = this.w, buf = this.buf, mono = this.mono;
    let u1 = x1 * d, v1 = y1 * d, u2 = x2 * d, v2 = y2 * d;  // u: major axis, v: minor axis
    const steep = Math.abs(v2 - v1) > Math.abs(u2 - u1);
    if (steep) { let s = u1; u1 = v1; v1 = s; s = u2; u2 = v2; v2 = s; }
    if (u2 < u1) { let s = u1; u1 = u2; u2 = s; s = v1; v1 = v2; v2 = s; }
    const k = (v2 - v1) / (u2 - u1 || 1), t = ((width * d) / 2) * Math.sqrt(1 + k * k);
    const uMax = steep ? this.h : this.w, vMax = steep ? this.w : this.h;
    const us = Math.max(0, Math.floor(u1)), ue = Math.min(uMax, Math.ceil(u2));
    const r = c ? c[0] : 0, g = c ? c[1] : 0, b = c ? c[2] : 0;
    let vc = v1 + k * (us + 0.5 - u1);
    for (let u = us; u < ue; u++, vc += k) {
      let cu = (u + 1 < u2 ? u + 1 : u2) - (u > u1 ? u : u1);  // coverage along the line (its ends)
      if (cu <= 0) continue;
      cu *= a;
      const lo = vc - t, hi = vc + t;
      const vs = lo > 0 ? Math.floor(lo) : 0, ve = hi < vMax ? Math.ceil(hi) : vMax;
      for (let v = vs; v < ve; v++) {
        const cov = ((v + 1 < hi ? v + 1 : hi) - (v > lo ? v : lo)) * cu;
        const i = steep ? u * W + v : v * W + u;
        if (mono) { buf[i] += cov * (1 - buf[i]); continue; }
        const j = 4 * i, keep = 1 - cov;
        buf[j] = r * cov + buf[j] * keep;
        buf[j + 1] = g * cov + buf[j + 1] * keep;
        buf[j + 2] = b * cov + buf[j + 2] * keep;
        buf[j + 3] = cov + buf[j + 3] * keep;
      }
    }
  }

  clear(x, y, w, h) {  // a mono raster's rectangle (CSS px), before redrawing one thumbnail
    const d = this.dpr, x0 = Math.max(0, Math.floor(x * d)), x1 = Math.min(this.w, Math.ceil((x + w) * d));
    for (let py = Math.max(0, Math.floor(y * d)); py < Math.min(this.h, Math.ceil((y + h) * d)); py++)
      this.buf.fill(0, py * this.w + x0, py * this.w + x1);
  }

  // onto ctx, the whole raster or the rectangle rect = [x, y, w, h] (CSS px); colourOf(y) gives a mono
  // raster its colour by row
  put(ctx, colourOf, rect) {
    const d = this.dpr, W = this.w, buf = this.buf;
    if (!this.img) this.img = ctx.createImageData(W, this.h);
    const out = this.img.data;
    const [x0, y0, x1, y1] = rect ? [Math.max(0, Math.floor(rect[0] * d)), Math.max(0, Math.floor(rect[1] * d)),
      Math.min(W, Math.ceil((rect[0] + rect[2]) * d)), Math.min(this.h, Math.ceil((rect[1] + rect[3]) * d))] : [0, 0, W, this.h];
    for (let row = y0; row < y1; row++) {
      const c = this.mono ? colourOf(row / d) : null;
      for (let i = row * W + x0, end = row * W + x1; i < end; i++) {
        const a = this.mono ? buf[i] : buf[4 * i + 3], j = 4 * i;
        if (a <= 0) { out[j + 3] = 0; continue; }
        if (this.mono) { out[j] = c[0]; out[j + 1] = c[1]; out[j + 2] = c[2]; }
        else { out[j] = buf[j] / a; out[j + 1] = buf[j + 1] / a; out[j + 2] = buf[j + 2] / a; }
        out[j + 3] = a >= 1 ? 255 : a * 255;
      }
    }
    ctx.putImageData(this.img, 0, 0, x0, y0, x1 - x0, y1 - y0);
  }
}

// Every token pair (i, j) of one head as a line, opacity = byte / 255 * scale; pairs whose opacity stays under
// 1/255 (nothing a screen shows) are skipped. keep(i, j) filters pairs (hover).
function linePairs(raster, w, T, colour, width, scale, x1, x2, y, keep) {
  const c = colour && rgb(colour), min = 1 / scale;
  for (let i = 0; i < T; i++) {
    for (let j = 0; j < T; j++) {
      const q = w[i * T + j];
      if (q < min || (keep && !keep(i, j))) continue;
      raster.line(x1, y(i), x2, y(j), width, c, Math.min(1, (q / 255) * scale));
    }
  }
}

function lighten(hex) {  // bertviz: towards white, less saturated (d3.hsl l += (1 - l) * 0.6)
  const n = parseInt(hex.slice(1), 16);
  const mix = (c) => Math.round(c + (255 - c) * 0.6);
  return `rgb(${mix(n >> 16)}, ${mix((n >> 8) & 255)}, ${mix(n & 255)})`;
}

// ------------------------------------------------------------------ the root
function createRoot(parent) {
  const root = el("div", { class: "baa-av", "data-baa-attention": "" }, parent);
  const head = el("div", { class: "baa-av-view baa-av-head" }, root);
  el("div", { class: "baa-av-title" }, head).textContent = "Head view";
  const label = el("label", { class: "baa-av-layer" }, head);
  label.appendChild(document.createTextNode("Layer: "));
  const select = el("select", { "aria-label": "layer" }, label);
  const headStage = el("div", { class: "baa-av-stage" }, head);
  const model = el("div", { class: "baa-av-view baa-av-model" }, root);
  el("div", { class: "baa-av-title" }, model).textContent = "Model view";
  const modelStage = el("div", { class: "baa-av-stage" }, model);
  const st = { root, select, headStage, modelStage, layer: 0 };
  root.__baa = st;
  select.addEventListener("change", () => {
    st.layer = +select.value;
    st.hover = null;
    drawHeadView(st);
  });
  return root;
}

// ------------------------------------------------------------------ head view
function visibleHeads(st) {
  const out = [];
  for (let h = 0; h < st.H; h++) if (isOn(st, st.layer, h) && st.userVis[h]) out.push(h);
  return out;
}

function drawHeadView(st) {
  const { select, headStage: stage, T, H } = st;
  if (select.options.length !== st.L) {
    select.textContent = "";
    for (let l = 0; l < st.L; l++) el("option", { value: String(l) }, select).textContent = String(l);
  }
  select.value = String(st.layer);
  stage.textContent = "";
  const width = Math.max(2 * BOXWIDTH + MATRIX_WIDTH, H * CHECKBOX_SIZE);
  const height = T * BOXHEIGHT + TEXT_TOP;
  stage.style.width = width + "px";
  stage.style.height = height + "px";
  // the lines live between the token columns: only that strip is rasterised
  st.headCtx = canvas(stage, MATRIX_WIDTH, height);
  st.headCtx.canvas.style.left = BOXWIDTH + "px";
  st.headSize = [MATRIX_WIDTH, height];
  const svg = el("svg", { width, height, class: "baa-av-svg" }, stage, true);
  st.headBoxes = el("g", { class: "baa-av-boxes" }, svg, true);  // bertviz's attention boxes, shown on hover

  // token columns, with a grey background under the hovered token
  const columns = [];
  for (const left of [true, false]) {
    const x = left ? 0 : MATRIX_WIDTH + BOXWIDTH;
    const g = el("g", { class: left ? "baa-av-left" : "baa-av-right" }, svg, true);
    const backs = [];
    st.data.tokens.forEach((tok, i) => {
      const tg = el("g", {}, g, true);
      backs.push(el("rect", { x, y: TEXT_TOP + i * BOXHEIGHT, width: BOXWIDTH, height: BOXHEIGHT, fill: "lightgray",
        opacity: 0 }, tg, true));
      svgText(tg, tok, { x: left ? x + BOXWIDTH - 0.5 * TEXT_SIZE : x + 0.5 * TEXT_SIZE, y: TEXT_TOP + i * BOXHEIGHT,
        dy: TEXT_SIZE, "font-size": TEXT_SIZE + "px", "text-anchor": left ? "end" : "start", class: "baa-av-token" });
      tg.addEventListener("mouseenter", () => {
        backs.forEach((b, k) => b.setAttribute("opacity", k === i ? 1 : 0));
        st.hover = { left, index: i };
        drawHeadLines(st);
      });
    });
    g.addEventListener("mouseleave", () => {
      backs.forEach((b) => b.setAttribute("opacity", 0));
      st.hover = null;
      drawHeadLines(st);
    });
    columns.push(g);
  }

  // one colour swatch per head: click toggles it, double-click keeps only it (bertviz); off heads are grey and crossed
  const swatches = el("g", { class: "baa-av-swatches" }, svg, true);
  for (let h = 0; h < H; h++) {
    const x = h * CHECKBOX_SIZE;
    const g = titled(el("g", { "data-head": h, class: isOn(st, st.layer, h) ? "baa-av-swatch" : "baa-av-swatch off" },
      swatches, true), note(st, st.layer, h));
    if (!isOn(st, st.layer, h)) {
      el("rect", { x, y: 0, width: CHECKBOX_SIZE, height: CHECKBOX_SIZE, fill: OFF_FILL, stroke: OFF_STROKE }, g, true);
      el("line", { x1: x + 3, y1: CHECKBOX_SIZE - 3, x2: x + CHECKBOX_SIZE - 3, y2: 3, stroke: OFF_STROKE,
        "stroke-width": 1.5 }, g, true);
      continue;
    }
    const rect = el("rect", { x, y: 0, width: CHECKBOX_SIZE, height: CHECKBOX_SIZE }, g, true);
    rect.style.cursor = "pointer";
    g.addEventListener("click", () => {
      if (st.userVis[h] && visibleHeads(st).length === 1) return;
      st.userVis[h] = !st.userVis[h];
      paintSwatches(st);
      drawHeadLines(st);
    });
    g.addEventListener("dblclick", () => {
      const vis = visibleHeads(st);
      if (vis.length === 1 && vis[0] === h) st.userVis.fill(true);
      else { st.userVis.fill(false); st.userVis[h] = true; }
      paintSwatches(st);
      drawHeadLines(st);
    });
  }
  st.swatches = swatches;
  paintSwatches(st);
  drawHeadLines(st);
}

function paintSwatches(st) {
  st.swatches.querySelectorAll("g.baa-av-swatch:not(.off) rect").forEach((rect) => {
    const h = +rect.parentNode.getAttribute("data-head");
    rect.setAttribute("fill", st.userVis[h] ? COLORS[h % 10] : lighten(COLORS[h % 10]));
  });
}

function drawHeadLines(st) {
  const [width, height] = st.headSize, T = st.T;
  const raster = new Raster(width, height, false);
  const vis = visibleHeads(st);
  const mid = (i) => TEXT_TOP + i * BOXHEIGHT + BOXHEIGHT / 2;
  const hover = st.hover;
  const keep = hover ? (hover.left ? (i) => i === hover.index : (i, j) => j === hover.index) : null;
  for (const h of vis) {
    const w = weights(st, st.layer, h);
    if (w) linePairs(raster, w, T, COLORS[h % 10], 2, 1 / vis.length, 0, MATRIX_WIDTH, mid, keep);
  }
  raster.put(st.headCtx);
  st.headBoxes.textContent = "";
  if (!hover) return;
  // bertviz's attention boxes: over the tokens on the other side, one bar per visible head, opacity = the weight
  const x0 = hover.left ? MATRIX_WIDTH + BOXWIDTH : 0;
  vis.forEach((h, k) => {
    const w = weights(st, st.layer, h);
    if (!w) return;
    for (let t = 0; t < T; t++) {
      const q = hover.left ? w[hover.index * T + t] : w[t * T + hover.index];
      if (q) el("rect", { x: x0 + (k * BOXWIDTH) / vis.length, y: TEXT_TOP + t * BOXHEIGHT, width: BOXWIDTH / vis.length,
        height: BOXHEIGHT, fill: COLORS[h % 10], opacity: q / 255 }, st.headBoxes, true);
    }
  });
}

// ------------------------------------------------------------------ model view
function drawModelView(st) {
  const { modelStage: stage, T, L, H } = st;
  const axis = HEADING_TEXT_SIZE + HEADING_PADDING + MV_TEXT_SIZE + TEXT_PADDING;
  // bertviz's box height, shrunk so that the whole grid stays under MAX_MODEL_HEIGHT (click a head for its detail)
  const box = Math.min(7 * (12 / H), Math.max(1.5, (MAX_MODEL_HEIGHT - axis) / (L * T) - 2 * THUMBNAIL_PADDING / T));
  const thumbH = T * box + 2 * THUMBNAIL_PADDING;
  // bertviz's 970 px, or the page's width where that is narrower (the view then wraps below the head view)
  const width = Math.round(Math.min(DIV_WIDTH, Math.max(480, st.root.clientWidth || DIV_WIDTH)));
  const thumbW = (width - axis) / H;
  const detailH = T * DETAIL_BOX_HEIGHT + 2 * DETAIL_PADDING + DETAIL_HEADING_HEIGHT;
  const height = Math.max(L * thumbH + axis, detailH);
  // Same tokens and shape as last time: keep the raster and redraw only the thumbnails whose bytes changed
  // (a budget step leaves the layers below the first changed one as they were).
  const prev = st.mv && st.mv.tokens === st.data.tokens.join("\u0000") && st.mv.height === height && st.mv.width === width
    ? st.mv : null;
  const mv = { tokens: st.data.tokens.join("\u0000"), height, width, drawn: [] };
  Object.assign(st, { mvBox: box, mvThumbH: thumbH, mvThumbW: thumbW, mvAxis: axis, mvHeight: height, mvWidth: width });
  stage.textContent = "";
  stage.style.width = width + "px";
  stage.style.height = height + "px";
  mv.raster = prev ? prev.raster : new Raster(width, height, true);
  mv.canvas = prev ? prev.canvas : canvas(stage, width, height).canvas;
  stage.appendChild(mv.canvas);
  const ctx = mv.canvas.getContext("2d");
  const svg = el("svg", { width, height, class: "baa-av-svg" }, stage, true);

  svgText(svg, "Heads", { x: axis + (thumbW * H) / 2, y: 0, dy: HEADING_TEXT_SIZE, "text-anchor": "middle",
    "font-weight": "bold", "font-size": HEADING_TEXT_SIZE + "px" });
  for (let h = 0; h < H; h++) {
    svgText(svg, String(h), { x: axis + (h + 0.5) * thumbW, y: HEADING_TEXT_SIZE + HEADING_PADDING, dy: MV_TEXT_SIZE,
      "text-anchor": "middle", "font-size": MV_TEXT_SIZE + "px" });
  }
  const cy = axis + (thumbH * L) / 2;
  svgText(svg, "Layers", { x: 0, y: cy, dy: HEADING_TEXT_SIZE, transform: `rotate(270, 0, ${cy})`, "text-anchor": "middle",
    "font-weight": "bold", "font-size": HEADING_TEXT_SIZE + "px" });
  for (let l = 0; l < L; l++) {
    svgText(svg, String(l), { x: HEADING_TEXT_SIZE + HEADING_PADDING + MV_TEXT_SIZE, y: axis + (l + 0.5) * thumbH,
      dy: MV_TEXT_SIZE / 2, "text-anchor": "end", "font-size": MV_TEXT_SIZE + "px" });
  }

  const layerColours = COLORS.map(rgb);
  const colourOf = (py) => layerColours[Math.max(0, Math.min(L - 1, Math.floor((py - axis) / thumbH))) % 10];
  const y = (y1) => (i) => y1 + (i + 0.5) * box;
  for (let l = 0; l < L; l++) {
    const color = COLORS[l % 10];
    for (let h = 0; h < H; h++) {
      const x = h * thumbW + axis, top = l * thumbH + axis;
      const on = isOn(st, l, h), bytes = on ? st.data.weights[l][h] || "" : "";
      mv.drawn.push(bytes);
      if (!prev || prev.drawn[l * H + h] !== bytes) {
        mv.raster.clear(x, top, thumbW, thumbH);
        const w = on && weights(st, l, h);
        if (w) linePairs(mv.raster, w, T, null, 2.2, 1, x + THUMBNAIL_PADDING, x + THUMBNAIL_PADDING + thumbW - 14,
          y(top + THUMBNAIL_PADDING), null);
        if (prev) mv.raster.put(ctx, colourOf, [x, top, thumbW, thumbH]);
      }
      const cell = titled(el("rect", { x, y: top, width: thumbW, height: thumbH, fill: on ? "white" : OFF_FILL,
        "fill-opacity": on ? 0 : 1, stroke: color, "stroke-width": 2, "stroke-opacity": 0,
        class: on ? "baa-av-thumb" : "baa-av-thumb off", "data-layer": l, "data-head": h }, svg, true), note(st, l, h));
      if (!on) {
        svgText(svg, "off", { x: x + thumbW / 2, y: top + thumbH / 2, dy: 4, "text-anchor": "middle", fill: OFF_TEXT,
          "font-size": "12px", "pointer-events": "none" });
        continue;
      }
      cell.style.cursor = "pointer";
      cell.addEventListener("click", () => toggleDetail(st, svg, l, h));
    }
  }
  if (!prev) mv.raster.put(ctx, colourOf);
  st.mv = mv;
  st.root.setAttribute("data-model-redrawn", String(prev ? mv.drawn.filter((b, i) => b !== prev.drawn[i]).length : L * H));
}

function toggleDetail(st, svg, layer, head) {
  svg.querySelectorAll(".baa-av-thumb").forEach((r) => r.setAttribute("stroke-opacity", 0));
  if (st.detail) st.detail.remove();
  if (st.detailKey === `${layer}/${head}`) {
    st.detail = null;
    st.detailKey = null;
    return;
  }
  st.detailKey = `${layer}/${head}`;
  svg.querySelector(`.baa-av-thumb[data-layer="${layer}"][data-head="${head}"]`).setAttribute("stroke-opacity", 0.8);
  const { T, mvThumbW: thumbW, mvAxis: axis, mvHeight: maxY } = st;
  const detailH = T * DETAIL_BOX_HEIGHT + 2 * DETAIL_PADDING + DETAIL_HEADING_HEIGHT;
  const left = axis + head * thumbW;
  let x = left + THUMBNAIL_PADDING + 0.8 * thumbW;
  if (x + DETAIL_WIDTH > st.mvWidth) x = left + THUMBNAIL_PADDING - DETAIL_WIDTH + 8;
  let y = layer * st.mvThumbH + THUMBNAIL_PADDING + 20;
  if (y + detailH > maxY - 3) y = Math.max(0, maxY - 3 - detailH);
  const color = COLORS[layer % 10];
  const box = el("div", { class: "baa-av-detail" }, st.modelStage);
  Object.assign(box.style, { left: x + "px", top: y + "px", width: DETAIL_WIDTH + "px", height: detailH + "px",
    borderColor: color });
  const ctx = canvas(box, DETAIL_WIDTH, detailH);
  const dsvg = el("svg", { width: DETAIL_WIDTH, height: detailH, class: "baa-av-svg" }, box, true);
  svgText(dsvg, `Layer ${layer}, Head ${head}`, { x: DETAIL_WIDTH / 2, y: DETAIL_PADDING, dy: HEADING_TEXT_SIZE,
    "text-anchor": "middle", "font-weight": "bold", "font-size": MV_TEXT_SIZE + "px" });
  const top = DETAIL_PADDING + DETAIL_HEADING_HEIGHT;
  const w = weights(st, layer, head);
  const mid = (i) => top + (i + 0.5) * DETAIL_BOX_HEIGHT;
  const colour = rgb(color);
  const draw = (source) => {
    const raster = new Raster(DETAIL_WIDTH, detailH, true);
    linePairs(raster, w, T, null, 2.2, 1, DETAIL_BOX_WIDTH, DETAIL_BOX_WIDTH + DETAIL_ATTENTION_WIDTH, mid,
      source == null ? null : (i) => i === source);
    raster.put(ctx, () => colour);
  };
  const backs = [];
  const leftCol = el("g", {}, dsvg, true);
  st.data.tokens.forEach((tok, i) => {
    const g = el("g", {}, leftCol, true);
    backs.push(el("rect", { x: 0, y: top + i * DETAIL_BOX_HEIGHT, width: DETAIL_BOX_WIDTH, height: DETAIL_BOX_HEIGHT,
      fill: "black", opacity: 0 }, g, true));
    svgText(g, tok, { x: DETAIL_BOX_WIDTH - 2, y: top + i * DETAIL_BOX_HEIGHT, dy: MV_TEXT_SIZE, "text-anchor": "end",
      "font-size": MV_TEXT_SIZE + "px", class: "baa-av-token" });
    svgText(dsvg, tok, { x: DETAIL_BOX_WIDTH + DETAIL_ATTENTION_WIDTH + 2, y: top + i * DETAIL_BOX_HEIGHT, dy: MV_TEXT_SIZE,
      "font-size": MV_TEXT_SIZE + "px", class: "baa-av-token" });
    g.addEventListener("mouseenter", () => {
      backs.forEach((b, k) => b.setAttribute("opacity", k === i ? 0.08 : 0));
      draw(i);
    });
  });
  leftCol.addEventListener("mouseleave", () => {
    backs.forEach((b) => b.setAttribute("opacity", 0));
    draw(null);
  });
  draw(null);
  st.detail = box;
}
