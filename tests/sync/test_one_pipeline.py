"""One order pipeline (``sync.orders``), whatever the shape of the work: a retried batch sends nothing that is
already bound, and the preview records exactly what a real sync sends to the platforms, field for field
(compared with the bodies the simulators received)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors import jsonmoney
from demo.simulators.base import Call
from hub.mapping_rules import save_overrides
from hub.models import SyncRun
from mappings.shopify import order_from_graphql
from sync import runs
from sync.orders import runner
from sync.orders.runner import run_orders
from sync.preview import preview_of
from tests.helpers import an_order

CORPUS = Path(__file__).parents[1] / "fixtures" / "corpus"
# discounts, tax modes, gift cards, tips, refunds, foreign currency, guests, partial and no payment
SAMPLE = ["discount_with_tax", "order_fixed_discount_uneven", "line_percent_discount", "unit_price_split",
          "tax_exclusive_8pct", "line_codes_exempt_line", "line_codes_vat_uk", "gift_card_sold",
          "gift_card_with_products", "tip_simple", "tip_with_tax_and_discount", "fully_refunded",
          "partially_refunded", "refunded_shipping_only", "shop_eur_home_usd", "presentment_eur_home_usd",
          "missing_email_guest", "partially_paid", "pending_unpaid", "zero_decimal_jpy", "non_ascii_names"]
WRITES = {"account": "Account", "customer": "Customer", "item": "Item", "invoice": "Invoice", "payment": "Payment",
          "creditmemo": "CreditMemo", "refundreceipt": "RefundReceipt"}


def _open(hub, merchant_id: int, source_ids: list[str]) -> list[int]:  # noqa: ANN001
    ids = []
    with hub.session() as s:
        for source_id in source_ids:
            run, _ = runs.open_run(s, merchant_id=merchant_id, kind="order", platform="shopify",
                                   source_id=source_id, source_name=None, trigger="test")
            ids.append(run.id)
        s.commit()
    return ids


def _qb_writes(calls: list[Call]) -> list[tuple[str, str, dict[str, Any]]]:
    """(operation, entity, body) of every QuickBooks write received, batch items one by one."""
    out = []
    for c in calls:
        if c.method != "POST" or "/v3/company/" not in c.path or c.status >= 400:
            continue
        head = c.path.rstrip("/").rsplit("/", 1)[-1].lower()
        if head == "batch":
            for item in json.loads(c.body, parse_float=Decimal)["BatchItemRequest"]:
                entity = next(k for k in item if k not in ("bId", "operation"))
                out.append(("create", entity, item[entity]))
        elif head in WRITES:
            operation = "void" if "include=void" in c.query else "update" if "operation=update" in c.query \
                else "create"
            out.append((operation, WRITES[head], json.loads(c.body, parse_float=Decimal)))
    return out


def _hubspot_upserts(calls: list[Call]) -> list[list[dict[str, Any]]]:
    return [[i["properties"] for i in json.loads(c.body, parse_float=Decimal)["inputs"]] for c in calls
            if c.method == "POST" and c.path.endswith("/batch/upsert") and c.status < 400]


def _normalised(value: Any, ids: dict[str, str]) -> Any:
    """JSON as sent (Decimals as their digits), with the ids of new objects replaced by their rank."""
    plain = json.loads(jsonmoney.dumps(value), parse_float=Decimal)

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ids.get(x, x) if k in ("value", "TxnId") and isinstance(x, str) else walk(x)
                    for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(plain)


@pytest.mark.parametrize("name", SAMPLE)
def test_the_preview_records_what_a_sync_sends(name: str, make_hub, shop_factory, platforms) -> None:  # noqa: ANN001
    fx = json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))
    order = order_from_graphql(fx["order"], fx["extra_line_nodes"])
    hub = make_hub()
    shop = shop_factory(hub)
    qb, hs = platforms.quickbooks, platforms.hubspot
    qb.add_company(shop.realm, currency=fx["home_currency"], multi_currency=True)   # that fixture's company
    with hub.session() as s:
        save_overrides(s, shop.merchant_id, fx["rules"])
        s.commit()

    preview = preview_of(hub, shop.merchant_id, order)
    assert preview.error is None, preview.error
    qb_before, hs_before = len(qb.calls), len(hs.calls)
    [run_id] = _open(hub, shop.merchant_id, [order.source_id])
    result = run_orders(hub, [run_id], {run_id: lambda: order})
    with hub.session() as s:
        run = s.scalar(select(SyncRun).where(SyncRun.id == run_id))
        assert result.statuses == {run_id: "succeeded"}, run.reason

    sent = _qb_writes(qb.calls[qb_before:])
    recorded = [(r["operation"], r["entity"], r["payload"]) for r in preview.requests if r["platform"] == "quickbooks"]
    assert [(op, entity) for op, entity, _ in recorded] == [(op, entity) for op, entity, _ in sent]
    # the preview's new objects and the sync's matched by entity and rank of creation, then field for field
    p_ids, s_ids = _preview_ids(preview), _sync_ids(qb, shop.realm, sent)
    assert [_normalised(b, p_ids) for _, _, b in recorded] == [_normalised(b, s_ids) for _, _, b in sent]
    assert _normalised(_hubspot_upserts(hs.calls[hs_before:]), {}) == \
        _normalised([r["payload"] for r in preview.requests if r["platform"] == "hubspot"
                     and r["operation"] == "upsert"], {})
    assert sent and (order.customer.email is None or preview.requests[0]["platform"] == "hubspot")


def _preview_ids(preview) -> dict[str, str]:  # noqa: ANN001
    """The ids the preview's recorder answered creates with → ``<Entity>#n``."""
    out: dict[str, str] = {}
    counters: dict[str, int] = {}
    for n, r in enumerate([r for r in preview.requests if r["platform"] == "quickbooks"
                           and r["operation"] == "create"], start=1):
        counters[r["entity"]] = counters.get(r["entity"], 0) + 1
        out[f"new-{r['entity'].lower()}-{n}"] = f"{r['entity']}#{counters[r['entity']]}"
    return out


def _sync_ids(qb, realm: str, sent) -> dict[str, str]:  # noqa: ANN001
    """The ids QuickBooks gave the objects the sync created → ``<Entity>#n`` (in the order they were sent)."""
    out: dict[str, str] = {}
    for entity in {e for op, e, _ in sent if op == "create"}:
        bodies = [b for op, e, b in sent if op == "create" and e == entity]
        objects = sorted(qb.objects(realm, entity), key=lambda o: int(o["Id"]))[-len(bodies):]
        for rank, obj in enumerate(objects, start=1):
            out[str(obj["Id"])] = f"{entity}#{rank}"
    return out


# -- a retried batch sends nothing that is bound ------------------------------------------------------

BUYERS = [("ada@example.com", "Ada", "Lovelace"), ("bob@example.com", "Bob", "Marley"),
          ("cy@example.com", "Cy", "Young"), ("di@example.com", "Di", "Prince")]


def test_a_batch_retried_after_a_fault_sends_nothing_already_bound(make_hub, shop_factory, platforms,
                                                                   monkeypatch) -> None:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    qb, hs = platforms.quickbooks, platforms.hubspot
    platforms.shopify.set_throttle(maximum_available=10_000, restore_rate=1_000, currently_available=10_000,
                                   domain=shop.domain)
    orders = []
    for i in range(8):
        email, first, last = BUYERS[i % len(BUYERS)]
        orders.append(an_order(700_001 + i, 4001 + i, email=email,
                               lines=[{"sku": f"SKU-{i % 3}", "title": f"Thing {i % 3}", "quantity": 1,
                                       "price": "10.00"}],
                               customer={"id": 890_000 + i % 4, "first_name": first, "last_name": last,
                                         "email": email}))
        platforms.shopify.add_order(shop.domain, orders[-1])
    ids = _open(hub, shop.merchant_id, [str(o.order_id) for o in orders])
    steps = runner.STEPS

    def invoices_after_a_fault(ctx) -> None:  # noqa: ANN001 - QuickBooks fails the invoices' batch request
        qb.fail_next(503, 1, path_contains="/batch")
        runner.invoices(ctx)

    monkeypatch.setattr(runner, "STEPS", tuple(invoices_after_a_fault if s is runner.invoices else s
                                               for s in steps))
    first = run_orders(hub, ids)
    assert set(first.statuses.values()) == {"retrying"}
    assert len(_hubspot_upserts([c for c in hs.calls if "/objects/contacts/" in c.path])) == 1
    assert qb.objects(shop.realm, "Invoice") == []
    customers, items = len(qb.objects(shop.realm, "Customer")), len(qb.objects(shop.realm, "Item"))
    monkeypatch.setattr(runner, "STEPS", steps)
    runs.requeue(hub.sessions, ids)
    qb_before, hs_before = len(qb.calls), len(hs.calls)

    second = run_orders(hub, ids)

    assert second.count("succeeded") == 8, second.statuses
    contact_calls = [c for c in hs.calls[hs_before:] if "/objects/contacts/" in c.path]
    assert _hubspot_upserts(contact_calls) == []                      # every contact was bound: none re-sent
    resent = [(op, entity) for op, entity, _ in _qb_writes(qb.calls[qb_before:])]
    assert {entity for _, entity in resent} == {"Invoice", "Payment"}  # no customer or item sent again
    assert sorted(resent) == sorted([("create", "Invoice")] * 8 + [("create", "Payment")] * 8)
    assert (len(qb.objects(shop.realm, "Customer")), len(qb.objects(shop.realm, "Item"))) == (customers, items)
    assert sorted(i["DocNumber"] for i in qb.objects(shop.realm, "Invoice")) == [str(4001 + i) for i in range(8)]
