"""WooCommerce REST API (wc/v3) order → canonical model. Pure: no I/O.

How WooCommerce stores an order, and what the canonical order makes of it:

- Line ``subtotal`` is the line before coupons, ``total`` after, both *excluding* tax, also in stores
  whose prices include tax (WooCommerce keeps the net figures and the tax apart). So the canonical order
  is always tax-exclusive: lines at net prices, the order's tax as ``total_tax``. The invoice then adds
  up exactly as WooCommerce's ``total``.
- A line's unit price is ``subtotal / quantity``. When that is not a whole cent (3 for 10.00), the line
  becomes two canonical lines, ``quantity - 1`` units at the rounded-down price and one unit carrying the
  remainder, so that every invoice line keeps ``Amount = Qty × UnitPrice`` and the sum stays exact.
- Coupons are the difference between ``subtotal`` and ``total`` on each line (``coupon_lines`` only
  name them). ``fee_lines`` (positive or negative) become fee lines.
- ``total`` is the order's total when it was placed; refunds (``refunds``) do not change it and are
  carried separately. An order is paid when ``date_paid`` is set and its status says the money came in.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mappings.inputs import UINT64_MAX, InvalidInput, clean_text, is_ascii_digits, parse_datetime, parse_id, shown
from mappings.model import (
    Address,
    Customer,
    FeeLine,
    Fulfillment,
    MappingError,
    Order,
    OrderLine,
    Payment,
    Refund,
    ShippingLine,
    TaxLine,
    cents,
)

PLATFORM = "woocommerce"
PAID_STATUSES = ("processing", "completed", "refunded")


def order_ref_from_webhook(body: Any) -> tuple[str, str | None]:
    """(order id, order name or None) from an ``order.*`` webhook body (a deleted order carries only its id)."""
    if not isinstance(body, dict):
        raise MappingError("WooCommerce webhook body must be a JSON object", rule="webhook")
    raw = body.get("id")
    if raw is None or isinstance(raw, bool) or str(raw).strip() == "":
        raise MappingError("WooCommerce webhook body has no order id", rule="webhook.id")
    try:  # a WordPress post id: unsigned 64-bit, ASCII digits ("²" passes str.isdigit() but not int())
        order_id = str(parse_id(raw, name="WooCommerce webhook order id", high=UINT64_MAX))
    except InvalidInput as exc:
        raise MappingError(f"{exc}: it is not an order id", rule="webhook.id") from None
    number = clean_text(_str(body.get("number")))
    return order_id, (f"#{number}"[:100] if number else None)


def order_from_rest(data: Any, trackings: list[dict[str, Any]] | None = None) -> Order:
    """Map a ``GET /wp-json/wc/v3/orders/{id}`` body to an ``Order``; ``MappingError`` says what is wrong.
    ``trackings``: the order's Shipment Tracking items (``wc-shipment-tracking/v3``), when the store has the
    extension."""
    if not isinstance(data, dict):
        raise MappingError(f"WooCommerce order must be a JSON object, got {type(data).__name__}", rule="order")
    source_id = _str(data.get("id"))
    if not is_ascii_digits(source_id):
        raise MappingError("WooCommerce order has no id", rule="order.id")
    number = _str(data.get("number")) or source_id
    name = f"#{number}"
    where = f"WooCommerce order {name} (id {source_id})"
    currency = _str(data.get("currency")).upper()
    if not currency:
        raise MappingError(f"{where} has no currency", rule="order.currency")
    q = cents(currency)

    def money(value: Any, field: str) -> Decimal:
        if value is None or value == "":
            return Decimal("0").quantize(q)
        if isinstance(value, float):
            value = repr(value)
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise MappingError(f"{where}: {field} is not an amount ({shown(str(value)[:40])})",
                               rule=f"order.{field}") from None
        if not amount.is_finite():
            raise MappingError(f"{where}: {field} is not an amount ({shown(value)})", rule=f"order.{field}")
        return amount.quantize(q)

    created_at = _date(data, "date_created", where, required=True)
    assert created_at is not None
    updated_at = _date(data, "date_modified", where) or created_at
    status = _str(data.get("status")) or "pending"

    raw_lines = data.get("line_items")
    if not isinstance(raw_lines, list):
        raise MappingError(f"{where} has no line_items", rule="order.line_items")
    lines: list[OrderLine] = []
    for index, ln in enumerate(raw_lines, start=1):
        lines.extend(_lines(ln, index, money, where, q))

    rates = {_str(t.get("rate_id")): t for t in _list(data.get("tax_lines"))}
    shipping = []
    for i, s in enumerate(_list(data.get("shipping_lines")), 1):
        shipping.append(ShippingLine(title=_str(s.get("method_title")) or "Shipping",
                                     amount=money(s.get("total"), f"shipping_lines[{i}].total"),
                                     code=_str(s.get("method_id")) or None,
                                     tax_lines=_taxes(s.get("taxes"), rates, money, f"shipping_lines[{i}]")))
    fees = []
    for i, f in enumerate(_list(data.get("fee_lines")), 1):
        fee_tax = _taxes(f.get("taxes"), rates, money, f"fee_lines[{i}]")
        taxable = _str(f.get("tax_status")) == "taxable" or any(t.amount for t in fee_tax)
        fees.append(FeeLine(title=_str(f.get("name")) or "Fee", amount=money(f.get("total"), f"fee_lines[{i}].total"),
                            kind="fee", taxable=taxable, tax_lines=fee_tax))

    tax_lines = [TaxLine(title=_str(t.get("label")) or _str(t.get("rate_code")) or "Tax",
                         rate=_rate(t.get("rate_percent")),
                         amount=money(t.get("tax_total"), "tax_lines.tax_total")
                         + money(t.get("shipping_tax_total"), "tax_lines.shipping_tax_total"))
                 for t in _list(data.get("tax_lines"))]

    total = money(data.get("total"), "total")
    total_tax = money(data.get("total_tax"), "total_tax")
    paid_at = _date(data, "date_paid", where)
    paid = paid_at is not None and status in PAID_STATUSES
    refunded = sum((abs(money(r.get("total"), "refunds.total")) for r in _list(data.get("refunds"))), Decimal("0"))
    if status == "refunded" or (paid and refunded >= total > 0):
        financial = "refunded"
    elif paid and refunded:
        financial = "partially_refunded"
    elif paid:
        financial = "paid"
    elif status in ("cancelled", "failed", "trash"):
        financial = "voided"
    else:
        financial = "pending"
    gateway = _str(data.get("payment_method")) or None
    payments = []
    if paid and total > 0:
        payments.append(Payment(source_id=_str(data.get("transaction_id")) or f"order-{source_id}-paid",
                                amount=total, gateway=gateway, processed_at=paid_at))

    billing = data.get("billing") if isinstance(data.get("billing"), dict) else {}
    shipping_addr = data.get("shipping") if isinstance(data.get("shipping"), dict) else {}
    customer_id = _str(data.get("customer_id"))
    customer = Customer(
        source_id=customer_id if customer_id not in ("", "0") else None,
        email=_str(billing.get("email")) or None,
        first_name=_str(billing.get("first_name")) or _str(shipping_addr.get("first_name")) or None,
        last_name=_str(billing.get("last_name")) or _str(shipping_addr.get("last_name")) or None,
        company=_str(billing.get("company")) or None,
        phone=_str(billing.get("phone")) or None,
        billing_address=_address(billing),
        shipping_address=_address(shipping_addr),
    )
    cancelled_at = updated_at if status in ("cancelled", "trash") else None
    refunds = [Refund(source_id=_str(r.get("id")), amount=abs(money(r.get("total"), "refunds.total")),
                      note=_str(r.get("reason")) or None)
               for r in _list(data.get("refunds")) if _str(r.get("id"))]
    return Order(
        platform=PLATFORM, source_id=source_id, name=name, number=number, currency=currency,
        created_at=created_at, updated_at=updated_at, customer=customer, lines=lines, total=total,
        total_tax=total_tax, taxes_included=False, shipping_lines=shipping, fee_lines=fees,
        tax_lines=tax_lines, financial_status=financial,
        total_outstanding=Decimal("0").quantize(q) if paid else total,
        payments=payments, payment_gateways=[gateway] if gateway else [], cancelled_at=cancelled_at,
        note=_str(data.get("customer_note")) or None, total_refunded=refunded, refunds=refunds,
        fulfillments=_completed(data, status, source_id, where, trackings),
    )


def _completed(data: dict, status: str, source_id: str, where: str,
               trackings: list[dict[str, Any]] | None) -> list[Fulfillment]:
    """WooCommerce has no shipments of its own: a ``completed`` order is one that left, on
    ``date_completed``; with the Shipment Tracking extension, each tracking item is a shipment (its
    provider, number, link and ``date_shipped``)."""
    if status != "completed":
        return []
    done = _date(data, "date_completed", where) or _date(data, "date_modified", where)
    out = []
    for i, t in enumerate(trackings or []):
        number = clean_text(_str(t.get("tracking_number"))).strip()
        shipped = _shipped_on(t.get("date_shipped")) or done
        out.append(Fulfillment(source_id=_str(t.get("tracking_id")) or f"{source_id}-tracking-{i}",
                               created_at=shipped, carrier=clean_text(_str(t.get("tracking_provider"))) or None,
                               tracking_numbers=[number] if number else [],
                               tracking_urls=[u] if (u := _str(t.get("tracking_link"))) else []))
    return out or [Fulfillment(source_id=f"{source_id}-completed", created_at=done)]


def _shipped_on(value: Any) -> datetime | None:
    """Shipment Tracking's ``date_shipped``: a date (YYYY-MM-DD) or a Unix timestamp."""
    text = _str(value).strip()
    if is_ascii_digits(text) and len(text) <= 12:
        return datetime.fromtimestamp(int(text), UTC)
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text[:10]).replace(tzinfo=UTC)
    return None


# --- pieces ------------------------------------------------------------------------------------

def _lines(ln: Any, index: int, money, where: str, q: Decimal) -> list[OrderLine]:  # noqa: ANN001
    if not isinstance(ln, dict):
        raise MappingError(f"{where}: line {index} is not an object", rule="order.line_items")
    title = _str(ln.get("name"))
    label = f"line {index}" + (f" ({title})" if title else "")
    if not title:
        raise MappingError(f"{where}: {label} has no name", rule="order.line_items.name")
    qty = ln.get("quantity")
    if isinstance(qty, bool) or not isinstance(qty, int | Decimal | str) \
            or not is_ascii_digits(str(qty).strip().lstrip("-")):
        raise MappingError(f"{where}: {label} has no whole quantity ({shown(qty)})", rule="order.line_items.quantity")
    qty = int(str(qty).strip())
    if qty <= 0:
        raise MappingError(f"{where}: {label} has quantity {qty}", rule="order.line_items.quantity")
    subtotal = money(ln.get("subtotal"), f"line_items[{index}].subtotal")
    total = money(ln.get("total"), f"line_items[{index}].total")
    taxes = _taxes(ln.get("taxes"), {}, money, f"line_items[{index}]")
    taxable = money(ln.get("total_tax"), f"line_items[{index}].total_tax") != 0 or any(t.amount for t in taxes)
    sku = _str(ln.get("sku")) or None
    source_id = _str(ln.get("id")) or str(index)
    unit = (subtotal / qty).quantize(q, rounding="ROUND_FLOOR")
    discount = subtotal - total
    if unit * qty == subtotal or qty == 1:
        return [OrderLine(source_id=source_id, sku=sku, title=title, quantity=qty,
                          unit_price=unit if qty > 1 else subtotal, discount=discount, tax_lines=taxes,
                          taxable=taxable)]
    # 3 × 3.333…: two units at 3.33 and one at 3.34, so each invoice line is exact and the sum is the subtotal
    rest = subtotal - unit * (qty - 1)
    first_discount = (discount * unit * (qty - 1) / subtotal).quantize(q) if subtotal else Decimal("0").quantize(q)
    return [OrderLine(source_id=source_id, sku=sku, title=title, quantity=qty - 1, unit_price=unit,
                      discount=first_discount, tax_lines=taxes, taxable=taxable),
            OrderLine(source_id=f"{source_id}-rest", sku=sku, title=title, quantity=1, unit_price=rest,
                      discount=discount - first_discount, taxable=taxable)]


def _taxes(raw: Any, rates: dict[str, dict], money, where: str) -> list[TaxLine]:  # noqa: ANN001
    out = []
    for t in _list(raw):
        amount = money(t.get("total"), f"{where}.taxes.total")
        rate_row = rates.get(_str(t.get("id"))) or {}
        out.append(TaxLine(title=_str(rate_row.get("label")) or f"rate {_str(t.get('id'))}",
                           rate=_rate(rate_row.get("rate_percent")), amount=amount))
    return out


def _rate(value: Any) -> Decimal:
    """WooCommerce's ``rate_percent`` (20 or 7.25) as a fraction (0.2, 0.0725)."""
    try:
        return (Decimal(str(value)) / 100) if value not in (None, "") else Decimal("0")
    except InvalidOperation:
        return Decimal("0")


def _address(raw: dict) -> Address | None:
    if not any(_str(raw.get(k)) for k in ("address_1", "city", "postcode", "country")):
        return None
    name = " ".join(p for p in (_str(raw.get("first_name")), _str(raw.get("last_name"))) if p) or None
    return Address(name=name, company=_str(raw.get("company")) or None, line1=_str(raw.get("address_1")) or None,
                   line2=_str(raw.get("address_2")) or None, city=_str(raw.get("city")) or None,
                   region=_str(raw.get("state")) or None, postal_code=_str(raw.get("postcode")) or None,
                   country=_str(raw.get("country")) or None, phone=_str(raw.get("phone")) or None)


def _date(data: dict, field: str, where: str, *, required: bool = False) -> datetime | None:
    """``date_x_gmt`` (UTC, no zone) else ``date_x`` (store time, taken as UTC), as an aware UTC time."""
    raw = _str(data.get(f"{field}_gmt")) or _str(data.get(field))
    if not raw:
        if required:
            raise MappingError(f"{where} has no {field}", rule=f"order.{field}")
        return None
    try:  # one reader for dates from outside: refuses what cannot be taken to UTC (year 1 at +01:00)
        value = parse_datetime(raw, name=field)
    except InvalidInput:
        raise MappingError(f"{where}: {field} is not a date ({shown(raw[:40])})", rule=f"order.{field}") from None
    return value.replace(tzinfo=UTC)


def _list(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return ""
    return str(value).strip()
