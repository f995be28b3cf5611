"""Headless Chromium for the web page tests, driven by Selenium through the system's driver.

The browser is Debian's ``chromium`` with its ``chromium-driver`` (a browser download at install
time fails on the build machines); ``FACEQ_CHROMIUM`` and ``FACEQ_CHROMEDRIVER`` name others.
Where either is missing the tests skip and say why; ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

DEFAULT_SIZE = (1280, 900)
BROWSERS = ("chromium", "chromium-browser")
DRIVERS = ("chromedriver",)


def _find(env: str, names: tuple[str, ...]) -> str | None:
    named = os.environ.get(env)
    if named:
        return named if Path(named).is_file() else None
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: run `make test` (it installs the test extra)"
    if _find("FACEQ_CHROMIUM", BROWSERS) is None or _find("FACEQ_CHROMEDRIVER", DRIVERS) is None:
        return (
            "no Chromium here (needs chromium and chromium-driver: "
            "`apt-get install -y chromium chromium-driver`; .ci/run installs them)"
        )
    return None


def chromium_or_skip() -> tuple[str, str]:
    """The browser and driver executables, or skip the test with the reason."""
    reason = missing_browser()
    if reason is not None:
        pytest.skip(reason)
    return _find("FACEQ_CHROMIUM", BROWSERS), _find("FACEQ_CHROMEDRIVER", DRIVERS)


def start_chromium(download_dir: Path, size: tuple[int, int] = DEFAULT_SIZE) -> Any:
    """A headless Chromium session; its console log is kept (``driver.get_log("browser")``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--lang=en-GB",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(download_dir),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    session.set_script_timeout(30)
    return session


def screenshot(session: Any, path: Path, width: int) -> tuple[int, int]:
    """Save the whole page at ``width`` px as a PNG; return its size in pixels."""
    session.set_window_size(width, 900)
    height = session.execute_script("return document.documentElement.scrollHeight")
    session.set_window_size(width, min(int(height) + 40, 6000))
    session.save_screenshot(str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
