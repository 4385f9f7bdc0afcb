"""The order ledger: *what happened to order #1001?*, answered by `o2c orders list|show` from one row per
store order that follows its runs and bindings."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from cli.main import main as o2c
from hub.models import SyncRun
from hub.order_models import StoreOrder
from sync.catchup import catch_up
from tests.helpers import an_order, settled, webhook

QB_FAULT_6000 = json.dumps({"Fault": {"Error": [{
    "Message": "A business validation error has occurred while processing your request",
    "Detail": "Business Validation Error: the customer is inactive", "code": "6000", "element": ""}],
    "type": "ValidationFault"}, "time": "2026-01-05T10:00:00.000-08:00"})


@pytest.fixture
def spine(hub, client, shop, platforms):  # noqa: ANN001, ANN201
    return hub, client, shop, platforms


def cli(*args: str) -> Any:
    result = CliRunner().invoke(o2c, list(args))
    assert result.exit_code == 0, (result.output, result.stderr)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def send(client: Any, p: Any, shop: Any, order: Any, topic: str = "orders/create") -> None:
    p.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain, topic)
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200


def test_every_order_is_listed_in_sync_with_its_invoice_payment_and_contact(spine) -> None:  # noqa: ANN001
    hub, client, shop, p = spine
    paid, unpaid = an_order(), an_order(order_id=450_002, number=1002, financial_status="pending")
    for order in (paid, unpaid):
        send(client, p, shop, order)
    settled(hub)

    rows = cli("orders", "list", "--merchant", str(shop.merchant_id), "--json")
    assert [r["name"] for r in rows] == ["#1002", "#1001"]          # newest first
    invoices = {i["DocNumber"]: i for i in p.quickbooks.objects(shop.realm, "Invoice")}
    [payment] = p.quickbooks.objects(shop.realm, "Payment")
    [contact] = p.hubspot.contacts(shop.portal)
    for row, order in zip(rows, (unpaid, paid), strict=True):
        invoice = invoices[str(order.number)]
        assert row["state"] == "in_sync" and row["reason"] is None
        assert (row["merchant"], row["platform"], row["id"]) == (shop.merchant_id, "shopify", str(order.order_id))
        assert Decimal(row["total"]) == order.total and row["currency"] == "USD"
        assert row["quickbooks"]["invoice_id"] == invoice["Id"]
        assert row["quickbooks"]["doc_number"] == invoice["DocNumber"]
        assert Decimal(row["quickbooks"]["total"]) == Decimal(str(invoice["TotalAmt"]))
        assert row["hubspot"]["contact_id"] == contact["id"]
        assert row["received_at"] and row["invoiced_at"] and len(row["runs"]) == 1
    assert rows[1]["quickbooks"]["payment_ids"] == [payment["Id"]] and rows[1]["paid_at"]
    assert rows[0]["quickbooks"]["payment_ids"] == [] and rows[0]["paid_at"] is None
    assert rows[0]["financial_status"] == "pending" and rows[1]["financial_status"] == "paid"

    detail = cli("orders", "show", str(shop.merchant_id), "#1001", "--json")
    assert detail["id"] == str(paid.order_id) and detail["runs"] == rows[1]["runs"]
    texts = [e["text"] for e in detail["timeline"]]
    assert texts[0] == "shopify webhook orders/create received"
    assert any(t.startswith(f"invoice created → quickbooks invoice {invoices['1001']['Id']}") for t in texts)
    assert any(t.startswith(f"payment created → quickbooks payment {payment['Id']}") for t in texts)
    by_id = cli("orders", "show", str(shop.merchant_id), str(paid.order_id), "--json")
    assert by_id["name"] == "#1001"
    assert "in_sync" in cli("orders", "show", str(shop.merchant_id), "1002")


def test_a_failing_order_shows_why_and_is_in_sync_again_after_a_successful_rerun(spine) -> None:  # noqa: ANN001
    hub, client, shop, p = spine
    p.quickbooks.fail_next(400, 1, path_contains="/invoice", body=QB_FAULT_6000)
    send(client, p, shop, an_order())
    [run] = settled(hub)
    assert run.status == "failed"

    [row] = cli("orders", "list", "--state", "failing", "--json")
    assert row["name"] == "#1001" and "inactive" in row["reason"] and row["quickbooks"]["invoice_id"] is None
    assert cli("orders", "list", "--state", "in_sync", "--json") == []

    # a catch-up pass finds the order unchanged since it failed: it adds no run
    with hub.session() as s:
        conn_id = s.scalar(select(SyncRun.connection_id).where(SyncRun.id == run.id))
    assert conn_id is not None
    catch_up(hub, shop.merchant_id)
    with hub.session() as s:
        assert s.scalar(select(func.count()).select_from(SyncRun)) == 1

    retried = CliRunner().invoke(o2c, ["syncs", "retry", str(run.id)])
    assert retried.exit_code == 0, retried.output
    [run] = settled(hub)
    assert run.status == "succeeded"
    [row] = cli("orders", "list", "--json")
    assert row["state"] == "in_sync" and row["reason"] is None and row["quickbooks"]["invoice_id"]
    assert cli("syncs", "list", "--status", "failed", "--json") == []
    detail = cli("orders", "show", str(shop.merchant_id), "#1001", "--json")
    assert any(e["kind"] == "attempt" and "failed" in e["text"] for e in detail["timeline"])


def test_a_redelivery_while_the_order_retries_joins_its_open_run(spine) -> None:  # noqa: ANN001
    hub, client, shop, p = spine
    p.quickbooks.fail_next(503, 1, path_contains="/invoice")
    order = an_order()
    send(client, p, shop, order)
    send(client, p, shop, order, topic="orders/updated")
    runs = settled(hub)
    assert [r.status for r in runs][-1] == "succeeded"
    with hub.session() as s:
        [ledger_row] = s.scalars(select(StoreOrder)).all()
    assert ledger_row.state == "in_sync" and ledger_row.last_run_id == runs[-1].id


def test_the_migration_fills_the_ledger_from_existing_runs_and_bindings(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from hub.db import MIGRATIONS

    engine = create_engine(database_url)
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
        conn.execute(text("INSERT INTO merchants (id, name, created_at) VALUES (1, 'M', '2026-01-01 00:00:00')"))
        conn.execute(text(
            "INSERT INTO sync_runs (id, merchant_id, kind, source_platform, source_id, source_name, status, attempts,"
            " reason, created_at, updated_at, canonical) VALUES"
            " (1, 1, 'order', 'shopify', '11', '#11', 'failed', 1, 'boom', '2026-01-01 00:00:00',"
            "  '2026-01-01 00:00:00', NULL),"
            " (2, 1, 'order', 'shopify', '11', '#11', 'succeeded', 1, NULL, '2026-01-02 00:00:00',"
            "  '2026-01-02 00:00:00', :canonical),"
            " (3, 1, 'order', 'shopify', '12', '#12', 'failed', 2, 'no item', '2026-01-02 00:00:00',"
            "  '2026-01-02 00:00:00', NULL)"),
            {"canonical": json.dumps({"name": "#11", "currency": "EUR", "total": "68.75",
                                      "financial_status": "paid", "created_at": "2026-01-01T10:00:00+01:00"})})
        conn.execute(text(
            "INSERT INTO bindings (merchant_id, source_platform, source_type, source_id, target_platform,"
            " target_type, target_id, data, sync_run_id, created_at, updated_at) VALUES"
            " (1, 'shopify', 'order', '11', 'quickbooks', 'invoice', '901', :inv, 2, '2026-01-02 00:00:00',"
            "  '2026-01-02 00:00:00'),"
            " (1, 'shopify', 'order', '11', 'quickbooks', 'payment', '902', '{}', 2, '2026-01-02 00:00:00',"
            "  '2026-01-02 00:00:00')"),
            {"inv": json.dumps({"doc_number": "11", "total": "68.75", "balance": "0"})})
        command.upgrade(cfg, "head")
        rows = {r.order_id: r for r in conn.execute(text("SELECT * FROM store_orders"))}
    engine.dispose()
    assert set(rows) == {"11", "12"}
    done, stuck = rows["11"], rows["12"]
    assert (done.state, done.reason, done.invoice_id, done.doc_number) == ("in_sync", None, "901", "11")
    assert (done.currency, done.total, done.invoice_balance) == ("EUR", "68.75", "0")
    payments = json.loads(done.payment_ids) if isinstance(done.payment_ids, str) else done.payment_ids
    assert payments == ["902"]
    assert (stuck.state, stuck.reason, stuck.invoice_id) == ("failing", "no item", None)


def test_the_migration_keys_existing_woocommerce_bindings_by_their_store(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from hub.db import MIGRATIONS

    engine = create_engine(database_url)
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")
        conn.execute(text("INSERT INTO merchants (id, name, created_at) VALUES (1, 'M', '2026-01-01 00:00:00'),"
                          " (2, 'N', '2026-01-01 00:00:00')"))
        conn.execute(text(
            "INSERT INTO connections (id, merchant_id, platform, account, status, settings, created_at, updated_at)"
            " VALUES (1, 1, 'woocommerce', 'https://cafe.example', 'active', '{}', '2026-01-01', '2026-01-01'),"
            " (2, 1, 'woocommerce', 'https://bakery.example', 'active', '{}', '2026-01-01', '2026-01-01'),"
            " (3, 2, 'woocommerce', 'https://solo.example', 'active', '{}', '2026-01-01', '2026-01-01')"))
        conn.execute(text(
            "INSERT INTO sync_runs (id, merchant_id, kind, source_platform, source_id, status, attempts,"
            " created_at, updated_at, connection_id) VALUES"
            " (1, 1, 'order', 'woocommerce', '12', 'succeeded', 1, '2026-01-02', '2026-01-02', 2)"))
        conn.execute(text(
            "INSERT INTO bindings (merchant_id, source_platform, source_type, source_id, target_platform,"
            " target_type, target_id, data, sync_run_id, created_at, updated_at) VALUES"
            " (1, 'woocommerce', 'order', '12', 'quickbooks', 'invoice', '901', '{}', 1, '2026-01-02', '2026-01-02'),"
            " (2, 'woocommerce', 'order', '12', 'quickbooks', 'invoice', '902', '{}', NULL, '2026-01-02',"
            "  '2026-01-02'),"
            " (1, 'hub', 'buyer', 'a@b.c', 'quickbooks', 'customer', '7', '{}', 1, '2026-01-02', '2026-01-02'),"
            " (1, 'hub', 'buyer', 'order:woocommerce:12', 'quickbooks', 'customer', '8', '{}', 1, '2026-01-02',"
            "  '2026-01-02'),"
            " (2, 'hub', 'buyer', 'order:woocommerce:12|EUR', 'quickbooks', 'customer', '9', '{}', NULL,"
            "  '2026-01-02', '2026-01-02'),"
            " (1, 'hub', 'buyer', 'order:woocommerce:13', 'quickbooks', 'customer', '10', '{}', NULL,"
            "  '2026-01-02', '2026-01-02')"))
        command.upgrade(cfg, "head")
        rows = conn.execute(text("SELECT * FROM bindings")).all()
        stores = {r.target_id: r.source_store for r in rows}
        keys = {r.target_id: r.source_id for r in rows}
    engine.dispose()
    # from the run that wrote it; the merchant's only store; the hub's own sources stay merchant-wide
    assert stores == {"901": "https://bakery.example", "902": "https://solo.example",
                      "7": "", "8": "", "9": "", "10": ""}
    # a guest (one customer per order) is an order of one store: its key names the store the same way, and
    # a guest of a merchant with two stores whose run is gone keeps its key (nothing tells the store)
    assert keys["8"] == "order:woocommerce:12@https://bakery.example"
    assert keys["9"] == "order:woocommerce:12@https://solo.example|EUR"
    assert keys["10"] == "order:woocommerce:13" and keys["7"] == "a@b.c"


def test_the_api_lists_orders_and_shows_one_with_its_timeline(spine) -> None:  # noqa: ANN001
    from hub.users import create_user

    hub, client, shop, p = spine
    send(client, p, shop, an_order())
    send(client, p, shop, an_order(order_id=450_002, number=1002))
    settled(hub)
    with hub.session() as s:
        create_user(s, "support@example.com", "a long enough password", "support", None)
    token = CliRunner().invoke(o2c, ["token", "create", "support@example.com", "--name", "t"]).stdout.split()[-1]
    auth = {"Authorization": f"Bearer {token}"}

    first = client.get("/api/v1/orders?limit=1", headers=auth).get_json()
    assert [o["name"] for o in first["orders"]] == ["#1002"] and first["next"]
    second = client.get(f"/api/v1/orders?limit=1&before={first['next']}", headers=auth).get_json()
    assert [o["name"] for o in second["orders"]] == ["#1001"] and second["next"] is None
    assert client.get("/api/v1/orders?state=failing", headers=auth).get_json()["orders"] == []
    assert client.get("/api/v1/orders?state=bogus", headers=auth).status_code == 400

    one = client.get("/api/v1/orders/shopify/450001", headers=auth)
    assert one.status_code == 200, one.get_json()
    detail = one.get_json()
    assert detail["name"] == "#1001" and detail["state"] == "in_sync" and detail["timeline"]
    assert client.get("/api/v1/orders/shopify/999", headers=auth).status_code == 404
    assert client.get("/api/v1/orders/quickbooks/450001", headers=auth).status_code == 404
    assert client.get("/api/v1/orders").status_code == 401
