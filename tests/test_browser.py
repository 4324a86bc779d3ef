"""The running app in headless Chromium, with no network beyond localhost.

Starts ``streamlit run app/main.py`` on a free port with the tiny test models, visits every page by
its sidebar link, and checks: no error box, no SEVERE console entry, the bertviz head view and model
view drawn (their canvases hold attention), the budget slider moving the numbers. Screenshots go to
``$BAA_SCREENSHOTS`` or ``screenshots/`` (gitignored).

Chromium is installed with apt-get when missing (Debian packages ``chromium`` and ``chromium-driver``);
if that is impossible the test fails. Set BAA_SKIP_BROWSER=1 to skip it instead.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests import browser_support as bs
from tests.app_fixtures import build_model_dirs

pytestmark = pytest.mark.browser

T0 = time.perf_counter()
PAGES = [("Budget explorer", "Budget explorer"), ("Per-input inspector", "Per-input inspector"), ("Attention", "Attention"),
         ("Train", "Train a model"), ("Paper vs here", "Paper vs here")]


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
def screenshots() -> Path:
    folder = Path(os.environ.get("BAA_SCREENSHOTS") or bs.ROOT / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_page(driver, name: str, shots: Path) -> None:
    t = time.perf_counter()
    bs.wait_idle(driver)
    print(f"{name}: settled in {time.perf_counter() - t:.1f} s (at {time.perf_counter() - T0:.1f})")
    driver.save_screenshot(str(shots / f"{name.lower().replace(' ', '_').replace('-', '_')}.png"))
    assert not bs.error_boxes(driver), (name, bs.error_boxes(driver))
    severe = bs.severe_console(driver)
    assert not severe, (name, severe)


def bertviz_drawings(driver, timeout: float = 20) -> int:
    """Once both bertviz views (one component) report the current head layout drawn: how many attention
    pixels their canvases hold (0 if they never did)."""
    end = time.time() + timeout
    while time.time() < end:
        n = driver.execute_script(
            "var r = document.querySelector('[data-baa-attention]'); if (!r) return -1;"
            "var id = r.getAttribute('data-requested');"
            "if (!id || r.getAttribute('data-head-drawn') !== id || r.getAttribute('data-model-drawn') !== id) return -1;"
            "var n = 0; r.querySelectorAll('canvas').forEach(function (c) {"
            "  var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "  for (var i = 3; i < d.length; i += 4) if (d[i] > 0) n++; });"
            "return n;")
        if n > 0:
            return n
        time.sleep(0.2)
    return 0


def test_every_page_in_a_real_browser(browser_paths, screenshots, tmp_path):
    from selenium.webdriver.common.by import By

    global T0
    T0 = time.perf_counter()
    dirs = build_model_dirs(tmp_path / "models")
    print(f"models built at {time.perf_counter() - T0:.1f}")
    env = {"BAA_PRETRAINED_DIR": str(dirs["pretrained"]), "BAA_USER_MODELS": str(dirs["user_models"]), "HF_HUB_OFFLINE": "1"}
    with bs.streamlit_server(env, log_path=tmp_path / "streamlit.log") as (url, _), bs.chrome(*browser_paths) as driver:
        driver.get(url + "/?model=shipped/tiny-baa")
        bs.wait_for_title(driver, "Budgeted Attention Explorer")
        check_page(driver, "overview", screenshots)
        for link, title in PAGES:
            bs.click_nav(driver, link)
            bs.wait_for_title(driver, title)
            check_page(driver, link, screenshots)
            if link == "Budget explorer":  # the live panel draws the Pareto chart inside its shadow root
                # (it may still be computing: a server warms its caches in the background at start)
                end, drawn = time.time() + 30, 0
                while time.time() < end and not drawn:
                    drawn = driver.execute_script(
                        "return Array.from(document.querySelectorAll('[data-testid^=stBidiComponent]'))"
                        ".map(h => (h.shadowRoot || h).querySelectorAll('svg[role=img] circle').length).reduce((a, b) => a + b, 0)")
                    time.sleep(0.2)
                assert drawn > 0, "the Pareto chart drew no points"
            if link == "Attention":
                assert bertviz_drawings(driver) > 0, "the bertviz head view and model view drew nothing"
                driver.execute_script("document.querySelector('.baa-av-model').scrollIntoView()")
                driver.save_screenshot(str(screenshots / "attention_model_view.png"))
                assert not bs.severe_console(driver)

        # dragging and releasing the budget slider: tests/test_live_panel_browser.py

        # a BudgetFormer model: the inspector's per-block s and q and its dataset views
        driver.get(url + "/?model=shipped/tiny-bf")
        bs.wait_for_title(driver, "Budgeted Attention Explorer")
        bs.wait_idle(driver)
        bs.click_nav(driver, "Per-input inspector")
        bs.wait_for_title(driver, "Per-input inspector")
        check_page(driver, "inspector budgetformer", screenshots)
        assert "budget s per block" in driver.find_element(By.TAG_NAME, "body").text

        # a corrupt checkpoint: a clear message, not a crash (this error box is expected)
        driver.get(url + "/?model=yours/broken")
        bs.wait_for_title(driver, "Budgeted Attention Explorer")
        bs.wait_idle(driver)
        bs.click_nav(driver, "Budget explorer")
        end, boxes = time.time() + 30, []
        while time.time() < end and not boxes:  # a loaded machine may start the rerun after wait_idle would return
            bs.wait_idle(driver)
            boxes = bs.error_boxes(driver)
        assert boxes and "cannot be loaded" in boxes[0]
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        driver.save_screenshot(str(screenshots / "corrupt_checkpoint.png"))
