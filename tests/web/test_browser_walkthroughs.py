"""The console walked through in a real browser (Debian's headless Chromium, the harness of
``tests/web/test_browser.py``) as its three kinds of users spend a day with it. Every page on the way is
looked at as ``tests/web/browser_kit.look`` does: screenshots at 1400 and 400 px (kept under
``$O2C_TEST_SCREENSHOTS`` when set), no sideways scrolling at 400 px, and no serious or critical axe-core
violation.

- The support agent: signs in, reads the dashboard, opens the failures, follows a failing order to its cause
  and the suggested fix, maps the SKU to a QuickBooks item, re-runs the group and watches its live progress
  to the end, then finds the group gone and the orders in sync.
- The merchant: signs in, connects QuickBooks (Intuit's fake approves), sees its own orders only and one
  order's story.
- The admin: invites a merchant's user from People (no SMTP here: the one-time link is shown to copy); the
  invited user opens the link in a fresh browser, sets a password, signs in and sees its merchant's orders.
- Every page: an admin opens each page of the console (every GET route, its ids taken from a small
  seeded hub) and each passes the same look.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, update

from hub.merchants import connect, create_merchant
from hub.models import Connection
from hub.order_models import StoreOrder
from hub.users import create_user
from tests.helpers import an_order, served, wait_until, webhook
from tests.web.browser_kit import look, screenshot_dir
from tests.web.test_oauth import PASSWORD, oauth_app

OWNER = "owner@books.example"


def _ledger_rows(hub) -> int:  # noqa: ANN001
    with hub.session() as s:
        return s.scalar(select(func.count()).select_from(StoreOrder))


def _deliver(base: str, platforms, shop: str, order) -> None:  # noqa: ANN001
    """The store has the order and sends its signed orders/create webhook to the hub."""
    platforms.shopify.add_order(shop, order)
    body, headers = webhook(order, shop)
    assert requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200


def _sign_in(driver, email: str) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    assert "/console/login" in driver.current_url
    driver.find_element(By.NAME, "email").send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "main form button").click()


@pytest.mark.slow
def test_the_merchant_connects_its_books_and_sees_its_own_orders_only(
        make_hub, shop_factory, platforms, browser, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = screenshot_dir(tmp_path, "merchant")
    hub = make_hub()
    platforms.quickbooks.add_company("9341452")           # the company Intuit's fake offers first
    domain = "browser-books.myshopify.com"
    platforms.shopify.add_shop(domain)
    with hub.session() as s:
        merchant = create_merchant(s, "Browser Books")
        connect(s, hub.secrets, merchant, "shopify", domain, {"access_token": platforms.shopify.issue_token(domain)})
        create_user(s, OWNER, PASSWORD, "merchant", merchant.id)
    other = shop_factory(hub)                              # another merchant, with an order of its own
    driver = browser
    with served(oauth_app(hub)) as base:
        monkeypatch.setenv("O2C_PUBLIC_URL", base)
        hub.settings = replace(hub.settings, public_url=base)
        for shop, order in ((domain, an_order(470_001, 3001, email="grace@example.com")),
                            (other.domain, an_order(470_002, 3002, email="someone@example.com"))):
            _deliver(base, platforms, shop, order)
        wait_until(lambda: _ledger_rows(hub) == 2)   # its own waits for the books; the other's syncs

        driver.get(f"{base}/console/connections")
        _sign_in(driver, OWNER)
        WebDriverWait(driver, 10).until(lambda d: d.current_url.startswith(f"{base}/console/connections"))
        look(driver, shots, "merchant-connections")
        driver.find_element(By.ID, "connect-quickbooks").click()   # → Intuit (the fake approves) → back
        WebDriverWait(driver, 15, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: "is connected" in d.find_element(By.TAG_NAME, "main").text)
        row = driver.find_element(By.CSS_SELECTOR, 'tr.connection[data-status="active"][data-connection]')
        assert driver.find_elements(By.XPATH, "//tr[contains(., '9341452')][@data-status='active']"), row.text
        panel = driver.find_element(By.CSS_SELECTOR, '.panel[data-platform="quickbooks"]').text
        assert "9341452" in panel and "Reconnect" in panel and "Connect QuickBooks" not in panel
        look(driver, shots, "merchant-connected")

        with hub.session() as s:                          # the grant lapses: Reconnect makes it active again
            s.execute(update(Connection).where(Connection.account == "9341452")
                      .values(status="needs_reconnect", status_reason="refresh token expired"))
        driver.refresh()
        driver.find_element(By.CSS_SELECTOR, "a.reconnect").click()
        WebDriverWait(driver, 15).until(
            lambda d: d.find_elements(By.XPATH, "//tr[contains(., '9341452')][@data-status='active']"))
        assert not driver.find_elements(By.CSS_SELECTOR, "a.reconnect")

        driver.find_element(By.LINK_TEXT, "Orders").click()
        orders = driver.find_elements(By.CSS_SELECTOR, "tr[data-order]")
        assert [o.get_attribute("data-order") for o in orders] == ["shopify:470001"]   # its own only
        assert "grace@example.com" in orders[0].text and "someone@example.com" not in driver.page_source
        look(driver, shots, "merchant-orders")
        orders[0].find_element(By.LINK_TEXT, "#3001").click()
        WebDriverWait(driver, 10).until(lambda d: "/console/orders/" in d.current_url)
        story = driver.find_element(By.TAG_NAME, "main").text
        assert "Timeline" in story and "Black tee" in story
        look(driver, shots, "merchant-order")
    names = sorted(p.name for p in shots.glob("*.png"))
    assert len(names) == 8 and all((shots / n).stat().st_size > 5_000 for n in names), names
    print(f"\nscreenshots: {shots}")


@pytest.mark.slow
def test_every_console_page_passes_axe_and_fits_400_px(
        make_hub, shop_factory, platforms, browser, tmp_path: Path) -> None:  # noqa: ANN001
    import re

    from hub import audit
    from hub.mapping_rules import save_overrides
    from hub.models import SyncRun
    from hub.task_models import OperatorTask

    shots = screenshot_dir(tmp_path, "every-page")
    hub = make_hub()
    shop = shop_factory(hub)
    with hub.session() as s:
        admin_id = create_user(s, "admin@example.com", PASSWORD, "admin").id
        save_overrides(s, shop.merchant_id, {"items": {"map": {"TEE-BLK-M": "Shirts sold"}}})   # fails 480001
    app = oauth_app(hub)
    with served(app) as base:
        for order in (an_order(480_001, 4001), an_order(480_002, 4002, lines=[
                {"sku": "MUG-1", "title": "Mug", "quantity": 1, "price": "12.50"}])):
            _deliver(base, platforms, shop.domain, order)
        wait_until(lambda: _ledger_rows(hub) == 2)
        from tests.helpers import settled
        settled(hub)
        with hub.session() as s:
            run = s.scalar(select(SyncRun.id).where(SyncRun.source_id == "480001"))
            conn = s.scalar(select(Connection.id).where(Connection.merchant_id == shop.merchant_id))
            entry = audit.record(s, "admin@example.com", "failures.rerun_group", merchant_id=shop.merchant_id,
                                 detail={"runs": [run]})
            task = OperatorTask(merchant_id=shop.merchant_id, kind="reconcile", actor="admin@example.com",
                                params={}, run_ids=[run], result={"orders_checked": 2}, status="done")
            s.add(task)
            s.flush()
            ids = {"merchant_id": shop.merchant_id, "run_id": run, "connection_id": conn, "entry_id": entry.id,
                   "task_id": task.id, "platform": "shopify", "order_id": "480001", "version": 1,
                   "user_id": admin_id, "token": "a-link-that-was-never-made"}
        driver = browser
        driver.get(f"{base}/console/login")
        look(driver, shots, "login")
        _sign_in(driver, "admin@example.com")
        seen: list[str] = []
        failed: list[str] = []
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if not rule.rule.startswith("/console") or "GET" not in rule.methods or rule.rule.endswith(".json") \
                    or rule.endpoint in ("console.login",):
                continue
            unknown = rule.arguments - ids.keys()
            assert not unknown, f"{rule.rule}: teach this test which object {unknown} names"
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(ids[m.group(1)]), rule.rule)
            driver.get(base + path)
            assert "Something went wrong" not in driver.title, path
            name = rule.endpoint.split(".", 1)[1]
            try:
                look(driver, shots, name)
            except AssertionError as exc:   # every page is looked at; all that fail are named at the end
                failed.append(str(exc).splitlines()[0])
            seen.append(name)
        driver.get(f"{base}/console/no-such-page")
        look(driver, shots, "not-found")
    assert not failed, "\n".join(failed)
    assert len(seen) >= 15, seen
    print(f"\nscreenshots: {shots}")


@pytest.mark.slow
def test_the_admin_invites_a_merchant_user_who_sets_a_password_and_signs_in(
        make_hub, shop_factory, browser, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    shots = screenshot_dir(tmp_path, "admin")
    hub = make_hub(O2C_SMTP_HOST="")
    shop = shop_factory(hub)
    with hub.session() as s:
        create_user(s, "admin@example.com", PASSWORD, "admin")
    invited = "clerk@merchant.example"
    driver = browser
    with served(oauth_app(hub)) as base:
        monkeypatch.setenv("O2C_PUBLIC_URL", base)
        hub.settings = replace(hub.settings, public_url=base)
        driver.get(f"{base}/console/staff")
        _sign_in(driver, "admin@example.com")
        WebDriverWait(driver, 10).until(lambda d: d.current_url.startswith(f"{base}/console/staff"))
        look(driver, shots, "admin-people")
        form = driver.find_element(By.ID, "new-staff")
        form.find_element(By.NAME, "email").send_keys(invited)
        Select(form.find_element(By.NAME, "role")).select_by_value("merchant")
        Select(form.find_element(By.NAME, "merchant")).select_by_value(str(shop.merchant_id))
        form.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "one-time-link"))
        link = driver.find_element(By.ID, "one-time-link").get_attribute("value")
        assert link.startswith(f"{base}/console/password/") and invited in driver.page_source
        look(driver, shots, "admin-invited")

        driver.delete_all_cookies()                      # the invited user, in another browser
        driver.get(link)
        assert invited in driver.page_source
        look(driver, shots, "invited-set-password")
        new_password = "a long new passphrase"
        driver.find_element(By.NAME, "new_password").send_keys(new_password)
        driver.find_element(By.NAME, "new_password_again").send_keys(new_password)
        driver.find_element(By.CSS_SELECTOR, "main form button").click()
        WebDriverWait(driver, 10).until(lambda d: "/console/password/" not in d.current_url)
        if "/console/login" in driver.current_url:
            driver.find_element(By.NAME, "email").send_keys(invited)
            driver.find_element(By.NAME, "password").send_keys(new_password)
            driver.find_element(By.CSS_SELECTOR, "main form button").click()
        WebDriverWait(driver, 10).until(lambda d: "/console/orders" in d.current_url)
        assert invited in driver.find_element(By.CSS_SELECTOR, "nav .who").text
        assert "People" not in driver.find_element(By.TAG_NAME, "nav").text     # not an admin
        driver.get(link)                                 # the link worked once
        assert "Set password" not in driver.page_source
    assert len(list(shots.glob("*.png"))) == 6
    print(f"\nscreenshots: {shots}")


@pytest.mark.slow
def test_the_support_agents_day_from_the_dashboard_to_a_fixed_failure_group(
        make_hub, shop_factory, platforms, browser, tmp_path: Path) -> None:  # noqa: ANN001
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from hub.mapping_rules import save_overrides

    shots = screenshot_dir(tmp_path, "support")
    hub = make_hub()
    shop = shop_factory(hub)
    with hub.session() as s:
        create_user(s, "agent@example.com", PASSWORD, "support")
        # the tee's rule names an item the books don't have: its orders fail until support maps it
        save_overrides(s, shop.merchant_id, {"items": {"map": {"TEE-BLK-M": "Shirts sold"}}})
    stale = (StaleElementReferenceException,)
    driver = browser
    with served(oauth_app(hub)) as base:
        mug = [{"sku": "MUG-1", "title": "Mug", "quantity": 1, "price": "12.50"}]
        for n, lines in ((1, None), (2, None), (3, mug)):
            order = an_order(490_000 + n, 5000 + n, **({"lines": lines} if lines else {}))
            _deliver(base, platforms, shop.domain, order)
        from tests.helpers import settled
        runs = settled(hub)
        assert sorted(r.status for r in runs) == ["failed", "failed", "succeeded"], [r.reason for r in runs]

        driver.get(f"{base}/console/")
        _sign_in(driver, "agent@example.com")
        WebDriverWait(driver, 10).until(lambda d: "/console/orders" in d.current_url)   # support lands on orders
        look(driver, shots, "support-orders")
        driver.find_element(By.LINK_TEXT, "Dashboard").click()
        WebDriverWait(driver, 10).until(lambda d: "/console/dashboard" in d.current_url)
        assert driver.find_element(By.CSS_SELECTOR, "main img").get_attribute("alt")   # a real chart, described
        look(driver, shots, "support-dashboard")

        driver.find_element(By.LINK_TEXT, "Failures").click()
        group = driver.find_element(By.CSS_SELECTOR, "section.failure-group")
        assert group.get_attribute("data-count") == "2" and "Shirts sold" in group.text
        assert "#5003" not in group.text and "<" not in group.find_element(By.TAG_NAME, "h2").text
        look(driver, shots, "support-failures")
        group.find_element(By.LINK_TEXT, "#5001").click()
        WebDriverWait(driver, 10).until(lambda d: "/console/orders/" in d.current_url)
        assert "failing" in driver.find_element(By.TAG_NAME, "h1").text
        fix = driver.find_element(By.CSS_SELECTOR, "p.fix")
        assert "How to fix" in fix.text
        look(driver, shots, "support-failing-order")
        fix.find_element(By.TAG_NAME, "a").click()                       # → the merchant's mapping rules
        WebDriverWait(driver, 10).until(lambda d: "/console/mapping/" in d.current_url)
        look(driver, shots, "support-mapping")
        item = driver.execute_script(
            "const o = [...document.querySelectorAll('#qb-items option')].map(x => x.value)"
            ".filter(v => v && v !== 'Shirts sold'); return o[0] || null;")
        row = driver.find_element(By.XPATH, "//tr[@class='sku-item'][.//input[@name='sku' and @value='TEE-BLK-M']]")
        if item:                                                          # map the SKU to an item the books have
            field = row.find_element(By.NAME, "item")
            field.clear()
            field.send_keys(item)
        else:                                                             # no item list: drop the bad rule
            row.find_element(By.NAME, "remove").click()
        row.find_element(By.XPATH, "ancestor::form//button").click()
        WebDriverWait(driver, 10, ignored_exceptions=stale).until(
            lambda d: "saved" in d.find_element(By.TAG_NAME, "main").text)

        driver.find_element(By.LINK_TEXT, "Failures").click()
        driver.find_element(By.XPATH, "//section[@class='failure-group']//button[starts-with(., 'Re-run all')]").click()
        WebDriverWait(driver, 10).until(lambda d: "/console/progress/" in d.current_url)
        look(driver, shots, "support-progress")
        WebDriverWait(driver, 30, ignored_exceptions=stale).until(   # the page updates itself: no reload
            lambda d: d.find_element(By.CSS_SELECTOR, "[data-state]").text == "Finished.")
        assert driver.find_element(By.CSS_SELECTOR, "[data-count='done']").text == "2"
        assert driver.find_element(By.CSS_SELECTOR, "[data-count='remaining']").text == "0"

        driver.find_element(By.LINK_TEXT, "Failures").click()
        assert not driver.find_elements(By.CSS_SELECTOR, "section.failure-group")   # the group is gone
        look(driver, shots, "support-failures-cleared")
        driver.get(f"{base}/console/orders?state=in_sync")
        in_sync = [r.get_attribute("data-order") for r in driver.find_elements(By.CSS_SELECTOR, "tr[data-order]")]
        assert sorted(in_sync) == ["shopify:490001", "shopify:490002", "shopify:490003"]
    assert len(platforms.quickbooks.objects(shop.realm, "Invoice")) == 3
    assert len(list(shots.glob("*.png"))) == 14
    print(f"\nscreenshots: {shots}")
