"""The deal step: each order with a HubSpot contact becomes (or moves) one HubSpot deal, upserted by the
unique deal property ``o2c_order_key`` in batches of 100 (so a retry, a second worker or a crash before
the binding never makes a second deal), associated with the contact, with one line item per order line.

The deal bindings are read first: a deal whose properties are unchanged is not sent again. Line items
are created once, when the deal is new; a deal found again without a binding (a crash after the upsert)
has its line items read first, and only the missing ones are created."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connectors.errors import Permanent
from mappings.hubspot_deals import ORDER_KEY, REFUNDED, explain_deal, line_item_key, line_item_properties
from sync.orders.bindings import NewBinding

if TYPE_CHECKING:
    from sync.orders.context import Entry, OrderContext

HS = "hubspot"
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="o2c-hubspot")


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
    contacts = sorted({e.state["contact_id"] for e in todo if e.state["deal_bound"] is None})
    # the contacts' companies are read while the deals are upserted (neither needs the other)
    upserted, companies = _together(lambda: _upsert_deals(client, todo),
                                    lambda: client.companies_of(contacts) if contacts else {})
    answers = {d.key: d for d in upserted}
    first_time = [e for e in todo if e.state["deal_bound"] is None and e.state["deal"][ORDER_KEY] in answers]
    pairs = [(answers[e.state["deal"][ORDER_KEY]].id, e.state["contact_id"]) for e in first_time]
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
    company_pairs = [(deal, companies[c]) for deal, c in pairs if c in companies]
    # the associations (with the contact and its company) and the line items go out together: each is
    # idempotent or checked again (``line_items_of``) should the pass fail before the bindings are written
    _together(lambda: client.associate_contacts(pairs),
              lambda: client.associate_companies(company_pairs) if company_pairs else None,
              lambda: client.create_line_items(items))
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


def _together(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` at once (HubSpot calls that wait on the network, not on each other); their results in
    order, or the first one's error once all have ended."""
    futures = [_POOL.submit(call) for call in calls]
    concurrent.futures.wait(futures)
    for f in futures:
        if f.exception() is not None:
            raise f.exception()  # type: ignore[misc]
    return [f.result() for f in futures]


def _fingerprint(props: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(props, sort_keys=True).encode()).hexdigest()[:20]
