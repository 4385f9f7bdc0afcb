"""The secret canary: every secret the hub holds carries a unique marker, the platforms answer errors that
echo them (QuickBooks and HubSpot), a support agent pastes one into a skip reason, a connection's token
refresh fails; then no table (every column of every row), no ``o2c syncs list|show --json``, no JSON API
answer, no console page and no alert shows any of them in clear. The texts stay useful: they say
``[redacted]`` where a secret was."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask, request
from sqlalchemy import select

import cli.syncs as hub_cli_syncs
from cli.main import main as o2c
from hub.merchants import connect, create_merchant
from hub.models import Connection, SyncRun
from hub.runtime import Hub
from hub.users import create_user
from tests.conftest import HS_CLIENT, QB_CLIENT
from tests.helpers import an_order, served, settled, wait_until, webhook
from tests.web.test_compliance import dump
from tests.web.test_console import PASSWORD, login, post
from web.api.tokens import create_token
from web.app import create_app

SUPPORT = "canary-support@example.com"


def marker(kind: str) -> str:
    """A unique value nothing else could contain (no known token format: only the hub's registry of the
    secrets it holds can recognise it)."""
    return f"CANARY{kind}{uuid.uuid4().hex}"


@pytest.fixture
def alert_sink() -> Iterator[tuple[str, list[str]]]:
    received: list[str] = []
    lock = threading.Lock()
    app = Flask("alert-sink")

    @app.post("/alerts")
    def alerts() -> tuple[str, int]:
        with lock:
            received.append(request.get_data(as_text=True))
        return "", 204

    with served(app) as base:
        yield f"{base}/alerts", received


def _quickbooks_echoes(platforms: Any, echoed: list[str]) -> None:
    """The next invoice create answers 500, then 400, with bodies echoing every secret: in plain text and
    under the names a careless gateway would use."""
    plain = " ".join(echoed)
    fault = {"Fault": {"Error": [{"Message": f"Invalid request from {echoed[0]}",
                                  "Detail": f"Request rejected: {plain}; refresh_token={echoed[1]}",
                                  "code": "2020"}], "type": "ValidationFault"},
             "echo": {"authorization": f"Bearer {echoed[0]}", "client_secret": echoed[2], "seen": plain}}
    upstream = json.dumps({"error": f"upstream saw {plain}"})
    platforms.quickbooks.fail_next(500, 1, path_contains="/invoice", body=upstream)
    platforms.quickbooks.fail_next(400, 1, path_contains="/invoice", body=json.dumps(fault))


def _hubspot_echoes(platforms: Any, token: str, client_secret: str) -> None:
    """Every contact upsert answers 400 with a body echoing the token and the app's secret (halving the
    batch does not help)."""
    platforms.hubspot.fail_next(400, 50, path_contains="/contacts", body=json.dumps({
        "status": "error", "category": "VALIDATION_ERROR", "correlationId": str(uuid.uuid4()),
        "message": f"bad token {token} for app {client_secret} (Authorization: Bearer {token})"}))


def test_no_secret_the_hub_holds_is_stored_or_shown_after_platforms_echo_them(
        make_hub, platforms, alert_sink, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    alert_url, alerts_received = alert_sink
    app_secrets = {"shopify": marker("shopifyAppSecret"), "quickbooks": marker("qbClientSecret"),
                   "hubspot": marker("hsClientSecret"), "verifier": marker("qbVerifier"),
                   "session": marker("sessionKey"), "smtp": marker("smtpPassword")}
    hub = make_hub(database_url, SHOPIFY_API_SECRET=app_secrets["shopify"],
                   QUICKBOOKS_CLIENT_SECRET=app_secrets["quickbooks"], HUBSPOT_CLIENT_SECRET=app_secrets["hubspot"],
                   QUICKBOOKS_WEBHOOK_VERIFIER_TOKEN=app_secrets["verifier"], O2C_SECRET_KEY=app_secrets["session"],
                   O2C_SMTP_PASSWORD=app_secrets["smtp"], O2C_ALERT_WEBHOOK_URL=alert_url, O2C_MAX_ATTEMPTS="3")
    platforms.quickbooks.register_app(QB_CLIENT[0], app_secrets["quickbooks"])
    platforms.hubspot.register_app(HS_CLIENT[0], app_secrets["hubspot"])

    domain, realm, portal = "canary.myshopify.com", "9130357", "canary-portal"
    tokens = {"shopify": marker("shopifyAccess"), "quickbooks": marker("qbAccess"),
              "hubspot": marker("hsAccess"), "woo_key": "ck_" + uuid.uuid4().hex + "00000000",
              "woo_secret": "cs_" + uuid.uuid4().hex + "11111111", "woo_hook": marker("wooWebhook")}
    platforms.shopify.add_shop(domain)
    platforms.quickbooks.add_company(realm)
    platforms.hubspot.add_account(portal)
    platforms.shopify.add_token(tokens["shopify"], domain)
    platforms.quickbooks.add_token(tokens["quickbooks"], realm)
    platforms.hubspot.add_token(tokens["hubspot"], portal)
    tokens["qb_refresh"] = platforms.quickbooks.issue_refresh_token(realm, QB_CLIENT[0])
    with hub.session() as s:
        merchant = create_merchant(s, "Canary Goods")
        connect(s, hub.secrets, merchant, "shopify", domain, {"access_token": tokens["shopify"]})
        connect(s, hub.secrets, merchant, "quickbooks", realm, {"access_token": tokens["quickbooks"],
                                                                "refresh_token": tokens["qb_refresh"]})
        connect(s, hub.secrets, merchant, "hubspot", portal, {"access_token": tokens["hubspot"]})
        connect(s, hub.secrets, merchant, "woocommerce", "https://canary-store.example", {
            "consumer_key": tokens["woo_key"], "consumer_secret": tokens["woo_secret"],
            "webhook_secret": tokens["woo_hook"]}, {"url": "https://canary-store.example"})
        create_user(s, SUPPORT, PASSWORD, "support")
        merchant_id = merchant.id
    with hub.session() as s:
        _, api_token = create_token(s, SUPPORT, "canary")
    secrets = {**app_secrets, **tokens}
    echoed = [tokens["quickbooks"], tokens["qb_refresh"], app_secrets["quickbooks"], tokens["woo_secret"],
              tokens["woo_hook"], tokens["shopify"], app_secrets["shopify"], api_token]
    app = create_app(hub)

    def send(order: Any) -> None:
        platforms.shopify.add_order(domain, order)
        body, headers = webhook(order, domain, secret=app_secrets["shopify"])
        assert app.test_client().post("/webhooks/shopify", data=body, headers=headers).status_code == 200

    # 1. HubSpot echoes its token and the app's secret on a permanent fault
    _hubspot_echoes(platforms, tokens["hubspot"], app_secrets["hubspot"])
    send(an_order(470_001, 1001))
    [by_hubspot] = settled(hub)
    with platforms.hubspot.lock:
        platforms.hubspot.faults.clear()
    # 2. QuickBooks echoes every secret on a retryable, then a permanent fault (shared by two orders' batch)
    _quickbooks_echoes(platforms, echoed)
    send(an_order(470_002, 1002, email="grace@example.com"))
    send(an_order(470_003, 1003, email="ada3@example.com"))
    runs = settled(hub)
    assert hub.dispatcher.wait_idle(timeout=30)  # type: ignore[attr-defined]
    failed = [r for r in runs if r.status == "failed"]
    assert by_hubspot.status == "failed" and "hubspot" in by_hubspot.reason and len(failed) >= 2, \
        [(r.status, r.reason) for r in runs]
    assert all(r.reason.count("[redacted]") >= 2 for r in failed), [r.reason for r in failed]

    # 3. the refresh of the QuickBooks token fails for good: the connection needs reconnecting, the run waits
    platforms.quickbooks.expire_tokens()
    with platforms.quickbooks.lock:
        platforms.quickbooks.refresh_tokens.clear()
    send(an_order(470_004, 1004, email="ada4@example.com"))
    wait_until(lambda: _status(hub, "quickbooks") == "needs_reconnect")
    waiting = wait_until(lambda: _waiting_run(hub))

    # 4. a support agent pastes a token into the reason for skipping it (stored in the run and the audit log)
    console = app.test_client()
    console.environ_base["REMOTE_ADDR"] = "10.9.0.1"
    assert login(console, SUPPORT, PASSWORD).status_code == 302
    skipped = post(console, f"/console/runs/{waiting}/skip", reason=f"customer says token {tokens['quickbooks']}")
    assert skipped.status_code in (200, 302, 303), skipped.status_code
    target = failed[-1].id

    # what people and scripts see
    with hub.session() as s:
        run_ids = list(s.scalars(select(SyncRun.id).order_by(SyncRun.id)))
    shown: dict[str, str] = {}
    for path in ["/console/runs", "/console/failures", "/console/audit", "/console/connections",
                 *[f"/console/runs/{i}" for i in run_ids]]:
        page = console.get(path)
        assert page.status_code == 200, path
        shown[path] = page.get_data(as_text=True)
    api = app.test_client()
    for path in ["/runs", "/failures", "/runs?status=failed", *[f"/runs/{i}" for i in run_ids]]:
        answer = api.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {api_token}"})
        assert answer.status_code == 200, path
        shown[f"api {path}"] = answer.get_data(as_text=True)
    monkeypatch.setattr(hub_cli_syncs, "_hub", lambda: hub)   # the scripts' view, on this test's database
    runner = CliRunner()
    for args in (["syncs", "list", "--json"], *[["syncs", "show", str(i), "--json"] for i in run_ids]):
        result = runner.invoke(o2c, args)
        assert result.exit_code == 0, result.output
        shown[" ".join(args)] = result.output
    shown["alerts"] = "\n".join(alerts_received)
    shown["database"] = dump(hub)

    assert alerts_received, "a failed run sends an alert"
    assert f"/console/runs/{target}" in shown["/console/runs"] and "[redacted]" in shown["/console/failures"]
    assert f"skipped by {SUPPORT}: customer says token [redacted]" in shown["database"]
    leaks = {where: sorted(name for name, value in secrets.items() if value in text)
             for where, text in shown.items()}
    assert not {where: names for where, names in leaks.items() if names}, "secrets in clear"
    with hub.session() as s:
        assert s.scalar(select(Connection.status_reason).where(Connection.merchant_id == merchant_id,
                                                               Connection.platform == "quickbooks"))


def _waiting_run(hub: Hub) -> int | None:
    with hub.session() as s:
        return s.scalar(select(SyncRun.id).where(SyncRun.status == "retrying", SyncRun.error_kind == "auth"))


def _status(hub: Hub, platform: str) -> str | None:
    with hub.session() as s:
        return s.scalar(select(Connection.status).where(Connection.platform == platform))
