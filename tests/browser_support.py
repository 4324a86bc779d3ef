"""Running the app for real: a Streamlit server on a free port and headless Chromium driven by selenium.

Shared by tests/test_browser.py and benchmarks/app_latency.py. Chromium comes from the Debian
packages ``chromium`` and ``chromium-driver`` (installed with apt-get when missing; CI runs as root).
The browser reaches nothing but localhost: every host name except 127.0.0.1 resolves to nothing, so
a page that tried to load a CDN script would fail loudly (a SEVERE console entry) instead of working
by accident.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,2000",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1, EXCLUDE localhost"]


class BrowserUnavailable(RuntimeError):
    pass


def chromium_paths() -> tuple[str, str] | None:
    chrome = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
    return (chrome, driver) if chrome and driver else None


def ensure_chromium(timeout: int = 900) -> tuple[str, str]:
    """Paths of chromium and chromedriver, installing the Debian packages first if they are missing."""
    found = chromium_paths()
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise BrowserUnavailable("chromium is not installed and there is no apt-get to install it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else [])
    for cmd in (sudo + [apt, "update", "-qq"], sudo + [apt, "install", "-y", "-qq", "chromium", "chromium-driver"]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if r.returncode:
            raise BrowserUnavailable(f"{' '.join(cmd)} failed ({r.returncode}): {(r.stderr or r.stdout)[-800:]}")
    found = chromium_paths()
    if not found:
        raise BrowserUnavailable("apt-get finished but chromium or chromedriver is still missing")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(env: dict | None = None, port: int | None = None, log_path: Path | None = None, timeout: float = 60):
    """``streamlit run app/main.py`` on 127.0.0.1; yields (url, seconds until the port answered)."""
    port = port or free_port()
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log_path}")
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.perf_counter() - start > timeout:
                    raise RuntimeError("streamlit did not open its port in time") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", time.perf_counter() - start
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()


@contextlib.contextmanager
def chrome(chrome_path: str, driver_path: str, performance_log: bool = False):
    """Headless Chromium; ``performance_log`` also records DevTools network events (websocket frame sizes)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome_path
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="baa-chrome-")
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", **({"performance": "ALL"} if performance_log else {})})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# ---------------------------------------------------------------- reading the page
ERROR_BOXES = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def script_running(driver) -> bool:
    """Streamlit marks its root element with the script's state (data-test-script-state: running / notRunning)."""
    return driver.execute_script(
        "var a = document.querySelector('[data-testid=\"stApp\"]');"
        "return !a || a.getAttribute('data-test-script-state') !== 'notRunning' || "
        "!!document.querySelector('[data-stale=\"true\"]');")


def wait_idle(driver, timeout: float = 60, settle: float = 0.3) -> None:
    """Until the script run has finished and the page has not changed for ``settle`` s (charts draw after the run)."""
    end = time.perf_counter() + timeout
    last, calm_since = None, None
    while time.perf_counter() < end:
        now = None if script_running(driver) else driver.execute_script(
            "return document.body.innerText.length + ':' + document.getElementsByTagName('*').length;")
        if now is None or now != last:
            last, calm_since = now, time.perf_counter()
        elif time.perf_counter() - calm_since >= settle:
            return
        time.sleep(0.05)
    raise TimeoutError("the app did not settle in time")


def wait_for_title(driver, title: str, timeout: float = 60) -> None:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if driver.execute_script("var h = document.querySelector('h1'); return h ? h.innerText : '';").strip().startswith(title):
            return
        time.sleep(0.05)
    raise TimeoutError(f"no page titled {title!r} appeared")


def click_nav(driver, text: str) -> None:
    from selenium.webdriver.common.by import By

    for link in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNavLink"]'):
        if link.text.strip().endswith(text):
            link.click()
            return
    raise LookupError(f"no sidebar link {text!r}")


def error_boxes(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, ERROR_BOXES)]


def severe_console(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def press_keys(driver, element, *keys) -> None:
    """Focus ``element`` and press ``keys`` on it. Streamlit's slider keeps its input visually hidden inside the
    thumb (react-aria), which Selenium's ``send_keys`` refuses as "not interactable"; a keyboard user tabs to
    it and presses the keys on the focused element, which is what this does."""
    from selenium.webdriver.common.action_chains import ActionChains

    driver.execute_script("arguments[0].focus();", element)
    ActionChains(driver).send_keys(*keys).perform()
