"""The contact step: each buyer with an e-mail address becomes (or updates) a HubSpot contact, upserted by
e-mail, 100 per batch upsert. The contact bindings are read first: a buyer bound to a contact with the
same properties (a retried run, a second order that changes nothing) is not sent again."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from connectors.errors import Permanent
from connectors.hubspot import BATCH_LIMIT
from mappings.hubspot import contact_properties
from sync.ledger import Source
from sync.narrowing import named_values, settle
from sync.orders.bindings import NewBinding

if TYPE_CHECKING:
    from sync.orders.context import Entry, OrderContext

HS = "hubspot"


def contacts(ctx: OrderContext) -> None:
    """One HubSpot batch upsert per 100 buyers not bound yet with these properties; a refused batch is
    narrowed (``_upsert``) so a bad address fails only its own orders."""
    live = ctx.live()
    ctx.begin(live, "contact")
    try:
        client = ctx.hubspot()
    except Exception as exc:  # noqa: BLE001 - e.g. the connection needs reconnecting: every order waits
        ctx.fail_all(live, exc)
        return
    by_email: dict[str, list[Entry]] = defaultdict(list)
    for e in live:
        assert e.order is not None
        if client is None:
            e.rec.record("contact", "skipped", message="no HubSpot connection")
        elif not e.order.customer.email:
            e.rec.record("contact", "skipped", message="the order has no e-mail address")
        else:
            by_email[e.order.customer.email.strip().lower()].append(e)
    if client is None or not by_email:
        return
    props: dict[str, dict[str, str]] = {}
    for email, group in by_email.items():
        def build(e: Entry, email: str = email) -> None:
            assert e.order is not None
            props[email] = contact_properties(e.order.customer, e.order, ctx.rules)
        ctx.each(group, build)   # the latest order of a buyer gives its properties
    known = ctx.ledger.bound([Source("hub", "buyer", ctx.buyer_key(e)) for g in by_email.values() for e in g],
                             HS, "contact")
    emails = []
    for m in [m for m in by_email if m in props]:
        bound = [known.get(Source("hub", "buyer", ctx.buyer_key(e))) for e in by_email[m] if e.live]
        if bound and all(b is not None and (b.data or {}).get("fingerprint") == fingerprint(props[m])
                         for b in bound):
            for e, b in zip([e for e in by_email[m] if e.live], bound, strict=True):
                e.state["contact_id"] = b.target_id
                e.rec.record("contact", "found", target_platform=HS, target_type="contact", target_id=b.target_id,
                             message="bound earlier, unchanged")
        else:
            emails.append(m)
    for start in range(0, len(emails), BATCH_LIMIT):
        _upsert(ctx, client, emails[start:start + BATCH_LIMIT], props, by_email)


def fingerprint(properties: dict[str, str]) -> str:
    """What a contact binding remembers of the properties last sent."""
    return hashlib.sha256(json.dumps(properties, sort_keys=True).encode()).hexdigest()[:20]


def _upsert(ctx: OrderContext, client: Any, emails: list[str], props: dict[str, dict[str, str]],
            by_email: dict[str, list[Entry]]) -> None:
    """One batch upsert for ``emails``. HubSpot refuses a whole batch for one bad input (400, naming the
    first it found): that input, or else each half, is sent again apart, so only the bad buyer's orders
    fail. An input missing from an answer that has the others (a 207) is asked for again on its own."""
    def call(part: list[str]) -> list[Any]:
        return client.upsert_contacts([props[m] for m in part])

    rows: list[NewBinding] = []
    again: list[str] = []
    for part, answer in settle(emails, call, suspects=named_values(lambda m: m)):
        if isinstance(answer, Exception):
            ctx.fail_all([e for m in part for e in by_email[m]], answer)
            continue
        found = {r.email: r for r in answer}
        for m in part:
            result = found.get(m) or (answer[0] if len(part) == 1 and len(answer) == 1 else None)
            if result is None:
                if len(part) > 1:
                    again.append(m)
                else:
                    ctx.fail_all(by_email[m], Permanent(f"HubSpot did not return the contact {m}", platform=HS))
                continue
            for e in by_email[m]:
                if not e.live:
                    continue
                e.state["contact_id"] = result.id
                rows.append(NewBinding(Source("hub", "buyer", ctx.buyer_key(e)), HS, "contact", result.id,
                                       {"email": result.email, "fingerprint": fingerprint(props[m])}, e.run.id))
                e.rec.record("contact", "created" if result.created else "updated", target_platform=HS,
                             target_type="contact", target_id=result.id)
    ctx.ledger.bind_many(rows)
    for m in again:
        _upsert(ctx, client, [m], props, by_email)
