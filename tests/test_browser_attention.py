"""Issue 12 in a real browser (headless Chromium, no network beyond localhost), tiny test models:

* a direct link to every page loads with no console error (Streamlit's frontend used to probe
  ``/<page>/_stcore/health`` first and log two 404s) and no error box;
* the Attention page's bertviz views: both drawn, heads that are off drawn as off (crossed swatches in
  the head view, blank "off" thumbnails in the model view), a budget step redraws both;
* plotly's toolbar never covers a chart's title or subplot titles (Attention heat maps, BudgetFormer
  inspector).

Screenshots go to ``$BAA_SCREENSHOTS`` or ``screenshots/`` (gitignored). Chromium is installed with apt-get
when missing; set BAA_SKIP_BROWSER=1 to skip.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests import browser_support as bs
from tests.app_fixtures import build_model_dirs

pytestmark = pytest.mark.browser

PAGES = [("", "Budgeted Attention Explorer"), ("budget_explorer", "Budget explorer"), ("inspector", "Per-input inspector"),
         ("attention", "Attention"), ("train", "Train a model"), ("paper", "Paper vs here")]
VIEWS = """
var r = document.querySelector('[data-baa-attention]');
if (!r) return null;
return {id: r.getAttribute('data-requested'), head: r.getAttribute('data-head-drawn'), model: r.getAttribute('data-model-drawn'),
        offSwatches: r.querySelectorAll('.baa-av-swatch.off').length, swatches: r.querySelectorAll('.baa-av-swatch').length,
        offThumbs: r.querySelectorAll('.baa-av-thumb.off').length, thumbs: r.querySelectorAll('.baa-av-thumb').length,
        tokens: r.querySelectorAll('.baa-av-left .baa-av-token').length};
"""
# ink (alpha > 0) inside each model-view thumbnail of the canvas: [layer, head, off?, inked pixels]
THUMB_INK = """
var r = document.querySelector('[data-baa-attention]'), stage = r.querySelector('.baa-av-model .baa-av-stage');
var canvas = stage.querySelector('canvas'), ctx = canvas.getContext('2d'), scale = canvas.width / canvas.clientWidth;
return Array.from(stage.querySelectorAll('.baa-av-thumb')).map(function (t) {
  var x = +t.getAttribute('x'), y = +t.getAttribute('y'), w = +t.getAttribute('width'), h = +t.getAttribute('height');
  var d = ctx.getImageData(Math.round(x * scale), Math.round(y * scale), Math.round(w * scale), Math.round(h * scale)).data, n = 0;
  for (var i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return [+t.getAttribute('data-layer'), +t.getAttribute('data-head'), t.classList.contains('off'), n];
});
"""
# plotly charts: any title or subplot title that overlaps the chart's toolbar (modebar)?
TOOLBAR_OVER_TITLES = """
function box(e) { var b = e.getBoundingClientRect(); return b.width && b.height ? b : null; }
function meet(a, b) { return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom; }
var bad = [], charts = document.querySelectorAll('.js-plotly-plot');
charts.forEach(function (plot) {
  var bar = plot.querySelector('.modebar');
  if (!bar) return;
  var m = box(bar);
  plot.querySelectorAll('.gtitle, .annotation-text').forEach(function (t) {
    var b = box(t);
    if (m && b && meet(m, b)) bad.push(t.textContent);
  });
});
return [charts.length, bad];
"""


@pytest.fixture(scope="module")
def browser_paths():
    if os.environ.get("BAA_SKIP_BROWSER") == "1":
        pytest.skip("BAA_SKIP_BROWSER=1")
    try:
        return bs.ensure_chromium()
    except (bs.BrowserUnavailable, OSError) as exc:
        pytest.fail(f"headless Chromium is needed for this test and could not be installed: {exc} "
                    f"(set BAA_SKIP_BROWSER=1 to skip it)")


@pytest.fixture(scope="module")
def app(browser_paths, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser_attention")
    dirs = build_model_dirs(tmp / "models")
    env = {"BAA_PRETRAINED_DIR": str(dirs["pretrained"]), "BAA_USER_MODELS": str(dirs["user_models"]), "HF_HUB_OFFLINE": "1",
           "BAA_DATA_DIR": str(tmp / "no-data")}
    shots = Path(os.environ.get("BAA_SCREENSHOTS") or bs.ROOT / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with bs.streamlit_server(env, log_path=tmp / "streamlit.log") as (url, _), bs.chrome(*browser_paths) as driver:
        yield url, driver, shots


def wait_for(driver, script: str, ok, timeout: float = 30, *args):
    end = time.time() + timeout
    value = None
    while time.time() < end:
        value = driver.execute_script(script, *args)
        if ok(value):
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out; last value {value!r}")


def drawn(v) -> bool:
    return bool(v and v["id"] and v["head"] == v["id"] and v["model"] == v["id"])


def test_direct_links_to_every_page_log_no_console_error(app):
    url, driver, shots = app
    for path, title in PAGES:
        driver.get("about:blank")
        driver.get_log("browser")  # drop what came before
        driver.get(f"{url}/{path}?model=shipped/tiny-baa")
        bs.wait_for_title(driver, title)
        bs.wait_idle(driver)
        severe = bs.severe_console(driver)
        assert not severe, (path, severe)
        assert not bs.error_boxes(driver), (path, bs.error_boxes(driver))
        driver.save_screenshot(str(shots / f"direct_link_{path or 'overview'}.png"))


def test_attention_views_draw_off_heads_as_off_and_redraw_on_a_budget_step(app):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, driver, shots = app
    driver.get(f"{url}/attention?model=shipped/tiny-baa")
    bs.wait_for_title(driver, "Attention")
    first = wait_for(driver, VIEWS, drawn)
    bs.wait_idle(driver)
    caption = driver.execute_script("return document.body.innerText.match(/(\\d+) of (\\d+) heads run/).slice(1).map(Number)")
    on, total = caption
    assert first["thumbs"] == total == 8 and first["offThumbs"] == total - on > 0
    assert first["swatches"] == 4 and first["tokens"] > 0
    ink = driver.execute_script(THUMB_INK)
    assert all(n == 0 for _, _, off, n in ink if off), ink  # off heads draw no attention
    assert all(n > 0 for _, _, off, n in ink if not off), ink
    layer0_off = sum(off for layer, _, off, _ in ink if layer == 0)
    assert first["offSwatches"] == layer0_off  # the head view shows layer 0 first: its off heads are grey, crossed
    driver.save_screenshot(str(shots / "attention_views.png"))

    slider = driver.find_element(By.CSS_SELECTOR, '[data-testid="stSlider"] input[type="range"]')
    bs.press_keys(driver, slider, *[Keys.ARROW_LEFT] * 5)  # 0.50 -> 0.25
    after = wait_for(driver, VIEWS, lambda v: drawn(v) and v["id"] != first["id"], 60)
    bs.wait_idle(driver)
    assert after["offThumbs"] > first["offThumbs"]
    ink = driver.execute_script(THUMB_INK)
    assert all(n == 0 for _, _, off, n in ink if off) and all(n > 0 for _, _, off, n in ink if not off), ink
    assert not bs.severe_console(driver)
    driver.save_screenshot(str(shots / "attention_views_budget_0.25.png"))


def test_plotly_toolbar_never_covers_titles(app):
    from selenium.webdriver.common.by import By

    url, driver, shots = app
    driver.get(f"{url}/attention?model=shipped/tiny-baa")
    bs.wait_for_title(driver, "Attention")
    bs.wait_idle(driver)
    next(t for t in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stTab"]') if "Heat maps" in t.text).click()
    n, bad = wait_for(driver, TOOLBAR_OVER_TITLES, lambda v: v[0] > 0)
    bs.wait_idle(driver)
    n, bad = driver.execute_script(TOOLBAR_OVER_TITLES)
    assert not bad, bad
    driver.save_screenshot(str(shots / "attention_heat_maps.png"))

    driver.get(f"{url}/inspector?model=shipped/tiny-bf")
    bs.wait_for_title(driver, "Per-input inspector")
    bs.wait_idle(driver)
    n, bad = wait_for(driver, TOOLBAR_OVER_TITLES, lambda v: v[0] >= 2)
    assert not bad, bad
    driver.save_screenshot(str(shots / "inspector_budgetformer_titles.png"))
