"""The discrepancy report behind ``o2c reconcile``: store orders against QuickBooks, row by row.

Kinds of row (each names both sides and the amount):

- ``order_without_invoice``: a store order (not cancelled, not zero) with no QuickBooks invoice;
- ``invoice_total_differs``: the invoice's total is not the order's;
- ``paid_order_without_payment``: the store says paid, the invoice still has a balance;
- ``payment_not_in_store``: the invoice is paid in QuickBooks, the store order is not;
- ``refund_not_carried``: money was refunded in the store and no credit memo or refund receipt carries it.

Reading only: nothing is changed. ``resync`` opens an order sync run for every row's order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from connectors.quickbooks import amount
from hub.models import Binding, Connection
from sync import runs
from sync.accounts import Accounts
from sync.backfill import parse_time
from sync.ledger import store_key

if TYPE_CHECKING:
    from hub.runtime import Hub

KINDS = ("order_without_invoice", "invoice_total_differs", "paid_order_without_payment",
         "payment_not_in_store", "refund_not_carried")
PAID = ("paid", "partially_refunded", "refunded")


@dataclass
class StoreOrder:
    platform: str
    connection_id: int
    id: str
    name: str
    total: Decimal                # what the invoice must come to
    refunded: Decimal
    financial_status: str         # pending | paid | partially_paid | partially_refunded | refunded | voided
    cancelled: bool
    currency: str
    created_at: datetime | None


@dataclass
class Discrepancy:
    kind: str
    order: dict[str, Any]
    quickbooks: dict[str, Any] | None
    amount: str
    detail: str


@dataclass
class Report:
    merchant_id: int
    since: str | None
    orders_checked: int = 0
    rows: list[Discrepancy] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"merchant": self.merchant_id, "since": self.since, "orders_checked": self.orders_checked,
                "discrepancies": [asdict(r) for r in self.rows]}


def reconcile(hub: Hub, merchant_id: int, since: date | None = None) -> Report:
    report = Report(merchant_id, since.isoformat() if since else None)
    accounts = Accounts(hub, merchant_id)
    with hub.sessions() as s:
        conns = list(s.scalars(select(Connection).where(
            Connection.merchant_id == merchant_id, Connection.platform.in_(("shopify", "woocommerce")),
            Connection.status != "disconnected").order_by(Connection.id)))
        bindings = list(s.scalars(select(Binding).where(Binding.merchant_id == merchant_id,
                                                        Binding.source_type == "order",
                                                        Binding.target_platform == "quickbooks")))
        carried: dict[tuple[str, str, str], Decimal] = {}
        for b in s.scalars(select(Binding).where(Binding.merchant_id == merchant_id, Binding.source_type == "refund",
                                                 Binding.target_platform == "quickbooks")):
            key = (b.source_platform, b.source_store, str((b.data or {}).get("order_id")))
            carried[key] = carried.get(key, Decimal("0")) + Decimal(str((b.data or {}).get("amount") or "0"))
    if not conns:
        raise LookupError("the merchant has no connected store")
    bound: dict[tuple[str, str, str, str], Binding] = {
        (b.source_platform, b.source_store, b.source_id, b.target_type): b for b in bindings}
    stores = {c.id: store_key(c.platform, c.account) for c in conns}
    orders = [o for conn in conns for o in _store_orders(accounts, conn, since)]
    report.orders_checked = len(orders)
    qb = accounts.quickbooks()
    invoice_ids = sorted({b.target_id for b in bindings if b.target_type == "invoice"}, key=_id_key)
    invoices = _by_id(qb, "Invoice", invoice_ids)
    for o in orders:
        ref = {"platform": o.platform, "id": o.id, "name": o.name, "total": str(o.total),
               "financial_status": o.financial_status, "currency": o.currency, "connection_id": o.connection_id}
        store = stores[o.connection_id]
        inv_binding = bound.get((o.platform, store, o.id, "invoice"))
        invoice = invoices.get(inv_binding.target_id) if inv_binding else None
        if invoice is None or _voided(invoice):
            if not o.cancelled and o.total > 0 and not (invoice is not None and _voided(invoice)):
                report.rows.append(Discrepancy("order_without_invoice", ref, None, str(o.total),
                                               f"{o.name} ({o.total} {o.currency}) has no QuickBooks invoice"))
            continue
        total, balance = amount(invoice.get("TotalAmt")), amount(invoice.get("Balance"))
        qb_ref = {"type": "Invoice", "id": invoice["Id"], "doc_number": invoice.get("DocNumber"),
                  "total": str(total), "balance": str(balance)}
        if total != o.total:
            report.rows.append(Discrepancy("invoice_total_differs", ref, qb_ref, str(abs(total - o.total)),
                                           f"invoice {invoice.get('DocNumber')} is {total}, {o.name} is {o.total}"))
        if o.financial_status in PAID and balance > 0:
            report.rows.append(Discrepancy("paid_order_without_payment", ref, qb_ref, str(balance),
                                           f"{o.name} is paid in the store; invoice {invoice.get('DocNumber')} "
                                           f"still has {balance} open"))
        if balance <= 0 < total and o.financial_status not in PAID and not o.cancelled:
            report.rows.append(Discrepancy("payment_not_in_store", ref, qb_ref, str(total),
                                           f"invoice {invoice.get('DocNumber')} is paid in QuickBooks; {o.name} "
                                           f"is {o.financial_status} in the store"))
        missing = o.refunded - carried.get((o.platform, store, o.id), Decimal("0"))
        if missing > 0:
            report.rows.append(Discrepancy("refund_not_carried", ref, qb_ref, str(missing),
                                           f"{o.name} had {o.refunded} refunded; {missing} of it is on no credit "
                                           "memo or refund receipt in QuickBooks"))
    from sync.payout_reconcile import payout_discrepancies  # payouts and their deposits
    report.rows += payout_discrepancies(hub, merchant_id, qb, since)
    return report


def resync(hub: Hub, report: Report) -> list[int]:
    """Open an order sync run for every row's order (dispatched); returns the run ids."""
    ids: list[int] = []
    seen: set[tuple[str, str]] = set()
    with hub.sessions() as s:
        for row in report.rows:
            if row.order.get("payout"):   # a payout's row: no order to sync
                continue
            key = (row.order["platform"], row.order["id"], row.order.get("connection_id"))
            if key in seen:
                continue
            seen.add(key)
            run, new = runs.open_run(s, merchant_id=report.merchant_id, kind="order", platform=key[0],
                                     source_id=key[1], source_name=row.order["name"], trigger="reconcile",
                                     connection_id=key[2])
            if new:
                ids.append(run.id)
        s.commit()
    for run_id in ids:
        hub.dispatcher.dispatch(run_id)
    return ids


# --- reading both sides --------------------------------------------------------------------------

def _store_orders(accounts: Accounts, conn: Connection, since: date | None) -> list[StoreOrder]:
    start = datetime.combine(since, time.min, tzinfo=UTC) if since else None
    out: list[StoreOrder] = []
    if conn.platform == "shopify":
        client = accounts.shopify(conn.account)
        query = f"created_at:>='{start:%Y-%m-%dT%H:%M:%SZ}'" if start else None
        after = None
        while True:
            nodes, after = client.order_summaries_page(query=query, after=after)
            out.extend(_shopify_summary(conn.id, n) for n in nodes)
            if after is None:
                return out
    client = accounts.woocommerce(conn.id)
    for page in client.iter_orders(after=start.strftime("%Y-%m-%dT%H:%M:%S") if start else None):
        out.extend(_woocommerce_summary(conn.id, o) for o in page.orders if o.get("id"))
    return out


def _money(bag: Any) -> tuple[Decimal, str]:
    shop = (bag or {}).get("shopMoney") or {}
    return Decimal(str(shop.get("amount") or "0")), str(shop.get("currencyCode") or "")


def _shopify_summary(conn_id: int, n: dict[str, Any]) -> StoreOrder:
    total, currency = _money(n.get("totalPriceSet"))
    refunded, _ = _money(n.get("totalRefundedSet"))
    status = str(n.get("displayFinancialStatus") or "pending").lower()
    return StoreOrder("shopify", conn_id, str(n.get("legacyResourceId")), str(n.get("name")), total, refunded,
                      status, bool(n.get("cancelledAt")), currency, parse_time(n.get("createdAt")))


def _woocommerce_summary(conn_id: int, o: dict[str, Any]) -> StoreOrder:
    from mappings.woocommerce import PAID_STATUSES

    status = str(o.get("status") or "")
    refunded = sum((abs(Decimal(str(r.get("total") or "0"))) for r in o.get("refunds") or []), Decimal("0"))
    paid = bool(o.get("date_paid") or o.get("date_paid_gmt")) and status in PAID_STATUSES
    financial = ("refunded" if status == "refunded" else "partially_refunded" if paid and refunded
                 else "paid" if paid else "voided" if status in ("cancelled", "failed", "trash") else "pending")
    return StoreOrder("woocommerce", conn_id, str(o["id"]), f"#{o.get('number') or o['id']}",
                      Decimal(str(o.get("total") or "0")), refunded, financial,
                      status in ("cancelled", "trash"), str(o.get("currency") or ""),
                      parse_time(o.get("date_created_gmt")))


def _by_id(qb: Any, entity: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        quoted = ", ".join("'" + i.replace("'", "") + "'" for i in chunk)
        for row in qb.query(f"SELECT * FROM {entity} WHERE Id IN ({quoted}) MAXRESULTS 1000"):
            out[str(row["Id"])] = row
    return out


def _voided(invoice: dict[str, Any]) -> bool:
    return amount(invoice.get("TotalAmt")) == 0 and str(invoice.get("PrivateNote") or "").startswith("Voided")


def _id_key(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (0, value)
