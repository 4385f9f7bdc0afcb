"""The credit steps of the pipeline (``sync.credit``): ``credit`` checks each net-terms order of a customer with
a credit limit before it is invoiced and holds it from fulfilment when it would take the customer over the
limit; ``credit_review``, after the payments step, releases the holds an order paid (or cancelled) in this
pass no longer justifies. Orders paid at checkout, and customers without a limit, cost nothing.

The checked order is recorded (``credit_orders``, unique per store order) before its hold is placed, so a
retry, a second event of the order or a worker killed half-way finishes that one hold. Each order is decided
once, when it first comes in: an order within the limit then is not held later because a newer order took the
customer over (that one is held). A hold the store
refuses for good (e.g. a fulfilment order Shopify will not hold) is recorded on the step and the order goes
on being invoiced. The preview changes nothing here."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connectors.errors import Permanent
from hub.credit_models import CreditLimit, CreditOrder
from hub.order_models import StoreOrder
from mappings.credit import on_credit, over_limit
from sync import credit as credit_ledger
from sync.ledger import connection_account

if TYPE_CHECKING:
    from sync.orders.context import Entry, OrderContext

CENT = Decimal("0.01")


def _entries(ctx: OrderContext) -> list[Entry]:
    """Live orders and those this pass cancelled (their invoice voided)."""
    return [e for e in ctx.entries if e.order is not None and e.error is None
            and (e.outcome is None or e.outcome.reason == "voided")]


def credit(ctx: OrderContext) -> None:
    if getattr(ctx, "dry_run", False) or not _has_limits(ctx):
        return
    calls = credit_ledger.CreditCalls().calls
    for e in _entries(ctx):
        ctx.each([e], lambda e: _check(ctx, e, calls))


def _has_limits(ctx: OrderContext) -> bool:
    """Whether the merchant ever set a credit limit (one query a pass; without, the step costs nothing more)."""
    with ctx.hub.session() as s:
        return s.scalar(select(CreditLimit.id).where(CreditLimit.merchant_id == ctx.merchant_id).limit(1)) is not None


def _key(ctx: OrderContext, e: Entry) -> tuple[str, str, str]:
    assert e.order is not None
    with ctx.hub.session() as s:
        store = connection_account(s, e.run.connection_id)
    return e.order.platform, store, e.order.source_id


def _row(ctx: OrderContext, e: Entry) -> CreditOrder | None:
    platform, store, order_id = _key(ctx, e)
    with ctx.hub.session() as s:
        row = s.scalar(select(CreditOrder).where(CreditOrder.merchant_id == ctx.merchant_id,
                                                 CreditOrder.platform == platform, CreditOrder.store == store,
                                                 CreditOrder.order_id == order_id))
        if row is not None:
            s.expunge(row)
        return row


def _check(ctx: OrderContext, e: Entry, calls: dict[str, int]) -> None:
    assert e.order is not None
    order = e.order
    row = _row(ctx, e)
    if e.outcome is not None or not on_credit(order, ctx.rules.receivables):
        if row is not None and not row.settled:      # paid or cancelled since it was checked
            with ctx.hub.session() as s:
                s.get(CreditOrder, row.id).settled = True
                s.commit()
            e.state["credit_review"] = row.limit_id   # its own hold, and the customer's others, reviewed
        return
    if not e.customer_id:
        return
    limit = credit_ledger.limit_for(ctx.hub, ctx.merchant_id, e.customer_id, order.customer.email)
    if limit is None or limit.amount is None:
        return
    e.rec.begin("credit")
    rate = e.state.get("exchange_rate")
    total = (order.total * Decimal(str(rate))).quantize(CENT) if rate else order.total
    row = _record(ctx, e, row, limit.id, total)
    if row.hold_status in ("held", "releasing", "released"):
        e.rec.record("credit", row.hold_status, target_platform=order.platform, target_type="order",
                     target_id=order.source_id, message=_said(row))
        return
    if row.hold_status is None and row.done:      # decided when it came in: within the limit, or not holdable
        e.rec.record("credit", "unchanged", message=row.error or f"within the limit when checked "
                                                                 f"(exposure {row.done.get('within')})")
        return
    with credit_ledger.lock(ctx.hub, ctx.merchant_id, limit.id):
        now = credit_ledger.exposure(ctx.hub, ctx.qb, limit, calls)
        if not over_limit(now, Decimal(limit.amount)):
            if row.hold_status == "placing":     # a hold left half-placed, no longer needed: whatever was placed goes
                credit_ledger.release(ctx.hub, ctx.accounts, row.id, credit_ledger.ACTOR,
                                      f"exposure {now} is within the credit limit of {limit.amount}", calls)
            else:                                # decided once: a later order, not this one, is what goes over
                _decided(ctx, row.id, {"within": str(now)})
            e.rec.record("credit", "within", message=f"exposure {now} within the credit limit of {limit.amount}")
            return
        try:
            outcome = credit_ledger.hold(ctx.hub, ctx.accounts, row.id, limit, now, ctx.home_currency or "", calls)
        except Permanent as exc:
            _refused(ctx, row.id, str(exc))
            e.rec.record("credit", "refused", message=f"not held: {exc}")
            return
    if outcome == "nothing":
        e.rec.record("credit", "not-held", message=f"over the credit limit of {limit.amount} (exposure {now}) "
                                                   "but nothing is left to ship")
    else:
        e.rec.record("credit", "held", target_platform=order.platform, target_type="order", target_id=order.source_id,
                     message=f"held from fulfilment: exposure {now} over the credit limit of {limit.amount}")


def _said(row: CreditOrder) -> str:
    if row.hold_status == "released":
        return f"hold released by {row.released_by}; not held again"
    return f"held since {row.held_at:%Y-%m-%d} (exposure {row.exposure}, limit {row.limit_amount})" \
        if row.held_at else "hold being placed"


def _record(ctx: OrderContext, e: Entry, row: CreditOrder | None, limit_id: int, total: Decimal) -> CreditOrder:
    """The checked order's row (inserted once; its amount and contact kept up to date)."""
    assert e.order is not None
    platform, store, order_id = _key(ctx, e)
    with ctx.hub.session() as s:
        store_order = s.scalar(select(StoreOrder.id).where(
            StoreOrder.merchant_id == ctx.merchant_id, StoreOrder.platform == platform, StoreOrder.store == store,
            StoreOrder.order_id == order_id))
        if row is None:
            s.add(CreditOrder(merchant_id=ctx.merchant_id, limit_id=limit_id, store_order_id=store_order,
                              platform=platform, store=store, connection_id=e.run.connection_id, order_id=order_id,
                              order_name=e.order.name, amount=str(total), contact_id=e.state.get("contact_id"),
                              done={}))
            try:
                s.commit()
            except IntegrityError:         # recorded meanwhile (another event of the order)
                s.rollback()
        found = s.scalar(select(CreditOrder).where(CreditOrder.merchant_id == ctx.merchant_id,
                                                   CreditOrder.platform == platform, CreditOrder.store == store,
                                                   CreditOrder.order_id == order_id))
        assert found is not None
        found.amount, found.limit_id, found.store_order_id = str(total), limit_id, found.store_order_id or store_order
        found.contact_id = e.state.get("contact_id") or found.contact_id
        found.order_name = e.order.name or found.order_name
        s.commit()
        s.expunge(found)
        return found


def _refused(ctx: OrderContext, row_id: int, why: str) -> None:
    with ctx.hub.session() as s:
        row = s.get(CreditOrder, row_id)
        row.hold_status, row.error, row.done = None, why[:500], {"refused": why[:500]}
        s.commit()


def _decided(ctx: OrderContext, row_id: int, done: dict[str, str]) -> None:
    with ctx.hub.session() as s:
        s.get(CreditOrder, row_id).done = done
        s.commit()


def credit_review(ctx: OrderContext) -> None:
    """Release the holds of the limits whose orders were paid or cancelled in this pass."""
    if getattr(ctx, "dry_run", False):
        return
    limits = {e.state["credit_review"] for e in ctx.entries if e.state.get("credit_review")}
    if limits:
        try:
            credit_ledger.review(ctx.hub, ctx.merchant_id, sorted(limits), qb=ctx.qb)
        except Exception as exc:  # noqa: BLE001 - the next payment or review releases them
            for e in ctx.entries:
                if e.state.get("credit_review"):
                    e.rec.record("credit", "deferred", message=f"holds not reviewed now ({exc})")
