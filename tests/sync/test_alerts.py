"""Alerts against a real hub: a local webhook receiver gets one alert per cause and hour (a second one for a
different cause, another after the hour), a needs-reconnect alert, a failing receiver never breaks the run,
e-mail through a tiny local SMTP server, and no secret in any alert."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from hub.models import AlertSent, Connection, SyncRun
from hub.runtime import Hub
from sync import alerts
from tests import smtp_sink
from tests.helpers import an_order, settled, wait_until, webhook
from web.app import create_app

smtp_server = smtp_sink.smtp_server   # the fixture: a local SMTP server keeping what it is sent
WEBHOOK_SECRET_PATH = "/hooks/T0KEN-in-the-path-9f8e7d"
SMTP_PASSWORD = "smtp-password-6a5b4c"


@dataclass
class Receiver:
    url: str
    status: int = 200
    bodies: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP endpoint that records every alert POSTed to it and answers ``status``."""
    rec = Receiver(url="")

    @Request.application
    def app(request: Request) -> Response:
        text = request.get_data(as_text=True)
        rec.raw.append(text)
        rec.bodies.append(json.loads(text))
        return Response("{}", rec.status, mimetype="application/json")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_port}{WEBHOOK_SECRET_PATH}"
    yield rec
    server.shutdown()
    server.server_close()


def send(hub: Hub, shop: Any, platforms: Any, order: Any) -> None:
    platforms.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)
    assert create_app(hub).test_client().post("/webhooks/shopify", data=body, headers=headers).status_code == 200


def nobody_listening() -> str:
    """The URL of a local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/alerts"


def duplicate_name_next(platforms: Any, count: int = 1) -> None:
    """The next invoice create fails with QuickBooks fault 6240 (another cause than the default 400's)."""
    platforms.quickbooks.fail_next(400, count, path_contains="/invoice", body=json.dumps({"Fault": {"Error": [{
        "Message": "Duplicate Name Exists Error", "Detail": "The name supplied already exists.", "code": "6240"}],
        "type": "ValidationFault"}}))


def done(hub: Hub) -> list[SyncRun]:
    """Every run, once none is open and no job (alerts included) is still at work."""
    runs = settled(hub)
    assert hub.dispatcher.wait_idle(timeout=30)  # type: ignore[attr-defined]
    return runs


def secrets_of(hub: Hub) -> list[str]:
    with hub.session() as s:
        conns = s.scalars(select(Connection)).all()
        return [v for c in conns for v in hub.secrets.decrypt(c.secrets).values() if v] + [c.secrets for c in conns]


def sent(hub: Hub) -> list[AlertSent]:
    with hub.session() as s:
        return list(s.scalars(select(AlertSent).order_by(AlertSent.id)))


def test_one_webhook_alert_per_cause_and_hour(make_hub, shop_factory, platforms, receiver: Receiver,  # noqa: ANN001
                                              database_url: str) -> None:
    hub = make_hub(database_url, O2C_ALERT_WEBHOOK_URL=receiver.url, O2C_PUBLIC_URL="https://hub.example.com")
    shop = shop_factory(hub)
    platforms.quickbooks.fail_next(400, 2, path_contains="/invoice")
    send(hub, shop, platforms, an_order(450_001, 1001))
    send(hub, shop, platforms, an_order(450_002, 1002, email="grace@example.com"))
    first, second = done(hub)
    assert (first.status, second.status) == ("failed", "failed") and first.error_code == second.error_code

    [alert] = receiver.bodies                       # two failures, one cause: one alert
    assert set(alert) == {"event", "cause", "merchant", "message", "run", "at", "console_url"}
    assert alert["event"] == "run.failed" and alert["cause"] == f"run.failed:permanent:{first.error_code}"
    assert alert["merchant"]["id"] == shop.merchant_id and alert["merchant"]["name"]
    named = {first.id: "#1001", second.id: "#1002"}[alert["run"]["id"]]     # whichever failed first
    assert alert["run"]["source"]["name"] == named and alert["run"]["error_code"] == first.error_code
    assert alert["console_url"] == f"https://hub.example.com/console/runs/{alert['run']['id']}"
    assert "failed" in alert["message"] and named in alert["message"]

    duplicate_name_next(platforms)                  # another cause: another alert
    send(hub, shop, platforms, an_order(450_003, 1003, email="ada3@example.com"))
    third = done(hub)[-1]
    assert third.status == "failed" and third.error_code != first.error_code
    assert len(receiver.bodies) == 2 and receiver.bodies[1]["cause"] == f"run.failed:permanent:{third.error_code}"
    assert [(a.channel, a.ok) for a in sent(hub)] == [("webhook", True), ("webhook", True)]

    with hub.session() as s:                        # an hour later the same cause is told again
        for row in s.scalars(select(AlertSent)):
            row.sent_at -= timedelta(minutes=61)
    platforms.quickbooks.fail_next(400, 1, path_contains="/invoice")
    send(hub, shop, platforms, an_order(450_004, 1004, email="ada4@example.com"))
    assert done(hub)[-1].status == "failed"
    assert [b["cause"] for b in receiver.bodies] == [alert["cause"], receiver.bodies[1]["cause"], alert["cause"]]

    secrets = secrets_of(hub)
    for text in receiver.raw:
        assert not [sec for sec in secrets if sec in text] and WEBHOOK_SECRET_PATH not in text


def test_needs_reconnect_alert(make_hub, shop_factory, platforms, receiver: Receiver) -> None:  # noqa: ANN001
    hub = make_hub(O2C_ALERT_WEBHOOK_URL=receiver.url)
    shop = shop_factory(hub)
    with hub.session() as s:
        conn = s.scalar(select(Connection).where(Connection.platform == "quickbooks"))
        secrets = hub.secrets.decrypt(conn.secrets)
        conn.secrets = hub.secrets.encrypt({**secrets, "refresh_token": "revoked-refresh-token-1234"})
        conn_id = conn.id
    platforms.quickbooks.expire_tokens()
    send(hub, shop, platforms, an_order())
    wait_until(lambda: receiver.bodies)
    [alert] = receiver.bodies
    assert (alert["event"], alert["cause"]) == ("connection.needs_reconnect", f"reconnect:{conn_id}")
    assert alert["connection"]["id"] == conn_id and alert["connection"]["platform"] == "quickbooks"
    assert "reconnect" in alert["message"] and alert["merchant"]["id"] == shop.merchant_id
    def waiting() -> bool:   # the run waits for the reconnect, it has not failed: no run alert
        with hub.session() as s:
            run = s.scalar(select(SyncRun))
            return run.status == "retrying" and run.error_kind == "auth"
    wait_until(waiting)
    assert hub.dispatcher.wait_idle(timeout=30) and len(receiver.bodies) == 1  # type: ignore[attr-defined]
    for text in receiver.raw:
        assert not [sec for sec in secrets_of(hub) + ["revoked-refresh-token-1234"] if sec in text]
    assert [(a.cause, a.ok) for a in sent(hub)] == [(f"reconnect:{conn_id}", True)]


def test_a_failing_receiver_never_breaks_the_run(make_hub, shop_factory, platforms, receiver: Receiver,  # noqa: ANN001
                                                 tmp_path) -> None:  # noqa: ANN001
    receiver.status = 500
    hub = make_hub(O2C_ALERT_WEBHOOK_URL=receiver.url)
    shop = shop_factory(hub)
    duplicate_name_next(platforms)
    send(hub, shop, platforms, an_order())
    [run] = done(hub)
    assert run.status == "failed" and len(receiver.bodies) == 1
    [row] = sent(hub)
    assert row.ok is False and "HTTP 500" in row.detail["error"] and WEBHOOK_SECRET_PATH not in json.dumps(row.detail)

    # nobody listening at all: the run still ends as it should, and the attempt is recorded
    unreachable = make_hub(f"sqlite:///{tmp_path / 'other.sqlite3'}", O2C_ALERT_WEBHOOK_URL=nobody_listening())
    platforms.quickbooks.fail_next(400, 1, path_contains="/invoice")
    send(unreachable, shop_factory(unreachable), platforms, an_order())
    runs = done(unreachable)
    assert runs[-1].status == "failed"
    assert [(a.ok, a.detail.get("error")) for a in sent(unreachable)][-1] == (False, "ConnectionError")


def test_email_alert_over_smtp(make_hub, shop_factory, platforms, smtp_server) -> None:  # noqa: ANN001
    port = smtp_server.server_address[1]
    hub = make_hub(O2C_ALERT_EMAIL_TO="ops@example.com, oncall@example.com", O2C_SMTP_HOST="127.0.0.1",
                   O2C_SMTP_PORT=str(port), O2C_SMTP_FROM="hub@example.com", O2C_SMTP_USER="hub",
                   O2C_SMTP_PASSWORD=SMTP_PASSWORD, O2C_SMTP_STARTTLS="0")
    assert SMTP_PASSWORD not in repr(hub.settings)
    shop = shop_factory(hub)
    duplicate_name_next(platforms, 2)
    send(hub, shop, platforms, an_order(450_001, 3001))
    send(hub, shop, platforms, an_order(450_002, 3002, email="grace@example.com"))   # the same cause: no 2nd mail
    assert [r.status for r in done(hub)] == ["failed", "failed"]
    wait_until(lambda: smtp_server.mails)
    time.sleep(0.2)
    [mail] = smtp_server.mails
    assert "hub@example.com" in mail["from"] and len(mail["rcpt"]) == 2
    assert "Subject: [O2C Hub] Sync run" in mail["data"] and "shopify #300" in mail["data"]
    assert "Cause: run.failed:permanent:quickbooks:6240" in mail["data"] and "/console/runs/" in mail["data"]
    assert smtp_server.auth == [[b"", b"hub", SMTP_PASSWORD.encode()]]
    assert not [sec for sec in secrets_of(hub) + [SMTP_PASSWORD] if sec in mail["data"]]
    assert [(a.channel, a.ok) for a in sent(hub)] == [("email", True)]


def test_the_hooks_are_cheap_without_targets_and_never_raise(make_hub, monkeypatch) -> None:  # noqa: ANN001
    hub = make_hub()
    assert alerts.channels(hub.settings) == []
    monkeypatch.setattr(hub, "session", lambda: pytest.fail("no database work without alert targets"))
    assert alerts.after_run(hub, 1, "failed") == "failed"
    alerts.needs_reconnect(hub, 1)

    configured = make_hub(O2C_ALERT_WEBHOOK_URL=nobody_listening())
    monkeypatch.setattr(alerts, "run_failed", lambda *a: 1 / 0)
    monkeypatch.setattr(alerts, "connection_alert", lambda *a: 1 / 0)
    assert alerts.after_run(configured, 1, "failed") == "failed"
    assert alerts.after_run(configured, 1, "succeeded") == "succeeded"
    alerts.needs_reconnect(configured, 1)


def test_causes_are_normalised_and_bounded() -> None:
    one = alerts.run_cause("permanent", None, "quickbooks: customer 12345 has a balance of 10.50")
    two = alerts.run_cause("permanent", None, "quickbooks: customer 67890 has a balance of 99.99")
    assert one == two == "run.failed:permanent:quickbooks: customer <id> has a balance of <amount>"
    assert alerts.run_cause("mapping", "tax.codes", "anything") == "run.failed:mapping:tax.codes"
    long = alerts.run_cause("internal", None, "x" * 1000)
    assert len(long) <= 255 and long != alerts.run_cause("internal", None, "x" * 999 + "y")


def test_a_webhook_that_cannot_be_synced_alerts_too(make_hub, shop_factory, platforms,  # noqa: ANN001
                                                    receiver: Receiver) -> None:
    from demo.simulators.shopify import webhook_headers
    from tests.conftest import SHOPIFY_SECRET

    hub = make_hub(O2C_ALERT_WEBHOOK_URL=receiver.url)
    shop = shop_factory(hub)
    body = json.dumps({"name": "#1001", "id": "not-an-order-id"}).encode()
    answer = create_app(hub).test_client().post(
        "/webhooks/shopify", data=body, headers=webhook_headers(shop.domain, "orders/create", body, SHOPIFY_SECRET))
    assert answer.status_code == 200
    wait_until(lambda: receiver.bodies)
    [alert] = receiver.bodies
    assert alert["event"] == "run.failed" and "cannot be synced" in alert["message"]
