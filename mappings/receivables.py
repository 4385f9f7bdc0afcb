"""Receivables rules and the pure figures built on them: payment terms of an order, ageing buckets, DSO and
which dunning stages an overdue invoice has reached. No I/O.

Rules (section ``receivables`` of the mapping rules)::

    receivables:
      terms: {bacs: 30, cheque: 30}     # payment gateway → net days, for orders not paid at checkout
      shopify_payment_terms: true       # Shopify orders with paymentTerms (NET, FIXED) use those
      dso_period_days: 90               # the window DSO is computed over
      dunning:                          # stages, at N days relative to the due date (negative: before)
        - {stage: reminder, days: -3, actions: [properties]}
        - {stage: overdue, days: 1, actions: [properties, send_invoice]}
        - {stage: final, days: 30, actions: [properties, task, send_invoice]}

**Terms.** An order paid when it is invoiced is due on receipt (no term). Otherwise a Shopify order's
``paymentTerms`` (NET: ``dueInDays``; FIXED: the first schedule's ``dueAt``) decide, else the rule for its
payment gateway. The QuickBooks term is named ``Net N`` (``DueDays`` N); the invoice's ``DueDate`` is the
order's date + N (FIXED: the schedule's date).

**Ageing.** Days past due = as-of date − due date; *current* when ≤ 0, then 1–30, 31–60, 61–90, over 90.

**DSO** (days sales outstanding) = open receivables at the as-of date ÷ credit sales in the period × the
period's days, where credit sales are the totals of the invoices dated in the ``dso_period_days`` days
ending on the as-of date that were issued on terms (due after their date). No credit sales: 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mappings.model import Order
from mappings.rule_fields import RulesError, gateway_key

DUNNING_ACTIONS = ("properties", "task", "send_invoice")
BUCKETS = ("current", "1_30", "31_60", "61_90", "over_90")
MAX_TERM_DAYS = 365
_STAGE = "abcdefghijklmnopqrstuvwxyz0123456789_-"


@dataclass(frozen=True)
class DunningStage:
    stage: str                  # the stage's name, shown in HubSpot (o2c_dunning_stage) and the ledger
    days: int                   # days relative to the due date at which it is reached (negative: before)
    actions: tuple[str, ...]    # of DUNNING_ACTIONS


@dataclass(frozen=True)
class ReceivablesRules:
    terms: dict[str, int] = field(default_factory=dict)      # gateway key → net days
    shopify_payment_terms: bool = True
    dso_period_days: int = 90
    dunning: tuple[DunningStage, ...] = ()

    def stages_reached(self, days_past_due: int) -> list[DunningStage]:
        """The stages an invoice this many days past due (negative: before due) has reached, in order."""
        return [s for s in self.dunning if days_past_due >= s.days]


@dataclass(frozen=True)
class InvoiceTerms:
    name: str          # the QuickBooks Term's name, "Net 30"
    due_days: int
    due_date: date


def parse_receivables(section: dict[str, Any]) -> ReceivablesRules:
    """Validate the ``receivables`` section (``RulesError`` names the field)."""
    known = {"terms", "shopify_payment_terms", "dso_period_days", "dunning"}
    for key in section:
        if key not in known:
            raise RulesError(f"receivables.{key}", f"unknown setting (known: {', '.join(sorted(known))})")
    terms: dict[str, int] = {}
    raw_terms = section.get("terms") or {}
    if not isinstance(raw_terms, dict):
        raise RulesError("receivables.terms", "must map a payment gateway to net days, e.g. {bacs: 30}")
    for gateway, days in raw_terms.items():
        key = gateway_key(str(gateway)) if isinstance(gateway, str) else ""
        if not key:
            raise RulesError(f"receivables.terms.{gateway}", "keys are payment gateway names, e.g. bacs")
        terms[key] = _days(days, f"receivables.terms.{key}", 0, MAX_TERM_DAYS)
    shopify = section.get("shopify_payment_terms", True)
    if not isinstance(shopify, bool):
        raise RulesError("receivables.shopify_payment_terms", "must be true or false")
    period = _days(section.get("dso_period_days", 90), "receivables.dso_period_days", 1, 3650)
    stages_raw = section.get("dunning") or []
    if not isinstance(stages_raw, list):
        raise RulesError("receivables.dunning", "must be a list of {stage, days, actions}")
    stages: list[DunningStage] = []
    for i, raw in enumerate(stages_raw):
        where = f"receivables.dunning[{i}]"
        if not isinstance(raw, dict) or set(raw) - {"stage", "days", "actions"} or "stage" not in raw:
            raise RulesError(where, "must be {stage: <name>, days: <days from the due date>, actions: [...]}")
        name = raw["stage"]
        if not isinstance(name, str) or not name or len(name) > 40 or set(name.lower()) - set(_STAGE):
            raise RulesError(f"{where}.stage", "must be a short name (letters, digits, _ or -), e.g. overdue")
        if any(s.stage == name for s in stages):
            raise RulesError(f"{where}.stage", f"repeats the stage {name}")
        days = _days(raw.get("days", 0), f"{where}.days", -MAX_TERM_DAYS, 3650)
        if stages and days <= stages[-1].days:
            raise RulesError(f"{where}.days", "stages must come in order of days, each later than the one before")
        actions = raw.get("actions") or []
        if not isinstance(actions, list) or not actions or any(a not in DUNNING_ACTIONS for a in actions):
            raise RulesError(f"{where}.actions", f"must list some of {', '.join(DUNNING_ACTIONS)}")
        if "send_invoice" in actions and days < 0:
            raise RulesError(f"{where}.actions", "send_invoice needs days ≥ 0 (QuickBooks e-mails the invoice as due)")
        stages.append(DunningStage(name, days, tuple(dict.fromkeys(actions))))
    return ReceivablesRules(terms=terms, shopify_payment_terms=shopify, dso_period_days=period, dunning=tuple(stages))


def _days(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RulesError(where, f"must be a whole number of days from {low} to {high}")
    return value


# -- terms -------------------------------------------------------------------------------------------
def invoice_terms(order: Order, rules: ReceivablesRules) -> InvoiceTerms | None:
    """The payment terms of the order's invoice, or None: due on receipt (see the module docstring)."""
    if order.is_paid:
        return None
    txn = order.created_at.date()
    terms = order.payment_terms
    if terms is not None and rules.shopify_payment_terms:
        kind = str(terms.get("type") or "").upper()
        if kind == "NET" and terms.get("due_in_days") is not None:
            days = max(0, min(int(terms["due_in_days"]), MAX_TERM_DAYS))
            return InvoiceTerms(f"Net {days}", days, txn + timedelta(days=days))
        if kind == "FIXED" and terms.get("due_at"):
            due = date.fromisoformat(str(terms["due_at"])[:10])
            days = max(0, min((due - txn).days, MAX_TERM_DAYS))
            return InvoiceTerms(f"Net {days}", days, max(due, txn))
        if kind == "FULFILLMENT":   # due when the goods leave (plus its days, if any)
            shipped = order.shipments
            if not shipped or shipped[0].created_at is None:
                return None
            due = shipped[0].created_at.date() + timedelta(days=int(terms.get("due_in_days") or 0))
            days = max(0, min((due - txn).days, MAX_TERM_DAYS))
            return InvoiceTerms(f"Net {days}", days, max(due, txn))
        if kind == "RECEIPT":
            return None
    for gateway in order.payment_gateways:
        days = rules.terms.get(gateway_key(gateway))
        if days is not None:
            return InvoiceTerms(f"Net {days}", days, txn + timedelta(days=days)) if days else None
    return None


def with_terms(payload: dict[str, Any], term_id: str, due_date: str) -> dict[str, Any]:
    """The invoice payload on a term: ``SalesTermRef`` and ``DueDate``."""
    return {**payload, "SalesTermRef": {"value": str(term_id)}, "DueDate": due_date}


# -- ageing and DSO ----------------------------------------------------------------------------------
def days_past_due(due: date, as_of: date) -> int:
    return (as_of - due).days


def bucket_of(days: int) -> str:
    if days <= 0:
        return "current"
    if days <= 30:
        return "1_30"
    if days <= 60:
        return "31_60"
    if days <= 90:
        return "61_90"
    return "over_90"


def dso(receivables: Decimal, credit_sales: Decimal, period_days: int) -> Decimal:
    """Receivables ÷ credit sales × days, to one decimal (0 when there were no credit sales)."""
    if credit_sales <= 0:
        return Decimal("0.0")
    return (receivables / credit_sales * period_days).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
