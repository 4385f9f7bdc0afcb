"""Receivables end to end: WooCommerce bank-transfer orders (signed webhooks over real HTTP) invoiced on net
30 by the gateway rule, aged by moving the simulators' clock; the hub's ageing equals QuickBooks' own
AgedReceivables report to the cent and DSO follows its formula; dunning walks three stages, once each, and
stops when the invoice is paid in QuickBooks; two passes at once act once."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from cli.main import main as o2c
from demo.simulators.quickbooks_query import COMPANY_TZ
from hub.mapping_rules import save_overrides
from hub.receivables_models import DunningAction
from sync import catchup
from sync.dunning import dunning_pass, run_daily_dunning
from tests.helpers import an_order, served, settled, wait_until, webhook
from tests.web.test_api import PASSWORD, add_user, new_token
from tests.web.test_console import html, login
from web.app import create_app

WEBHOOK_SECRET = "woo-webhook-secret"
VERIFIER = "qb-verifier"
STAGES = [{"stage": "reminder", "days": -3, "actions": ["properties"]},
          {"stage": "overdue", "days": 1, "actions": ["properties", "send_invoice"]},
          {"stage": "final", "days": 30, "actions": ["properties", "task", "send_invoice"]}]
BUCKET_TITLES = {"Current": "current", "1 - 30": "1_30", "31 - 60": "31_60", "61 - 90": "61_90",
                 "91 and over": "over_90"}


@pytest.fixture
def books(shop_factory, platforms, request, monkeypatch):  # noqa: ANN001, ANN201
    """A merchant with QuickBooks, HubSpot and a WooCommerce store (connected by ``o2c connect``), whose
    rules put bank transfers on net 30 and chase in three stages (on PostgreSQL with ``param``)."""
    url = request.getfixturevalue("postgres_url") if getattr(request, "param", "sqlite") == "postgresql" else None
    monkeypatch.setenv("QUICKBOOKS_WEBHOOK_VERIFIER_TOKEN", VERIFIER)
    hub = request.getfixturevalue("make_hub")(url)     # after the database: closed before it is dropped
    shop = shop_factory(hub)
    woo = platforms.woocommerce
    woo.add_store("cafe")
    key, secret = woo.add_key("cafe")
    with hub.session() as s:
        save_overrides(s, shop.merchant_id, {"receivables": {"terms": {"bacs": 30, "cheque": 30},
                                                             "dunning": STAGES}})
        s.commit()
    with served(create_app(hub)) as base:
        import os

        os.environ["O2C_PUBLIC_URL"] = base
        result = CliRunner().invoke(o2c, ["connect", "woocommerce", str(shop.merchant_id), "--url",
                                          woo.store_url("cafe"), "--consumer-key", key, "--consumer-secret", secret,
                                          "--webhook-secret", WEBHOOK_SECRET])
        assert result.exit_code == 0, result.output
        platforms.quickbooks.set_webhook(f"{base}/webhooks/quickbooks", VERIFIER, entities=("Payment",),
                                         batch_window=0)
        yield hub, shop, woo, base
        platforms.quickbooks.clear_webhook()
        os.environ.pop("O2C_PUBLIC_URL", None)


def _order(woo, days_ago: int, price: str, email: str, *, method: str = "bacs", status: str = "on-hold") -> dict:  # noqa: ANN001
    created = datetime.now(UTC) - timedelta(days=days_ago)
    return woo.add_order("cafe", lines=[{"name": "Espresso machine", "sku": "ESP-1", "quantity": 1, "price": price}],
                         billing={"first_name": "Ada", "last_name": email.split("@")[0], "email": email,
                                  "country": "US"},
                         payment_method=method, status=status, created_at=created)


def _invoice(platforms, shop, number: str) -> dict:  # noqa: ANN001
    return next(i for i in platforms.quickbooks.objects(shop.realm, "Invoice") if i["DocNumber"] == number)


def _report(platforms, shop, **params: str) -> dict:  # noqa: ANN001
    token = platforms.quickbooks.issue_token(shop.realm)
    r = requests.get(f"{platforms.quickbooks.url}/v3/company/{shop.realm}/reports/AgedReceivables",
                     params={"minorversion": "75", **params}, headers={"Authorization": f"Bearer {token}",
                                                                       "Accept": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _grand_total(report: dict) -> dict[str, str]:
    titles = [c["ColTitle"] for c in report["Columns"]["Column"]]
    row = next(r for r in report["Rows"]["Row"] if r.get("group") == "GrandTotal")
    return {BUCKET_TITLES[t]: cell["value"] for t, cell in zip(titles, row["Summary"]["ColData"], strict=True)
            if t in BUCKET_TITLES}


def test_net_30_invoices_aged_by_the_clock_match_quickbooks_report_and_dso(books, platforms) -> None:  # noqa: ANN001
    hub, shop, woo, base = books
    qb = platforms.quickbooks
    # (days ago, price): on net 30 by the bacs rule unless paid or on another gateway
    a = _order(woo, 10, "120.00", "a@example.com")
    b = _order(woo, 50, "80.50", "b@example.com")
    c = _order(woo, 80, "45.25", "c@example.com")
    f = _order(woo, 100, "300.00", "f@example.com", method="cheque")
    d = _order(woo, 140, "99.99", "d@example.com")
    e = _order(woo, 5, "19.90", "e@example.com", method="cod")                  # no rule: due on receipt
    p = _order(woo, 3, "65.00", "p@example.com", status="processing")          # paid at checkout
    runs = [r for r in settled(hub) if r.kind == "order"]    # (the hub's own payment comes back: skipped)
    assert [r.status for r in runs] == ["succeeded"] * 7, [r.reason for r in runs]

    inv_a = _invoice(platforms, shop, a["number"])
    assert inv_a["SalesTermRef"]["name"] == "Net 30"
    created_a = datetime.fromisoformat(a["date_created_gmt"]).date()
    assert inv_a["DueDate"] == (created_a + timedelta(days=30)).isoformat()
    assert [t["Name"] for t in qb.objects(shop.realm, "Term")] == ["Net 30"]     # created once, then bound
    inv_e, inv_p = _invoice(platforms, shop, e["number"]), _invoice(platforms, shop, p["number"])
    assert "SalesTermRef" not in inv_e and inv_e["DueDate"] == inv_e["TxnDate"]
    assert "SalesTermRef" not in inv_p and Decimal(str(inv_p["Balance"])) == 0

    qb.clock.advance(days=5)
    as_of = qb.clock.today(COMPANY_TZ)
    result = CliRunner().invoke(o2c, ["receivables", str(shop.merchant_id), "--as-of", as_of.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    assert "differs" not in result.output
    view = json.loads(result.stdout)
    totals = {k: Decimal(o["total"]) for k, o in zip("abcfde", (a, b, c, f, d, e), strict=True)}

    def past_due(order: dict, net: int = 30) -> int:
        return (as_of - (datetime.fromisoformat(order["date_created_gmt"]).date() + timedelta(days=net))).days

    expected = {"current": totals["a"], "1_30": totals["b"] + totals["e"], "31_60": totals["c"],
                "61_90": totals["f"], "over_90": totals["d"]}
    assert {k: Decimal(v) for k, v in view["buckets"].items()} == expected
    # QuickBooks' own report, for the moved clock's day (no report_date: the simulator's today), to the cent
    assert _grand_total(_report(platforms, shop)) == {k: str(v) for k, v in expected.items()}
    open_total = sum(totals.values())
    assert Decimal(view["open"]) == open_total
    assert Decimal(view["overdue"]) == open_total - totals["a"]
    credit = totals["a"] + totals["b"] + totals["c"]          # invoiced on terms within the last 90 days
    assert view["dso_period_days"] == 90
    assert Decimal(str(view["dso_days"])) == (open_total / credit * 90).quantize(Decimal("0.1"), ROUND_HALF_UP)
    assert [i["doc_number"] for i in view["invoices"]] == [d["number"], f["number"], c["number"], b["number"],
                                                           e["number"]]
    assert view["invoices"][0] == {"doc_number": d["number"], "customer": "d@example.com",
                                   "due_date": _invoice(platforms, shop, d["number"])["DueDate"],
                                   "balance": str(totals["d"]), "days_overdue": past_due(d), "dunning_stage": None}
    assert set(view) == {"merchant", "as_of", "currency", "open", "overdue", "buckets", "dso_days",
                         "dso_period_days", "invoices", "holds"}

    # the JSON API answers the same, with QuickBooks' own figures beside them
    add_user(hub, "support@example.com")
    auth = {"Authorization": f"Bearer {new_token('support@example.com')}"}
    url = f"{base}/api/v1/receivables"
    r = requests.get(url, params={"merchant": shop.merchant_id, "as_of": as_of.isoformat()}, headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    assert {k: v for k, v in r.json().items() if k != "check"} == view
    assert r.json()["check"] == {"quickbooks": {k: str(v) for k, v in expected.items()}, "difference": {}}
    assert requests.get(url, headers=auth, timeout=10).status_code == 400
    assert requests.get(url, params={"merchant": shop.merchant_id, "as_of": "12/08"}, headers=auth,
                        timeout=10).status_code == 400
    assert requests.get(url, params={"merchant": 999}, headers=auth, timeout=10).status_code == 404

    # the console's receivables page: the ageing chart beside QuickBooks' report, DSO, the overdue invoices
    client = create_app(hub).test_client()
    assert login(client, "support@example.com", PASSWORD).status_code == 302
    page = html(client.get(f"/console/receivables/{shop.merchant_id}?as_of={as_of.isoformat()}"))
    assert f"DSO <strong>{view['dso_days']}</strong> days" in page
    assert "AgedReceivables to the cent." in page and "differ from QuickBooks" not in page
    assert f"<td>{d['number']}</td><td>#{d['number']}</td><td>d@example.com</td>" in page
    assert client.get("/console/receivables/999").status_code == 404
    assert "is not a date" in html(client.get(f"/console/receivables/{shop.merchant_id}?as_of=tomorrow"))

    # a difference with QuickBooks is reported, not hidden: a payment dated after the as-of day
    qb.record_payment(shop.realm, inv_a["CustomerRef"]["value"], "120.00", {inv_a["Id"]: "120.00"},
                      txn_date=(as_of + timedelta(days=1)).isoformat())
    result = CliRunner().invoke(o2c, ["receivables", str(shop.merchant_id), "--as-of", as_of.isoformat()])
    assert result.exit_code == 0, result.output
    assert (f"differs from QuickBooks' AgedReceivables: current hub {totals['a'] - 120} vs QuickBooks "
            f"{totals['a']}") in result.stderr
    assert "QuickBooks AgedReceivables: DIFFERS" in result.stdout


def _run(as_of, merchant: int) -> str:  # noqa: ANN001
    result = CliRunner().invoke(o2c, ["dunning", "run", "--merchant", str(merchant), "--as-of", as_of.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output


def test_dunning_walks_three_stages_once_each_and_stops_on_payment(books, platforms) -> None:  # noqa: ANN001
    hub, shop, woo, _ = books
    qb, hs = platforms.quickbooks, platforms.hubspot
    order = _order(woo, 28, "250.00", "late@example.com")
    [run] = settled(hub)
    assert run.status == "succeeded", run.reason
    invoice = _invoice(platforms, shop, order["number"])
    due = datetime.fromisoformat(invoice["DueDate"]).date()
    [contact] = hs.contacts(shop.portal)

    def sends() -> int:
        return sum(1 for c in qb.calls if c.path.endswith(f"/invoice/{invoice['Id']}/send") and c.status == 200)

    # 3 days before due: the reminder writes the contact's properties (created in HubSpot first)
    out = _run(due - timedelta(days=3), shop.merchant_id)
    assert f"invoice {order['number']}: reminder" in out
    props = hs.contact_properties(shop.portal, contact["id"])
    assert (props["o2c_ar_balance"], props["o2c_overdue_balance"], props["o2c_days_past_due"],
            props["o2c_dunning_stage"]) == (order["total"], "0", "0", "reminder")
    assert sends() == 0
    again = _run(due - timedelta(days=2), shop.merchant_id)          # same stage: nothing new, nothing written
    assert "0 stage(s) acted on, 0 contact(s) written, calls: QuickBooks 1, HubSpot 0" in again

    # overdue: QuickBooks e-mails the invoice again, once
    qb.clock.advance(days=(due + timedelta(days=2) - qb.clock.today(COMPANY_TZ)).days)
    out = _run(due + timedelta(days=2), shop.merchant_id)
    assert f"invoice {order['number']}: overdue" in out and "calls: QuickBooks 2, HubSpot 1" in out
    assert sends() == 1 and qb.get_object(shop.realm, "Invoice", invoice["Id"])["EmailStatus"] == "EmailSent"
    _run(due + timedelta(days=3), shop.merchant_id)
    assert sends() == 1
    assert hs.contact_properties(shop.portal, contact["id"])["o2c_days_past_due"] == "3"

    # final: a task for the contact and another e-mail, once
    before = (len(qb.calls), len(hs.calls))
    out = _run(due + timedelta(days=31), shop.merchant_id)
    assert f"invoice {order['number']}: final" in out
    # the calls the pass reports are the calls the platforms saw: the open invoices and the send; the
    # contact's owner, the task and the contact's properties
    assert "calls: QuickBooks 2, HubSpot 3" in out and (len(qb.calls), len(hs.calls)) == (before[0] + 2,
                                                                                           before[1] + 3)
    [task] = hs.task_list(shop.portal)
    assert task["contacts"] == [contact["id"]] and order["number"] in task["properties"]["hs_task_subject"]
    assert task["properties"]["hs_timestamp"].startswith((due + timedelta(days=31)).isoformat())
    assert sends() == 2
    _run(due + timedelta(days=32), shop.merchant_id)
    assert sends() == 2 and len(hs.task_list(shop.portal)) == 1
    assert hs.contact_properties(shop.portal, contact["id"])["o2c_dunning_stage"] == "final"

    # paid in QuickBooks: its webhook's payment run clears the properties at once, and the chase stops
    qb.record_payment(shop.realm, invoice["CustomerRef"]["value"], order["total"], {invoice["Id"]: order["total"]})
    payment_run = wait_until(lambda: [r for r in settled(hub) if r.kind == "payment"])[0]
    assert payment_run.status == "succeeded", payment_run.reason
    props = hs.contact_properties(shop.portal, contact["id"])
    assert not any(k in props for k in ("o2c_ar_balance", "o2c_overdue_balance", "o2c_dunning_stage"))
    out = _run(due + timedelta(days=40), shop.merchant_id)
    assert "0 stage(s) acted on, 0 contact(s) written" in out
    assert sends() == 2 and len(hs.task_list(shop.portal)) == 1
    with hub.session() as s:
        rows = list(s.scalars(select(DunningAction).order_by(DunningAction.id)))
    assert [(r.stage, r.status) for r in rows] == [("reminder", "done"), ("overdue", "done"), ("final", "done")]

    # every stage is in the order's timeline (and the audit log)
    shown = CliRunner().invoke(o2c, ["orders", "show", str(shop.merchant_id), order["number"], "--json"])
    timeline = [t["text"] for t in json.loads(shown.stdout)["timeline"] if t["kind"] == "receivables"]
    assert [t.split(":")[0] for t in timeline] == ["dunning.reminder", "dunning.overdue", "dunning.final"]


@pytest.fixture(params=["sqlite", "postgresql"])
def shop_books(shop_factory, platforms, request):  # noqa: ANN001, ANN201
    """A Shopify merchant (on SQLite, then PostgreSQL) whose manual payments are on net 30, chased in three
    stages; its hub served over real HTTP for the store's webhooks."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    hub = request.getfixturevalue("make_hub")(url)     # after the database: closed before it is dropped
    shop = shop_factory(hub)
    with hub.session() as s:
        save_overrides(s, shop.merchant_id, {"receivables": {"terms": {"manual": 30}, "dunning": STAGES}})
        s.commit()
    with served(create_app(hub)) as base:
        yield hub, shop, base


def test_two_dunning_passes_at_once_act_once(shop_books, platforms) -> None:  # noqa: ANN001
    hub, shop, base = shop_books
    qb, hs = platforms.quickbooks, platforms.hubspot
    orders = []
    for i in range(4):
        order = an_order(460_001 + i, 2001 + i, financial_status="pending", gateway="manual",
                         email=f"buyer{i}@example.com", created_at=datetime.now(UTC) - timedelta(days=70))
        platforms.shopify.add_order(shop.domain, order)
        body, headers = webhook(order, shop.domain)
        assert requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200
        orders.append(order)
    assert [r.status for r in settled(hub)] == ["succeeded"] * 4
    invoices = [i for i in qb.objects(shop.realm, "Invoice")]
    assert {i["SalesTermRef"]["name"] for i in invoices} == {"Net 30"} and len(invoices) == 4
    as_of = datetime.now(COMPANY_TZ).date()
    start = threading.Barrier(2)
    passes = []

    def worker() -> None:
        start.wait()
        passes.append(dunning_pass(hub, shop.merchant_id, as_of))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(passes) == 2 and not any(p.failed for p in passes)
    acted = sorted(a for p in passes for a in p.acted)
    assert acted == sorted((str(2001 + i), "final") for i in range(4))   # each invoice's latest stage, once
    sends = [c for c in qb.calls if c.path.endswith("/send") and c.method == "POST"]
    assert len(sends) == 4
    assert len(hs.task_list(shop.portal)) == 4
    with hub.session() as s:
        rows = list(s.scalars(select(DunningAction)))
    assert len(rows) == 12 and {r.status for r in rows} == {"done"}
    # the earlier stages reached on the same day are recorded as such, without acting
    assert sorted(r.done.get("skipped", "") for r in rows if r.stage != "final") == \
        ["reached together with final"] * 8


@pytest.mark.parametrize("shop_books", ["sqlite"], indirect=True)
def test_the_daily_pass_beside_the_catch_up_chases_once_a_day(shop_books, platforms) -> None:  # noqa: ANN001
    hub, shop, base = shop_books
    qb = platforms.quickbooks
    order = an_order(470_001, 3001, financial_status="pending", gateway="manual",
                     created_at=datetime.now(UTC) - timedelta(days=35))
    platforms.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)
    assert requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200
    assert [r.status for r in settled(hub)] == ["succeeded"]
    assert catchup._running.acquire(timeout=10)   # what run_due_catchups does before it starts the pass …
    catchup._due_pass(hub, 3600)                   # … every O2C_CATCHUP_INTERVAL (0, off, in the tests)
    with hub.session() as s:
        assert [(r.stage, r.status) for r in s.scalars(select(DunningAction).order_by(DunningAction.id))] == [
            ("reminder", "done"), ("overdue", "done")]
    sends = sum(1 for c in qb.calls if c.path.endswith("/send"))
    assert sends == 1
    before = len(qb.calls)
    run_daily_dunning(hub)         # the same day again: nothing asked of QuickBooks
    assert len(qb.calls) == before


@pytest.mark.parametrize("shop_books", ["sqlite"], indirect=True)
def test_shopify_payment_terms_decide_the_due_date(shop_books, platforms) -> None:  # noqa: ANN001
    hub, shop, base = shop_books
    created = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    specs = [(480_001, 4001, "pending", {"type": "NET", "due_in_days": 15}),
             (480_002, 4002, "pending", {"type": "FIXED", "due_at": datetime(2026, 12, 20, 8, 0, tzinfo=UTC)}),
             (480_003, 4003, "paid", {"type": "NET", "due_in_days": 60}),        # paid at checkout
             (480_004, 4004, "pending", {"type": "RECEIPT"})]
    for order_id, number, status, terms in specs:
        order = an_order(order_id, number, financial_status=status, created_at=created, payment_terms=terms)
        platforms.shopify.add_order(shop.domain, order)
        body, headers = webhook(order, shop.domain)
        assert requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200
    assert [r.status for r in settled(hub)] == ["succeeded"] * 4
    by_number = {i["DocNumber"]: i for i in platforms.quickbooks.objects(shop.realm, "Invoice")}
    assert (by_number["4001"]["SalesTermRef"]["name"], by_number["4001"]["DueDate"]) == ("Net 15", "2026-11-17")
    assert (by_number["4002"]["SalesTermRef"]["name"], by_number["4002"]["DueDate"]) == ("Net 48", "2026-12-20")
    for number in ("4003", "4004"):
        assert "SalesTermRef" not in by_number[number] and by_number[number]["DueDate"] == "2026-11-02"
    assert sorted(t["Name"] for t in platforms.quickbooks.objects(shop.realm, "Term")) == ["Net 15", "Net 48"]


def test_the_simulated_platforms_refuse_what_the_real_ones_refuse(platforms) -> None:  # noqa: ANN001
    """Terms, due dates, reports and invoice send in QuickBooks; custom properties and tasks in HubSpot, through
    the hub's own connectors."""
    from connectors.errors import Permanent
    from connectors.hubspot import HubSpotClient
    from connectors.quickbooks import QuickBooksClient

    qb_sim, hs_sim = platforms.quickbooks, platforms.hubspot
    qb_sim.add_company("999")
    qb = QuickBooksClient("999", qb_sim.issue_token("999"), api_url=qb_sim.url)
    customer = qb.create("Customer", {"DisplayName": "Grace", "PrimaryEmailAddr": {"Address": "g@example.com"}},
                         request_id="c1")
    item = qb.find_one("Item", "Name", "Sales")
    net15 = qb.create("Term", {"Name": "Net 15", "Type": "STANDARD", "DueDays": 15}, request_id="t1")
    eom = qb.create("Term", {"Name": "Due 10th", "Type": "DATE_DRIVEN", "DayOfMonthDue": 10,
                             "DueNextMonthDays": 5}, request_id="t2")
    with pytest.raises(Permanent, match="Duplicate Name"):
        qb.create("Term", {"Name": "net 15", "DueDays": 20}, request_id="t3")

    def invoice(rid: str, **extra: object) -> dict:
        return qb.create("Invoice", {"CustomerRef": {"value": customer["Id"]}, "TxnDate": "2026-11-07",
                                     "Line": [{"DetailType": "SalesItemLineDetail", "Amount": "100.00",
                                               "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1,
                                                                       "UnitPrice": "100.00"}}], **extra},
                         request_id=rid)

    assert invoice("i1", SalesTermRef={"value": net15["Id"]})["DueDate"] == "2026-11-22"
    assert invoice("i2", SalesTermRef={"value": eom["Id"]})["DueDate"] == "2026-12-10"   # 10 Nov is < 5 days away
    assert invoice("i3")["DueDate"] == "2026-11-07"                                       # due on receipt
    with pytest.raises(Permanent, match="Invalid Reference Id"):
        invoice("i4", SalesTermRef={"value": "777"})
    with pytest.raises(Permanent, match="due date cannot be earlier"):
        invoice("i5", DueDate="2026-11-01")
    with pytest.raises(Permanent, match="report_date"):
        qb.report("AgedReceivables", report_date="11/30/2026")
    detail = qb.report("AgedReceivableDetail", report_date="2026-12-15")
    sections = {s["Header"]["ColData"][0]["value"]: s["Summary"]["ColData"][-1]["value"]
                for s in detail["Rows"]["Row"] if "Header" in s}
    # on 15 Dec: Net 15 (due 22 Nov) and Due 10th (due 10 Dec) are 23 and 5 days past due, the one due on
    # receipt 38; a report_date before the invoices' date shows none
    assert sections == {"1 - 30": "200.00", "31 - 60": "100.00"}
    early = qb.report("AgedReceivables", report_date="2026-11-06")
    assert early["Header"]["Option"][1] == {"Name": "NoReportData", "Value": "true"}
    with pytest.raises(Permanent, match="BillEmail"):
        qb.send_invoice(invoice("i6")["Id"])                         # no address to e-mail it to

    hs_sim.add_account("p1")
    hs = HubSpotClient(hs_sim.issue_token("p1"), api_url=hs_sim.url)
    contact = hs_sim.add_contact("p1", {"email": "g@example.com"})
    with pytest.raises(Permanent, match="PROPERTY_DOESNT_EXIST"):
        hs.update_contacts({contact["id"]: {"o2c_ar_balance": "100.00"}})
    assert not hs.contact_property_exists("o2c_ar_balance")
    hs.create_contact_property("o2c_ar_balance", "Open receivables", "number", "number")
    hs.create_contact_property("o2c_ar_balance", "Open receivables", "number", "number")   # 409: already there
    hs.update_contacts({contact["id"]: {"o2c_ar_balance": "100.00"}})
    assert hs_sim.contact_properties("p1", contact["id"])["o2c_ar_balance"] == "100.00"
    task = hs.create_task(contact["id"], subject="Collect", body="100.00", due=datetime(2026, 12, 15, tzinfo=UTC))
    assert [t["id"] for t in hs_sim.task_list("p1")] == [task]
    refused = requests.post(f"{hs_sim.url}/crm/v3/objects/tasks", json={"properties": {"hs_task_subject": "x"}},
                            headers={"Authorization": f"Bearer {hs_sim.issue_token('p1')}"}, timeout=10)
    assert refused.status_code == 400 and "hs_timestamp is required" in refused.json()["message"]


def test_terms_that_run_from_fulfilment_set_the_due_date_when_the_goods_leave(shop_books, platforms) -> None:  # noqa: ANN001

    from demo.simulators.shopify import webhook_headers
    from tests.conftest import SHOPIFY_SECRET

    hub, shop, base = shop_books
    created = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    order = an_order(480_011, 4011, financial_status="pending", created_at=created,
                     payment_terms={"type": "FULFILLMENT", "due_in_days": 10})
    platforms.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)
    assert requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200
    settled(hub)
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    assert "SalesTermRef" not in invoice and invoice["DueDate"] == "2026-11-02"   # not shipped yet
    shipment = order.fulfil(created + timedelta(days=3), company="UPS", numbers=["1Z4011"])
    body = json.dumps(shipment.webhook_body()).encode()
    headers = webhook_headers(shop.domain, "fulfillments/create", body, SHOPIFY_SECRET)
    assert requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200
    runs = settled(hub)
    assert runs[-1].status == "succeeded", runs[-1].reason
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    assert (invoice["SalesTermRef"]["name"], invoice["DueDate"]) == ("Net 13", "2026-11-15")
    assert invoice["TrackingNum"] == "1Z4011"
