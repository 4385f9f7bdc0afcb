"""Receivables per merchant: open and overdue balances, ageing buckets, DSO and the overdue invoices, from
QuickBooks' open invoices and the hub's order ledger, checked against QuickBooks' own ``AgedReceivables``.

* **Open invoices**: ``select * from Invoice where Balance > '0'`` (every open invoice of the company, the
  hub's or not), dated on or before the as-of date, each aged by days past due (as-of − ``DueDate``) into
  current, 1–30, 31–60, 61–90, over 90, in the home currency (a foreign-currency invoice at its rate). The
  order ledger (``store_orders`` by invoice id) names each invoice's store order and HubSpot contact.
* **DSO** = open receivables ÷ credit sales in the period × the period's days (``mappings.receivables.dso``):
  credit sales are the totals of the hub's invoices dated in the ``receivables.dso_period_days`` days ending on
  the as-of date that were issued on terms (their invoice binding has a due date after the order's date).
* **Check**: QuickBooks' ``AgedReceivables`` report for the same date; each bucket's difference (the hub's
  minus QuickBooks') is kept on the result (``check``), never hidden. The balances are today's, so an as-of
  date in the past differs where payments were made since.

* **Holds**: the orders held from fulfilment over their customer's credit limit (``sync.credit``).
* **Trend**: every computation keeps the day's figures (``receivables_snapshots``, one row per merchant and
  as-of day, the last computed that day); the daily dunning pass computes them too, so DSO has a daily history
  (``trend``).

Calls: 1 query per 1,000 open invoices + 1 report (none with ``check=False``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connectors.quickbooks import amount
from hub.mapping_rules import rules_for
from hub.models import Binding
from hub.order_models import StoreOrder
from hub.receivables_models import DunningAction, ReceivablesSnapshot
from mappings.receivables import BUCKETS, bucket_of, days_past_due, dso
from sync import locks
from sync.accounts import Accounts
from sync.ledger import Ledger
from sync.qb_refs import QuickBooksRefs

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.receivables")
QB = "quickbooks"
CENT = Decimal("0.01")
# QuickBooks' report column titles → the hub's bucket names
REPORT_COLUMNS = {"current": "current", "1 - 30": "1_30", "31 - 60": "31_60", "61 - 90": "61_90",
                  "91 and over": "over_90"}


@dataclass
class OpenInvoice:
    invoice_id: str
    doc_number: str | None
    customer: str                 # the buyer's e-mail where QuickBooks has it, else the customer's name
    customer_id: str | None
    txn_date: date
    due_date: date
    balance: Decimal              # home currency
    days_overdue: int             # as-of − due date (negative: not due yet)
    order: StoreOrder | None = None
    dunning_stage: str | None = None

    @property
    def bucket(self) -> str:
        return bucket_of(self.days_overdue)


@dataclass
class Receivables:
    merchant_id: int
    as_of: date
    currency: str
    invoices: list[OpenInvoice]
    dso_days: Decimal
    dso_period_days: int
    credit_sales: Decimal
    check: dict[str, Any] | None = None
    holds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def open(self) -> Decimal:
        return sum((i.balance for i in self.invoices), Decimal("0.00"))

    @property
    def overdue(self) -> Decimal:
        return sum((i.balance for i in self.invoices if i.days_overdue > 0), Decimal("0.00"))

    @property
    def buckets(self) -> dict[str, Decimal]:
        out = dict.fromkeys(BUCKETS, Decimal("0.00"))
        for i in self.invoices:
            out[i.bucket] += i.balance
        return out

    def overdue_invoices(self) -> list[OpenInvoice]:
        return sorted((i for i in self.invoices if i.days_overdue > 0), key=lambda i: (-i.days_overdue, i.invoice_id))

    def view(self) -> dict[str, Any]:
        """The JSON shape DESIGN.md fixes (``o2c receivables --json``)."""
        return {"merchant": self.merchant_id, "as_of": self.as_of.isoformat(), "currency": self.currency,
                "open": _money(self.open), "overdue": _money(self.overdue),
                "buckets": {k: _money(v) for k, v in self.buckets.items()},
                "dso_days": float(self.dso_days), "dso_period_days": self.dso_period_days,
                "invoices": [{"doc_number": i.doc_number, "customer": i.customer, "due_date": i.due_date.isoformat(),
                              "balance": _money(i.balance), "days_overdue": i.days_overdue,
                              "dunning_stage": i.dunning_stage} for i in self.overdue_invoices()],
                "holds": self.holds}


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def today() -> date:
    return datetime.now(UTC).date()


def receivables(hub: Hub, merchant_id: int, as_of: date | None = None, *, check: bool = True,
                qb: Any = None) -> Receivables:
    """The merchant's receivables as of ``as_of`` (default today, UTC); ``check``: compare with QuickBooks'
    AgedReceivables report (one more call)."""
    as_of = as_of or today()
    accounts = Accounts(hub, merchant_id)
    qb = qb or accounts.quickbooks()
    with hub.session() as s:
        rules = rules_for(s, merchant_id)
    home = home_currency(hub, merchant_id, qb, rules)
    invoices = open_invoices(hub, merchant_id, qb.open_invoices(), as_of, home)
    period = rules.receivables.dso_period_days
    credit = credit_sales(hub, merchant_id, as_of, period)
    result = Receivables(merchant_id, as_of, home, invoices, dso(sum((i.balance for i in invoices), Decimal(0)),
                                                                credit, period), period, credit)
    from sync.credit import holds_view

    result.holds = holds_view(hub, merchant_id)
    keep_snapshot(hub, result)
    if check:
        result.check = compare_with_report(result, qb.report("AgedReceivables", report_date=as_of.isoformat()))
        if result.check["difference"]:
            log.warning("merchant %s: receivables differ from QuickBooks' AgedReceivables on %s: %s", merchant_id,
                        as_of, result.check["difference"])
    return result


def home_currency(hub: Hub, merchant_id: int, qb: Any, rules: Any = None) -> str:
    """The company's home currency (asked once, then remembered as a binding)."""
    if rules is None:
        with hub.session() as s:
            rules = rules_for(s, merchant_id)
    refs = QuickBooksRefs(qb, Ledger(hub.sessions, merchant_id), rules,
                          lock=lambda what: locks.held(hub.sessions, f"{merchant_id}:{what}"),
                          rid=lambda *parts: "", run_id=None)
    return refs.home_currency() or "USD"


def open_invoices(hub: Hub, merchant_id: int, rows: list[dict[str, Any]], as_of: date, home: str) -> list[OpenInvoice]:
    """QuickBooks' open invoices dated on or before ``as_of``, with their store order and dunning stage."""
    out: list[OpenInvoice] = []
    for inv in rows:
        txn = date.fromisoformat(str(inv.get("TxnDate"))[:10])
        if txn > as_of:
            continue
        due = date.fromisoformat(str(inv.get("DueDate") or inv.get("TxnDate"))[:10])
        balance = amount(inv.get("Balance"))
        currency = (inv.get("CurrencyRef") or {}).get("value") or home
        if currency != home:
            balance = (balance * amount(inv.get("ExchangeRate") or 1)).quantize(CENT)
        if balance == 0:
            continue
        email = (inv.get("BillEmail") or {}).get("Address")
        customer = inv.get("CustomerRef") or {}
        out.append(OpenInvoice(str(inv["Id"]), inv.get("DocNumber"), email or customer.get("name") or "",
                               customer.get("value"), txn, due, balance, days_past_due(due, as_of)))
    ids = [i.invoice_id for i in out]
    with hub.session() as s:
        orders: dict[str, StoreOrder] = {}
        stages: dict[str, list[tuple[datetime, str]]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for o in s.scalars(select(StoreOrder).where(StoreOrder.merchant_id == merchant_id,
                                                        StoreOrder.invoice_id.in_(chunk))):
                orders[o.invoice_id or ""] = o
            for a in s.scalars(select(DunningAction).where(DunningAction.merchant_id == merchant_id,
                                                           DunningAction.invoice_id.in_(chunk),
                                                           DunningAction.status == "done")):
                stages.setdefault(a.invoice_id, []).append((a.claimed_at, a.stage))
        s.expunge_all()
    for i in out:
        i.order = orders.get(i.invoice_id)
        if i.invoice_id in stages:
            i.dunning_stage = max(stages[i.invoice_id])[1]
    return out


def credit_sales(hub: Hub, merchant_id: int, as_of: date, period_days: int) -> Decimal:
    """The totals of the hub's invoices dated in the ``period_days`` days ending ``as_of`` that were issued on
    terms (a due date after the invoice's date), from the order ledger and the invoice bindings."""
    start = as_of - timedelta(days=period_days - 1)
    total = Decimal("0.00")
    with hub.session() as s:
        rows = s.execute(select(StoreOrder.ordered_at, StoreOrder.invoice_total, Binding.data)
                         .join(Binding, (Binding.merchant_id == StoreOrder.merchant_id)
                               & (Binding.target_platform == QB) & (Binding.target_type == "invoice")
                               & (Binding.source_type == "order") & (Binding.target_id == StoreOrder.invoice_id))
                         .where(StoreOrder.merchant_id == merchant_id, StoreOrder.invoice_id.is_not(None))).all()
    for ordered_at, invoice_total, data in rows:
        due = (data or {}).get("due_date")
        if ordered_at is None or not due or invoice_total is None:
            continue
        day = ordered_at.date()
        if start <= day <= as_of and date.fromisoformat(due) > day:
            total += Decimal(invoice_total)
    return total


def report_buckets(report: dict[str, Any]) -> dict[str, Decimal]:
    """The GrandTotal row of QuickBooks' AgedReceivables, as the hub's buckets."""
    titles = [str(c.get("ColTitle", "")).strip().lower() for c in (report.get("Columns") or {}).get("Column", [])]
    out = dict.fromkeys(BUCKETS, Decimal("0.00"))
    for row in (report.get("Rows") or {}).get("Row", []):
        if row.get("group") != "GrandTotal":
            continue
        for title, cell in zip(titles, (row.get("Summary") or {}).get("ColData", []), strict=False):
            key = REPORT_COLUMNS.get(title)
            if key is not None and cell.get("value") not in (None, ""):
                out[key] = amount(cell["value"])
    return out


def compare_with_report(result: Receivables, report: dict[str, Any]) -> dict[str, Any]:
    """``{"quickbooks": buckets, "difference": {bucket: hub − QuickBooks}}`` (only buckets that differ)."""
    theirs = report_buckets(report)
    ours = result.buckets
    diff = {k: _money(ours[k] - theirs[k]) for k in BUCKETS if ours[k] != theirs[k]}
    return {"quickbooks": {k: _money(v) for k, v in theirs.items()}, "difference": diff}


def keep_snapshot(hub: Hub, result: Receivables) -> None:
    """The day's figures, kept (or replaced by these, the latest of the day)."""
    values = {"currency": result.currency, "open": _money(result.open), "overdue": _money(result.overdue),
              "credit_sales": _money(result.credit_sales), "dso_days": str(result.dso_days),
              "dso_period_days": result.dso_period_days,
              "buckets": {k: _money(v) for k, v in result.buckets.items()}}
    for _ in range(2):   # two computations of the same day at once: the second updates the first's row
        with hub.session() as s:
            row = s.scalar(select(ReceivablesSnapshot).where(ReceivablesSnapshot.merchant_id == result.merchant_id,
                                                             ReceivablesSnapshot.day == result.as_of))
            if row is None:
                row = ReceivablesSnapshot(merchant_id=result.merchant_id, day=result.as_of)
                s.add(row)
            for key, value in values.items():
                setattr(row, key, value)
            row.taken_at = datetime.now(UTC).replace(tzinfo=None)
            try:
                s.commit()
                return
            except IntegrityError:
                s.rollback()


def trend(hub: Hub, merchant_id: int, as_of: date | None = None, days: int = 30) -> list[dict[str, Any]]:
    """The kept daily figures of the ``days`` days ending ``as_of`` (oldest first): ``{day, open, overdue,
    dso_days, credit_sales}``."""
    end = as_of or today()
    with hub.session() as s:
        rows = list(s.scalars(select(ReceivablesSnapshot).where(
            ReceivablesSnapshot.merchant_id == merchant_id, ReceivablesSnapshot.day <= end,
            ReceivablesSnapshot.day > end - timedelta(days=days)).order_by(ReceivablesSnapshot.day)))
    return [{"day": r.day.isoformat(), "open": r.open, "overdue": r.overdue, "dso_days": r.dso_days,
             "credit_sales": r.credit_sales} for r in rows]
