"""The failures view groups the orders failing now (not runs) by cause, through the real app, worker and
simulated platforms: each order with its own reason (its own SKU), a readable cause with no placeholder, a
fix linked to the mapping rules, re-run all (the group vanishes once its orders succeed), skip all with a
reason (the orders become skipped in the ledger, audited); an order failing earlier but in sync now is not
listed; the run and order pages suggest the fix with a link."""

from __future__ import annotations

import re

from sqlalchemy import select

from hub.mapping_rules import save_overrides
from hub.models import AuditEntry, SyncRun
from hub.order_models import StoreOrder
from sync.failures import readable
from sync.fixes import fix_for
from tests.helpers import an_order, settled, webhook
from tests.web import test_console
from tests.web.test_console import SUPPORT, Console, html, post

console = test_console.console   # the fixture: a hub, its app and a shop on the simulated platforms
PLACEHOLDER = re.compile(r"<(?:n|id|email|amount)>|\{[a-z_]+\}|got '|\b[A-Z][A-Z0-9]+_[A-Z0-9_]+\b")


def _order(n: int, sku: str):  # noqa: ANN202
    return an_order(450_000 + n, 1000 + n, lines=[{"sku": sku, "title": f"Thing {sku}", "quantity": 1,
                                                   "price": "20.00"}])


def _groups(page: str) -> list[tuple[str, int]]:
    return [(k, int(n)) for k, n in re.findall(r'data-group="(\w+)" data-count="(\d+)"', page)]


def _fail_on_missing_items(console: Console) -> list[SyncRun]:
    with console.hub.session() as s:
        save_overrides(s, console.shop.merchant_id, {"items": {"when_missing": "fail"}}, by="test")
    console.send(_order(1, "LAMP-RED"))
    console.send(_order(2, "CHAIR-OAK-2"))
    runs = settled(console.hub)
    assert [r.status for r in runs] == ["failed", "failed"], [r.reason for r in runs]
    return runs


def test_a_group_lists_the_failing_orders_with_their_own_reasons_and_vanishes_after_they_succeed(
        console: Console) -> None:
    hub, merchant = console.hub, console.shop.merchant_id
    runs = _fail_on_missing_items(console)
    client = console.client()

    page = html(client.get("/console/failures"))
    [(key, count)] = _groups(page)
    assert count == 2 and "2 failing order(s) in 1 group(s)" in page
    section = page.split(f'data-group="{key}"', 1)[1].split("</section>", 1)[0]
    assert "<h2" in section and "A SKU on the order has no QuickBooks item" in section
    assert not PLACEHOLDER.search(section), PLACEHOLDER.search(section)
    # each order, linked to its page, with its own reason: its own SKU and no other's
    for run, number, sku, other in ((runs[0], 1001, "LAMP-RED", "CHAIR-OAK-2"),
                                    (runs[1], 1002, "CHAIR-OAK-2", "LAMP-RED")):
        row = re.search(rf'<tr data-run="{run.id}">(.*?)</tr>', section, re.S).group(1)
        assert f'href="/console/orders/{merchant}/shopify/{450_000 + number - 1000}"' in row and f"#{number}" in row
        assert sku in row and other not in row
    assert f'href="/console/mapping/{merchant}"' in section and "Open the mapping rules" in section
    assert "first seen" in section and "last seen" in section and console.shop.domain not in section

    # the run page and the order page suggest the same fix, with the link
    run_page = html(client.get(f"/console/runs/{runs[0].id}"))
    assert "How to fix:" in run_page and f'href="/console/mapping/{merchant}"' in run_page
    order_page = html(client.get(f"/console/orders/{merchant}/shopify/450001"))
    assert "How to fix:" in order_page and f'href="/console/mapping/{merchant}"' in order_page

    # fix the rule, re-run the group: its orders succeed and the group is gone
    with hub.session() as s:
        save_overrides(s, merchant, {}, by="test")
    assert post(client, f"/console/failures/{key}/rerun").status_code == 302
    assert [r.status for r in settled(hub)] == ["succeeded", "succeeded"]
    assert _groups(html(client.get("/console/failures"))) == []
    assert "No failing orders" in html(client.get("/console/failures"))
    with hub.session() as s:
        assert set(s.scalars(select(StoreOrder.state))) == {"in_sync"}
    assert "How to fix:" not in html(client.get(f"/console/runs/{runs[0].id}"))


def test_skip_a_group_with_a_reason_marks_its_orders_skipped_and_is_audited(console: Console) -> None:
    hub = console.hub
    _fail_on_missing_items(console)
    client = console.client()
    [(key, _)] = _groups(html(client.get("/console/failures")))

    post(client, f"/console/failures/{key}/skip", reason="   ")
    assert "say why" in html(client.get("/console/failures"))
    assert _groups(html(client.get("/console/failures"))) == [(key, 2)]

    assert post(client, f"/console/failures/{key}/skip", reason="sample orders from the trade fair").status_code == 302
    assert _groups(html(client.get("/console/failures"))) == []
    with hub.session() as s:
        rows = s.execute(select(StoreOrder.state, StoreOrder.reason)).all()
        assert [state for state, _ in rows] == ["skipped", "skipped"]
        assert all(reason == f"skipped by {SUPPORT}: sample orders from the trade fair" for _, reason in rows)
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "failures.skip_group"))
        assert entry.actor == SUPPORT and entry.detail["skipped"] == 2 and entry.target_id == key
    assert post(client, f"/console/failures/{key}/skip", reason="again").status_code == 302   # gone: a flash
    assert "no failing orders any more" in html(client.get("/console/failures"))


def test_an_order_in_sync_now_is_not_listed_for_an_older_failed_run(console: Console) -> None:
    hub, merchant = console.hub, console.shop.merchant_id
    with hub.session() as s:
        for status in ("failed", "succeeded"):   # the same order: failed once, in sync since
            s.add(SyncRun(merchant_id=merchant, kind="order", source_platform="shopify", source_id="450009",
                          source_name="#1009", status=status, attempts=1, error_kind="permanent" if status == "failed"
                          else None, reason="quickbooks: boom (code 6000)" if status == "failed" else None))
        s.commit()
    page = html(console.client().get("/console/failures"))
    assert _groups(page) == [] and "No failing orders" in page


def test_causes_read_without_placeholders_and_fixes_are_keyed_by_code() -> None:
    assert readable("SKU '<n>-RED' has no QuickBooks item: no item named 'Lamp <n>'") == \
        "SKU a value has no QuickBooks item: no item named a value"
    assert readable("the total differs by <amount> on <n> lines") == "the total differs by an amount on a number lines"
    assert fix_for("permanent", "quickbooks:no_refresh").where == "connections"
    assert "QuickBooks" in fix_for("permanent", "quickbooks:no_refresh").cause
    assert fix_for("auth", "hubspot").action.startswith("Ask the merchant to reconnect HubSpot")
    assert "multi-currency" in fix_for("mapping", "currency.multi_currency").action
    assert fix_for("mapping", "items.when_missing").where == "mapping"
    assert fix_for("permanent", "quickbooks:6000") is None


def test_a_webhook_for_an_order_the_store_never_had_is_skipped_without_saying_deleted(console: Console) -> None:
    order = an_order(450_077, 1077)              # signed by the shop, but the store has no such order
    body, headers = webhook(order, console.shop.domain)
    assert console.app.test_client().post("/webhooks/shopify", data=body, headers=headers).status_code == 200
    [run] = settled(console.hub)
    assert run.status == "skipped" and "deleted from the store" not in run.reason
    assert "the store has no order #1077" in run.reason and "nothing to invoice" in run.reason
