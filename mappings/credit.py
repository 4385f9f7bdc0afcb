"""Credit limits, pure: which orders are sold on credit, what a limit is, and whether an order goes over it.
No I/O.

**On credit** (a *net-terms* order): not paid, not cancelled, and either on Shopify payment terms NET, FIXED
or FULFILLMENT (when the rule ``receivables.shopify_payment_terms`` is on) or paid by a gateway the rule
``receivables.terms`` gives net days (more than 0). Orders due on receipt are never held.

**Exposure** = the customer's open QuickBooks balance (``Customer.Balance``, which counts every invoice of
theirs, this order's too once it is invoiced) + their unpaid net-terms orders the hub has seen but not yet
invoiced. An order goes *over* the limit when the exposure with it exceeds the limit (equal is within).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from mappings.model import Order
from mappings.receivables import ReceivablesRules
from mappings.rule_fields import gateway_key

CREDIT_TERMS = ("NET", "FIXED", "FULFILLMENT")
MAX_LIMIT = Decimal("1000000000")
HOLD_HANDLE = "o2c-credit"          # the hub's own handle on Shopify fulfilment holds
NOTE_MARK = "O2C credit hold"       # starts every WooCommerce order note of a hold or its release


class LimitError(ValueError):
    """A limit that is not an amount (the message says what to type)."""


def on_credit(order: Order, rules: ReceivablesRules) -> bool:
    """Whether the order is sold on credit (see the module docstring)."""
    if order.is_paid or order.cancelled_at is not None or order.total <= 0:
        return False
    terms = order.payment_terms
    if terms is not None and rules.shopify_payment_terms:
        kind = str(terms.get("type") or "").upper()
        if kind in CREDIT_TERMS:
            return True
        if kind == "RECEIPT":
            return False
    return any((rules.terms.get(gateway_key(g)) or 0) > 0 for g in order.payment_gateways)


def parse_limit(text: str) -> Decimal | None:
    """``"5000"``, ``"5,000.00"`` → Decimal("5000.00"); ``"none"`` → None (no limit)."""
    cleaned = (text or "").strip().replace(",", "")
    if cleaned.lower() in ("none", "off", "no", ""):
        if cleaned == "":
            raise LimitError("give an amount, e.g. 5000.00, or none to remove the limit")
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise LimitError(f"{text.strip()[:30]!r} is not an amount: give e.g. 5000.00, or none") from None
    if not value.is_finite() or value < 0 or value > MAX_LIMIT:
        raise LimitError("a limit is an amount from 0 to 1,000,000,000")
    if value != value.quantize(Decimal("0.01")):
        raise LimitError("a limit has at most two decimals")
    return value.quantize(Decimal("0.01"))


def over_limit(exposure: Decimal, limit: Decimal) -> bool:
    return exposure > limit


def hold_text(order_name: str, exposure: Decimal, limit: Decimal, currency: str) -> str:
    """The reason shown on the hold (Shopify ``reasonNotes``, the WooCommerce note, the ledger)."""
    return (f"{NOTE_MARK}: order {order_name} would bring the customer's exposure to {exposure} {currency}, "
            f"over their credit limit of {limit} {currency}. Held by O2C Hub until a payment brings it back "
            "within the limit.")
