"""The QuickBooks Online simulator's webhooks and bookkeeper controls, over real HTTP: signed legacy and
CloudEvents notifications received by a local endpoint, batching, retries, drops caught up by CDC."""

from __future__ import annotations

import json
import socket
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from quickbooks import QuickBooks
from quickbooks.objects.base import LinkedTxn
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.payment import Payment, PaymentLine
from requests_oauthlib import OAuth2Session

from demo.simulators.quickbooks import QBFault, QuickBooksSimulator, sign_webhook
from tests.demo.test_sim_quickbooks import REALM, api, item_id, make_customer, make_invoice, ref, sales_line


@pytest.fixture(scope="module")
def server():
    with QuickBooksSimulator() as s:
        yield s


@pytest.fixture
def sim(server):
    server.reset()
    server.add_company(REALM)
    return server


@pytest.fixture
def token(sim):
    return sim.issue_token(REALM)


@pytest.fixture
def qb(sim, token, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    client = QuickBooks(company_id=REALM, minorversion=75)
    client.api_url_v3 = sim.url + "/v3"
    client.session = OAuth2Session("client", token={"access_token": token, "token_type": "Bearer"})
    return client

# -- webhooks --------------------------------------------------------------------------------------
VERIFIER = "verifier-token-for-tests"


class Receiver:
    """A webhook endpoint on 127.0.0.1: records each POST and answers the scripted statuses (then 200)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, bytes]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(receiver.delay)
                with receiver.cond:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/quickbooks"

    def bodies(self) -> list[object]:
        with self.cond:
            return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver(sim):
    r = Receiver()
    yield r
    sim.clear_webhook()
    r.close()


def entities(notification):
    return [(e["name"], e["operation"]) for n in notification["eventNotifications"]
            for e in n["dataChangeEvent"]["entities"]]


def pay(qb, customer_id, invoice_id, amount):
    payment = Payment()
    payment.CustomerRef = ref(customer_id)
    payment.TotalAmt = amount
    line = PaymentLine()
    line.Amount = amount
    link = LinkedTxn()
    link.TxnId, link.TxnType = invoice_id, "Invoice"
    line.LinkedTxn = [link]
    payment.Line = [line]
    return payment.save(qb=qb)


def test_signed_legacy_notifications(sim, qb, receiver):
    sim.set_webhook(receiver.url, VERIFIER)
    customer = make_customer(qb, email="amy@example.com")
    assert sim.wait_webhooks(5)
    headers, body = receiver.received[0]
    assert headers["content-type"] == "application/json"
    assert headers["intuit-signature"] == sign_webhook(body, VERIFIER)
    assert qb.validate_webhook_signature(body.decode(), headers["intuit-signature"], VERIFIER)
    assert not qb.validate_webhook_signature(body.decode(), sign_webhook(body, "other"), VERIFIER)
    note = json.loads(body)["eventNotifications"][0]
    assert note["realmId"] == REALM
    [entity] = note["dataChangeEvent"]["entities"]
    assert entity == {"name": "Customer", "id": customer.Id, "operation": "Create",
                      "lastUpdated": sim.get_object(REALM, "Customer", customer.Id)["MetaData"]["LastUpdatedTime"]}

    inv = make_invoice(qb, sim, customer.Id).save(qb=qb)
    payment = pay(qb, customer.Id, inv.Id, 4)
    Invoice.get(inv.Id, qb=qb).send(qb=qb, send_to="amy@example.com")
    Payment.get(payment.Id, qb=qb).void(qb=qb)
    assert sim.wait_webhooks(5)
    assert [entities(b) for b in receiver.bodies()[1:]] == [
        [("Invoice", "Create")],
        [("Payment", "Create"), ("Invoice", "Update")],      # the invoice's balance changed
        [("Invoice", "Emailed")],
        [("Payment", "Void"), ("Invoice", "Update")]]
    assert sim.get_object(REALM, "Invoice", inv.Id)["EmailStatus"] == "EmailSent"
    assert [d.status for d in sim.webhook_deliveries] == [200] * 5


def test_cloudevents_batched_within_the_window(sim, token, receiver):
    sim.set_webhook(receiver.url, VERIFIER, format="cloudevents", batch_window=0.3)
    ids = [api(sim, token, "POST", "customer", json={"DisplayName": f"Batch {n}"})[1]["Customer"]["Id"]
           for n in range(3)]
    assert sim.wait_webhooks(5)
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert headers["intuit-signature"] == sign_webhook(body, VERIFIER)
    events = json.loads(body)
    assert [e["intuitentityid"] for e in events] == ids
    assert {e["type"] for e in events} == {"qbo.customer.created.v1"}
    assert all(e["specversion"] == "1.0" and e["intuitaccountid"] == REALM and e["id"] and e["time"]
               and e["source"] and e["datacontenttype"] == "application/json" and e["data"] == {}
               for e in events)
    assert len({e["id"] for e in events}) == 3


def test_failed_delivery_is_retried_and_the_api_does_not_wait(sim, token, receiver):
    receiver.statuses = [500]
    receiver.delay = 2.0   # far longer than the API call takes, even on a loaded machine
    sim.set_webhook(receiver.url, VERIFIER, retry_delays=(0.1,))
    started = time.monotonic()
    status, body = api(sim, token, "POST", "customer", json={"DisplayName": "Retry Ltd"})
    assert status == 200 and time.monotonic() - started < 1.5
    assert sim.wait_webhooks(10)
    assert [(d.attempt, d.status) for d in sim.webhook_deliveries] == [(1, 500), (2, 200)]
    assert receiver.received[0][1] == receiver.received[1][1]
    # a receiver that is down: a connection error, retried on the same schedule
    receiver.delay = 0.0
    with socket.socket() as sock:          # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sim.set_webhook(f"http://127.0.0.1:{port}/down", VERIFIER, retry_delays=(0.05,))
    api(sim, token, "POST", "customer", json={"DisplayName": "Nobody Home"})
    assert not sim.wait_webhooks(0.3)
    failed = sim.webhook_deliveries[2:]
    assert len(failed) >= 2 and all(d.status is None and d.error for d in failed)
    assert [d.attempt for d in failed[:2]] == [1, 2]


def test_dropped_notification_is_caught_up_by_cdc(sim, qb, receiver):
    sim.set_webhook(receiver.url, VERIFIER)
    customer = make_customer(qb)
    assert sim.wait_webhooks(5)
    sim.drop_next_webhooks(1)
    inv = make_invoice(qb, sim, customer.Id).save(qb=qb)
    assert sim.wait_webhooks(5)
    assert len(receiver.received) == 1 and sim.webhook_deliveries[-1].dropped
    since = sim.get_object(REALM, "Customer", customer.Id)["MetaData"]["CreateTime"]
    blocks = qb.get(f"{qb.api_url}/company/{REALM}/cdc", params={"entities": "Invoice",
                                                                  "changedSince": since})
    assert [i["Id"] for i in blocks["CDCResponse"][0]["QueryResponse"][0]["Invoice"]] == [inv.Id]
    # paused: nothing leaves until resumed; then a duplicate of the last one
    sim.pause_webhooks()
    make_customer(qb, "Paused Co")
    assert not sim.wait_webhooks(0.2) and len(receiver.received) == 1
    sim.resume_webhooks()
    assert sim.wait_webhooks(5) and len(receiver.received) == 2
    sim.redeliver_last()
    assert sim.wait_webhooks(5)
    assert receiver.received[2][1] == receiver.received[1][1] and sim.webhook_deliveries[-1].duplicate


# -- what a bookkeeper does in QuickBooks -------------------------------------------------------------
def test_record_payment_over_two_invoices(sim, qb, receiver):
    customer = make_customer(qb)
    first = make_invoice(qb, sim, customer.Id, sales_line(item_id(sim), 1, 10)).save(qb=qb)
    second = make_invoice(qb, sim, customer.Id, sales_line(item_id(sim), 2, 10)).save(qb=qb)
    sim.set_webhook(receiver.url, VERIFIER)
    payment = sim.record_payment(REALM, customer.Id, "25.00", {first.Id: 10, second.Id: "15"},
                                 txn_date="2026-01-15", deposit_account="Checking")
    assert payment["TotalAmt"] == Decimal("25.00") and payment["UnappliedAmt"] == 0
    assert payment["TxnDate"] == "2026-01-15" and payment["DepositToAccountRef"]["name"] == "Checking"
    assert sim.get_object(REALM, "Invoice", first.Id)["Balance"] == 0
    assert sim.get_object(REALM, "Invoice", second.Id)["Balance"] == Decimal("5.00")
    assert sim.get_object(REALM, "Customer", customer.Id)["Balance"] == Decimal("5.00")
    assert Payment.get(payment["Id"], qb=qb).TotalAmt == 25
    with pytest.raises(QBFault) as exc:
        sim.record_payment(REALM, customer.Id, 6, {second.Id: 6})
    assert exc.value.code == "6000" and "open balance" in exc.value.detail
    sim.void(REALM, "Invoice", first.Id)
    assert sim.wait_webhooks(5)
    assert [entities(b) for b in receiver.bodies()] == [
        [("Payment", "Create"), ("Invoice", "Update"), ("Invoice", "Update")], [("Invoice", "Void")]]
    other = make_customer(qb, "Other Co")
    sim.merge(REALM, "Customer", other.Id, customer.Id)
    assert sim.wait_webhooks(5)
    merged = receiver.bodies()[-1]["eventNotifications"][0]["dataChangeEvent"]["entities"][0]
    assert merged["operation"] == "Merge" and merged["id"] == customer.Id and merged["deletedId"] == other.Id
