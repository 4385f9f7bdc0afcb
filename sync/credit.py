"""Credit limits and holds: a limit per QuickBooks customer (``o2c credit set``, the console), the net-terms
orders checked against it (the pipeline's ``credit`` step, ``sync.orders.credit``), and the holds released when
a payment brings the customer's exposure back within the limit, or by an approver.

Exposure (``mappings.credit``) = ``Customer.Balance`` read fresh from QuickBooks (1 call) + the customer's
unpaid net-terms orders the hub has checked but not yet invoiced. Holding and releasing run under a lock per
limit, so a payment arriving while the order is synced never races it. Every change is in the audit log:
``credit.limit`` (who set what), ``credit.hold`` and ``credit.release`` (on the order, so its timeline shows
them). Calls per hold: QuickBooks 1, Shopify 1 + 1 per fulfilment order (WooCommerce 3–4), HubSpot 1 (+2 the
first time, for the property). Per release: the same, and QuickBooks 1 per customer reviewed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from connectors.errors import ConnectorError, Permanent
from connectors.quickbooks import amount
from hub import audit
from hub.credit_models import CreditLimit, CreditOrder
from hub.models import utcnow
from hub.order_models import StoreOrder
from mappings.credit import hold_text, over_limit, parse_limit
from sync import locks
from sync.accounts import Accounts
from sync.credit_holds import place_in_store, release_in_store, write_contact
from sync.ledger import Ledger, Source

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.credit")
ACTOR = "credit"
QB = "quickbooks"
ZERO = Decimal("0.00")


class CreditError(ValueError):
    """A limit that cannot be set (the message says why, for the operator)."""


@dataclass
class CreditCalls:
    calls: dict[str, int] = field(default_factory=lambda: {"quickbooks": 0, "shopify": 0, "woocommerce": 0,
                                                            "hubspot": 0})
    released: list[str] = field(default_factory=list)      # order names


def lock(hub: Hub, merchant_id: int, limit_id: int):  # noqa: ANN201
    return locks.held(hub.sessions, f"{merchant_id}:credit:{limit_id}", ttl=120, wait=60)


# -- limits ------------------------------------------------------------------------------------------
def resolve_customer(hub: Hub, merchant_id: int, customer: str) -> tuple[str | None, str | None, str | None]:
    """(QuickBooks customer id, e-mail, name) of CUSTOMER: a buyer's e-mail (its QuickBooks customer when the hub
    has bound one) or a QuickBooks customer id (read from QuickBooks: 1 call)."""
    text = customer.strip()
    if "@" in text:
        email = text.lower()
        bound = Ledger(hub.sessions, merchant_id).target_id(Source("hub", "buyer", f"email:{email}"), QB, "customer")
        return bound, email, None
    if not text.isdigit():
        raise CreditError(f"{text[:40]!r} is neither an e-mail nor a QuickBooks customer id")
    try:
        row = Accounts(hub, merchant_id).quickbooks().get("Customer", text)
    except Permanent as exc:
        raise CreditError(f"QuickBooks has no customer {text}") from exc
    email = ((row.get("PrimaryEmailAddr") or {}).get("Address") or "").strip().lower() or None
    return text, email, row.get("DisplayName")


def set_limit(hub: Hub, merchant_id: int, customer: str, limit_text: str, actor: str) -> dict[str, Any]:
    """Set (``none``: remove) the credit limit of CUSTOMER; audited. A removed or raised limit releases the holds
    it no longer justifies. Returns the limit's view (``limits_view``) with ``released`` and ``not_reviewed`` (why
    its holds could not be reviewed now, else None)."""
    try:
        value = parse_limit(limit_text)
    except ValueError as exc:
        raise CreditError(str(exc)) from None
    customer_id, email, name = resolve_customer(hub, merchant_id, customer)
    with hub.session() as s:
        row = _find_limit(s, merchant_id, customer_id, email)
        before = row.amount if row is not None else None
        if row is None:
            if value is None:
                raise CreditError(f"{customer.strip()[:60]} has no credit limit to remove")
            row = CreditLimit(merchant_id=merchant_id, customer_key=customer_id or email or "", updated_by=actor)
            s.add(row)
        row.customer_id = row.customer_id or customer_id
        row.email = row.email or email
        row.name = name or row.name
        row.amount = str(value) if value is not None else None
        row.updated_by, row.updated_at = actor[:255], utcnow()
        s.flush()
        audit.record(s, actor, "credit.limit", target_type="credit_limit", target_id=row.id, merchant_id=merchant_id,
                     detail={"customer": customer.strip()[:255], "customer_id": row.customer_id, "email": row.email,
                             "before": before, "after": row.amount})
        s.commit()
        limit_id = row.id
    released: list[str] = []
    not_reviewed = None
    try:
        released = review(hub, merchant_id, [limit_id], actor=actor).released
    except (ConnectorError, locks.LockBusy) as exc:      # saved; the next payment or review releases them
        not_reviewed = str(exc) or "a worker is reviewing them right now"
    view = next(v for v in limits_view(hub, merchant_id) if v["id"] == limit_id)
    return {**view, "released": released, "not_reviewed": not_reviewed}


def _find_limit(s: Any, merchant_id: int, customer_id: str | None, email: str | None) -> CreditLimit | None:
    for column, value in ((CreditLimit.customer_id, customer_id), (CreditLimit.email, email)):
        if value:
            row = s.scalar(select(CreditLimit).where(CreditLimit.merchant_id == merchant_id, column == value)
                           .order_by(CreditLimit.id))
            if row is not None:
                return row
    return None


def limit_for(hub: Hub, merchant_id: int, customer_id: str | None, email: str | None) -> CreditLimit | None:
    """The customer's limit in force (None: none set, or removed)."""
    with hub.session() as s:
        row = _find_limit(s, merchant_id, customer_id, (email or "").strip().lower() or None)
        if row is not None:
            if customer_id and not row.customer_id:        # set by e-mail before the hub knew the customer
                row.customer_id = customer_id
                s.commit()
            s.expunge(row)
    return row if row is not None and row.amount is not None else None


def limits_view(hub: Hub, merchant_id: int) -> list[dict[str, Any]]:
    """Every limit of the merchant with its held orders (``o2c credit list --json``)."""
    with hub.session() as s:
        limits = list(s.scalars(select(CreditLimit).where(CreditLimit.merchant_id == merchant_id)
                                .order_by(CreditLimit.id)))
        held = _held_by_limit(s, merchant_id)
    return [{"id": li.id, "customer": li.email or li.customer_id, "customer_id": li.customer_id, "email": li.email,
             "name": li.name, "limit": li.amount, "updated_by": li.updated_by,
             "updated_at": li.updated_at.isoformat(timespec="seconds") + "Z",
             "held": [o["order"] for o in held.get(li.id, [])]} for li in limits]


def _held_by_limit(s: Any, merchant_id: int) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for row in s.scalars(select(CreditOrder).where(CreditOrder.merchant_id == merchant_id,
                                                   CreditOrder.hold_status.in_(("placing", "held")))
                         .order_by(CreditOrder.id)):
        out.setdefault(row.limit_id, []).append({"order": row.order_name or row.order_id, "id": row.id,
                                                 "store_order_id": row.store_order_id, "exposure": row.exposure,
                                                 "limit": row.limit_amount, "platform": row.platform,
                                                 "held_at": row.held_at})
    return out


def holds_view(hub: Hub, merchant_id: int) -> list[dict[str, Any]]:
    """The held orders per customer: ``[{customer, limit, exposure, orders}]`` (``o2c receivables --json``)."""
    with hub.session() as s:
        held = _held_by_limit(s, merchant_id)
        limits = {li.id: li for li in s.scalars(select(CreditLimit).where(CreditLimit.id.in_(list(held))))}
    return [{"customer": limits[lid].email or limits[lid].customer_id, "limit": limits[lid].amount,
             "exposure": str(max((Decimal(o["exposure"] or 0) for o in rows), default=ZERO)),
             "orders": [o["order"] for o in rows], "holds": [o["id"] for o in rows]}
            for lid, rows in held.items() if lid in limits]


# -- exposure ----------------------------------------------------------------------------------------
def exposure(hub: Hub, qb: Any, limit: CreditLimit, calls: dict[str, int]) -> Decimal:
    """``Customer.Balance`` (fresh) + the customer's checked, unpaid orders not invoiced yet."""
    balance = ZERO
    if limit.customer_id:
        balance = amount(qb.get("Customer", limit.customer_id).get("Balance"))
        calls["quickbooks"] += 1
    with hub.session() as s:
        pending = s.scalars(select(CreditOrder.amount)
                            .outerjoin(StoreOrder, StoreOrder.id == CreditOrder.store_order_id)
                            .where(CreditOrder.limit_id == limit.id, CreditOrder.settled.is_(False),
                                   StoreOrder.invoice_id.is_(None)))
        return balance + sum((Decimal(a) for a in pending), ZERO)


# -- holds -------------------------------------------------------------------------------------------
def hold(hub: Hub, accounts: Accounts, row_id: int, limit: CreditLimit, exposure_now: Decimal, currency: str,
         calls: dict[str, int]) -> str:
    """Place (or finish placing) the hold of checked order ``row_id``: claimed first, then the store, the
    audit entry and HubSpot. Returns ``held`` or ``nothing`` (nothing left to ship). Store errors propagate
    (the row stays ``placing``: the retry finishes it)."""
    with hub.session() as s:
        row = s.get(CreditOrder, row_id)
        assert row is not None
        if row.hold_status in ("held", "released", "releasing"):
            return row.hold_status
        if row.hold_status is None:
            row.hold_status, row.exposure, row.limit_amount = "placing", str(exposure_now), limit.amount
            s.commit()
        s.expunge(row)
    text = hold_text(row.order_name or row.order_id, Decimal(row.exposure or exposure_now),
                     Decimal(row.limit_amount or limit.amount or 0), currency)
    def keep_status(status: str) -> None:
        with hub.session() as s:
            s.get(CreditOrder, row_id).previous_status = status
            s.commit()

    done = place_in_store(accounts, row, text, calls, keep_status)
    with hub.session() as s:
        row = s.get(CreditOrder, row_id)
        if "nothing" in done:
            row.hold_status, row.done, row.error = None, done, done["nothing"]
            s.commit()
            return "nothing"
        row.hold_status, row.done, row.held_at, row.updated_at = "held", done, utcnow(), utcnow()
        row.previous_status = done.get("previous_status") or row.previous_status
        row.error = None
        audit.record(s, ACTOR, "credit.hold", target_type="store_order", target_id=row.store_order_id,
                     merchant_id=row.merchant_id, detail={"text": text, "limit": row.limit_amount,
                                                          "exposure": row.exposure, "order": row.order_name})
        s.commit()
        contact = row.contact_id
        merchant_id = row.merchant_id
    _contact(hub, accounts, merchant_id, contact, calls)
    return "held"


def release(hub: Hub, accounts: Accounts, row_id: int, actor: str, why: str, calls: dict[str, int]) -> bool:
    """Lift the hold of checked order ``row_id`` (store, audit, HubSpot); False when it was not held."""
    with hub.session() as s:
        row = s.get(CreditOrder, row_id)
        if row is None or row.hold_status not in ("placing", "held", "releasing"):
            return False
        row.hold_status = "releasing"
        s.commit()
        s.expunge(row)
    release_in_store(accounts, row, why, calls)
    with hub.session() as s:
        row = s.get(CreditOrder, row_id)
        row.hold_status, row.released_at, row.released_by, row.updated_at = "released", utcnow(), actor[:255], utcnow()
        audit.record(s, actor, "credit.release", target_type="store_order", target_id=row.store_order_id,
                     merchant_id=row.merchant_id, detail={"text": f"hold on {row.order_name} released: {why}",
                                                          "order": row.order_name})
        s.commit()
        contact, merchant_id = row.contact_id, row.merchant_id
    _contact(hub, accounts, merchant_id, contact, calls)
    return True


def _contact(hub: Hub, accounts: Accounts, merchant_id: int, contact: str | None, calls: dict[str, int]) -> None:
    try:
        write_contact(hub, accounts, merchant_id, contact, calls)
    except ConnectorError as exc:   # the hold stands; the next hold, release or review writes it
        log.warning("merchant %s: o2c_credit_hold of contact %s not written: %s", merchant_id, contact, exc)


def review(hub: Hub, merchant_id: int, limit_ids: list[int], *, actor: str = ACTOR, qb: Any = None) -> CreditCalls:
    """Release the holds these limits no longer justify: an order since paid or cancelled, a limit removed, or
    the customer's exposure back within the limit (1 QuickBooks call per limit with holds)."""
    result = CreditCalls()
    accounts = Accounts(hub, merchant_id)
    for limit_id in sorted(set(limit_ids)):
        with hub.session() as s:
            limit = s.get(CreditLimit, limit_id)
            rows = list(s.scalars(select(CreditOrder).where(CreditOrder.limit_id == limit_id,
                                                            CreditOrder.hold_status.in_(("held", "releasing")))))
            s.expunge_all()
        if limit is None or not rows:
            continue
        with lock(hub, merchant_id, limit_id):
            if limit.amount is None:
                why, ok = "the customer's credit limit was removed", True
            else:
                qb = qb or accounts.quickbooks()
                now = exposure(hub, qb, limit, result.calls)
                why, ok = (f"exposure {now} is within the credit limit of {limit.amount}",
                           not over_limit(now, Decimal(limit.amount)))
            for row in rows:
                reason = "the order is paid or cancelled" if row.settled else why
                if (row.settled or ok) and release(hub, accounts, row.id, actor, reason, result.calls):
                    result.released.append(row.order_name or row.order_id)
    return result


def release_by_approver(hub: Hub, merchant_id: int, row_id: int, actor: str) -> str | None:
    """An approver lifts one hold (the console's Release); returns the order's name, None when not held."""
    with hub.session() as s:
        row = s.get(CreditOrder, row_id)
        if row is None or row.merchant_id != merchant_id:
            return None
        limit_id, name = row.limit_id, row.order_name or row.order_id
    with lock(hub, merchant_id, limit_id):
        done = release(hub, Accounts(hub, merchant_id), row_id, actor, f"released by {actor}", CreditCalls().calls)
    return name if done else None


def after_payment(hub: Hub, merchant_id: int, customer_id: str | None) -> CreditCalls:
    """A payment recorded in QuickBooks for this customer: its holds reviewed now (``sync.payments``)."""
    if not customer_id:
        return CreditCalls()
    with hub.session() as s:
        ids = list(s.scalars(select(CreditLimit.id).where(CreditLimit.merchant_id == merchant_id,
                                                          CreditLimit.customer_id == customer_id)))
    return review(hub, merchant_id, ids)
