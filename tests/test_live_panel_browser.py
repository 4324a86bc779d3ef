"""The live budget panel in headless Chromium (tiny test models, no network beyond localhost).

A real mouse drag across the slider (trusted DevTools events): the panel redraws with new values during
the drag while Streamlit runs nothing; the release commits the budget with exactly one rerun, and the
server-side part of the page follows. The same on the Per-input inspector (the text's class probabilities
move with the drag) and on the Overview's own small slider (which never reruns anything). A key press
steps to the next operating point and commits it. An adaptive model (per-input heads under one knob) gets the
same panel, from its card's budgets: its mean heads per block move with the drag. 12-head grids (MiniLM's
width) fit a narrow window on the inspector. Screenshots of each page go to ``$BAA_SCREENSHOTS`` or
``screenshots/`` (gitignored).

Skipped (not failed) when Chromium is not installed and cannot be installed here, or with BAA_SKIP_BROWSER=1.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests import browser_support as bs
from tests import panel_driver as pd
from tests.app_fixtures import build_adaptive, build_model_dirs, build_twelve_heads

pytestmark = pytest.mark.browser
BUDGET_RE = "var m = document.body.innerText.match(/Budget (\\d\\.\\d\\d) ·/); return m ? m[1] : null;"


@pytest.fixture(scope="module")
def browser_paths():
    if os.environ.get("BAA_SKIP_BROWSER") == "1":
        pytest.skip("BAA_SKIP_BROWSER=1")
    try:
        return bs.ensure_chromium()
    except (bs.BrowserUnavailable, OSError, subprocess.SubprocessError) as exc:  # no apt, no root, no network: skip cleanly
        pytest.skip(f"headless Chromium is not available and could not be installed: {exc}")


@pytest.fixture(scope="module")
def app(browser_paths, tmp_path_factory):
    root = tmp_path_factory.mktemp("live_panel")
    dirs = build_model_dirs(root / "models")
    build_adaptive(dirs["pretrained"] / "tiny-adaptive")
    build_twelve_heads(dirs["pretrained"])
    env = {"BAA_PRETRAINED_DIR": str(dirs["pretrained"]), "BAA_USER_MODELS": str(dirs["user_models"]), "HF_HUB_OFFLINE": "1",
           "BAA_DATA_DIR": str(root / "no-data-here")}
    with bs.streamlit_server(env, log_path=root / "streamlit.log") as (url, _), bs.chrome(*browser_paths) as driver:
        pd.install_ws_hook(driver)  # counts the rerun requests the page sends
        yield url, driver


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(os.environ.get("BAA_SCREENSHOTS") or bs.ROOT / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(driver, url: str, model: str, link: str | None, title: str) -> None:
    driver.get(f"{url}/?model={model}")
    bs.wait_for_title(driver, "Budgeted Attention Explorer")
    bs.wait_idle(driver)
    if link:
        bs.click_nav(driver, link)
        bs.wait_for_title(driver, title)
        bs.wait_idle(driver)
    pd.install_watch(driver)
    assert not bs.error_boxes(driver) and not bs.severe_console(driver)


def drag_without_release(driver, panel_id: str, mode: str) -> tuple[dict, list[float], int]:
    """Drag from the low to the high end and back; returns (slider rect, budgets shown, rerun requests sent)."""
    rect = pd.range_rect(driver, mode)
    before, w0 = pd.stats(driver, panel_id), pd.watch(driver)
    pd.drag(driver, rect, pd.sweep_path(rect["min"], rect["max"], 40), step_ms=10, release=False)
    time.sleep(0.5)  # a rerun triggered by the drag would have started by now
    w1 = pd.watch(driver)
    shown = pd.stats(driver, panel_id)["shown"][len(before["shown"]):]
    return rect, shown, w1["sent"] - w0["sent"]


def test_drag_redraws_in_the_browser_and_release_commits_once(app, shots):
    url, driver = app
    open_page(driver, url, "shipped/tiny-baa", "Budget explorer", "Budget explorer")
    driver.save_screenshot(str(shots / "live_explorer.png"))
    committed = driver.execute_script(BUDGET_RE)
    rect, shown, runs = drag_without_release(driver, "explorer_live", "explorer")
    assert runs == 0, "Streamlit ran the script during the drag"
    assert len(shown) >= 40 and len(set(shown)) >= 3, f"the panel did not move with the drag: {sorted(set(shown))}"
    assert driver.execute_script(BUDGET_RE) == committed  # the server side waits for the release
    driver.save_screenshot(str(shots / "live_explorer_dragging.png"))

    w0 = pd.watch(driver)
    pd._mouse(driver, "mouseReleased", pd.x_of(rect, rect["min"]), rect["y"])  # the drag ends at the low end
    pd.wait_final(driver, w0)
    low = pd.stats(driver, "explorer_live")["commits"][-1]["b"]
    assert pd.watch(driver)["sent"] - w0["sent"] == 1 and driver.execute_script(BUDGET_RE) == f"{low:.2f}"

    w0 = pd.watch(driver)
    pd.drag(driver, rect, [0.75], release=True)  # press (the thumb jumps there) and release
    pd.wait_final(driver, w0)
    stats = pd.stats(driver, "explorer_live")
    assert stats["commits"][-1]["b"] == 0.75 and stats["shown"][-1] == 0.75
    assert pd.watch(driver)["sent"] - w0["sent"] == 1, "the release should cause exactly one rerun"
    assert driver.execute_script(BUDGET_RE) == "0.75"
    panel_text = driver.execute_script(
        "for (const h of document.querySelectorAll('[data-testid^=\"stBidiComponent\"]')) {"
        " const r = h.shadowRoot || h; const p = r.querySelector('.bl-explorer'); if (p) return p.innerText; } return '';")
    assert "b = 0.75" in panel_text and re.search(r"\d+\.\d\d%", panel_text)  # accuracy with its interval
    assert "95% interval" in panel_text and "vs every head" in panel_text
    assert not bs.error_boxes(driver) and not bs.severe_console(driver)
    driver.save_screenshot(str(shots / "live_explorer_released.png"))

    # a key press steps to the next operating point and commits it (keyboard users, and one rerun per step)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    host = next(h for h in driver.find_elements(By.CSS_SELECTOR, '[data-testid^="stBidiComponent"]')
                if h.shadow_root.find_elements(By.CSS_SELECTOR, ".bl-explorer"))
    w0 = pd.watch(driver)
    host.shadow_root.find_element(By.CSS_SELECTOR, ".bl-range").send_keys(Keys.ARROW_LEFT)
    pd.wait_final(driver, w0)
    stepped = pd.stats(driver, "explorer_live")["commits"][-1]["b"]
    assert stepped < 0.75 and driver.execute_script(BUDGET_RE) == f"{stepped:.2f}"


@pytest.mark.parametrize("model, top", [("tiny-baa", "1.00"), ("tiny-adaptive", "0.75")])
def test_inspector_probabilities_move_with_the_drag(app, shots, model, top):
    """BAA: the text's probabilities at every operating point; adaptive: also its own heads and s(b) at each budget."""
    url, driver = app
    open_page(driver, url, f"shipped/{model}", "Per-input inspector", "Per-input inspector")
    suffix = "" if model == "tiny-baa" else "_adaptive"
    driver.save_screenshot(str(shots / f"live_inspector{suffix}.png"))
    read_bars = ("for (const h of document.querySelectorAll('[data-testid^=\"stBidiComponent\"]')) {"
                 " const r = h.shadowRoot || h; const p = r.querySelector('.bl-inspector'); "
                 " if (p) return Array.from(p.querySelectorAll('.bl-bval')).map(e => e.innerText).join('|') + p.querySelector('.bl-pred').innerText; }"
                 " return null;")
    assert driver.execute_script(read_bars)
    rect = pd.range_rect(driver, "inspector")
    seen, w0 = set(), pd.watch(driver)
    pd._mouse(driver, "mousePressed", pd.x_of(rect, rect["min"]), rect["y"])
    for i in range(1, 31):
        pd._mouse(driver, "mouseMoved", pd.x_of(rect, rect["min"] + (rect["max"] - rect["min"]) * i / 30), rect["y"])
        seen.add(driver.execute_script(read_bars))
    assert len(seen) >= 2, "the per-input view did not change during the drag"
    assert pd.watch(driver)["sent"] == w0["sent"]
    pd._mouse(driver, "mouseReleased", pd.x_of(rect, rect["max"]), rect["y"])
    pd.wait_final(driver, w0)
    assert f"At the committed budget b = {top}" in driver.find_element("tag name", "body").text
    assert not bs.error_boxes(driver) and not bs.severe_console(driver)
    driver.save_screenshot(str(shots / f"live_inspector{suffix}_released.png"))


def test_overview_grid_lights_up_without_reruns(app, shots):
    url, driver = app
    open_page(driver, url, "shipped/tiny-baa", None, "")
    w0 = pd.watch(driver)
    _, shown, runs = drag_without_release(driver, "overview_live", "overview")
    assert runs == 0 and len(set(shown)) >= 3
    rect = pd.range_rect(driver, "overview")
    pd._mouse(driver, "mouseReleased", pd.x_of(rect, rect["min"]), rect["y"])
    time.sleep(1.0)
    assert pd.watch(driver)["sent"] == w0["sent"]  # the overview's slider is its own: no commit, no rerun
    cells_on = driver.execute_script(
        "for (const h of document.querySelectorAll('[data-testid^=\"stBidiComponent\"]')) {"
        " const r = h.shadowRoot || h; const p = r.querySelector('.bl-overview'); if (p) return p.querySelectorAll('.bl-on').length; }")
    assert cells_on == 2  # the lowest budget of the 2 x 4 fixture: one head per block
    driver.save_screenshot(str(shots / "live_overview.png"))


GRID_NUMBERS = ("for (const h of document.querySelectorAll('[data-testid^=\"stBidiComponent\"]')) {"
                " const r = h.shadowRoot || h; const p = r.querySelector('.bl-explorer');"
                " if (p) return Array.from(p.querySelectorAll('.bl-cell')).map(c => c.innerText + (c.classList.contains('bl-on') ? '+' : '')).join('|'); }"
                " return null;")

SHARE_BARS = ("for (const h of document.querySelectorAll('[data-testid^=\"stBidiComponent\"]')) {"
              " const r = h.shadowRoot || h; const p = r.querySelector('.bl-explorer');"
              " if (p) return Array.from(p.querySelectorAll('.bl-shbar')).map(b => b.getAttribute('height')).join('|')"
              " + ' ' + (p.querySelector('.bl-shsub') || {}).textContent; }"
              " return null;")


def test_adaptive_explorer_moves_with_the_drag_and_commits_on_release(app, shots):
    url, driver = app
    open_page(driver, url, "shipped/tiny-adaptive", "Budget explorer", "Budget explorer")
    driver.save_screenshot(str(shots / "live_explorer_adaptive.png"))
    committed = driver.execute_script(BUDGET_RE)
    rect = pd.range_rect(driver, "explorer")
    assert (rect["min"], rect["max"]) == (0.25, 0.75)  # the budgets the card measured
    grids, shares, w0 = set(), set(), pd.watch(driver)
    pd._mouse(driver, "mousePressed", pd.x_of(rect, rect["min"]), rect["y"])
    for i in range(1, 21):
        pd._mouse(driver, "mouseMoved", pd.x_of(rect, rect["min"] + (rect["max"] - rect["min"]) * i / 20), rect["y"])
        grids.add(driver.execute_script(GRID_NUMBERS))
        shares.add(driver.execute_script(SHARE_BARS))
    shown = pd.stats(driver, "explorer_live")["shown"]
    assert {0.25, 0.5, 0.75} <= set(shown), f"the panel did not move through the card's budgets: {sorted(set(shown))}"
    assert len(grids) >= 2, "the per-block mean heads did not change during the drag"
    # every input's budget moves with the drag too: the live sample's histogram, redrawn in the browser
    assert None not in shares and len(shares) >= 3, f"the per-input budgets did not move during the drag: {shares}"
    assert all("mean s" in v for v in shares)
    time.sleep(0.5)
    assert pd.watch(driver)["sent"] == w0["sent"], "Streamlit ran the script during the drag"
    assert driver.execute_script(BUDGET_RE) == committed
    pd._mouse(driver, "mouseReleased", pd.x_of(rect, rect["max"]), rect["y"])
    pd.wait_final(driver, w0)
    assert pd.watch(driver)["sent"] - w0["sent"] == 1 and driver.execute_script(BUDGET_RE) == "0.75"
    body = driver.find_element("tag name", "body").text
    assert "realised cost, live" in body  # the live sample follows the committed budget
    assert not bs.error_boxes(driver) and not bs.severe_console(driver)
    driver.save_screenshot(str(shots / "live_explorer_adaptive_released.png"))


OVERFLOW = """
const out = [], main = document.querySelector('[data-testid="stMainBlockContainer"]').getBoundingClientRect();
for (const h of document.querySelectorAll('[data-testid^="stBidiComponent"]')) {
  const r = h.shadowRoot || h;
  r.querySelectorAll('.bl-grid').forEach((g) => out.push({what: 'panel grid', right: g.getBoundingClientRect().right,
    cells: g.querySelectorAll('.bl-cell').length, over: g.scrollWidth - g.clientWidth}));
}
document.querySelectorAll('table').forEach((t) => {
  if (t.querySelector('td[title^="block"]')) out.push({what: 'head table', right: t.getBoundingClientRect().right,
    cells: t.querySelectorAll('td').length, over: t.scrollWidth - t.clientWidth});
});
return {grids: out, mainRight: main.right, pageOver: document.documentElement.scrollWidth - window.innerWidth};
"""


@pytest.mark.parametrize("model", ["tiny-baa12", "tiny-dense12"])
def test_twelve_head_grids_fit_a_narrow_window(app, shots, model):
    url, driver = app
    driver.set_window_size(1024, 1400)
    try:
        open_page(driver, url, f"shipped/{model}", "Per-input inspector", "Per-input inspector")
        found = driver.execute_script(OVERFLOW)
        driver.save_screenshot(str(shots / f"inspector_12_heads_{model}.png"))
    finally:
        driver.set_window_size(1400, 2000)
    grids = found["grids"]
    assert grids and all(g["cells"] == 24 for g in grids), found  # the 2 x 12 grid is on the page
    for g in grids:
        assert g["over"] <= 1 and g["right"] <= found["mainRight"] + 1, f"{g['what']} runs off the page: {found}"
    assert found["pageOver"] <= 0, found
