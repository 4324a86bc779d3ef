"""Attention page: budget step -> both bertviz views (head view and model view) drawn again, in headless Chromium.

Goal (issue 12): p95 < 1 s on the MiniLM model (pretrained/ag_news-minilm-baa). Nothing is asserted; the
numbers are printed, one JSON object last:

    {"model", "p95_ms", "median_ms", "payload_bytes", ...}

How: ``streamlit run app/main.py`` on a free port, Chromium opens the Attention page by its URL with the
model named in the query string, waits until both views are drawn, then moves the budget slider one step
(0.05) at a time with the keyboard (a key press commits the value at once, like releasing the mouse). The
clock runs from the key press until both views report that they drew the new head layout and the browser
has painted a frame after that. Steps: up from the start (0.50) to 1.00, then down to 0.10 (``--steps``
takes the first N of those). Steps down from 1.00 to 0.55 revisit layouts seen on the way up: they are
reported apart ("revisit"), since the page caches its data per head layout.

``payload_bytes`` is the median, over steps, of the websocket bytes the browser received for one step
(DevTools network log): what the server sent to redraw the page. ``browser_draw_ms_median``: the part
spent drawing both views in the page's script (what the component reports); ``load_average_1min``: how
busy the machine was (numbers from a busy machine are slower than from a quiet one).

Also works against the old page (two bertviz iframes), so the same script measures before and after.

    python benchmarks/attention_step.py [--model shipped/ag_news-minilm-baa] [--steps 28] [--text "..."] [--json]
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import browser_support as bs  # noqa: E402

# Both views drawn for the current head layout? Returns [layout id, drawn] or null while not drawn.
# New page: one component root (data-baa-attention) with data-requested / data-head-drawn / data-model-drawn.
# Old page: two bertviz iframes; a frame counts as new once its window lost the marker set before the step.
VIEWS_STATE = """
var roots = document.querySelectorAll('[data-baa-attention]');
if (roots.length) {
  var r = roots[0], id = r.getAttribute('data-requested');
  var done = id && r.getAttribute('data-head-drawn') === id && r.getAttribute('data-model-drawn') === id;
  return done ? id : null;
}
var frames = document.querySelectorAll('[data-testid="stIFrame"]');
if (frames.length < 2) return null;
var ids = [];
for (var i = 0; i < frames.length; i++) {
  var w = frames[i].contentWindow, d = w && w.document;
  if (!d || d.readyState !== 'complete' || w.__baaOld || !d.querySelectorAll('svg line, svg rect').length) return null;
  if (!w.__baaId) w.__baaId = Math.random().toString(36).slice(2);
  ids.push(w.__baaId);
}
return ids.join('/');
"""
MARK_OLD = """
document.querySelectorAll('[data-testid="stIFrame"]').forEach(function (f) { if (f.contentWindow) f.contentWindow.__baaOld = true; });
"""
# Records when the app's script run starts and ends (page clock), to tell the server's share of a step.
PHASES = """
window.__baaPhases = [];
var app = document.querySelector('[data-testid="stApp"]');
new MutationObserver(function () { window.__baaPhases.push([app.getAttribute('data-test-script-state'), performance.now()]); })
  .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
"""
AFTER_PAINT = "var done = arguments[arguments.length - 1]; requestAnimationFrame(function () { requestAnimationFrame(function () { done(true); }); });"
BUDGET = "var s = document.querySelector('[data-testid=\"stSliderThumbValue\"]'); return s ? s.innerText.trim() : null;"


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summary(ms: list[float]) -> dict:
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(percentile(ms, 0.95), 1),
            "max_ms": round(max(ms), 1)}


def schedule(start: float, n: int) -> list[float]:
    path, b = [], start
    for target in (1.0, 0.1):
        while abs(b - target) > 1e-6:
            b = round(b + (0.05 if target > b else -0.05), 2)
            path.append(b)
    return path[:n]


def websocket_bytes(driver) -> int:
    """Bytes of the websocket frames received since the last call (DevTools performance log)."""
    total = 0
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.webSocketFrameReceived":
            frame = msg["params"]["response"]
            data = frame.get("payloadData", "")
            total += len(base64.b64decode(data)) if frame.get("opcode") == 2 else len(data.encode())
    return total


# New page: wait inside the browser (MutationObservers, no polling that would load the machine it measures) until
# the views report a layout other than ``before`` drawn and the script run has ended; then a painted frame.
WAIT_DRAWN = """
var before = arguments[0], done = arguments[arguments.length - 1];
var app = document.querySelector('[data-testid="stApp"]'), r = null;
function ready() {
  r = document.querySelector('[data-baa-attention]');  // again each time: a new page layout can remount the component
  var id = r && r.getAttribute('data-requested');
  return id && id !== before && r.getAttribute('data-head-drawn') === id && r.getAttribute('data-model-drawn') === id &&
         app.getAttribute('data-test-script-state') === 'notRunning' && !document.querySelector('[data-stale="true"]');
}
var obs = new MutationObserver(check), timer = setTimeout(function () { stop(); done(null); }, arguments[1]);
var tick = setInterval(check, 250);  // stale elements can also leave by removal, which the filter below does not see
function stop() { obs.disconnect(); clearTimeout(timer); clearInterval(tick); }
function check() {
  if (!ready()) return;
  stop();
  requestAnimationFrame(function () { requestAnimationFrame(function () { done(r.getAttribute('data-requested')); }); });
}
obs.observe(document.body, {subtree: true, attributes: true, attributeFilter: ['data-requested', 'data-head-drawn',
  'data-model-drawn', 'data-test-script-state', 'data-stale']});
check();
"""


def wait_drawn(driver, before: str | None, timeout: float = 120) -> str:
    if driver.execute_script("return !!document.querySelector('[data-baa-attention]')"):
        timeout = min(timeout, 100)  # under selenium's own 120 s read timeout
        driver.set_script_timeout(timeout + 5)
        state = driver.execute_async_script(WAIT_DRAWN, before, int(timeout * 1000))
        if state is None:
            raise TimeoutError("the bertviz views were not drawn again in time")
        return state
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        state = driver.execute_script(VIEWS_STATE)
        if state and state != before and not bs.script_running(driver):
            driver.execute_async_script(AFTER_PAINT)
            return state
        time.sleep(0.01)
    raise TimeoutError("the bertviz views were not drawn again in time")


def run(model: str, steps: int, paths, shots: Path | None, text: str | None = None) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    env = {"HF_HUB_OFFLINE": "1"}
    data = ROOT.parent / "shared" / "data"
    if "BAA_DATA_DIR" not in os.environ and data.is_dir():
        env["BAA_DATA_DIR"] = str(data)  # the page's default text is then a test example, as a user sees it
    out: dict = {"model": model.split("/", 1)[-1]}
    with bs.streamlit_server(env, log_path=Path("/tmp/baa_attention_step_streamlit.log")) as (url, _), \
            bs.chrome(*paths, performance_log=True) as driver:
        driver.get(f"{url}/attention?model={model}")
        bs.wait_for_title(driver, "Attention", timeout=180)
        driver.execute_cdp_cmd("Network.enable", {})
        end = time.perf_counter() + 180
        while time.perf_counter() < end and not driver.execute_script(VIEWS_STATE):
            time.sleep(0.1)
        state = wait_drawn(driver, None, timeout=180)
        bs.wait_idle(driver, timeout=120)
        if text:  # type it into the page's text box (Ctrl+Enter commits it)
            box = driver.find_element(By.CSS_SELECTOR, '[data-testid="stTextArea"] textarea')
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(Keys.DELETE)
            box.send_keys(text)
            box.send_keys(Keys.CONTROL, Keys.ENTER)
            state = wait_drawn(driver, state, timeout=180)
            bs.wait_idle(driver, timeout=120)
        out["tokens_drawn"] = driver.execute_script(
            "var r = document.querySelector('[data-baa-attention]'); return r ? +r.getAttribute('data-tokens') : null;")
        slider = driver.find_element(By.CSS_SELECTOR, '[data-testid="stSlider"] input[type="range"]')
        budget = float(driver.execute_script(BUDGET))
        websocket_bytes(driver)
        seen, first, again, sizes, draw = {budget}, [], [], [], []
        server = []
        new_page = driver.execute_script("return !!document.querySelector('[data-baa-attention]')")
        if new_page:
            driver.execute_script(PHASES)
        for target in schedule(budget, steps):
            driver.execute_script(MARK_OLD)
            t = time.perf_counter()
            if new_page:
                driver.execute_script("window.__baaPhases = [];")
            bs.press_keys(driver, slider, Keys.ARROW_RIGHT if target > budget else Keys.ARROW_LEFT)  # a keyboard user's step
            state = wait_drawn(driver, state)
            ms = 1000 * (time.perf_counter() - t)
            if new_page:
                seen_at = {}
                for what, at in driver.execute_script("return window.__baaPhases;"):
                    seen_at.setdefault(what, at)  # first time each happened after the key press
                if {"running", "notRunning"} <= set(seen_at):
                    server.append(seen_at["notRunning"] - seen_at["running"])
            shown = driver.execute_script(BUDGET)
            if shown is None or abs(float(shown) - target) > 1e-6:
                raise RuntimeError(f"the slider shows {shown}, expected {target:.2f}")
            (again if target in seen else first).append(ms)
            spent = driver.execute_script(
                "var r = document.querySelector('[data-baa-attention]'); return r ? r.getAttribute('data-draw-ms') : null;")
            if spent:
                draw.append(sum(map(float, spent.split("/"))))
            seen.add(target)
            budget = target
            time.sleep(0.3)  # let late messages of this step arrive before counting bytes
            sizes.append(websocket_bytes(driver))
        if shots:
            shots.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(shots / "attention_step_last.png"))
        out["errors_on_page"] = bs.error_boxes(driver)
    every = first + again
    out.update({"p95_ms": round(percentile(every, 0.95), 1), "median_ms": round(statistics.median(every), 1),
                "payload_bytes": int(statistics.median(sizes)), "steps": len(every), "new_layout": summary(first),
                "revisit": summary(again), "payload_bytes_max": max(sizes), "cpu_count": os.cpu_count(),
                "browser_draw_ms_median": round(statistics.median(draw), 1) if draw else None,
                "server_run": summary(server),
                "load_average_1min": round(os.getloadavg()[0], 1)})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="shipped/ag_news-minilm-baa", help="picker id of a shipped BAA model")
    p.add_argument("--steps", type=int, default=28, help="budget steps to time (>= 10)")
    p.add_argument("--screenshots", default=None, help="folder for a screenshot of the last step")
    p.add_argument("--text", default=None, help="type this text first (default: the page's own, a test example when the "
                                                "data is on hand); the views draw up to 64 tokens")
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    args = p.parse_args()
    if args.steps < 10:
        p.error("--steps must be at least 10 (p95 over fewer steps says little)")
    result = run(args.model, args.steps, bs.ensure_chromium(), Path(args.screenshots) if args.screenshots else None, args.text)
    if not args.json:
        print(f"{result['model']}: budget step -> both bertviz views drawn, headless Chromium, {result['steps']} steps, "
              f"{result['cpu_count']} CPU cores")
        print(f"  p95 {result['p95_ms']:.0f} ms, median {result['median_ms']:.0f} ms   goal p95 < 1000 ms")
        for k in ("new_layout", "revisit"):
            s = result[k]
            if s["n"]:
                print(f"  {k.replace('_', ' ')} ({s['n']}): p50 {s['p50_ms']:.0f} ms, p95 {s['p95_ms']:.0f} ms, max {s['max_ms']:.0f} ms")
        print(f"  websocket bytes per step: median {result['payload_bytes']:,}, max {result['payload_bytes_max']:,}")
        if result["browser_draw_ms_median"] is not None:
            print(f"  of which drawing both views in the browser (script time): median {result['browser_draw_ms_median']:.0f} ms")
        if result["server_run"]["n"]:
            v = result["server_run"]
            print(f"  of which the app's script run on the server: p50 {v['p50_ms']:.0f} ms, p95 {v['p95_ms']:.0f} ms")
        print(f"  load average at the end: {result['load_average_1min']} on {result['cpu_count']} cores (a shared machine inflates "
              f"every number)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
