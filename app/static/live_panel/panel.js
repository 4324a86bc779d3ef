// The live budget panel (Streamlit Custom Components v2). Plain JS and inline SVG, no library, no network.
//
// Python sends every operating point of the model once (see app/ui/live_panel.py for the payload). While
// the slider is dragged, every `input` event redraws the readout, metrics, head grid, chart marker and
// per-input bars from that data, in the browser: no server round trip. On release (`change`) or a key
// press, the budget goes to Python once, as the `commit` trigger.
//
// Streamlit calls this function again whenever the payload changes (each rerun); the DOM is built once
// per payload signature and kept, and module state lives in a WeakMap keyed by the root element.
// Counters for benchmarks and tests: window.__baaLivePanel[<panel id>].

const PANELS = new WeakMap();
const SVGNS = "http://www.w3.org/2000/svg";
const MAX_LOG = 20000;

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
const pct = (v, d = 2) => (100 * v).toFixed(d) + "%";
const fmtB = (b) => b.toFixed(b * 100 % 1 === 0 || Math.abs(b * 100 - Math.round(b * 100)) < 1e-6 ? 2 : 3);

function statsFor(id) {
  const all = (window.__baaLivePanel = window.__baaLivePanel || {});
  if (!all[id]) {
    all[id] = {redraws: 0, pointChanges: 0, t: [], renderMs: [], shown: [], commits: [], builds: 0, syncs: 0, dragging: false};
  }
  return all[id];
}

function log(arr, v) {
  if (arr.length < MAX_LOG) arr.push(v);
}

// ------------------------------------------------------------------ building the DOM (once per payload)
function metricBox(label) {
  return `<div class="bl-metric"><div class="bl-mlabel">${esc(label)}</div><div class="bl-mvalue">-</div><div class="bl-msub"></div></div>`;
}

function buildChart(data) {
  const W = 620, Hh = 300, L = 58, R = 14, T = 10, B = 40;
  const pw = W - L - R, ph = Hh - T - B;
  const [ylo, yhi] = data.y;
  const X = (x) => L + (pw * x) / 1.05;
  const Y = (y) => T + ph * (1 - (y - ylo) / (yhi - ylo || 1));
  const legendRows = Math.ceil((data.series.length + 1) / 2);
  const H = Hh + 18 * legendRows + 4;
  const out = [`<svg xmlns="${SVGNS}" class="bl-chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="accuracy against estimated attention cost">`,
    `<rect x="${L}" y="${T}" width="${pw}" height="${ph}" class="bl-plot"/>`];
  for (const t of [0, 0.2, 0.4, 0.6, 0.8, 1.0]) {
    out.push(`<line x1="${X(t)}" x2="${X(t)}" y1="${T}" y2="${T + ph}" class="bl-gridline"/>`,
      `<text x="${X(t)}" y="${T + ph + 14}" text-anchor="middle" class="bl-tick">${t}</text>`);
  }
  const span = yhi - ylo, raw = span / 5, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  for (let t = Math.ceil(ylo / step - 1e-9) * step; t <= yhi + 1e-9; t += step) {
    out.push(`<line x1="${L}" x2="${L + pw}" y1="${Y(t).toFixed(1)}" y2="${Y(t).toFixed(1)}" class="bl-gridline"/>`,
      `<text x="${L - 6}" y="${(Y(t) + 4).toFixed(1)}" text-anchor="end" class="bl-tick">${(100 * t).toFixed(step * 100 < 1 ? 1 : 0)}%</text>`);
  }
  out.push(`<text x="${L + pw / 2}" y="${T + ph + 30}" text-anchor="middle" class="bl-axis">estimated attention cost (active heads / all heads)</text>`,
    `<text transform="translate(13 ${T + ph / 2}) rotate(-90)" text-anchor="middle" class="bl-axis">accuracy (95% interval)</text>`,
    `<line class="bl-guide" x1="0" x2="0" y1="${T}" y2="${T + ph}"/>`);
  data.series.forEach((s, i) => {
    const col = esc(s.color), dash = s.dash ? ' stroke-dasharray="4 3"' : "";
    if (s.pts.length > 1) {
      out.push(`<polyline fill="none" stroke="${col}" stroke-width="2"${dash} points="${s.pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ")}"/>`);
    }
    for (const p of s.pts) {
      const x = X(p[0]).toFixed(1);
      out.push(`<line x1="${x}" x2="${x}" y1="${Y(p[2]).toFixed(1)}" y2="${Y(p[3]).toFixed(1)}" stroke="${col}" stroke-width="1" opacity="0.55"/>`,
        `<circle cx="${x}" cy="${Y(p[1]).toFixed(1)}" r="${s.dash ? 2.5 : 3.5}" fill="${col}"><title>${esc(s.name)} ${esc(p[4])}: cost ${p[0].toFixed(3)}, accuracy ${pct(p[1])} [${pct(p[2])}, ${pct(p[3])}]</title></circle>`);
    }
    const lx = L + (i % 2) * (pw / 2), ly = Hh + 6 + 18 * Math.floor(i / 2);
    out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly}" y2="${ly}" stroke="${col}" stroke-width="2"${dash}/>`,
      `<text x="${lx + 24}" y="${ly + 4}" class="bl-legend">${esc(s.name)}</text>`);
  });
  const n = data.series.length, lx = L + (n % 2) * (pw / 2), ly = Hh + 6 + 18 * Math.floor(n / 2);
  const star = (cx, cy, r1, r2) => Array.from({length: 10}, (_, i) => {
    const r = i % 2 ? r2 : r1;
    return `${(cx + r * Math.sin((i * Math.PI) / 5)).toFixed(1)},${(cy - r * Math.cos((i * Math.PI) / 5)).toFixed(1)}`;
  }).join(" ");
  out.push(`<polygon points="${star(lx + 9, ly, 7, 3)}" class="bl-star"/><text x="${lx + 24}" y="${ly + 4}" class="bl-legend">now (the slider's point)</text>`,
    `<g class="bl-now"><line class="bl-nowbar" x1="0" x2="0" y1="0" y2="0"/><polygon points="${star(0, 0, 10, 4)}" class="bl-star"/></g>`);
  out.push("</svg>");
  return {html: out.join(""), X, Y};
}

function build(root, data) {
  const L = data.layers, H = data.heads, mode = data.mode;
  const [lo, hi] = data.range;
  const ticks = data.stops.map((i) => {
    const b = data.points[i].b, left = (100 * (b - lo)) / (hi - lo || 1);
    return `<span class="bl-tickmark" style="left:${left.toFixed(2)}%" title="b = ${fmtB(b)}"></span>`;
  }).join("");
  const head = ["<div class='bl-cornercell'></div>"];
  for (let h = 0; h < H; h++) head.push(`<div class="bl-hlabel">h${h}</div>`);
  const cells = [];
  for (let l = 0; l < L; l++) {
    cells.push(`<div class="bl-llabel">block ${l}</div>`);
    for (let h = 0; h < H; h++) cells.push(`<div class="bl-cell" title="block ${l}, head ${h}"></div>`);
  }
  const chart = mode === "explorer" ? buildChart(data) : null;
  const shist = data.points.some((p) => p.shist) ? buildShareHistogram(data) : "";
  const hasInput = data.input && data.input.at;
  const inputBlock = hasInput ? `<div class="bl-input"><div class="bl-cap bl-pred"></div><div class="bl-bars">${data.input.labels.map((lab, c) =>
    `<div class="bl-bar" data-c="${c}"><span class="bl-blab">${esc(lab)}</span><span class="bl-track"><span class="bl-fill"></span></span><span class="bl-bval"></span></div>`).join("")}</div><div class="bl-s"></div></div>` : "";
  root.innerHTML = [
    `<div class="bl-panel bl-${esc(mode)}${H > 5 ? " bl-wide" : ""}">`,
    `<div class="bl-top"><span class="bl-b">b = –</span><span class="bl-k"></span><span class="bl-run"></span></div>`,
    `<div class="bl-sliderwrap"><input type="range" class="bl-range" min="${lo}" max="${hi}" step="0.001" aria-label="attention budget"/>`,
    `<div class="bl-ticks">${ticks}</div><div class="bl-ends"><span>${lo.toFixed(2)}</span><span>${hi.toFixed(2)}</span></div></div>`,
    `<div class="bl-note">${esc(data.range_note)}</div>`,
    mode === "overview" ? "" : `<div class="bl-metrics">${(data.metric_labels || ["accuracy", "estimated attention cost", "active heads",
      "latency, ms/batch", "speedup vs dense", "FLOP-model bound"]).map(metricBox).join("")}</div><div class="bl-noise"></div>`,
    `<div class="bl-body">${inputBlock}<div class="bl-gridbox"><div class="bl-cap">${esc(data.grid_caption ||
      "Heads at this budget: blue runs, grey is off; the number is the soft gate g(b)")}</div>`,
    `<div class="bl-grid" style="grid-template-columns: max-content repeat(${H}, minmax(0, 1fr))">${head.join("")}${cells.join("")}</div>${shist}</div>`,
    chart ? `<div class="bl-chartbox"><div class="bl-cap">Accuracy vs cost, every method in the card; the star is the slider's point</div>${chart.html}</div>` : "",
    `</div>`,
    `</div>`,
  ].join("");
  const q = (s) => root.querySelector(s);
  const inst = {
    data, sig: data.sig, idx: -1, dragging: false, setTrigger: null, stats: statsFor(data.id),
    range: q(".bl-range"), bText: q(".bl-b"), kText: q(".bl-k"), runText: q(".bl-run"),
    metrics: Array.from(root.querySelectorAll(".bl-metric")).map((m) => ({v: m.querySelector(".bl-mvalue"), s: m.querySelector(".bl-msub"), box: m})),
    noise: q(".bl-noise"), cells: Array.from(root.querySelectorAll(".bl-cell")), ticks: Array.from(root.querySelectorAll(".bl-tickmark")),
    now: q(".bl-now"), nowbar: q(".bl-nowbar"), guide: q(".bl-guide"), chart,
    pred: q(".bl-pred"), bars: Array.from(root.querySelectorAll(".bl-bar")).map((b) => ({el: b, fill: b.querySelector(".bl-fill"), val: b.querySelector(".bl-bval")})),
    sBox: q(".bl-s"),
    shBars: Array.from(root.querySelectorAll(".bl-shbar")), shMean: q(".bl-shmean"), shB: q(".bl-shb"), shSub: q(".bl-shsub"),
  };
  inst.stats.builds += 1;
  if (hasInput) drawSCurve(inst);
  wire(inst);
  return inst;
}

// The evaluation sample's per-input budgets: one bar per bin of s (mean over blocks), redrawn for every point.
const SH = {W: 300, H: 120, L: 30, B: 22, T: 6};

function buildShareHistogram(data) {
  const first = data.points.find((p) => p.shist).shist, n = first.counts.length, pw = SH.W - SH.L - 8, ph = SH.H - SH.T - SH.B;
  const bars = Array.from({length: n}, (_, i) =>
    `<rect class="bl-shbar" x="${(SH.L + (pw * i) / n + 0.5).toFixed(1)}" width="${(pw / n - 1).toFixed(1)}" y="${SH.T + ph}" height="0"><title></title></rect>`);
  return `<div class="bl-shistbox"><div class="bl-cap">Every input's own budget s_i(b) on the live sample (${first.n} test inputs, ` +
    `mean over blocks): it moves as you drag</div><svg viewBox="0 0 ${SH.W} ${SH.H}" class="bl-shist" role="img" aria-label="histogram of per-input budgets">` +
    `<rect x="${SH.L}" y="${SH.T}" width="${pw}" height="${ph}" class="bl-plot"/>${bars.join("")}` +
    `<line class="bl-shb" x1="-10" x2="-10" y1="${SH.T}" y2="${SH.T + ph}"/><line class="bl-shmean" x1="-10" x2="-10" y1="${SH.T}" y2="${SH.T + ph}"/>` +
    [0, 0.5, 1].map((t) => `<text x="${(SH.L + pw * t).toFixed(1)}" y="${SH.H - 8}" text-anchor="middle" class="bl-tick">${t}</text>`).join("") +
    `<text x="${SH.L - 4}" y="${SH.T + 8}" text-anchor="end" class="bl-tick">n</text></svg><div class="bl-shsub"></div></div>`;
}

function drawShareHistogram(inst, p) {
  const h = p.shist;
  if (!inst.shBars.length) return;
  const pw = SH.W - SH.L - 8, ph = SH.H - SH.T - SH.B, n = inst.shBars.length;
  const at = (line, v) => { const x = v == null ? -10 : (SH.L + pw * v).toFixed(1); line.setAttribute("x1", x); line.setAttribute("x2", x); };
  at(inst.shB, p.b);
  if (!h) {
    inst.shBars.forEach((r) => { r.setAttribute("height", "0"); r.setAttribute("y", SH.T + ph); });
    at(inst.shMean, null);
    inst.shSub.textContent = "not computed at this budget";
    return;
  }
  const top = Math.max(1, ...h.counts);
  inst.shBars.forEach((r, i) => {
    const c = h.counts[i] || 0, hh = (ph * c) / top;
    r.setAttribute("height", hh.toFixed(1));
    r.setAttribute("y", (SH.T + ph - hh).toFixed(1));
    r.querySelector("title").textContent = `s in [${(i / n).toFixed(3)}, ${((i + 1) / n).toFixed(3)}${i === n - 1 ? "]" : ")"}: ${c} inputs`;
  });
  at(inst.shMean, h.mean);
  inst.shSub.textContent = `b = ${fmtB(p.b)} (dashed): mean s ${h.mean.toFixed(3)} (red) · realised cost ${h.realised.toFixed(3)} ` +
    `on this sample (the share of heads run: ceil(s·H) heads, at least one per block)`;
}

function drawSCurve(inst) {
  // Per-input budgets s(b), when the model sets them per input (an optional per-point field).
  const {data} = inst, pts = [];
  data.points.forEach((p, i) => {
    const a = data.input.at[i];
    if (a && a.s && a.s.length) pts.push([p.b, a.s.reduce((x, y) => x + y, 0) / a.s.length]);
  });
  if (pts.length < 2) return;
  const W = 300, H = 120, L = 34, B = 22, X = (b) => L + (W - L - 8) * (b - data.range[0]) / (data.range[1] - data.range[0] || 1);
  const Y = (s) => 6 + (H - B - 6) * (1 - s);
  inst.sBox.innerHTML = `<div class="bl-cap">This input's own budget s(b), mean over blocks</div><svg viewBox="0 0 ${W} ${H}" class="bl-schart">` +
    `<rect x="${L}" y="6" width="${W - L - 8}" height="${H - B - 6}" class="bl-plot"/>` +
    `<polyline fill="none" stroke="#2f6fde" stroke-width="2" points="${pts.map(([b, s]) => `${X(b).toFixed(1)},${Y(s).toFixed(1)}`).join(" ")}"/>` +
    `<text x="${L - 4}" y="12" text-anchor="end" class="bl-tick">1</text><text x="${L - 4}" y="${H - B}" text-anchor="end" class="bl-tick">0</text>` +
    `<text x="${(L + W) / 2}" y="${H - 6}" text-anchor="middle" class="bl-tick">budget b</text><circle class="bl-sdot" r="4" cx="-10" cy="-10"/></svg>`;
  inst.sDot = inst.sBox.querySelector(".bl-sdot");
  inst.sX = X;
  inst.sY = Y;
}

// ------------------------------------------------------------------ drawing one operating point
function nearestStop(inst, b) {
  const {points, stops} = inst.data;
  let best = stops[0], bestD = Infinity;
  for (const i of stops) {
    const p = points[i];
    const d = b >= p.lo - 1e-9 && b <= p.hi + 1e-9 ? 0 : Math.min(Math.abs(b - p.lo), Math.abs(b - p.hi));
    if (d < bestD || (d === bestD && Math.abs(b - p.b) < Math.abs(b - points[best].b))) {
      best = i;
      bestD = d;
    }
  }
  return best;
}

function setMetric(m, value, sub, title) {
  if (!m) return;
  m.v.textContent = value;
  m.s.textContent = sub || "";
  m.box.title = title || "";
}

function render(inst, idx, raw) {
  const t0 = performance.now();
  const {data, stats} = inst;
  const p = data.points[idx];
  stats.redraws += 1;
  log(stats.t, t0);
  if (raw !== undefined) inst.runText.textContent = `slider at ${raw.toFixed(3)}`;
  if (idx !== inst.idx) {
    inst.idx = idx;
    stats.pointChanges += 1;
    inst.bText.textContent = `b = ${fmtB(p.b)}`;
    inst.kText.textContent = p.ktxt || `${p.k} of ${p.total} heads run`;
    const gates = p.gates, mask = p.mask;
    const own = data.input && data.input.at && data.input.at[idx] && data.input.at[idx].mask;
    const cellsMask = own || mask;
    if (cellsMask) {
      for (let i = 0; i < inst.cells.length; i++) {
        const c = inst.cells[i], on = cellsMask[i] > 0;
        c.className = on ? "bl-cell bl-on" : "bl-cell";
        c.textContent = gates ? gates[i].toFixed(2) : "";
        c.style.opacity = "";
      }
    } else {
      // Per-input heads (no one mask for every input): block l's row shows how many heads an input runs there
      // on average, hpl[l], as that many cells from the left (the last one partly lit). Which heads varies by input.
      const H = data.heads;
      for (let i = 0; i < inst.cells.length; i++) {
        const c = inst.cells[i], n = p.hpl[Math.floor(i / H)], h = i % H;
        const part = Math.max(0, Math.min(1, n - h));
        c.className = part > 0 ? "bl-cell bl-on" : "bl-cell";
        c.style.opacity = part > 0 && part < 1 ? (0.25 + 0.75 * part).toFixed(2) : "";
        c.textContent = h === 0 ? n.toFixed(1) : "";
      }
    }
    inst.ticks.forEach((t, j) => t.classList.toggle("bl-current", data.stops[j] === idx));
    drawShareHistogram(inst, p);
    if (inst.metrics.length) {
      const a = p.acc;
      setMetric(inst.metrics[0], a ? pct(a.v) : "not measured",
        a ? `95% interval ${pct(a.lo, 1)}–${pct(a.hi, 1)} · ${a.src === "card" ? "card" : "live sample"}, ${a.n.toLocaleString()} ex.` : "no measured accuracy here",
        a ? a.detail : "");
      setMetric(inst.metrics[1], p.cost.toFixed(3), data.cost_sub || "active heads / all heads");
      setMetric(inst.metrics[2], `${p.k} / ${p.total}`, `per block: ${p.hpl.join(" · ")}`);
      const lat = p.lat;
      setMetric(inst.metrics[3], lat ? lat.ms.toFixed(2) : "not measured",
        lat ? `dense ${lat.dense_ms.toFixed(2)} ms · card, ${lat.threads} thread${lat.threads > 1 ? "s" : ""}` : "the card has no timing of this head layout");
      setMetric(inst.metrics[4], lat ? lat.speedup.toFixed(2) + "x" : "not measured", lat ? lat.sub || "measured, CPU, batches of 8" : "");
      setMetric(inst.metrics[5], p.flop == null ? "-" : p.flop.toFixed(2) + "x", "dense FLOPs / these heads' FLOPs");
      inst.noise.textContent = p.vs_all || "";
      if (inst.chart) {
        const x = inst.chart.X(p.cost);
        inst.guide.setAttribute("x1", x);
        inst.guide.setAttribute("x2", x);
        if (a) {
          inst.now.setAttribute("transform", `translate(${x.toFixed(1)} ${inst.chart.Y(a.v).toFixed(1)})`);
          inst.nowbar.setAttribute("y1", (inst.chart.Y(a.lo) - inst.chart.Y(a.v)).toFixed(1));
          inst.nowbar.setAttribute("y2", (inst.chart.Y(a.hi) - inst.chart.Y(a.v)).toFixed(1));
          inst.now.style.display = "";
        } else {
          inst.now.style.display = "none";
        }
      }
    }
    const at = data.input && data.input.at && data.input.at[idx];
    if (at && inst.bars.length) {
      let arg = 0;
      at.probs.forEach((v, c) => { if (v > at.probs[arg]) arg = c; });
      inst.bars.forEach((bar, c) => {
        const v = at.probs[c] || 0;
        bar.fill.style.width = (100 * v).toFixed(1) + "%";
        bar.val.textContent = pct(v, 1);
        bar.el.classList.toggle("bl-argmax", c === arg);
        bar.el.classList.toggle("bl-truth", data.input.truth === c);
      });
      inst.pred.textContent = `Prediction at b = ${fmtB(p.b)}: ${data.input.labels[arg]} (${pct(at.probs[arg], 1)})` +
        (data.input.truth == null ? "" : data.input.truth === arg ? " — correct" : ` — wrong (true: ${data.input.labels[data.input.truth]})`);
      if (inst.sDot && at.s && at.s.length) {
        const s = at.s.reduce((x, y) => x + y, 0) / at.s.length;
        inst.sDot.setAttribute("cx", inst.sX(p.b).toFixed(1));
        inst.sDot.setAttribute("cy", inst.sY(s).toFixed(1));
      }
    }
  }
  log(stats.shown, p.b);
  log(stats.renderMs, performance.now() - t0);
}

// ------------------------------------------------------------------ events
function commit(inst, idx) {
  const p = inst.data.points[idx];
  inst.range.value = p.b;
  log(inst.stats.commits, {t: performance.now(), b: p.b});
  if (inst.data.commit && inst.setTrigger) inst.setTrigger("commit", p.b);
}

function wire(inst) {
  const r = inst.range;
  r.addEventListener("pointerdown", () => { inst.dragging = inst.stats.dragging = true; });
  r.addEventListener("input", () => {
    const b = parseFloat(r.value);
    render(inst, nearestStop(inst, b), b);
  });
  r.addEventListener("change", () => {
    inst.dragging = inst.stats.dragging = false;
    const idx = nearestStop(inst, parseFloat(r.value));
    render(inst, idx, inst.data.points[idx].b);
    commit(inst, idx);
  });
  r.addEventListener("keydown", (e) => {
    const stops = inst.data.stops, pos = stops.indexOf(inst.idx);
    const moves = {ArrowLeft: -1, ArrowDown: -1, ArrowRight: 1, ArrowUp: 1, PageDown: -3, PageUp: 3, Home: -1e9, End: 1e9};
    if (!(e.key in moves)) return;
    e.preventDefault();
    const next = stops[Math.max(0, Math.min(stops.length - 1, pos + moves[e.key]))];
    if (next === inst.idx) return;
    render(inst, next, inst.data.points[next].b);
    commit(inst, next);
  });
}

function sync(inst, budget) {
  // A payload from the server (a rerun): follow the session's budget unless the user is dragging.
  inst.stats.syncs += 1;
  if (inst.dragging) return;
  const b = budget == null ? inst.data.points[inst.data.stops[Math.floor(inst.data.stops.length / 2)]].b : budget;
  const idx = nearestStop(inst, b);
  inst.range.value = inst.data.points[idx].b;
  if (idx !== inst.idx) render(inst, idx, inst.data.points[idx].b);
}

export default function (component) {
  const {data, parentElement, setTriggerValue} = component;
  const root = parentElement.querySelector(".baa-live");
  if (!root || !data || !data.points || !data.points.length) {
    if (root) root.textContent = "No operating points to show.";
    return;
  }
  let inst = PANELS.get(root);
  if (!inst || inst.sig !== data.sig || JSON.stringify(inst.data.input || null) !== JSON.stringify(data.input || null)) {
    inst = build(root, data);
    PANELS.set(root, inst);
  }
  inst.data = data;
  inst.setTrigger = setTriggerValue;
  sync(inst, data.budget);
}
