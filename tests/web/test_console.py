"""The support console against a real hub and the simulated platforms: sign-in (CSRF, rate limit),
the runs list (filters, keyset pages), a run's page and its actions, failures by cause, preview, mapping
rules, the audit log, merchant users kept to their own merchant, and no secret on any page."""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cli.main import main as o2c
from hub.mapping_rules import rule_set
from hub.merchants import create_merchant
from hub.models import AuditEntry, Connection, SyncRun, utcnow
from hub.runtime import Hub
from hub.users import create_user
from tests.helpers import an_order, settled, webhook
from web.app import create_app
from web.console.security import configure

PASSWORD = "correct horse battery"
SUPPORT = "support@example.com"


@dataclass
class Console:
    hub: Hub
    app: Flask
    shop: Any
    platforms: Any

    def client(self, email: str | None = SUPPORT, addr: str = "10.0.0.1") -> FlaskClient:
        """A browser; signed in as ``email`` unless it is None."""
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = addr
        if email is not None:
            r = login(client, email, PASSWORD)
            assert r.status_code == 302, r.get_data(as_text=True)
        return client

    def send(self, order: Any) -> None:
        self.platforms.shopify.add_order(self.shop.domain, order)
        body, headers = webhook(order, self.shop.domain)
        assert self.app.test_client().post("/webhooks/shopify", data=body, headers=headers).status_code == 200


def add_user(hub: Hub, email: str, role: str = "support", merchant_id: int | None = None) -> int:
    with hub.session() as s:
        return create_user(s, email, PASSWORD, role, merchant_id).id


def csrf(client: FlaskClient) -> str:
    with client.session_transaction() as sess:
        return sess["csrf"]


def login(client: FlaskClient, email: str, password: str) -> Any:
    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/console/login", data={"email": email, "password": password, "csrf_token": token})


def post(client: FlaskClient, path: str, **data: str) -> Any:
    return client.post(path, data={"csrf_token": csrf(client), **data})


def html(response: Any) -> str:
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True)[:500])
    return response.get_data(as_text=True)


def run_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-run="(\d+)"', page)]


@pytest.fixture
def console(make_hub, shop_factory, platforms, monkeypatch) -> Console:  # noqa: ANN001
    monkeypatch.delenv("O2C_SECRET_KEY", raising=False)
    hub = make_hub()
    shop = shop_factory(hub)
    add_user(hub, SUPPORT)
    return Console(hub, create_app(hub), shop, platforms)


def test_sign_in_needs_csrf_and_the_right_password_and_is_rate_limited(console: Console) -> None:
    anonymous = console.client(None)
    assert anonymous.get("/").headers["Location"].endswith("/console/orders")
    r = anonymous.get("/console/runs?status=failed")
    assert r.status_code == 302 and "/console/login?next=" in r.headers["Location"]
    assert anonymous.post("/console/login", data={"email": SUPPORT, "password": PASSWORD}).status_code == 400

    for _ in range(5):
        r = login(anonymous, SUPPORT, "wrong password")
        assert r.status_code == 401 and "Wrong e-mail or password" in r.get_data(as_text=True)
    r = login(anonymous, SUPPORT, PASSWORD)  # the right password, but too late
    assert r.status_code == 429 and "Too many failed sign-ins" in r.get_data(as_text=True)
    with console.hub.session() as s:
        assert len(s.scalars(select(AuditEntry).where(AuditEntry.action == "login.failed")).all()) == 5

    browser = console.app.test_client()
    browser.environ_base["REMOTE_ADDR"] = "10.0.0.2"  # the limit is per e-mail and address
    r = login(browser, SUPPORT.upper(), PASSWORD)
    assert r.status_code == 302 and r.headers["Location"].endswith("/console/orders")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert SUPPORT in html(browser.get("/console/runs"))
    assert browser.post("/console/logout").status_code == 400          # no CSRF token
    assert post(browser, "/console/logout").status_code == 302
    assert browser.get("/console/runs").status_code == 302

    key = console.hub.settings.instance_path / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert create_app(console.hub).secret_key == console.app.secret_key  # every worker signs alike
    behind_https = SimpleNamespace(settings=replace(console.hub.settings, public_url="https://hub.example.com"))
    secure_app = Flask("hub")
    configure(secure_app, behind_https)  # type: ignore[arg-type]
    assert secure_app.config["SESSION_COOKIE_SECURE"] is True


def test_runs_list_filters_and_keyset_pages(console: Console) -> None:
    hub = console.hub
    with hub.session() as s:
        other = create_merchant(s, "Other Shop").id
        statuses = ("succeeded", "failed", "retrying", "skipped")
        for n in range(120):
            s.add(SyncRun(merchant_id=console.shop.merchant_id if n % 2 else other, kind="order",
                          source_platform="shopify", source_id=str(450_000 + n), source_name=f"#{1000 + n}",
                          status=statuses[n % 4], attempts=1, reason="quickbooks: boom" if n % 4 == 1 else None,
                          created_at=utcnow() - timedelta(days=10 if n < 20 else 0)))
        s.commit()
        all_ids = sorted(s.scalars(select(SyncRun.id)), reverse=True)
    client = console.client()

    first = html(client.get("/console/runs"))
    assert run_ids(first) == all_ids[:50]
    assert "failed</a>: <b>30</b>" in first
    seen = run_ids(first)
    page = first
    while 'rel="next"' in page:
        nxt = re.search(r'rel="next" href="([^"]+)"', page).group(1).replace("&amp;", "&")
        page = html(client.get(nxt))
        seen += run_ids(page)
    assert seen == all_ids and len(seen) == 120

    shop_id = console.shop.merchant_id
    failed = html(client.get(f"/console/runs?status=failed&merchant={shop_id}"))
    with hub.session() as s:
        expected = list(s.scalars(select(SyncRun.id).where(SyncRun.status == "failed",
                                                           SyncRun.merchant_id == shop_id)
                                  .order_by(SyncRun.id.desc())))
    assert run_ids(failed) == expected and len(expected) == 30
    assert run_ids(html(client.get(f"/console/runs?status=failed&merchant={other}"))) == []
    assert len(run_ids(html(client.get(f"/console/runs?merchant={other}")))) == 50
    assert html(client.get("/console/runs?status=failed&kind=payment")).count("data-run=") == 0
    [found] = run_ids(html(client.get("/console/runs?order=%231007")))
    assert found == all_ids[::-1][7]
    assert run_ids(html(client.get("/console/runs?order=450008"))) == [all_ids[::-1][8]]
    old = (utcnow() - timedelta(days=5)).date().isoformat()
    assert len(run_ids(html(client.get(f"/console/runs?created_to={old}")))) == 20
    assert "must be a date" in html(client.get("/console/runs?created_from=yesterday"))

    # the next-page link keeps the filters
    paged = html(client.get("/console/runs?status=succeeded"))
    link = re.search(r'rel="next" href="([^"]+)"', paged)
    assert link is None or "status=succeeded" in link.group(1)


def test_failed_run_page_rerun_after_the_fix_and_audit(console: Console) -> None:
    p, shop = console.platforms, console.shop
    p.quickbooks.fail_next(400, 1, path_contains="/invoice")
    console.send(an_order())
    [run] = settled(console.hub)
    assert run.status == "failed", run.reason
    client = console.client()

    page = html(client.get(f"/console/runs/{run.id}"))
    assert 'data-attempt="1"' in page and "status-failed" in page and run.reason.split(":")[0] in page
    assert f"https://admin.shopify.com/store/{shop.domain.removesuffix('.myshopify.com')}/orders/" in page
    assert f"https://app.hubspot.com/contacts/{shop.portal}/record/0-1/" in page
    assert "https://app.qbo.intuit.com/app/customerdetail?nameId=" in page
    assert "&#34;currency&#34;" in page or "&quot;currency&quot;" in page   # the canonical order, escaped

    assert client.post(f"/console/runs/{run.id}/rerun").status_code == 400      # no CSRF token
    assert post(client, f"/console/runs/{run.id}/rerun").status_code == 302
    [run] = settled(console.hub)
    assert run.status == "succeeded", run.reason
    page = html(client.get(f"/console/runs/{run.id}"))
    assert 'data-attempt="2"' in page and "https://app.qbo.intuit.com/app/invoice?txnId=" in page
    assert len(p.quickbooks.objects(shop.realm, "Invoice")) == 1

    audit_page = html(client.get("/console/audit"))
    assert "run.rerun" in audit_page and SUPPORT in audit_page and f"run {run.id}" in audit_page

    # no page shows a connection's secrets (tokens), nor their ciphertext
    with console.hub.session() as s:
        conns = s.scalars(select(Connection)).all()
        secrets = [v for c in conns for v in console.hub.secrets.decrypt(c.secrets).values() if v]
        secrets += [c.secrets for c in conns]
    p.shopify.add_order(shop.domain, an_order(450_002, 1002))
    pages = [f"/console/runs/{run.id}", "/console/runs", "/console/failures", "/console/audit",
             f"/console/preview?merchant={shop.merchant_id}&order=%231002", "/console/mapping",
             f"/console/mapping/{shop.merchant_id}"]
    for path in pages:
        text = html(client.get(path))
        assert not [sec for sec in secrets if sec in text], path


def test_failures_are_grouped_by_cause_and_rerun_by_group_and_skipped(console: Console) -> None:
    p, hub = console.platforms, console.hub
    p.quickbooks.fail_next(400, 2, path_contains="/invoice")
    console.send(an_order(450_001, 1001))
    settled(hub)
    console.send(an_order(450_002, 1002, email="grace@example.com"))
    settled(hub)
    from demo.simulators.shopify import webhook_headers
    from tests.conftest import SHOPIFY_SECRET

    body = b'{"name": "#1003", "line_items": []}'   # no order id: a mapping failure
    console.app.test_client().post("/webhooks/shopify", data=body, headers=webhook_headers(
        console.shop.domain, "orders/create", body, SHOPIFY_SECRET))
    runs = settled(hub)
    assert [r.status for r in runs] == ["failed"] * 3
    client = console.client()

    page = html(client.get("/console/failures"))
    groups = re.findall(r'data-group="(\w+)" data-count="(\d+)"', page)
    assert [int(n) for _, n in groups] == [2, 1]
    assert "quickbooks · code " in page and "status code &#39;400&#39;" in page   # codes kept, ids replaced
    assert "3 failing order(s) in 2 group(s)" in page

    assert post(client, f"/console/failures/{groups[0][0]}/rerun").status_code == 302
    runs = settled(hub)
    assert [r.status for r in runs] == ["succeeded", "succeeded", "failed"]
    page = html(client.get("/console/failures"))
    assert len(re.findall(r'data-group="', page)) == 1
    assert "failures.rerun_group" in html(client.get("/console/audit"))

    mapping_failure = runs[2].id
    post(client, f"/console/runs/{mapping_failure}/skip", reason="   ")
    assert "say why" in html(client.get(f"/console/runs/{mapping_failure}"))
    post(client, f"/console/runs/{mapping_failure}/skip", reason="test delivery from the store admin")
    with hub.session() as s:
        skipped = s.get(SyncRun, mapping_failure)
        assert skipped.status == "skipped"
        assert skipped.reason == f"skipped by {SUPPORT}: test delivery from the store admin"
    post(client, f"/console/runs/{runs[0].id}/skip", reason="no")
    assert "succeeded run cannot be skipped" in html(client.get(f"/console/runs/{runs[0].id}"))
    assert "No failing orders" in html(client.get("/console/failures"))


def test_preview_shows_the_invoice_payload_and_traces(console: Console) -> None:
    shop = console.shop
    console.platforms.shopify.add_order(shop.domain, an_order())
    client = console.client()
    page = html(client.get(f"/console/preview?merchant={shop.merchant_id}&order=%231001"))
    assert "create quickbooks Invoice" in page and "&#34;DocNumber&#34;: &#34;1001&#34;" in page
    assert "class=\"traces\"" in page and "←" in page and "TEE-BLK-M" in page
    assert console.platforms.quickbooks.objects(shop.realm, "Invoice") == []     # nothing was sent
    missing = html(client.get(f"/console/preview?merchant={shop.merchant_id}&order=%239999"))
    assert "Cannot preview #9999" in missing


def test_mapping_rules_refuse_a_bad_rule_naming_the_field_and_save_a_good_one(console: Console) -> None:
    hub, merchant_id = console.hub, console.shop.merchant_id
    client = console.client()
    assert "when_missing" in html(client.get(f"/console/mapping/{merchant_id}"))

    bad = post(client, f"/console/mapping/{merchant_id}", rules="discounts:\n  mode: sideways\n")
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert '<code class="field">discounts.mode</code>' in text and "sideways" in text
    with hub.session() as s:
        assert rule_set(s, merchant_id) is None

    good = post(client, f"/console/mapping/{merchant_id}", rules="discounts:\n  mode: unit_price\n")
    assert good.status_code == 302
    with hub.session() as s:
        row = rule_set(s, merchant_id)
        assert row.overrides == {"discounts": {"mode": "unit_price"}} and row.updated_by == SUPPORT
        assert row.checked_at is not None and row.problems["missing"] == []
    page = html(client.get(f"/console/mapping/{merchant_id}"))
    assert "mode: unit_price" in page and "Mapping rules saved (version 1)" in page
    assert "rules.saved" in html(client.get("/console/audit"))


def test_merchant_users_see_only_their_own_merchant(console: Console, shop_factory) -> None:  # noqa: ANN001
    hub, mine = console.hub, console.shop
    theirs = shop_factory(hub)
    with hub.session() as s:
        for merchant_id, status in ((mine.merchant_id, "failed"), (theirs.merchant_id, "failed")):
            s.add(SyncRun(merchant_id=merchant_id, kind="order", source_platform="shopify", source_id="1",
                          source_name=f"#{merchant_id}", status=status, attempts=1, reason="quickbooks: boom"))
        s.commit()
        own_run, other_run = s.scalars(select(SyncRun.id).order_by(SyncRun.id)).all()
    add_user(hub, "owner@shop.example", "merchant", mine.merchant_id)
    client = console.client("owner@shop.example")

    assert run_ids(html(client.get(f"/console/runs?merchant={theirs.merchant_id}"))) == [own_run]
    assert html(client.get(f"/console/runs/{own_run}"))
    assert client.get(f"/console/runs/{other_run}").status_code == 404
    assert post(client, f"/console/runs/{other_run}/rerun").status_code == 404
    assert post(client, f"/console/runs/{other_run}/skip", reason="x").status_code == 404
    assert client.get(f"/console/preview?merchant={theirs.merchant_id}&order=%231001").status_code == 404
    assert client.get(f"/console/mapping/{theirs.merchant_id}").status_code == 404
    assert post(client, f"/console/mapping/{theirs.merchant_id}", rules="{}").status_code == 404
    assert client.get("/console/mapping").headers["Location"].endswith(f"/console/mapping/{mine.merchant_id}")
    assert html(client.get("/console/failures")).count('data-count="1"') == 1
    post(client, f"/console/runs/{own_run}/skip", reason="duplicate")
    audit_page = html(client.get("/console/audit"))
    assert "run.skip" in audit_page and "login.succeeded" in audit_page and SUPPORT not in audit_page


def test_o2c_user_create_reads_the_password_from_stdin_and_is_audited(console: Console) -> None:
    runner = CliRunner()
    made = runner.invoke(o2c, ["user", "create", "Agent@Example.com", "--role", "support", "--password-stdin"],
                         input=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    user_id = int(made.output.split()[-1])
    prompted = runner.invoke(o2c, ["user", "create", "owner@example.com", "--role", "merchant", "--merchant",
                                   str(console.shop.merchant_id)], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0 and PASSWORD not in prompted.output
    assert runner.invoke(o2c, ["user", "create", "x@example.com", "--role", "merchant"]).exit_code == 2
    again = runner.invoke(o2c, ["user", "create", "agent@example.com", "--role", "admin", "--password-stdin"],
                          input=PASSWORD + "\n")
    assert again.exit_code == 1 and "exists already" in again.output
    with console.hub.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "user.created"))
        assert (entry.actor, entry.target_id) == ("cli", str(user_id))
    assert console.client("agent@example.com")


def test_support_lands_on_the_orders_and_reads_one_orders_story(console: Console) -> None:
    from hub.mapping_rules import save_overrides

    hub = console.hub
    with hub.session() as s:   # the tee's rule names an item the books don't have: its order fails
        save_overrides(s, console.shop.merchant_id, {"items": {"map": {"TEE-BLK-M": "Shirts sold"}}})
        s.commit()
    console.send(an_order(450_101, 1101))
    settled(hub)
    console.send(an_order(450_102, 1102, email="bob@example.com",
                          lines=[{"sku": "MUG-1", "title": "Mug", "quantity": 1, "price": "12.50"}]))
    settled(hub)
    support = console.client()
    page = html(support.get("/console/orders"))
    assert page.index('data-order="shopify:450102"') < page.index('data-order="shopify:450101"')
    failing = html(support.get("/console/orders?state=failing"))
    assert 'data-order="shopify:450101"' in failing and "450102" not in failing and "Shirts sold" in failing
    found = html(support.get("/console/orders?q=%231102"))
    assert 'data-order="shopify:450102"' in found and "450101" not in found
    by_email = html(support.get("/console/orders?q=BOB%40example.com"))
    assert 'data-order="shopify:450102"' in by_email and "450101" not in by_email and "bob@example.com" in by_email
    invoiced = html(support.get("/console/orders?has=invoice"))
    assert 'data-order="shopify:450102"' in invoiced and "450101" not in invoiced
    assert "450102" not in html(support.get("/console/orders?has=refund"))
    bad = support.get("/console/orders?state=bogus")
    page400 = bad.get_data(as_text=True)   # a styled page with the navigation, saying what was wrong
    assert bad.status_code == 400 and "state must be one of" in page400 and 'aria-label="Console"' in page400
    assert support.get("/console/orders?ordered_from=yesterday").status_code == 400
    assert support.get("/console/orders?has=everything").status_code == 400

    story = html(support.get(f"/console/orders/{console.shop.merchant_id}/shopify/450102"))
    with hub.session() as s:
        from hub.order_models import StoreOrder
        row = s.scalars(select(StoreOrder).where(StoreOrder.order_id == "450102")).one()
    assert f"https://app.qbo.intuit.com/app/invoice?txnId={row.invoice_id}" in story
    assert "QuickBooks payment" in story and "HubSpot deal" in story and "Timeline" in story
    assert "bob@example.com" in story and "MUG-1" in story and "12.50" in story   # customer and lines
    assert story.index("<details") < story.index('source_id')                    # raw JSON behind a toggle
    assert support.get(f"/console/orders/{console.shop.merchant_id}/shopify/999").status_code == 404

    # a merchant's own user sees its own orders only; another merchant's order does not exist for it
    with hub.session() as s:
        from hub.merchants import create_merchant
        stranger = create_merchant(s, "Someone else").id
    add_user(hub, "owner@example.com", "merchant", stranger)
    owner = console.client("owner@example.com")
    assert "450102" not in html(owner.get("/console/orders"))
    assert owner.get(f"/console/orders/{console.shop.merchant_id}/shopify/450102").status_code == 404
