"""Driving the live budget panel in headless Chromium like a mouse does, and reading what it drew.

Shared by tests/test_live_panel_browser.py and benchmarks/app_drag.py. Mouse events go through the
DevTools protocol (``Input.dispatchMouseEvent``): they are trusted events, so the native range input
moves its thumb and fires ``input`` while dragging and ``change`` on release, as with a real mouse.

A drag's moves are sent on a clock, like a real mouse's, over a DevTools connection of our own to the
page (``DevToolsMouse``), without waiting for each one to be answered. Sent one at a time through
Selenium instead, each move waits for an HTTP round trip to chromedriver and for Chromium's answer,
which comes only after the next animation frame: the mouse then moves at most once per frame, and on a
busy machine every missed round trip shows up as a 33 ms gap between the panel's redraws that the
panel did not cause (measured: 16.7 ms per call on an idle page). Chromium itself coalesces a real
mouse's moves to one ``input`` event per frame; the page's ``input`` events are recorded
(``window.__baaWatch.inputs``) so a benchmark can print the gaps it was given beside the gaps it drew.

What the page did is read from two places:
* ``window.__baaLivePanel[<panel id>]``, the panel's own counters (app/static/live_panel/panel.js):
  a timestamp per redraw, the budget shown, render time, commits;
* ``window.__baaWatch``, installed here: the time of the page's last DOM change, and animation frames;
* ``window.__baaWs``, a hook installed before the app's own scripts (``install_ws_hook``): every message
  the browser sends to the Streamlit server (a rerun request is one) and receives from it. A fast
  fragment rerun can start and finish within one React render, so the app root's script-state attribute
  is not a reliable run counter; the socket is.
"""
from __future__ import annotations

import json
import time
import urllib.request

WS_HOOK = """
(() => {
  const w = window.__baaWs = {sent: 0, recv: 0, lastSent: 0, lastRecv: 0};
  const Native = window.WebSocket;
  function Hooked(...args) {
    const ws = new Native(...args);
    ws.addEventListener('message', () => { w.recv += 1; w.lastRecv = performance.now(); });
    const send = ws.send.bind(ws);
    ws.send = (data) => { w.sent += 1; w.lastSent = performance.now(); return send(data); };
    return ws;
  }
  Hooked.prototype = Native.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Hooked[k] = Native[k];
  window.WebSocket = Hooked;
})();
"""

WATCH = """
if (!window.__baaWatch) {
  const w = window.__baaWatch = {last: performance.now(), raf: [], rafOn: false, inputs: []};
  // every input event the page gets (they are composed: a capturing listener here sees the panel's, in its shadow root)
  document.addEventListener('input', (e) => { w.inputs.push(e.timeStamp); }, true);
  new MutationObserver(() => { w.last = performance.now(); })
    .observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
  const tick = (t) => { if (w.rafOn) { w.raf.push(t); requestAnimationFrame(tick); } };
  w.startRaf = () => { w.raf = []; w.rafOn = true; requestAnimationFrame(tick); };
  w.stopRaf = () => { w.rafOn = false; return w.raf; };
}
return true;
"""

RANGE_RECT = """
for (const host of document.querySelectorAll('[data-testid^="stBidiComponent"]')) {
  const root = host.shadowRoot || host;
  const r = root.querySelector('.bl-' + arguments[0] + ' .bl-range');
  if (!r) continue;
  r.scrollIntoView({block: 'center'});
  const b = r.getBoundingClientRect();
  return {x: b.left, y: b.top + b.height / 2, w: b.width, min: parseFloat(r.min), max: parseFloat(r.max), value: parseFloat(r.value)};
}
return null;
"""


def install_ws_hook(driver) -> None:
    """Count the app's socket messages in every page this driver opens from now on (call before ``get``)."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WS_HOOK})


def install_watch(driver) -> None:
    driver.execute_script(WATCH)


def stats(driver, panel_id: str) -> dict | None:
    return driver.execute_script("const s = (window.__baaLivePanel || {})[arguments[0]];"
                                 "return s ? JSON.parse(JSON.stringify(s)) : null;", panel_id)


def watch(driver) -> dict:
    """sent / recv: socket messages so far (``sent`` counts rerun requests); last: the page's last change
    (DOM or socket message), page clock; running: Streamlit's script-state attribute."""
    return driver.execute_script(
        "const w = window.__baaWatch, s = window.__baaWs || {sent: 0, recv: 0, lastRecv: 0};"
        "return {sent: s.sent, recv: s.recv, last: Math.max(w.last, s.lastRecv), now: performance.now(),"
        " running: document.querySelector('[data-testid=\"stApp\"]').getAttribute('data-test-script-state') === 'running'};")


def range_rect(driver, mode: str = "explorer", timeout: float = 30) -> dict:
    """Where the slider of the panel in ``mode`` (explorer, inspector, overview) is, in CSS pixels."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if driver.execute_script(RANGE_RECT, mode):
            time.sleep(0.2)  # after scrolling it into view
            return driver.execute_script(RANGE_RECT, mode)
        time.sleep(0.1)
    raise TimeoutError(f"no live panel ({mode}) on the page")


def _mouse(driver, kind: str, x: float, y: float) -> None:
    event = {"type": kind, "x": float(x), "y": float(y), "button": "left", "clickCount": 1}
    event["buttons"] = 0 if kind == "mouseReleased" else 1
    driver.execute_cdp_cmd("Input.dispatchMouseEvent", event)


def x_of(rect: dict, budget: float, thumb: float = 16.0) -> float:
    """Screen x of a budget on the range input (the thumb's centre travels between thumb/2 from each end)."""
    frac = (budget - rect["min"]) / ((rect["max"] - rect["min"]) or 1)
    return rect["x"] + thumb / 2 + frac * (rect["w"] - thumb)


class DevToolsMouse:
    """Mouse events sent straight to the page's DevTools socket (Chromium's, at chromedriver's
    ``debuggerAddress``), pipelined: ``send`` does not wait for the answer; ``flush`` waits for all of them,
    so whatever is sent afterwards (through Selenium too) comes after every event sent here."""

    def __init__(self, driver):
        import websocket  # websocket-client, a dependency of selenium

        addr = driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
        with urllib.request.urlopen(f"http://{addr}/json/list", timeout=10) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        url = driver.current_url
        page = next((t for t in pages if t.get("url") == url), pages[0])
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.sent = self.answered = 0

    def send(self, kind: str, x: float, y: float) -> None:
        self.sent += 1
        params = {"type": kind, "x": float(x), "y": float(y), "button": "left", "clickCount": 1,
                  "buttons": 0 if kind == "mouseReleased" else 1}
        self.ws.send(json.dumps({"id": self.sent, "method": "Input.dispatchMouseEvent", "params": params}))

    def flush(self) -> None:
        while self.answered < self.sent:
            msg = json.loads(self.ws.recv())
            if "error" in msg:
                raise RuntimeError(f"DevTools refused a mouse event: {msg['error']}")
            if "id" in msg:
                self.answered += 1

    def close(self) -> None:
        self.ws.close()


def drag(driver, rect: dict, path: list[float], step_ms: float = 8.0, release: bool = True) -> dict:
    """Press at path[0], move through the budgets in ``path`` one mouse move every ``step_ms`` (on the
    clock, not waiting for the page), release. Returns page-clock times of the press and of the end of
    the moves (performance.now()), and ``late_ms``: the latest any move was sent behind its schedule."""
    y = rect["y"]
    mouse = DevToolsMouse(driver)
    try:
        t_press = driver.execute_script("return performance.now();")
        mouse.send("mousePressed", x_of(rect, path[0]), y)
        start = next_at = time.perf_counter()
        late = 0.0
        for b in path[1:]:
            next_at += step_ms / 1000
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            late = max(late, -pause)
            mouse.send("mouseMoved", x_of(rect, b), y)
        mouse.flush()  # every move has reached the page
        t_release = driver.execute_script("return performance.now();")
        if release:
            mouse.send("mouseReleased", x_of(rect, path[-1]), y)
            mouse.flush()
    finally:
        mouse.close()
    return {"press": t_press, "release": t_release, "late_ms": 1000 * late, "send_ms": 1000 * (next_at - start)}


def sweep_path(lo: float, hi: float, steps: int) -> list[float]:
    """lo -> hi -> lo in ``steps`` moves each way."""
    up = [lo + (hi - lo) * i / steps for i in range(steps + 1)]
    return up + up[-2::-1]


def wait_final(driver, before: dict, quiet_ms: float = 400, timeout: float = 60) -> dict:
    """After a release: wait until the rerun request it sent has been answered (a message came back after
    it) and the page has stayed unchanged, DOM and socket, for ``quiet_ms``; returns the watch state
    (``last`` = the page's last change, page clock)."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        w = watch(driver)
        answered = w["sent"] > before["sent"] and w["recv"] > before["recv"]
        if answered and not w["running"] and w["now"] - w["last"] >= quiet_ms:
            return w
        time.sleep(0.02)
    raise TimeoutError(f"the page did not settle after the release (before {before}, now {w})")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)
