"""The web tests' shared fixtures: ``browser``, Debian's headless Chromium driven by Selenium through Debian's
chromedriver (no browser download). Chromium missing is a failure, not a skip: ``apt-get install -y chromium
chromium-driver`` (``.ci/run`` installs them when missing)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest

INSTALL = ("Debian's Chromium and ChromeDriver are needed for the browser test: "
           "apt-get install -y chromium chromium-driver (as root; .ci/run does it when they are missing)")
# headless as root on a machine with a closed network: no sandbox, GPU, or calls home
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-extensions", "--window-size=1400,1600")


@pytest.fixture
def browser() -> Iterator[object]:
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not chromedriver:
        pytest.fail(f"{'chromium' if not chromium else 'chromedriver'} not found. {INSTALL}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[test]'")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="o2c-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        # the driver's path is given, so Selenium Manager never looks for (or downloads) one
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        driver.set_page_load_timeout(20)
        try:
            yield driver
        finally:
            driver.quit()


