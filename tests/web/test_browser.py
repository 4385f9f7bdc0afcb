"""The support console in a real browser: Debian's headless Chromium driven by Selenium through Debian's
chromedriver (no browser download), against the hub served over real HTTP.

A QuickBooks fault fails a run; support signs in through the form, filters the runs to the failed ones,
opens the run, reads the reason and the failing call's excerpt, clicks Re-run, reloads until the run
succeeded and finds the re-run in the audit log. Screenshots of the runs list and the run page go to the
test's ``tmp_path``.

Chromium missing is a failure, not a skip: ``apt-get install -y chromium chromium-driver`` (``.ci/run``
installs them when missing).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from hub.users import create_user
from tests.helpers import an_order, settled, webhook
from tests.sync.test_fault_injection import QB_FAULT_6000

EMAIL, PASSWORD = "agent@example.com", "correct horse battery"


@pytest.mark.slow
def test_support_finds_a_failed_run_sees_why_reruns_it_and_finds_it_in_the_audit_log(
        hub, shop, live_url, platforms, browser, tmp_path: Path) -> None:  # noqa: ANN001
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    with hub.session() as s:
        create_user(s, EMAIL, PASSWORD, "support")
    platforms.quickbooks.fail_next(400, 1, path_contains="/invoice", body=QB_FAULT_6000)
    order = an_order()
    platforms.shopify.add_order(shop.domain, order)
    driver = browser

    base = live_url
    body, headers = webhook(order, shop.domain)
    assert requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200
    [run] = settled(hub)
    assert run.status == "failed" and run.error_code == "quickbooks:6000", run.reason

    # a stranger is sent to the sign-in form; signing in goes back to where they were going
    driver.get(f"{base}/console/runs")
    assert "/console/login" in driver.current_url
    driver.find_element(By.NAME, "email").send_keys(EMAIL)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button").click()
    WebDriverWait(driver, 10).until(lambda d: d.current_url.startswith(f"{base}/console/runs"))
    assert EMAIL in driver.find_element(By.CSS_SELECTOR, "nav .who").text

    Select(driver.find_element(By.NAME, "status")).select_by_visible_text("failed")
    driver.find_element(By.CSS_SELECTOR, "form.filters button").click()
    WebDriverWait(driver, 10).until(lambda d: "status=failed" in d.current_url)
    rows = driver.find_elements(By.CSS_SELECTOR, "tr[data-run]")
    assert [r.get_attribute("data-run") for r in rows] == [str(run.id)]
    assert "failed" in rows[0].text and "code 6000" in rows[0].text
    driver.save_screenshot(str(tmp_path / "runs-failed.png"))

    rows[0].find_element(By.LINK_TEXT, str(run.id)).click()
    WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith(f"/console/runs/{run.id}"))
    summary = driver.find_element(By.TAG_NAME, "table").text
    assert "business validation error" in summary.lower() and "quickbooks:6000" in summary
    excerpt = driver.find_element(By.CSS_SELECTOR, 'details[data-excerpt="1"]')
    request_text = excerpt.find_element(By.CSS_SELECTOR, "pre.excerpt-request").text
    response_text = excerpt.find_element(By.CSS_SELECTOR, "pre.excerpt-response").text
    assert request_text.startswith(f"POST {platforms.quickbooks.url}/v3/company/{shop.realm}/invoice")
    assert '"DocNumber": "1001"' in request_text
    assert response_text.startswith("HTTP 400") and '"code": "6000"' in response_text
    assert "a***@example.com" in response_text and "ada@example.com" not in excerpt.text
    driver.save_screenshot(str(tmp_path / "run-failed.png"))

    driver.find_element(By.XPATH, "//form[contains(@action, '/rerun')]/button").click()
    # the page is being replaced while we look: an element of the old page is stale, look again
    WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: "re-queued" in d.find_element(By.TAG_NAME, "main").text)

    def succeeded(d) -> bool:  # noqa: ANN001 - reload until the worker has finished
        d.refresh()
        return d.find_element(By.XPATH, "//tr[th='status']/td").text == "succeeded"
    WebDriverWait(driver, 20, poll_frequency=0.3,
                  ignored_exceptions=(StaleElementReferenceException,)).until(succeeded)
    assert driver.find_elements(By.CSS_SELECTOR, 'tr[data-attempt="2"] td.status-succeeded')
    driver.save_screenshot(str(tmp_path / "run-succeeded.png"))

    driver.find_element(By.LINK_TEXT, "Audit log").click()
    entry = driver.find_element(By.CSS_SELECTOR, 'tr[data-action="run.rerun"]')
    assert EMAIL in entry.text and f"run {run.id}" in entry.text

    assert len(platforms.quickbooks.objects(shop.realm, "Invoice")) == 1
    shots = sorted(p.name for p in tmp_path.glob("*.png"))
    assert shots == ["run-failed.png", "run-succeeded.png", "runs-failed.png"]
    assert all((tmp_path / name).stat().st_size > 10_000 for name in shots)
    print(f"\nscreenshots: {tmp_path}")
