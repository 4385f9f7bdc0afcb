"""The QuickBooks connect flow in a real browser (Debian's headless Chromium, the harness of
``tests/web/test_browser.py``): a merchant signs in, opens Connections, clicks Connect QuickBooks, Intuit's
fake approves, and the page shows the company connected and active; then the connection needs
reconnecting, and its Reconnect button makes it active again."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import update

from hub.merchants import create_merchant
from hub.models import Connection
from hub.users import create_user
from tests.helpers import served
from tests.web.test_browser import browser  # noqa: F401 - the Chromium fixture
from tests.web.test_oauth import PASSWORD, oauth_app

OWNER = "owner@books.example"


@pytest.mark.slow
def test_a_merchant_connects_quickbooks_in_the_browser(make_hub, platforms, browser, tmp_path: Path,  # noqa: F811
                                                        monkeypatch) -> None:  # noqa: ANN001
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    hub = make_hub()
    with hub.session() as s:
        merchant = create_merchant(s, "Browser Books")
        create_user(s, OWNER, PASSWORD, "merchant", merchant.id)
    platforms.quickbooks.add_company("9341452")
    driver = browser
    with served(oauth_app(hub)) as base:
        monkeypatch.setenv("O2C_PUBLIC_URL", base)
        hub.settings = replace(hub.settings, public_url=base)

        driver.get(f"{base}/console/connections")
        assert "/console/login" in driver.current_url
        driver.find_element(By.NAME, "email").send_keys(OWNER)
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        WebDriverWait(driver, 10).until(lambda d: d.current_url.startswith(f"{base}/console/connections"))

        driver.find_element(By.ID, "connect-quickbooks").click()   # → Intuit (the fake approves) → back
        # the page is replaced while we look: an element of the old page is stale, look again
        WebDriverWait(driver, 15, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: "is connected" in d.find_element(By.TAG_NAME, "main").text)
        assert driver.current_url.startswith(f"{base}/console/connections")
        row = driver.find_element(By.CSS_SELECTOR, 'tr.connection[data-status="active"]')
        assert "quickbooks" in row.text and "9341452" in row.text
        driver.save_screenshot(str(tmp_path / "connected.png"))

        with hub.session() as s:
            s.execute(update(Connection).values(status="needs_reconnect", status_reason="refresh token expired"))
        driver.refresh()
        driver.find_element(By.CSS_SELECTOR, "a.reconnect").click()
        active = 'tr.connection[data-status="active"]'
        WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, active))
        assert not driver.find_elements(By.CSS_SELECTOR, "a.reconnect")
        driver.save_screenshot(str(tmp_path / "reconnected.png"))
    assert all((tmp_path / n).stat().st_size > 10_000 for n in ("connected.png", "reconnected.png"))
