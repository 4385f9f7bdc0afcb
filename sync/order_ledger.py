"""The order ledger follows the runs and bindings of every store order, in the same transaction.

One ``store_orders`` row per store order (``hub.order_models.StoreOrder``). Whatever writes a run of an
order (the receiver opening it, a worker finishing it, support re-running it) or a binding for it (the
invoice, payment, refund documents; a payment made in QuickBooks) also brings the row up to date: a
listener on every ORM flush reads what changed and writes the row through the same connection, so the
ledger can never disagree with a committed run or binding, whichever pipeline, job or page wrote them.
Bulk ``UPDATE`` statements on runs bypass the ORM: their callers call ``refresh`` for the runs they touched.

State (``state`` + ``reason``) is the latest run's: pending/running → ``pending``; retrying → ``pending``,
or ``waiting`` while the connection needs a reconnect; failed → ``failing``; skipped → ``skipped`` (a
skipped refund run does not change the order's state); succeeded → ``in_sync``. An older run finishing
after a newer one changes nothing.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import case, event, func, inspect, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection as DbConnection
from sqlalchemy.orm import Session
from sqlalchemy.orm.base import PASSIVE_NO_INITIALIZE

from hub.models import Binding, SyncRun, SyncStep, utcnow
from hub.order_models import StoreOrder
from sync.ledger import connection_account

FOLLOWED_KINDS = ("order", "refund")
RUN_FIELDS = ("status", "reason", "error_kind", "canonical", "source_name")
QB = "quickbooks"
NOT_AN_ORDER = "webhook-"   # the run of a webhook that names no usable order (``webhooks.py``): no order row

_table = StoreOrder.__table__


def state_of(run: SyncRun) -> tuple[str, str | None]:
    """The order state a run in this status stands for, and the reason shown with it."""
    if run.status == "succeeded":
        return "in_sync", None
    if run.status == "failed":
        return "failing", run.reason
    if run.status == "skipped":
        return "skipped", run.reason
    if run.status == "retrying" and run.error_kind == "auth":
        return "waiting", run.reason
    return "pending", None


def refresh(session: Session, run_ids: list[int]) -> None:
    """Bring the rows of these runs' orders up to date after a bulk ``UPDATE`` of the runs."""
    if not run_ids:
        return
    conn = session.connection()
    for start in range(0, len(run_ids), 500):
        for run in session.scalars(select(SyncRun).where(SyncRun.id.in_(run_ids[start:start + 500]))
                                   .execution_options(populate_existing=True)):
            if run.kind in FOLLOWED_KINDS:
                _follow_run(conn, run, canonical=False)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    new = set(session.new)
    runs: list[SyncRun] = []
    bindings: list[Binding] = []
    contacts: list[SyncStep] = []
    for obj in itertools.chain(new, session.dirty):
        if isinstance(obj, SyncRun):
            if obj.kind in FOLLOWED_KINDS and not obj.source_id.startswith(NOT_AN_ORDER) \
                    and (obj in new or _changed(obj, RUN_FIELDS)):
                runs.append(obj)
        elif isinstance(obj, Binding):
            if obj in new or _changed(obj, ("target_id", "data")):
                bindings.append(obj)
        elif isinstance(obj, SyncStep) and obj in new and obj.step == "contact" and obj.target_id \
                and obj.target_type == "contact":
            contacts.append(obj)
    if not (runs or bindings or contacts):
        return
    conn = session.connection()
    for run in sorted(runs, key=lambda r: r.id):
        _follow_run(conn, run, canonical=obj_changed_canonical(run, new))
    if bindings or contacts:
        run_rows = _runs_by_id(conn, {b.sync_run_id for b in bindings if b.sync_run_id}
                               | {st.run_id for st in contacts})
        for b in bindings:
            _follow_binding(conn, b, run_rows.get(b.sync_run_id))
        for st in contacts:
            row = run_rows.get(st.run_id)
            if row is not None and row.kind in FOLLOWED_KINDS:
                _update(conn, _key_where(row.merchant_id, row.source_platform, row.source_id,
                                         connection_account(conn, row.connection_id)), {"contact_id": st.target_id})


def obj_changed_canonical(run: SyncRun, new: set[Any]) -> bool:
    return run.canonical is not None and (run in new or _changed(run, ("canonical",)))


def _changed(obj: Any, names: tuple[str, ...]) -> bool:
    """Whether any of these attributes changed in this flush (the history ``inspect(obj).attrs[n].history``
    gives, read without building every attribute's state)."""
    state = inspect(obj)
    return any(state.get_history(n, PASSIVE_NO_INITIALIZE).has_changes() for n in names)




def _binding_store(conn: DbConnection, b: Binding, run: Any) -> str | None:
    """The ledger's ``store`` of the order a binding is for: the binding's own store where the store numbers
    its orders (WooCommerce), else the store of the run that wrote it (None: any store of the merchant)."""
    if b.source_store:
        return b.source_store
    return connection_account(conn, run.connection_id) if run is not None else None


def _runs_by_id(conn: DbConnection, ids: set[int]) -> dict[int, Any]:
    ids.discard(None)  # type: ignore[arg-type]
    if not ids:
        return {}
    rows = conn.execute(select(SyncRun.id, SyncRun.kind, SyncRun.merchant_id, SyncRun.source_platform,
                               SyncRun.source_id, SyncRun.connection_id).where(SyncRun.id.in_(ids))).all()
    return {r.id: r for r in rows}


def _key_where(merchant_id: int, platform: str, order_id: str, store: str | None) -> list[Any]:
    where = [_table.c.merchant_id == merchant_id, _table.c.platform == platform, _table.c.order_id == order_id]
    if store is not None:
        where.append(_table.c.store == store)
    return where


def _update(conn: DbConnection, where: list[Any], values: dict[str, Any]) -> int:
    """Update the rows matching ``where``; the number of rows it matched."""
    return conn.execute(update(_table).where(*where).values(**values, updated_at=utcnow())).rowcount


def _follow_run(conn: DbConnection, run: SyncRun, *, canonical: bool) -> None:
    """The row brought up to date in one ``UPDATE`` (the order's details, and its state unless a newer run
    already set it); the row is inserted first only when there is none yet."""
    store = connection_account(conn, run.connection_id)
    where = _key_where(run.merchant_id, run.source_platform, run.source_id, store)
    values: dict[str, Any] = {}
    if run.source_name:
        values["name"] = run.source_name[:255]
    if canonical:
        values.update(_from_canonical(run.canonical or {}))
    state, reason = state_of(run)
    if run.kind == "refund" and state == "skipped":   # changes no state: only the details
        _insert_row(conn, run, store)
        if values:
            _update(conn, where, values)
        return
    newer = or_(_table.c.last_run_id.is_(None), _table.c.last_run_id <= run.id)
    if values:   # the details always; the state only when no newer run set it (one statement for both)
        values.update({name: case((newer, _typed(name, value)), else_=_table.c[name])
                       for name, value in (("state", state), ("reason", reason), ("last_run_id", run.id))})
        condition = where
    else:
        values = {"state": state, "reason": reason, "last_run_id": run.id}
        condition = [*where, newer]
    if _update(conn, condition, values):
        return
    # no row matched: there may be none yet (or a newer run's, or one another transaction is inserting):
    # insert it, then update again, as the row is now there in every case
    _insert_row(conn, run, store)
    _update(conn, condition, values)


def _typed(column: str, value: Any) -> Any:
    """``value`` bound with its column's type (``reason`` is scrubbed of secrets as it is written)."""
    return literal(value, type_=_table.c[column].type)


def _insert_row(conn: DbConnection, run: SyncRun, store: str) -> None:
    now = utcnow()
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(insert(_table).values(
        merchant_id=run.merchant_id, platform=run.source_platform, store=store, connection_id=run.connection_id,
        order_id=run.source_id, name=run.source_name, state="pending", last_run_id=run.id, payment_ids=[],
        refund_ids=[], received_at=run.created_at or now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["merchant_id", "platform", "store", "order_id"]))


def _from_canonical(order: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, column, size in (("name", "name", 255), ("currency", "currency", 3),
                              ("financial_status", "financial_status", 30),
                              ("fulfillment_status", "fulfillment_status", 30)):
        if order.get(key):
            values[column] = str(order[key])[:size]
    if order.get("total") is not None:
        values["total"] = _money(order["total"])
    customer = order.get("customer") if isinstance(order.get("customer"), dict) else {}
    name = " ".join(str(customer.get(k) or "").strip() for k in ("first_name", "last_name")).strip() \
        or str(customer.get("company") or "").strip()
    if name:
        values["customer_name"] = name[:255]
    if customer.get("email"):
        values["customer_email"] = str(customer["email"]).strip().lower()[:320]
    created = _time(order.get("created_at"))
    if created is not None:
        values["ordered_at"] = created
    shipped = [f for f in order.get("fulfillments") or [] if isinstance(f, dict) and f.get("status") == "success"]
    if shipped:
        values["fulfillment_status"] = "shipped" if len(shipped) == 1 else f"shipped in {len(shipped)} parts"
        first = min((t for t in (_time(f.get("created_at")) for f in shipped) if t is not None), default=None)
        if first is not None:
            values["fulfilled_at"] = first
    return values


def _follow_binding(conn: DbConnection, b: Binding, run: Any) -> None:
    data = b.data or {}
    now = utcnow()
    if b.source_type == "order" and b.target_platform == QB:
        where = _key_where(b.merchant_id, b.source_platform, b.source_id, _binding_store(conn, b, run))
        if b.target_type == "invoice":
            values: dict[str, Any] = {"invoice_id": b.target_id}
            if data.get("doc_number"):
                values["doc_number"] = str(data["doc_number"])[:40]
            if data.get("total") is not None:
                values["invoice_total"] = _money(data["total"])
            if data.get("balance") is not None:
                values["invoice_balance"] = _money(data["balance"])
            values["invoiced_at"] = func.coalesce(_table.c.invoiced_at, now)   # the first invoicing stays
            _update(conn, where, values)
        elif b.target_type == "payment":
            _add_payment(conn, where, b.target_id, now)
    elif b.source_type == "order" and b.target_platform == "hubspot" and b.target_type == "deal":
        _update(conn, _key_where(b.merchant_id, b.source_platform, b.source_id, _binding_store(conn, b, run)),
                {"deal_id": b.target_id})
    elif b.source_type == "capture" and b.target_platform == QB and b.target_type == "payment":
        order_id = str(data.get("order_id") or b.source_id.split(":", 1)[0])
        where = _key_where(b.merchant_id, b.source_platform, order_id, _binding_store(conn, b, run))
        if data.get("voided"):
            _drop_id(conn, where, "payment_ids", b.target_id)
        else:
            _add_payment(conn, where, b.target_id, now)
    elif b.source_type == "refund" and b.target_platform == QB and b.target_type == "refund":
        order_id = str(data.get("order_id") or b.source_id.split(":", 1)[0])
        where = _key_where(b.merchant_id, b.source_platform, order_id, _binding_store(conn, b, run))
        _add_id(conn, where, "refund_ids", b.target_id)
    elif b.source_platform == QB and b.source_type == "payment" and b.target_type.startswith("order:"):
        # a payment recorded in QuickBooks, applied to this order's invoice
        where = _key_where(b.merchant_id, b.target_platform, b.target_id, data.get("store") or None)
        _add_id(conn, where, "payment_ids", b.source_id)
        if data.get("balance") is not None:
            balance = _money(data["balance"])
            _update(conn, where, {"invoice_balance": balance})
            if balance is not None and Decimal(balance) <= 0:
                _update(conn, [*where, _table.c.paid_at.is_(None)], {"paid_at": now})


def _add_id(conn: DbConnection, where: list[Any], column: str, value: str) -> None:
    col = _table.c[column]
    for row_id, ids in conn.execute(select(_table.c.id, col).where(*where)).all():
        ids = list(ids or [])
        if value not in ids:
            conn.execute(update(_table).where(_table.c.id == row_id).values({column: [*ids, value],
                                                                             "updated_at": utcnow()}))


def _add_payment(conn: DbConnection, where: list[Any], payment_id: str, now: datetime) -> None:
    """``_add_id`` of a payment, and ``paid_at`` set where it is not yet: one ``UPDATE`` per row at most."""
    for row_id, ids, paid_at in conn.execute(select(_table.c.id, _table.c.payment_ids, _table.c.paid_at)
                                             .where(*where)).all():
        ids = list(ids or [])
        values: dict[str, Any] = {}
        if payment_id not in ids:
            values["payment_ids"] = [*ids, payment_id]
        if paid_at is None:
            values["paid_at"] = func.coalesce(_table.c.paid_at, now)
        if values:
            _update(conn, [_table.c.id == row_id], values)


def _drop_id(conn: DbConnection, where: list[Any], column: str, value: str) -> None:
    col = _table.c[column]
    for row_id, ids in conn.execute(select(_table.c.id, col).where(*where)).all():
        if value in (ids or []):
            conn.execute(update(_table).where(_table.c.id == row_id).values(
                {column: [i for i in ids if i != value], "updated_at": utcnow()}))


def _money(value: Any) -> str | None:
    try:
        return str(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
        return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo is not None else parsed
    except (ValueError, OverflowError):
        return None
