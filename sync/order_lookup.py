"""Reading the order ledger: *what happened to order #1001?* for the CLI, the JSON API and the console.

``list_orders`` gives the rows newest first (keyset pages: ``before`` an id); ``find_order`` finds one by
its store id or its name (``#1001`` or ``1001``); ``order_view`` is the JSON shape DESIGN.md fixes
("What scripts may rely on"), and ``order_detail`` adds the order's timeline: webhooks received, pulls and
documents written (the steps of its runs), attempts that failed or retried, payments made in QuickBooks
that were carried back to the store, and what support did to its runs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, func, or_, select
from sqlalchemy.orm import Session

from hub.models import AuditEntry, SyncAttempt, SyncRun, SyncStep, WebhookEvent
from hub.order_models import STATES, StoreOrder
from sync.order_ledger import FOLLOWED_KINDS

# what support filters orders by, beside their state: the refund, payment and fulfilment work done for them
DOCUMENT_FILTERS = {
    "invoice": "invoiced", "no_invoice": "not invoiced", "paid": "paid", "unpaid": "invoiced, not paid",
    "refund": "refunded", "shipped": "shipped", "deposited": "deposited", "deal": "HubSpot deal",
}


@dataclass
class OrderQuery:
    merchant: int | None = None
    state: str | None = None
    platform: str | None = None
    before: int | None = None          # keyset: rows with a smaller id
    search: str | None = None          # the order's name or store id, its invoice number, the buyer's e-mail
                                       # or the start of the buyer's name
    ordered_from: datetime | None = None
    ordered_to: datetime | None = None  # exclusive
    has: str | None = None             # one of DOCUMENT_FILTERS: orders with (or without) that work done


def list_orders(s: Session, q: OrderQuery, *, limit: int | None = 100) -> list[StoreOrder]:
    if q.state is not None and q.state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}")
    stmt = select(StoreOrder)
    if q.merchant is not None:
        stmt = stmt.where(StoreOrder.merchant_id == q.merchant)
    if q.state is not None:
        stmt = stmt.where(StoreOrder.state == q.state)
    if q.platform is not None:
        stmt = stmt.where(StoreOrder.platform == q.platform)
    if q.before is not None:
        stmt = stmt.where(StoreOrder.id < q.before)
    if q.search:
        text = q.search.strip()
        names = {text, text.lstrip("#"), "#" + text.lstrip("#")}
        matches = [StoreOrder.name.in_(names), StoreOrder.order_id == text, StoreOrder.doc_number == text]
        if "@" in text:
            matches.append(StoreOrder.customer_email == text.lower())
        elif len(text) >= 2 and not text.lstrip("#").isdigit():
            like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            matches.append(func.lower(StoreOrder.customer_name).like(like.lower() + "%", escape="\\"))
        stmt = stmt.where(or_(*matches))
    if q.has is not None:
        stmt = stmt.where(_has(q.has))
    if q.ordered_from is not None:
        stmt = stmt.where(StoreOrder.ordered_at >= q.ordered_from)
    if q.ordered_to is not None:
        stmt = stmt.where(StoreOrder.ordered_at < q.ordered_to)
    stmt = stmt.order_by(StoreOrder.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(s.scalars(stmt))


def _has(what: str) -> Any:
    if what not in DOCUMENT_FILTERS:
        raise ValueError(f"has must be one of {', '.join(DOCUMENT_FILTERS)}")
    return {
        "invoice": StoreOrder.invoice_id.is_not(None), "no_invoice": StoreOrder.invoice_id.is_(None),
        "paid": StoreOrder.paid_at.is_not(None),
        "unpaid": and_(StoreOrder.invoice_id.is_not(None), StoreOrder.paid_at.is_(None)),
        # the JSON list of refund documents is empty ([]) until the first refund is bound
        "refund": and_(StoreOrder.refund_ids.is_not(None), func.length(cast(StoreOrder.refund_ids, String)) > 2),
        "shipped": StoreOrder.fulfilled_at.is_not(None), "deposited": StoreOrder.deposit_id.is_not(None),
        "deal": StoreOrder.deal_id.is_not(None),
    }[what]


def find_order(s: Session, merchant_id: int | None, ref: str, platform: str | None = None) -> StoreOrder | None:
    """The merchant's order whose store id is ``ref``, else whose name is ``ref`` (``#`` optional); with
    no merchant, the newest such order of any merchant."""
    ref = ref.strip()
    base = select(StoreOrder)
    if merchant_id is not None:
        base = base.where(StoreOrder.merchant_id == merchant_id)
    if platform is not None:
        base = base.where(StoreOrder.platform == platform)
    names = {ref, ref.lstrip("#"), "#" + ref.lstrip("#")}
    for cond in (StoreOrder.order_id == ref, StoreOrder.name.in_(names)):
        row = s.scalar(base.where(cond).order_by(StoreOrder.id.desc()).limit(1))
        if row is not None:
            return row
    return None


def run_ids_of(s: Session, orders: list[StoreOrder]) -> dict[int, list[int]]:
    """Each order's runs (order and refund runs of the same store order), oldest first."""
    out: dict[int, list[int]] = defaultdict(list)
    if not orders:
        return out
    by_key = {(o.merchant_id, o.platform, o.order_id): o for o in orders}
    conds = [and_(SyncRun.merchant_id == m, SyncRun.source_platform == p, SyncRun.source_id == i)
             for m, p, i in by_key]
    for start in range(0, len(conds), 200):
        rows = s.execute(select(SyncRun.id, SyncRun.merchant_id, SyncRun.source_platform, SyncRun.source_id,
                                SyncRun.connection_id)
                         .where(SyncRun.kind.in_(FOLLOWED_KINDS), or_(*conds[start:start + 200]))
                         .order_by(SyncRun.id)).all()
        for run_id, m, p, i, conn_id in rows:
            order = by_key[(m, p, i)]
            if order.connection_id is None or conn_id is None or conn_id == order.connection_id:
                out[order.id].append(run_id)
    return out


def order_view(o: StoreOrder, runs: list[int]) -> dict[str, Any]:
    return {
        "merchant": o.merchant_id, "platform": o.platform, "store": o.store or None, "id": o.order_id,
        "name": o.name, "customer": {"name": o.customer_name, "email": o.customer_email},
        "currency": o.currency, "total": o.total, "state": o.state, "reason": o.reason,
        "financial_status": o.financial_status, "fulfillment_status": o.fulfillment_status,
        "quickbooks": {"invoice_id": o.invoice_id, "doc_number": o.doc_number, "total": o.invoice_total,
                       "balance": o.invoice_balance, "payment_ids": list(o.payment_ids or []),
                       "refund_ids": list(o.refund_ids or []), "deposit_id": o.deposit_id},
        "hubspot": {"contact_id": o.contact_id, "deal_id": o.deal_id},
        "ordered_at": _iso(o.ordered_at), "received_at": _iso(o.received_at), "invoiced_at": _iso(o.invoiced_at),
        "paid_at": _iso(o.paid_at), "fulfilled_at": _iso(o.fulfilled_at), "deposited_at": _iso(o.deposited_at),
        "updated_at": _iso(o.updated_at), "runs": runs,
    }


def order_views(s: Session, orders: list[StoreOrder]) -> list[dict[str, Any]]:
    runs = run_ids_of(s, orders)
    return [order_view(o, runs.get(o.id, [])) for o in orders]


def order_detail(s: Session, o: StoreOrder) -> dict[str, Any]:
    runs = run_ids_of(s, [o]).get(o.id, [])
    return {**order_view(o, runs), "timeline": timeline(s, o, runs), "credit_hold": credit_hold(s, o)}


def credit_hold(s: Session, o: StoreOrder) -> dict[str, Any] | None:
    """The order's credit hold (``sync.credit``), when it ever had one: ``{id, status, exposure, limit, held_at,
    released_at, released_by}``."""
    from hub.credit_models import CreditOrder

    row = s.scalar(select(CreditOrder).where(CreditOrder.store_order_id == o.id, CreditOrder.hold_status.is_not(None)))
    if row is None:
        return None
    return {"id": row.id, "status": row.hold_status, "exposure": row.exposure, "limit": row.limit_amount,
            "held_at": _iso(row.held_at), "released_at": _iso(row.released_at), "released_by": row.released_by}


def timeline(s: Session, o: StoreOrder, run_ids: list[int]) -> list[dict[str, Any]]:
    """What happened to the order, oldest first: each event ``{at, kind, text, run}``."""
    events: list[dict[str, Any]] = []
    if run_ids:
        for ev in s.scalars(select(WebhookEvent).where(WebhookEvent.sync_run_id.in_(run_ids))):
            events.append(_event(ev.received_at, "webhook", f"{ev.platform} webhook {ev.topic} received",
                                 ev.sync_run_id))
        for st in s.scalars(select(SyncStep).where(SyncStep.run_id.in_(run_ids))):
            events.append(_event(st.at, _step_kind(st), _step_text(st), st.run_id))
        for a in s.scalars(select(SyncAttempt).where(SyncAttempt.run_id.in_(run_ids),
                                                     SyncAttempt.outcome.in_(("failed", "retrying")))):
            events.append(_event(a.finished_at or a.started_at, "attempt",
                                 f"attempt {a.number} {a.outcome}{' in ' + a.step if a.step else ''}"
                                 f"{': ' + a.error if a.error else ''}", a.run_id))
        for entry in s.scalars(select(AuditEntry).where(AuditEntry.target_type == "run",
                                                        AuditEntry.target_id.in_([str(r) for r in run_ids]))):
            why = (entry.detail or {}).get("reason")
            events.append(_event(entry.at, "support", f"{entry.actor}: {entry.action}{' — ' + str(why) if why else ''}",
                                 int(entry.target_id) if entry.target_id else None))
    # what the hub did on its own about the order (dunning stages: sync.dunning; credit holds: sync.credit)
    for entry in s.scalars(select(AuditEntry).where(AuditEntry.target_type == "store_order",
                                                    AuditEntry.target_id == str(o.id))):
        events.append(_event(entry.at, "receivables", f"{entry.action}: {_audit_text(entry.detail or {})}", None))
    # payments made in QuickBooks and carried back to this order (their runs are payment runs)
    for st in s.scalars(select(SyncStep).join(SyncRun, SyncRun.id == SyncStep.run_id)
                        .where(SyncRun.merchant_id == o.merchant_id, SyncRun.kind == "payment",
                               SyncStep.target_platform == o.platform, SyncStep.target_type == "order",
                               SyncStep.target_id == o.order_id)):
        events.append(_event(st.at, "payment_back", _step_text(st), st.run_id))
    events.sort(key=lambda e: (e["at"] or "", e["run"] or 0))
    return events


def _audit_text(detail: dict[str, Any]) -> str:
    if detail.get("text"):          # a credit hold or release says itself
        return str(detail["text"])
    done = detail.get("done") or {}
    parts = [f"invoice {detail.get('doc_number') or detail.get('invoice_id')}", f"{detail.get('balance')} open",
             f"{detail.get('days_past_due')} days past due"]
    parts += [f"{k}: {v}" for k, v in done.items()]
    if detail.get("error"):
        parts.append(f"failed: {detail['error']}")
    return ", ".join(parts)


def _step_kind(st: SyncStep) -> str:
    if st.step in ("pull", "fetch", "order"):
        return "pull"
    if st.outcome in ("created", "updated", "voided", "found"):
        return "document"
    return "step"


def _step_text(st: SyncStep) -> str:
    target = f" → {st.target_platform} {st.target_type} {st.target_id}" if st.target_id else ""
    return f"{st.step} {st.outcome}{target}{': ' + st.message if st.message else ''}"


def _event(at: datetime | None, kind: str, text: str, run: int | None) -> dict[str, Any]:
    return {"at": _iso(at), "kind": kind, "text": text, "run": run}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None
