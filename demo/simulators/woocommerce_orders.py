"""WooCommerce orders for the simulator: amounts computed the way WooCommerce's checkout computes them,
rendered the way the REST API (wc/v3) serves them.

``build_order(...)`` takes lines as a shopper sees them (unit prices as entered in the store: tax
included when the store has ``prices_include_tax``), coupons, fees, shipping and tax rates, and returns a
``WooOrder``; ``render_order(order, ...)`` gives the JSON. ``random_order(rng, ...)`` makes varied ones.

Money rules (as WooCommerce, Decimal arithmetic, cents rounded half away from zero):

* per line, taxes are computed per rate and rounded per line; ``subtotal`` is before coupons, ``total``
  after; both are ex-tax amounts even when prices include tax (the tax is carved out and stored apart);
* coupons work in cents on the line price as entered (tax included in an inclusive store), the most
  expensive line first: percent = floor per line then the missing cents one by one; fixed_cart = an
  equal amount per unit, repeated, then cents; fixed_product = amount × quantity; capped at the line;
* shipping costs and fees are ex-tax; their taxes are exclusive (negative fees get negative taxes);
* ``discount_total = Σ(subtotal − total)``, ``discount_tax = Σ(subtotal_tax − total_tax)`` and the
  coupon lines add up to them; ``cart_tax = Σ line taxes + Σ fee taxes``;
  ``total = Σ line totals + Σ fee totals + shipping_total + cart_tax + shipping_tax``.

As stored by WooCommerce, the per-rate ``taxes`` entries are trimmed decimals (``"1.5"``, ``"0"``), the
line ``price`` is a JSON number (``total / quantity``, an integer when PHP's division gives one), every
other amount is a string with ``dp`` (2) decimals, and dates are ISO without a zone (``date_x`` in the
store's time zone, ``date_x_gmt`` in UTC).
"""

from __future__ import annotations

import random
import secrets
import string
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0")
STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "checkout-draft")
STATUS_NAMES = {"pending": "Pending payment", "processing": "Processing", "on-hold": "On hold",
                "completed": "Completed", "cancelled": "Cancelled", "refunded": "Refunded", "failed": "Failed",
                "checkout-draft": "Draft", "trash": "Trash"}
PAID_STATUSES = ("processing", "completed")
WC_VERSION = "8.9.3"
SYMBOLS = {"USD": "$", "CAD": "$", "AUD": "$", "EUR": "€", "GBP": "£", "SEK": "kr", "CHF": "CHF", "PLN": "zł"}
ADDRESS_KEYS = ("first_name", "last_name", "company", "address_1", "address_2", "city", "state", "postcode",
                "country")
_AUTO: Any = object()


def d(value: str | int | Decimal) -> Decimal:
    if isinstance(value, float):
        raise TypeError("use strings or Decimals for money, never floats")
    return Decimal(str(value))


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal, dp: int = 2) -> str:
    """``wc_format_decimal(value, dp)``: a fixed number of decimals, no negative zero."""
    q = value.quantize(Decimal(1).scaleb(-dp), rounding=ROUND_HALF_UP)
    return format(abs(q) if q == 0 else q, "f")


def wc_decimal(value: Decimal) -> str:
    """A decimal as WooCommerce stores it after float conversion: ``"1.5"``, ``"2"``, ``"0"``."""
    text = format(cents(value).normalize(), "f")
    return "0" if text in ("-0", "0") else text


def wc_date(dt: datetime | None, offset_hours: Decimal = ZERO) -> str | None:
    if dt is None:
        return None
    local = dt.astimezone(UTC) + timedelta(hours=float(offset_hours))
    return local.strftime("%Y-%m-%dT%H:%M:%S")


def _php_price(total: Decimal, qty: int) -> int | float:
    """``$item->get_total() / $item->get_quantity()`` in PHP: int when the stored string divides exactly."""
    if not qty:
        return 0
    text = wc_decimal(total)
    if "." not in text and int(text) % qty == 0:
        return int(text) // qty
    return float(text) / qty


@dataclass(frozen=True)
class TaxRate:
    """One row of WooCommerce → Settings → Tax (``rate`` in percent)."""

    id: int
    rate: Decimal
    label: str = "Tax"
    country: str = ""
    state: str = ""
    priority: int = 1
    compound: bool = False
    shipping: bool = True
    tax_class: str = ""   # "" = standard, "reduced-rate", "zero-rate"

    @property
    def rate_code(self) -> str:
        parts = [self.country, self.state, self.label or "TAX", str(self.priority) if self.priority else ""]
        return "-".join(p for p in parts if p).upper()


def _rates(*rows: tuple) -> list[TaxRate]:
    return [TaxRate(id=r[0], rate=Decimal(r[1]), label=r[2], country=r[3], state=r[4], **(r[5] if len(r) > 5 else {}))
            for r in rows]


TAX_PROFILES: dict[str, list[TaxRate]] = {
    "us-ca": _rates((1, "6.0", "CA State Tax", "US", "CA"),
                    (2, "1.25", "County Tax", "US", "CA", {"priority": 2, "shipping": False})),
    "uk-vat": _rates((3, "20", "VAT", "GB", ""), (4, "5", "VAT", "GB", "", {"tax_class": "reduced-rate"}),
                     (5, "0", "VAT", "GB", "", {"tax_class": "zero-rate"})),
    "de-mwst": _rates((6, "19", "MwSt.", "DE", ""), (7, "7", "MwSt.", "DE", "", {"tax_class": "reduced-rate"})),
    "ca-qc": _rates((8, "5", "GST", "CA", "QC"), (9, "9.975", "QST", "CA", "QC", {"priority": 2})),
    "compound": _rates((10, "10", "State Tax", "US", "NY"),
                       (11, "2.5", "City Surcharge", "US", "NY", {"priority": 2, "compound": True})),
}


def calc_exclusive(amount: Decimal, rates: list[TaxRate]) -> dict[int, Decimal]:
    """``WC_Tax::calc_exclusive_tax`` (unrounded): regular rates on the price, compound ones on price + taxes."""
    taxes = {r.id: amount * r.rate / 100 for r in rates if not r.compound}
    for r in rates:
        if r.compound:
            taxes[r.id] = (amount + sum(taxes.values(), ZERO)) * r.rate / 100
    return {r.id: taxes[r.id] for r in rates}


def calc_inclusive(amount: Decimal, rates: list[TaxRate]) -> dict[int, Decimal]:
    """``WC_Tax::calc_inclusive_tax`` (unrounded): compound rates peeled off first, then the regular ones."""
    taxes = {r.id: ZERO for r in rates}
    non_compound = amount
    for r in reversed([r for r in rates if r.compound]):
        tax = non_compound - non_compound / (1 + r.rate / 100)
        taxes[r.id] += tax
        non_compound -= tax
    regular = [r for r in rates if not r.compound]
    divisor = 1 + sum((r.rate for r in regular), ZERO) / 100
    for r in regular:
        taxes[r.id] += (r.rate / 100) / divisor * non_compound
    return taxes


def _round(taxes: dict[int, Decimal]) -> dict[int, Decimal]:
    return {k: cents(v) for k, v in taxes.items()}


class _Taxed:
    taxes: dict[int, Decimal]

    @property
    def total_tax(self) -> Decimal:
        return sum(self.taxes.values(), ZERO)


@dataclass
class LineItem(_Taxed):
    id: int
    name: str
    product_id: int
    variation_id: int
    quantity: int
    tax_class: str
    sku: str
    subtotal: Decimal
    subtotal_taxes: dict[int, Decimal]
    total: Decimal
    taxes: dict[int, Decimal]
    meta_data: list[dict[str, Any]] = field(default_factory=list)
    parent_name: str | None = None
    virtual: bool = False

    @property
    def subtotal_tax(self) -> Decimal:
        return sum(self.subtotal_taxes.values(), ZERO)


@dataclass
class ShippingLine(_Taxed):
    id: int
    method_title: str
    method_id: str
    instance_id: str
    total: Decimal
    taxes: dict[int, Decimal]


@dataclass
class FeeLine(_Taxed):
    id: int
    name: str
    tax_class: str
    tax_status: str
    amount: Decimal
    total: Decimal
    taxes: dict[int, Decimal]


@dataclass
class CouponLine:
    id: int
    code: str
    discount_type: str
    nominal_amount: Decimal
    discount: Decimal = ZERO
    discount_tax: Decimal = ZERO


@dataclass
class Refund:
    id: int
    amount: Decimal
    reason: str
    date_created: datetime
    line_items: list[dict[str, Any]] = field(default_factory=list)
    refunded_by: int = 1
    refunded_payment: bool = False


@dataclass
class Note:
    id: int
    note: str
    date_created: datetime
    customer_note: bool = False
    author: str = "system"


@dataclass
class WooOrder:
    """The stored state of one order; amounts are computed once by ``build_order``."""

    id: int
    status: str
    currency: str
    prices_include_tax: bool
    line_items: list[LineItem]
    shipping_lines: list[ShippingLine]
    fee_lines: list[FeeLine]
    coupon_lines: list[CouponLine]
    rates: list[TaxRate]
    tax_line_ids: dict[int, int]
    billing: dict[str, str]
    shipping: dict[str, str]
    date_created: datetime
    date_modified: datetime
    date_paid: datetime | None = None
    date_completed: datetime | None = None
    customer_id: int = 0
    payment_method: str = ""
    payment_method_title: str = ""
    transaction_id: str = ""
    customer_note: str = ""
    number: str = ""
    order_key: str = ""
    created_via: str = "checkout"
    meta_data: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    trashed_from: str | None = None

    # -- amounts -------------------------------------------------------------------------------
    def _sum(self, values: Any) -> Decimal:
        return sum(values, ZERO)

    @property
    def cart_tax(self) -> Decimal:
        return self._sum(x.total_tax for x in [*self.line_items, *self.fee_lines])

    @property
    def shipping_total(self) -> Decimal:
        return self._sum(s.total for s in self.shipping_lines)

    @property
    def shipping_tax(self) -> Decimal:
        return self._sum(s.total_tax for s in self.shipping_lines)

    @property
    def discount_total(self) -> Decimal:
        return self._sum(ln.subtotal - ln.total for ln in self.line_items)

    @property
    def discount_tax(self) -> Decimal:
        return self._sum(ln.subtotal_tax - ln.total_tax for ln in self.line_items)

    @property
    def total_tax(self) -> Decimal:
        return self.cart_tax + self.shipping_tax

    @property
    def total(self) -> Decimal:
        return (self._sum(ln.total for ln in self.line_items) + self._sum(f.total for f in self.fee_lines)
                + self.shipping_total + self.cart_tax + self.shipping_tax)

    @property
    def total_refunded(self) -> Decimal:
        return self._sum(r.amount for r in self.refunds)

    def tax_lines(self) -> list[dict[str, Any]]:
        """Per rate: ``(rate, tax_total, shipping_tax_total)`` in the order the rates were first used."""
        out: dict[int, list[Decimal]] = {}
        for x in [*self.line_items, *self.fee_lines]:
            for rid, v in x.taxes.items():
                out.setdefault(rid, [ZERO, ZERO])[0] += v
        for s in self.shipping_lines:
            for rid, v in s.taxes.items():
                out.setdefault(rid, [ZERO, ZERO])[1] += v
        by_id = {r.id: r for r in self.rates}
        return [{"rate": by_id[rid], "tax_total": a, "shipping_tax_total": b} for rid, (a, b) in out.items()]

    def renumber(self, next_id: int) -> int:
        """Give every item a fresh id from ``next_id`` on (checkout order: lines, fees, shipping, taxes,
        coupons); returns the next free id."""
        for item in [*self.line_items, *self.fee_lines, *self.shipping_lines]:
            item.id, next_id = next_id, next_id + 1
        for rid in list(self.tax_line_ids):
            self.tax_line_ids[rid], next_id = next_id, next_id + 1
        for c in self.coupon_lines:
            c.id, next_id = next_id, next_id + 1
        return next_id


# -- building ------------------------------------------------------------------------------------
class _Discounts:
    """``WC_Discounts`` in cents: per-line discounts of each coupon."""

    def __init__(self, gross: list[int], qty: list[int]) -> None:
        self.gross, self.qty = gross, qty
        self.applied = [0] * len(gross)
        self.order = sorted(range(len(gross)), key=lambda i: -gross[i])  # most expensive first
        self.current: list[int] = []

    def _left(self, i: int) -> int:
        return self.gross[i] - self.applied[i]

    def _add(self, i: int, amount: int) -> int:
        self.applied[i] += amount
        self.current[i] += amount
        return amount

    def apply(self, kind: str, amount: Decimal) -> list[int]:
        self.current = [0] * len(self.gross)
        if kind == "percent":
            self._percent(amount)
        elif kind == "fixed_cart":
            self._fixed_cart([i for i in self.order if self.gross[i] > 0], int(cents(amount) * 100))
        elif kind == "fixed_product":
            self._fixed_product(self.order, int(cents(amount) * 100))
        else:
            raise ValueError(f"unknown coupon type {kind!r}")
        return self.current

    def _percent(self, pct: Decimal) -> None:
        total, cart = 0, 0
        for i in self.order:
            wanted = int((self.gross[i] * pct / 100).to_integral_value(ROUND_FLOOR))
            total += self._add(i, min(self._left(i), wanted))
            cart += self.gross[i]
        whole = int((cart * pct / 100).to_integral_value(ROUND_HALF_UP))
        if total < whole:
            self._remainder(self.order, whole - total)

    def _fixed_product(self, items: list[int], per_unit: int) -> int:
        return sum(self._add(i, min(self._left(i), per_unit * self.qty[i])) for i in items)

    def _fixed_cart(self, items: list[int], amount: int) -> int:
        count = sum(self.qty[i] for i in items)
        if not count or amount <= 0:
            return 0
        per_unit = amount // count
        if per_unit > 0:
            total = self._fixed_product(items, per_unit)
            if 0 < total < amount:
                total += self._fixed_cart(items, amount - total)
            return total
        return self._remainder(items, amount)

    def _remainder(self, items: list[int], amount: int) -> int:
        total = 0
        for i in items:
            for _ in range(self.qty[i]):
                total += self._add(i, min(self._left(i), 1))
                if total >= amount:
                    return total
        return total


def _address(spec: dict[str, Any] | None, *, billing: bool) -> dict[str, str]:
    keys = [*ADDRESS_KEYS, "email", "phone"] if billing else [*ADDRESS_KEYS, "phone"]
    return {k: str((spec or {}).get(k) or "") for k in keys}


def _split_tax(amount: Decimal, rates: list[TaxRate], inclusive: bool) -> tuple[Decimal, Decimal]:
    """(ex-tax part, tax part) of a coupon's discount on one line."""
    if not rates:
        return amount, ZERO
    if inclusive:
        tax = sum(_round(calc_inclusive(amount, rates)).values(), ZERO)
        return amount - tax, tax
    return amount, sum(_round(calc_exclusive(amount, rates)).values(), ZERO)


def build_order(*, order_id: int = 1, lines: list[dict[str, Any]], shipping: list[dict[str, Any]] | None = None,
                fees: list[dict[str, Any]] | None = None, coupons: list[dict[str, Any]] | None = None,
                tax_rates: list[TaxRate] | None = None, prices_include_tax: bool = False, calc_taxes: bool = True,
                currency: str = "USD", status: str = "processing", billing: dict[str, Any] | None = None,
                shipping_address: dict[str, Any] | None = None, customer_id: int = 0,
                payment_method: str = "bacs", payment_method_title: str | None = None, transaction_id: str = "",
                customer_note: str = "", created_at: datetime | None = None, date_paid: Any = _AUTO,
                date_completed: Any = _AUTO, number: str | None = None, meta_data: list[dict[str, Any]] | None = None,
                created_via: str = "checkout", refunds: list[dict[str, Any]] | None = None,
                first_item_id: int = 1) -> WooOrder:
    """Build one order (see the module docstring for the money rules).

    ``lines``: dicts with ``name``, ``quantity``, ``price`` (str, as entered) and optional ``sku`` (""),
    ``product_id``, ``variation_id``, ``tax_class`` (""), ``taxable`` (True), ``meta_data``, ``virtual``.
    ``shipping``: ``method_title``, ``cost`` (ex tax), optional ``method_id`` (flat_rate), ``instance_id``,
    ``taxable``. ``fees``: ``name``, ``amount`` (ex tax, may be negative), ``tax_status`` (taxable|none),
    ``tax_class``. ``coupons``: ``code``, ``type`` (percent|fixed_cart|fixed_product), ``amount``.
    ``refunds``: ``amount``, ``reason``. A ``refunded`` status adds the full refund WooCommerce creates.
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    rates = list(tax_rates or []) if calc_taxes else []
    created = (created_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    gross, qty, line_rates = [], [], []
    for spec in lines:
        q = int(spec["quantity"])
        if q <= 0:
            raise ValueError("line quantity must be positive")
        price = d(spec["price"])
        if price < 0:
            raise ValueError("a line price cannot be negative")
        gross.append(int(cents(price * q) * 100))
        qty.append(q)
        taxable = spec.get("taxable", True)
        line_rates.append([r for r in rates if r.tax_class == spec.get("tax_class", "")] if taxable else [])
    discounts = _Discounts(gross, qty)
    per_coupon = [discounts.apply(c.get("type", "percent"), d(c["amount"])) for c in coupons or []]
    items = []
    for i, spec in enumerate(lines):
        g, off, lr = Decimal(gross[i]) / 100, Decimal(discounts.applied[i]) / 100, line_rates[i]
        if prices_include_tax and lr:
            sub_taxes = _round(calc_inclusive(g, lr))
            taxes = _round(calc_inclusive(g - off, lr))
            subtotal, total = g - sum(sub_taxes.values(), ZERO), g - off - sum(taxes.values(), ZERO)
        else:
            subtotal, total = g, g - off
            sub_taxes, taxes = _round(calc_exclusive(subtotal, lr)), _round(calc_exclusive(total, lr))
        name = str(spec["name"])
        items.append(LineItem(
            id=0, name=name, product_id=int(spec.get("product_id") or 100 + zlib.crc32(name.encode()) % 9000),
            variation_id=int(spec.get("variation_id", 0)), quantity=qty[i], tax_class=spec.get("tax_class", ""),
            sku=str(spec.get("sku", "")), subtotal=subtotal, subtotal_taxes=sub_taxes, total=total, taxes=taxes,
            meta_data=list(spec.get("meta_data", [])), parent_name=spec.get("parent_name"),
            virtual=bool(spec.get("virtual", False))))
    coupon_lines = []
    for n, (c, split) in enumerate(zip(coupons or [], per_coupon, strict=True)):
        line = CouponLine(id=0, code=str(c["code"]).lower(), discount_type=c.get("type", "percent"),
                          nominal_amount=d(c["amount"]))
        if n < len(per_coupon) - 1:
            for i, amount in enumerate(split):
                ex, tax = _split_tax(Decimal(amount) / 100, line_rates[i], prices_include_tax)
                line.discount += ex
                line.discount_tax += tax
        coupon_lines.append(line)
    if coupon_lines:   # the last coupon takes what is left, so the coupon lines add up to the order's discount
        last = coupon_lines[-1]
        last.discount = sum((ln.subtotal - ln.total for ln in items), ZERO) - sum(
            (c.discount for c in coupon_lines[:-1]), ZERO)
        last.discount_tax = sum((ln.subtotal_tax - ln.total_tax for ln in items), ZERO) - sum(
            (c.discount_tax for c in coupon_lines[:-1]), ZERO)
    ship_rates = [r for r in rates if r.tax_class == "" and r.shipping]
    ship_lines = [ShippingLine(
        id=0, method_title=s.get("method_title", "Flat rate"), method_id=s.get("method_id", "flat_rate"),
        instance_id=str(s.get("instance_id", "1")), total=cents(d(s.get("cost", "0"))),
        taxes=_round(calc_exclusive(cents(d(s.get("cost", "0"))), ship_rates if s.get("taxable", True) else [])))
        for s in shipping or []]
    fee_lines = []
    for f in fees or []:
        amount = cents(d(f["amount"]))
        taxable = f.get("tax_status", "taxable") == "taxable"
        fr = [r for r in rates if r.tax_class == f.get("tax_class", "")] if taxable else []
        fee_lines.append(FeeLine(id=0, name=str(f["name"]), tax_class=f.get("tax_class", ""),
                                 tax_status="taxable" if taxable else "none", amount=amount, total=amount,
                                 taxes=_round(calc_exclusive(amount, fr))))
    used = [r.id for r in rates if any(r.id in x.taxes for x in [*items, *fee_lines, *ship_lines])]
    paid = created if status in (*PAID_STATUSES, "refunded") else None
    order = WooOrder(
        id=order_id, status=status, currency=currency, prices_include_tax=prices_include_tax, line_items=items,
        shipping_lines=ship_lines, fee_lines=fee_lines, coupon_lines=coupon_lines, rates=list(tax_rates or []),
        tax_line_ids={rid: 0 for rid in used}, billing=_address(billing, billing=True),
        shipping=_address(shipping_address, billing=False), date_created=created, date_modified=created,
        date_paid=paid if date_paid is _AUTO else date_paid,
        date_completed=(created if status == "completed" else None) if date_completed is _AUTO else date_completed,
        customer_id=customer_id, payment_method=payment_method,
        payment_method_title=payment_method_title if payment_method_title is not None else PAYMENT_TITLES.get(
            payment_method, payment_method), transaction_id=transaction_id, customer_note=customer_note,
        number=number or str(order_id), order_key="wc_order_" + "".join(
            secrets.choice(string.ascii_letters + string.digits) for _ in range(13)),
        created_via=created_via, meta_data=list(meta_data or []))
    if order.total < 0:
        raise ValueError("the order total would be negative")
    order.renumber(first_item_id)
    for k, r in enumerate(refunds or []):
        order.refunds.append(Refund(id=order_id + k + 1, amount=cents(d(r["amount"])), reason=r.get("reason", ""),
                                    date_created=r.get("date_created", created)))
    if status == "refunded" and order.total - order.total_refunded > 0:
        order.refunds.append(Refund(id=order_id + len(order.refunds) + 1, amount=order.total - order.total_refunded,
                                    reason="Order fully refunded.", date_created=created))
    if order.total_refunded > order.total:
        raise ValueError("refunds exceed the order total")
    return order


PAYMENT_TITLES = {"bacs": "Direct bank transfer", "cheque": "Check payments", "cod": "Cash on delivery",
                  "stripe": "Credit Card (Stripe)", "paypal": "PayPal", "": ""}


# -- rendering -----------------------------------------------------------------------------------
def _taxes(taxes: dict[int, Decimal], subtotals: dict[int, Decimal] | None = None) -> list[dict[str, Any]]:
    return [{"id": rid, "total": wc_decimal(v), "subtotal": wc_decimal(subtotals[rid]) if subtotals else ""}
            for rid, v in taxes.items()]


def render_order(o: WooOrder, *, api_url: str, store_url: str, gmt_offset: Decimal = ZERO, dp: int = 2) -> dict:
    """The order as ``GET /wp-json/wc/v3/orders/{id}`` returns it."""
    def m(v: Decimal) -> str:
        return money(v, dp)

    lines = [{"id": ln.id, "name": ln.name, "product_id": ln.product_id, "variation_id": ln.variation_id,
              "quantity": ln.quantity, "tax_class": ln.tax_class, "subtotal": m(ln.subtotal),
              "subtotal_tax": m(ln.subtotal_tax), "total": m(ln.total), "total_tax": m(ln.total_tax),
              "taxes": _taxes(ln.taxes, ln.subtotal_taxes), "meta_data": ln.meta_data, "sku": ln.sku,
              "price": _php_price(ln.total, ln.quantity), "image": {"id": "", "src": ""},
              "parent_name": ln.parent_name} for ln in o.line_items]
    tax_lines = [{"id": o.tax_line_ids.get(t["rate"].id, 0), "rate_code": t["rate"].rate_code, "rate_id": t["rate"].id,
                  "label": t["rate"].label, "compound": t["rate"].compound, "tax_total": m(t["tax_total"]),
                  "shipping_tax_total": m(t["shipping_tax_total"]), "rate_percent": float(t["rate"].rate),
                  "meta_data": []} for t in o.tax_lines()]
    shipping = [{"id": s.id, "method_title": s.method_title, "method_id": s.method_id, "instance_id": s.instance_id,
                 "total": m(s.total), "total_tax": m(s.total_tax), "taxes": _taxes(s.taxes), "meta_data": []}
                for s in o.shipping_lines]
    fees = [{"id": f.id, "name": f.name, "tax_class": f.tax_class, "tax_status": f.tax_status,
             "amount": wc_decimal(f.amount), "total": m(f.total), "total_tax": m(f.total_tax),
             "taxes": _taxes(f.taxes), "meta_data": []} for f in o.fee_lines]
    coupons = [{"id": c.id, "code": c.code, "discount": m(c.discount), "discount_tax": m(c.discount_tax),
                "discount_type": c.discount_type, "nominal_amount": float(c.nominal_amount),
                "free_shipping": False, "meta_data": []} for c in o.coupon_lines]
    links: dict[str, Any] = {"self": [{"href": f"{api_url}/orders/{o.id}"}],
                             "collection": [{"href": f"{api_url}/orders"}]}
    if o.customer_id:
        links["customer"] = [{"href": f"{api_url}/customers/{o.customer_id}"}]
    return {
        "id": o.id, "parent_id": 0, "status": o.status, "currency": o.currency, "version": WC_VERSION,
        "prices_include_tax": o.prices_include_tax, "date_created": wc_date(o.date_created, gmt_offset),
        "date_modified": wc_date(o.date_modified, gmt_offset), "discount_total": m(o.discount_total),
        "discount_tax": m(o.discount_tax), "shipping_total": m(o.shipping_total), "shipping_tax": m(o.shipping_tax),
        "cart_tax": m(o.cart_tax), "total": m(o.total), "total_tax": m(o.total_tax), "customer_id": o.customer_id,
        "order_key": o.order_key, "billing": dict(o.billing), "shipping": dict(o.shipping),
        "payment_method": o.payment_method, "payment_method_title": o.payment_method_title,
        "transaction_id": o.transaction_id, "customer_ip_address": "203.0.113.7" if o.created_via == "checkout" else "",
        "customer_user_agent": "Mozilla/5.0" if o.created_via == "checkout" else "", "created_via": o.created_via,
        "customer_note": o.customer_note, "date_completed": wc_date(o.date_completed, gmt_offset),
        "date_paid": wc_date(o.date_paid, gmt_offset), "cart_hash": "", "number": o.number,
        "meta_data": o.meta_data, "line_items": lines, "tax_lines": tax_lines, "shipping_lines": shipping,
        "fee_lines": fees, "coupon_lines": coupons,
        "refunds": [{"id": r.id, "reason": r.reason, "total": m(-r.amount)} for r in reversed(o.refunds)],
        "payment_url": f"{store_url}/checkout/order-pay/{o.id}/?pay_for_order=true&key={o.order_key}",
        "is_editable": o.status in ("pending", "on-hold", "checkout-draft"),
        "needs_payment": o.status in ("pending", "failed") and o.total > 0,
        "needs_processing": any(not ln.virtual for ln in o.line_items),
        "date_created_gmt": wc_date(o.date_created), "date_modified_gmt": wc_date(o.date_modified),
        "date_completed_gmt": wc_date(o.date_completed), "date_paid_gmt": wc_date(o.date_paid),
        "currency_symbol": SYMBOLS.get(o.currency, o.currency), "_links": links,
    }


def render_refund(o: WooOrder, r: Refund, *, api_url: str, gmt_offset: Decimal = ZERO, dp: int = 2) -> dict:
    """One entry of ``GET /orders/{id}/refunds``."""
    items = []
    by_id = {ln.id: ln for ln in o.line_items}
    for n, spec in enumerate(r.line_items):
        ln = by_id[int(spec["id"])]
        total, taxes = d(spec.get("refund_total", "0")), {int(k): d(v) for k, v in spec.get("refund_tax", {}).items()}
        q = int(spec.get("quantity", 0))
        items.append({"id": r.id * 10 + n + 1, "name": ln.name, "product_id": ln.product_id,
                      "variation_id": ln.variation_id, "quantity": -q, "tax_class": ln.tax_class,
                      "subtotal": money(-total, dp), "subtotal_tax": money(-sum(taxes.values(), ZERO), dp),
                      "total": money(-total, dp), "total_tax": money(-sum(taxes.values(), ZERO), dp),
                      "taxes": [{"id": k, "total": wc_decimal(-v), "subtotal": wc_decimal(-v)}
                                for k, v in taxes.items()],
                      "meta_data": [{"id": r.id * 100 + n, "key": "_refunded_item_id", "value": str(ln.id),
                                     "display_key": "_refunded_item_id", "display_value": str(ln.id)}],
                      "sku": ln.sku, "price": _php_price(-total, q) if q else 0, "refund_total": -float(total)})
    return {"id": r.id, "date_created": wc_date(r.date_created, gmt_offset),
            "date_created_gmt": wc_date(r.date_created),
            "amount": money(r.amount, dp), "reason": r.reason, "refunded_by": r.refunded_by,
            "refunded_payment": r.refunded_payment, "meta_data": [], "line_items": items, "shipping_lines": [],
            "tax_lines": [], "fee_lines": [],
            "_links": {"self": [{"href": f"{api_url}/orders/{o.id}/refunds/{r.id}"}],
                       "collection": [{"href": f"{api_url}/orders/{o.id}/refunds"}],
                       "up": [{"href": f"{api_url}/orders/{o.id}"}]}}


# -- random orders -------------------------------------------------------------------------------
PRODUCTS = [("Café au lait 250 g", "COF-250", "8.90", ""), ("Crème brûlée kit", "KIT-CB", "24.50", ""),
            ("Müsli Classic 1 kg", "MUS-1K", "6.49", "reduced-rate"), ("日本茶 Sencha", "TEA-SEN", "12.00", ""),
            ("Smørrebrød board", "", "39.00", ""), ("Zoë's hoodie — navy", "HOOD-NV", "55.00", ""),
            ("Gift card", "", "25.00", "zero-rate"), ("Sample sachet", "SAMPLE", "0.00", ""),
            ("Ceramic mug", "MUG-01", "14.95", ""), ("Notebook A5", "NB-A5", "3.33", ""),
            ("Espresso beans 1 kg", "ESP-1K", "29.99", ""), ("Children's book", "BK-KID", "9.99", "zero-rate")]
PEOPLE = [("José", "Álvarez", "ES"), ("Zoë", "Müller", "DE"), ("Łukasz", "Żółć", "PL"), ("Siobhán", "O'Brien", "IE"),
          ("小龙", "李", "CN"), ("Ørjan", "Søvik", "NO"), ("Ada", "Lovelace", "GB"), ("Grace", "Hopper", "US")]
PROFILES = [("us-ca", "USD", False), ("uk-vat", "GBP", True), ("de-mwst", "EUR", True), ("ca-qc", "CAD", False),
            ("compound", "USD", False), ("", "USD", False), ("uk-vat", "EUR", False), ("de-mwst", "SEK", True)]


def random_order(rng: random.Random, order_id: int = 1, *, created_at: datetime | None = None,
                 profile: tuple[str, str, bool] | None = None) -> WooOrder:
    """A varied order: guests (some without e-mail), coupons, several rates, fees of both signs, free
    shipping, non-ASCII names, foreign currencies, inclusive prices, 0-priced and many lines."""
    tax_profile, currency, inclusive = profile or rng.choice(PROFILES)
    n = rng.choice([1, 1, 2, 3, 4, 6]) if rng.random() > 0.05 else rng.randint(30, 60)
    lines = []
    for k in range(n):
        name, sku, price, tax_class = rng.choice(PRODUCTS)
        if rng.random() < 0.3 and price != "0.00":
            price = str(cents(d(price) * d(rng.choice(["0.5", "1.1", "1.37", "2"]))))
        line: dict[str, Any] = {"name": name, "sku": sku, "quantity": rng.choice([1, 1, 1, 2, 3, 7]),
                                "price": price, "tax_class": tax_class, "virtual": name == "Gift card"}
        if rng.random() < 0.15:
            size = rng.choice(["S", "M", "XL"])
            line.update(name=f"{name} - {size}", variation_id=5000 + k, parent_name=name,
                        meta_data=[{"id": 9000 + k, "key": "pa_size", "value": size.lower(), "display_key": "Size",
                                    "display_value": size}])
        lines.append(line)
    coupons = []
    for code in rng.sample(["SUMMER10", "WELCOME5", "VIP12_5", "PERITEM50"], k=rng.choice([0, 0, 0, 1, 1, 2])):
        kind, amount = {"SUMMER10": ("percent", "10"), "WELCOME5": ("fixed_cart", "5"),
                        "VIP12_5": ("percent", "12.5"), "PERITEM50": ("fixed_product", "0.50")}[code]
        coupons.append({"code": code, "type": kind, "amount": amount})
    ship_kind = rng.choice(["flat", "flat", "free", "pickup", "none"])
    shipping = {"flat": [{"method_title": "Flat rate", "cost": rng.choice(["4.99", "7.50", "12.00"])}],
                "free": [{"method_title": "Free shipping", "method_id": "free_shipping", "cost": "0"}],
                "pickup": [{"method_title": "Local pickup", "method_id": "local_pickup", "cost": "0",
                            "taxable": False}], "none": []}[ship_kind]
    fees = []
    if rng.random() < 0.2:
        fees.append({"name": "Gift wrap", "amount": "2.50"})
    if rng.random() < 0.15 and sum(d(ln["price"]) * ln["quantity"] for ln in lines) > 10:
        fees.append({"name": "Loyalty discount", "amount": "-1.75", "tax_status": "none"})
    status = rng.choices(["processing", "completed", "on-hold", "pending", "cancelled", "failed", "refunded"],
                         weights=[45, 25, 8, 8, 5, 3, 6])[0]
    method = "bacs" if status == "on-hold" else rng.choice(["stripe", "stripe", "paypal", "cod", "bacs"])
    first, last, country = rng.choice(PEOPLE)
    guest = rng.random() < 0.4
    email = "" if guest and rng.random() < 0.25 else f"{last.lower()}.{order_id}@example.com"
    billing = {"first_name": first, "last_name": last, "company": rng.choice(["", "", "Ærø Trading ApS"]),
               "address_1": f"{rng.randint(1, 200)} Rue de l'Église", "city": rng.choice(["Zürich", "Kraków", "Leeds"]),
               "postcode": str(rng.randint(10000, 99999)), "country": country, "email": email,
               "phone": rng.choice(["", "+44 20 7946 0958"])}
    created = created_at or datetime.now(UTC) - timedelta(minutes=rng.randint(0, 60 * 24 * 60))
    order = build_order(
        order_id=order_id, lines=lines, shipping=shipping, fees=fees, coupons=coupons,
        tax_rates=TAX_PROFILES.get(tax_profile, []), calc_taxes=bool(tax_profile), prices_include_tax=inclusive,
        currency=currency, status=status, billing=billing, shipping_address=billing if ship_kind != "none" else None,
        customer_id=0 if guest else 20 + order_id % 50, payment_method=method,
        transaction_id=f"ch_{secrets.token_hex(12)}" if method == "stripe" and status != "pending" else "",
        customer_note=rng.choice(["", "", "Bitte vor 12 Uhr liefern — danke!"]), created_at=created,
        created_via="checkout" if rng.random() < 0.9 else "admin", first_item_id=order_id * 100 + 1)
    if status == "completed" and order.total > 0 and rng.random() < 0.2:
        amount = cents(order.total * d(rng.choice(["0.1", "0.5", "0.33"])))
        if amount > 0:
            order.refunds.append(Refund(id=order_id + 90, amount=amount, reason=rng.choice(["", "Damaged item"]),
                                        date_created=created + timedelta(days=2)))
    return order
