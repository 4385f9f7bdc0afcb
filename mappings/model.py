"""The canonical order-to-cash model every store maps into and every back office maps out of.

Money is ``Decimal`` in the order's currency, never float. Plain dataclasses: easy to build in tests,
to serialise for support (``to_dict``) and to read back (``from_dict``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

# ISO 4217 currencies without minor units (the rest use two decimals, which is all the stores send).
ZERO_DECIMAL_CURRENCIES = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
                                     "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})


def cents(currency: str) -> Decimal:
    """The smallest unit of ``currency`` as a Decimal exponent (Decimal('0.01') or Decimal('1'))."""
    return Decimal("1") if currency.upper() in ZERO_DECIMAL_CURRENCIES else Decimal("0.01")


def to_money(value: Any, currency: str = "USD") -> Decimal:
    """Parse a platform amount (string, int or Decimal; never float) and round half-up to the cent."""
    if value is None or value == "":
        return Decimal("0").quantize(cents(currency))
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    return Decimal(str(value)).quantize(cents(currency), rounding=ROUND_HALF_UP)


class MappingError(ValueError):
    """The order cannot be translated; the message tells a support agent what to fix.

    ``rule`` names the mapping rule or field at fault (used to group failures by cause).
    """

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass
class Address:
    name: str | None = None
    company: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None
    phone: str | None = None


@dataclass
class Customer:
    """The buyer. ``source_id`` is the store's customer id (None for guests)."""

    source_id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    phone: str | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    # lifetime figures the store keeps for the buyer, when it sends them (Shopify numberOfOrders, amountSpent)
    number_of_orders: int | None = None
    amount_spent: Decimal | None = None

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p).strip()
        return name or self.company or self.email or "Guest customer"

    @property
    def key(self) -> str:
        """A stable key for the buyer across orders: the e-mail (lower-cased), else the store id."""
        if self.email:
            return "email:" + self.email.strip().lower()
        if self.source_id:
            return "id:" + self.source_id
        return "guest"


@dataclass
class TaxLine:
    title: str
    rate: Decimal
    amount: Decimal


@dataclass
class OrderLine:
    """One product line (or a gift card sold, ``is_gift_card``). ``discount`` is the total discount allocated
    to the line (all units). ``quantity`` is what was sold, refunded units included; ``current_quantity``
    (when the store sends it) excludes refunded and removed units. ``source_path`` says where the line came
    from in the store's payload (e.g. ``lineItems[3]``), for previews and support."""

    source_id: str
    sku: str | None
    title: str
    quantity: int
    unit_price: Decimal
    discount: Decimal = Decimal("0")
    tax_lines: list[TaxLine] = field(default_factory=list)
    taxable: bool = True
    is_gift_card: bool = False
    source_path: str | None = None
    current_quantity: int | None = None

    @property
    def subtotal(self) -> Decimal:
        return self.unit_price * self.quantity

    @property
    def net_amount(self) -> Decimal:
        return self.subtotal - self.discount


@dataclass
class ShippingLine:
    title: str
    amount: Decimal
    discount: Decimal = Decimal("0")
    code: str | None = None
    tax_lines: list[TaxLine] = field(default_factory=list)
    source_path: str | None = None

    @property
    def net_amount(self) -> Decimal:
        return self.amount - self.discount


@dataclass
class FeeLine:
    """A charge that is neither a product nor shipping: a store fee (WooCommerce ``fee_lines``) or a
    tip. ``kind`` is ``"fee"`` or ``"tip"``; ``amount`` excludes tax."""

    title: str
    amount: Decimal
    kind: str = "fee"
    taxable: bool = False
    tax_lines: list[TaxLine] = field(default_factory=list)
    source_path: str | None = None


@dataclass
class RefundLine:
    """Units of an order line given back in a refund: ``amount`` excludes tax, ``tax`` is its tax."""

    line_source_id: str
    quantity: int
    amount: Decimal
    tax: Decimal = Decimal("0")


@dataclass
class Refund:
    """Money returned to the buyer: ``amount`` is everything refunded (tax included). ``lines`` and
    ``shipping`` say what for, when the store tells; the rest of ``amount`` is an adjustment."""

    source_id: str
    amount: Decimal
    created_at: datetime | None = None
    lines: list[RefundLine] = field(default_factory=list)
    shipping: Decimal = Decimal("0")
    shipping_tax: Decimal = Decimal("0")
    note: str | None = None

    @property
    def tax(self) -> Decimal:
        return sum((ln.tax for ln in self.lines), Decimal("0")) + self.shipping_tax


@dataclass
class Fulfillment:
    """Goods that left (Shopify fulfilment; a WooCommerce order completed): ``status`` ``success``, or
    ``cancelled`` (a reversal: it no longer counts), with the carrier and its tracking."""

    source_id: str
    created_at: datetime | None
    status: str = "success"
    carrier: str | None = None
    tracking_numbers: list[str] = field(default_factory=list)
    tracking_urls: list[str] = field(default_factory=list)

    @property
    def counts(self) -> bool:
        return self.status == "success"


@dataclass
class Payment:
    """Money received against the order (a successful sale or capture). A gift card redeemed at checkout
    is a payment too (Shopify gateway ``gift_card``)."""

    source_id: str
    amount: Decimal
    gateway: str | None = None
    processed_at: datetime | None = None
    source_path: str | None = None


def store_label(store: str) -> str:
    """A store URL as notes and rules name it: without the scheme and the trailing slash."""
    text = store.split("://", 1)[-1].rstrip("/")
    return text or store


@dataclass
class Order:
    """One store order in the store's own currency.

    ``total`` is what the buyer was charged for the order as sold: products (gift cards sold included),
    shipping, fees and tips, less discounts, plus tax unless prices include it; after order edits and
    *before* refunds and returns (Shopify ``totalPriceSet``, WooCommerce ``total``). The invoice is for
    this amount; refunds (``total_refunded``) are separate documents (credit memo / refund receipt).

    ``exchange_rate``: units of ``exchange_rate_currency`` per unit of ``currency`` (when
    ``exchange_rate_currency`` is None: units of the back office's home currency). Shopify fills it from
    ``shopMoney`` vs ``presentmentMoney`` when the buyer paid in another currency.
    ``source_fields`` names, per canonical field (``total``, ``total_tax``, …), the store field it came
    from, for previews and support.
    """

    platform: str                 # "shopify" | "woocommerce"
    source_id: str                # the store's numeric order id, as a string
    name: str                     # what the merchant calls it: "#1001"
    number: str                   # the order number without decoration: "1001"
    currency: str
    created_at: datetime
    updated_at: datetime
    customer: Customer
    lines: list[OrderLine]
    total: Decimal                # what the buyer was charged, before refunds (see the docstring)
    total_tax: Decimal = Decimal("0")
    taxes_included: bool = False
    shipping_lines: list[ShippingLine] = field(default_factory=list)
    fee_lines: list[FeeLine] = field(default_factory=list)
    tax_lines: list[TaxLine] = field(default_factory=list)
    financial_status: str = "pending"  # pending|authorized|partially_paid|paid|partially_refunded|refunded|voided
    total_outstanding: Decimal = Decimal("0")
    payments: list[Payment] = field(default_factory=list)
    payment_gateways: list[str] = field(default_factory=list)
    cancelled_at: datetime | None = None
    note: str | None = None
    source_gid: str | None = None  # e.g. "gid://shopify/Order/123"
    exchange_rate: Decimal | None = None  # home currency per unit of ``currency`` (None: same currency)
    total_refunded: Decimal = Decimal("0")   # refunded so far (not on the invoice)
    presentment_currency: str | None = None  # what the buyer saw and paid in, when not ``currency``
    exchange_rate_currency: str | None = None  # the currency ``exchange_rate`` converts into
    source_fields: dict[str, str] = field(default_factory=dict)
    refunds: list[Refund] = field(default_factory=list)
    # the store the order is from, where ids are only unique within a store (a WooCommerce store URL);
    # "" where they are unique across stores (Shopify)
    store: str = ""
    # ids of payments (captures) the store voided since: each is in ``payments`` no more
    voided_payments: list[str] = field(default_factory=list)
    fulfillments: list[Fulfillment] = field(default_factory=list)

    @property
    def shipments(self) -> list[Fulfillment]:
        """The fulfilments that count (not cancelled), oldest first."""
        return sorted((f for f in self.fulfillments if f.counts),
                      key=lambda f: (f.created_at is None, f.created_at or datetime.min, f.source_id))
    # the store's payment terms (Shopify ``paymentTerms``): {"type": NET|FIXED|FULFILLMENT|RECEIPT,
    # "due_in_days": n or None, "due_at": ISO date-time or None}; None: the store gives none
    payment_terms: dict[str, Any] | None = None

    @property
    def discount_total(self) -> Decimal:
        return sum((ln.discount for ln in self.lines), Decimal("0")) + sum(
            (s.discount for s in self.shipping_lines), Decimal("0"))

    @property
    def shipping_total(self) -> Decimal:
        return sum((s.net_amount for s in self.shipping_lines), Decimal("0"))

    @property
    def fee_total(self) -> Decimal:
        return sum((f.amount for f in self.fee_lines), Decimal("0"))

    @property
    def amount_paid(self) -> Decimal:
        return sum((p.amount for p in self.payments), Decimal("0"))

    @property
    def is_paid(self) -> bool:
        """Fully paid: the store says so, or nothing is outstanding on a non-zero order."""
        if self.financial_status in ("paid", "partially_refunded", "refunded"):
            return True
        return self.total > 0 and self.total_outstanding <= 0 and self.amount_paid >= self.total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (Decimals as strings, datetimes as ISO 8601) for storage and support."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Order:
        d = dict(data)
        for k in ("total", "total_tax", "total_outstanding"):
            d[k] = Decimal(d[k])
        d["exchange_rate"] = Decimal(d["exchange_rate"]) if d.get("exchange_rate") else None
        if d.get("total_refunded") is not None:
            d["total_refunded"] = Decimal(d["total_refunded"])
        for k in ("created_at", "updated_at", "cancelled_at"):
            d[k] = datetime.fromisoformat(d[k]) if d.get(k) else None
        c = dict(d["customer"])
        for k in ("billing_address", "shipping_address"):
            c[k] = Address(**c[k]) if c.get(k) else None
        if c.get("amount_spent") is not None:
            c["amount_spent"] = Decimal(c["amount_spent"])
        d["customer"] = Customer(**c)
        d["lines"] = [OrderLine(**{**ln, "unit_price": Decimal(ln["unit_price"]),
                                   "discount": Decimal(ln["discount"]),
                                   "tax_lines": [_tax(t) for t in ln["tax_lines"]]}) for ln in d["lines"]]
        d["shipping_lines"] = [ShippingLine(**{**s, "amount": Decimal(s["amount"]),
                                               "discount": Decimal(s["discount"]),
                                               "tax_lines": [_tax(t) for t in s["tax_lines"]]})
                               for s in d["shipping_lines"]]
        d["fee_lines"] = [FeeLine(**{**f, "amount": Decimal(f["amount"]),
                                     "tax_lines": [_tax(t) for t in f["tax_lines"]]})
                          for f in d.get("fee_lines", [])]
        d["tax_lines"] = [_tax(t) for t in d["tax_lines"]]
        d["payments"] = [Payment(**{**p, "amount": Decimal(p["amount"]),
                                    "processed_at": datetime.fromisoformat(p["processed_at"])
                                    if p.get("processed_at") else None}) for p in d["payments"]]
        d["refunds"] = [Refund(**{**r, "amount": Decimal(r["amount"]), "shipping": Decimal(r["shipping"]),
                                  "shipping_tax": Decimal(r["shipping_tax"]),
                                  "created_at": datetime.fromisoformat(r["created_at"])
                                  if r.get("created_at") else None,
                                  "lines": [RefundLine(**{**ln, "amount": Decimal(ln["amount"]),
                                                          "tax": Decimal(ln["tax"])}) for ln in r["lines"]]})
                        for r in d.get("refunds", [])]
        d["fulfillments"] = [Fulfillment(**{**f, "created_at": datetime.fromisoformat(f["created_at"])
                                            if f.get("created_at") else None}) for f in d.get("fulfillments", [])]
        return cls(**d)


def _tax(t: dict[str, Any]) -> TaxLine:
    return TaxLine(title=t["title"], rate=Decimal(t["rate"]), amount=Decimal(t["amount"]))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
