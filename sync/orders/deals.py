"""The deal step: each order with a HubSpot contact becomes (or moves) one HubSpot deal, upserted by the
unique deal property ``o2c_order_key`` in batches of 100 (so a retry, a second worker or a crash before
the binding never makes a second deal), associated with the contact, with one line item per order line.

The deal bindings are read first: a deal whose properties are unchanged is not sent again. Line items
are created once, when the deal is new; a deal found again without a binding (a crash after the upsert)
has its line items read first, and only the missing ones are created."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from connectors.errors import Permanent
from mappings.hubspot_deals import ORDER_KEY, REFUNDED, explain_deal, line_item_key, line_item_properties
from sync.orders.bindings import NewBinding

if TYPE_CHECKING:
    from sync.orders.context import Entry, OrderContext

HS = "hubspot"


def deals(ctx: OrderContext) -> None:
    if not ctx.rules.hubspot.deals:
        return
    live = [e for e in ctx.live() if e.state.get("contact_id")]
    # a cancelled order (its invoice voided, the run done) moves its deal, when it has one, to its stage
    cancelled = [e for e in ctx.entries if e.order is not None and e.error is None and e.outcome is not None
                 and e.outcome.reason == "voided"]
    if cancelled:
        had = ctx.ledger.bound([ctx.order_source(e) for e in cancelled], HS, "deal")
        live += [e for e in cancelled if ctx.order_source(e) in had]
    if not live:
        return
    ctx.begin(live, "deal")
    try:
        client = ctx.hubspot()
    except Exception as exc:  # noqa: BLE001 - the connection needs reconnecting: these orders wait
        ctx.fail_all(live, exc)
        return
    known = ctx.ledger.bound([ctx.order_source(e) for e in live], HS, "deal")
    todo: list[Entry] = []
    for e in live:
        def build(e: Entry) -> None:
            assert e.order is not None
            props, _ = explain_deal(e.order, ctx.rules)
            e.state["deal"] = props
            b = known.get(ctx.order_source(e))
            if b is not None and (b.data or {}).get("fingerprint") == _fingerprint(props):
                e.rec.record("deal", "unchanged", target_platform=HS, target_type="deal", target_id=b.target_id,
                             message=f"stage {props['dealstage']}")
            else:
                e.state["deal_bound"] = b.target_id if b is not None else None
                todo.append(e)
        ctx.each([e], build)
    if not todo:
        return
    try:
        _upsert(ctx, client, todo)
    except Exception as exc:  # noqa: BLE001 - one batch call: its orders retry together
        ctx.fail_all(todo, exc)


def _upsert_deals(client: Any, todo: list[Entry]) -> list[Any]:
    """The deals upserted, their custom properties made first where missing (the client checks them once in a
    while, not every time: should HubSpot refuse the upsert, they are looked up again and it is sent once more)."""
    def send() -> list[Any]:
        client.ensure_deal_property(ORDER_KEY, "O2C order key", unique=True)
        if any(REFUNDED in e.state["deal"] for e in todo):
            client.ensure_deal_property(REFUNDED, "O2C refunded amount", number=True)
        return client.upsert_deals(ORDER_KEY, [(e.state["deal"][ORDER_KEY], e.state["deal"]) for e in todo])

    try:
        return send()
    except Permanent:   # a property deleted in HubSpot since it was checked, say
        client.forget_deal_properties()
        return send()


def _upsert(ctx: OrderContext, client: Any, todo: list[Entry]) -> None:
    answers = {d.key: d for d in _upsert_deals(client, todo)}
    first_time = [e for e in todo if e.state["deal_bound"] is None and e.state["deal"][ORDER_KEY] in answers]
    pairs = [(answers[e.state["deal"][ORDER_KEY]].id, e.state["contact_id"]) for e in first_time]
    client.associate_contacts(pairs)
    companies = client.companies_of(sorted({c for _, c in pairs})) if pairs else {}
    if companies:   # and the contact's company, when it has one
        client.associate_companies([(deal, companies[c]) for deal, c in pairs if c in companies])
    found_again = [answers[e.state["deal"][ORDER_KEY]].id for e in first_time
                   if not answers[e.state["deal"][ORDER_KEY]].new]
    existing = client.line_items_of(found_again, ["name", "hs_sku", "quantity"]) if found_again else {}
    items = []
    for e in first_time:
        deal_id = answers[e.state["deal"][ORDER_KEY]].id
        have = [line_item_key(p) for p in existing.get(deal_id, [])]
        for line in e.order.lines:
            props = line_item_properties(line, e.order.currency)
            if line_item_key(props) in have:
                have.remove(line_item_key(props))   # created by the pass that crashed
            else:
                items.append((deal_id, props))
    client.create_line_items(items)
    rows = []
    for e in todo:
        deal = answers.get(e.state["deal"][ORDER_KEY])
        if deal is None:
            e.fail(RuntimeError(f"HubSpot did not return the deal of order {e.order.name}"))
            continue
        rows.append(NewBinding(ctx.order_source(e), HS, "deal", deal.id,
                               {"fingerprint": _fingerprint(e.state["deal"]), "stage": e.state["deal"]["dealstage"]},
                               e.run.id))
        outcome = "created" if deal.new else ("updated" if e.state["deal_bound"] else "found")
        e.rec.record("deal", outcome, target_platform=HS, target_type="deal", target_id=deal.id,
                     message=f"stage {e.state['deal']['dealstage']}, amount {e.state['deal']['amount']}"
                             + (f", {len(e.order.lines)} line items" if e in first_time else ""))
    ctx.ledger.bind_many(rows)


def _fingerprint(props: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(props, sort_keys=True).encode()).hexdigest()[:20]
