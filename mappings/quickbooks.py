"""Canonical model → QuickBooks Online (Accounting API v3) payloads. Pure: no I/O.

Payloads use the API's own field names; amounts are ``Decimal`` quantized to the currency's minor unit
(the caller serialises them, e.g. ``json.dumps(payload, default=str)`` or as JSON numbers).
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import Any

from mappings.model import Address, Customer, MappingError, Order, OrderLine, cents
from mappings.rules import DOC_NUMBER_MAX, MappingRules

DISPLAY_NAME_MAX = 500
PERSON_NAME_MAX = 100      # GivenName, FamilyName
COMPANY_NAME_MAX = 100
EMAIL_MAX = 100
PHONE_MAX = 30
ADDRESS_LINE_MAX = 500
CITY_MAX = 255
REGION_MAX = 255
POSTAL_CODE_MAX = 30
COUNTRY_MAX = 255
DESCRIPTION_MAX = 4000
PAYMENT_REF_MAX = 21
PRIVATE_NOTE_MAX = 4000
REQUEST_ID_LENGTH = 32     # ≤ 36 so it also fits a batch bId

_PLATFORM_LABELS = {"shopify": "Shopify", "woocommerce": "WooCommerce"}
_SPACES = re.compile(r"\s+")


def sku_key(line: OrderLine) -> str:
    """The key of ``item_ids``: the line's SKU, or ``"title:<title>"`` when it has none."""
    sku = (line.sku or "").strip()
    return sku if sku else "title:" + (line.title or "").strip()


def request_id(*parts: str) -> str:
    """A deterministic QuickBooks ``requestid`` (32 hex characters) for e.g.
    ``(merchant id, "shopify", order id, "invoice")``."""
    if not parts:
        raise ValueError("request_id needs at least one part")
    joined = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:REQUEST_ID_LENGTH]


# --- customers ---------------------------------------------------------------------------------

def clean_display_name(name: str | None) -> str:
    """A DisplayName QuickBooks accepts: one line, no ':' , at most 500 characters, not empty."""
    text = _clean(name).replace(":", "-")
    return _truncate(text, DISPLAY_NAME_MAX) or "Guest customer"


def customer_payload(customer: Customer, display_name: str | None = None) -> dict[str, Any]:
    """A QuickBooks Customer create body (``display_name`` overrides the derived one, e.g. to
    disambiguate a "Duplicate Name Exists")."""
    payload: dict[str, Any] = {"DisplayName": clean_display_name(display_name or customer.display_name)}
    _put(payload, "GivenName", _truncate(_clean(customer.first_name), PERSON_NAME_MAX))
    _put(payload, "FamilyName", _truncate(_clean(customer.last_name), PERSON_NAME_MAX))
    _put(payload, "CompanyName", _truncate(_clean(customer.company), COMPANY_NAME_MAX))
    email = _clean(customer.email)
    if email and len(email) <= EMAIL_MAX:  # a truncated e-mail would be wrong: leave it out
        payload["PrimaryEmailAddr"] = {"Address": email}
    phone = _clean(customer.phone) or _clean(customer.billing_address and customer.billing_address.phone)
    if phone:
        payload["PrimaryPhone"] = {"FreeFormNumber": _truncate(phone, PHONE_MAX)}
    bill = _address(customer.billing_address)
    ship = _address(customer.shipping_address)
    if bill:
        payload["BillAddr"] = bill
    if ship:
        payload["ShipAddr"] = ship
    return payload


def _address(a: Address | None) -> dict[str, str] | None:
    if a is None:
        return None
    out: dict[str, str] = {}
    _put(out, "Line1", _truncate(_clean(a.line1), ADDRESS_LINE_MAX))
    _put(out, "Line2", _truncate(_clean(a.line2), ADDRESS_LINE_MAX))
    _put(out, "City", _truncate(_clean(a.city), CITY_MAX))
    _put(out, "CountrySubDivisionCode", _truncate(_clean(a.region), REGION_MAX))
    _put(out, "PostalCode", _truncate(_clean(a.postal_code), POSTAL_CODE_MAX))
    _put(out, "Country", _truncate(_clean(a.country), COUNTRY_MAX))
    return out or None


# --- invoices ----------------------------------------------------------------------------------

def doc_number(order: Order, rules: MappingRules) -> str:
    """The invoice DocNumber: the order number per ``invoice.doc_number`` / ``invoice.prefix``."""
    value = rules.invoice.render_doc_number(number=order.number, name=order.name, id=order.source_id)
    if not value or len(value) > DOC_NUMBER_MAX:
        raise MappingError(f"invoice DocNumber {value!r} for {_order_label(order)} is longer than QuickBooks' "
                           f"{DOC_NUMBER_MAX} characters: shorten invoice.prefix or invoice.doc_number",
                           rule="invoice.doc_number")
    return value


def private_note(order: Order) -> str:
    """E.g. ``Shopify order #1001 (id 4501)``: how an accountant finds the order again."""
    return _order_label(order)


def invoice_payload(order: Order, *, customer_id: str, item_ids: dict[str, str],
                    shipping_item_id: str | None, rules: MappingRules,
                    customer_memo: str | None = None) -> dict[str, Any]:
    """A QuickBooks Invoice create body for ``order``.

    Lines: one SalesItemLineDetail per order line (Amount = Qty × UnitPrice), one shipping line
    (shipping before discounts), one DiscountLineDetail for every discount of the order, and the order's
    tax as ``TxnTaxDetail.TotalTax``. ``item_ids`` maps ``sku_key(line)`` to the QuickBooks Item Id.
    """
    if rules.tax.mode != "total_tax":
        raise MappingError(f"tax.mode {rules.tax.mode!r} is not supported yet; use total_tax", rule="tax.mode")
    if not customer_id:
        raise MappingError(f"no QuickBooks customer for {_order_label(order)}", rule="customers")
    q = cents(order.currency)
    lines: list[dict[str, Any]] = []
    for line in order.lines:
        key = sku_key(line)
        item_id = item_ids.get(key)
        if not item_id:
            raise MappingError(f"no QuickBooks item for {key!r} ({line.title}) on {_order_label(order)}",
                               rule="items")
        if line.quantity < 0:
            raise MappingError(f"line {line.title!r} on {_order_label(order)} has a negative quantity",
                               rule="items")
        unit_price = line.unit_price.quantize(q)
        if unit_price != line.unit_price:
            raise MappingError(f"unit price {line.unit_price} of {line.title!r} on {_order_label(order)} has "
                               f"more decimals than {order.currency} allows", rule="items")
        detail: dict[str, Any] = {"ItemRef": {"value": str(item_id)}, "Qty": line.quantity,
                                  "UnitPrice": unit_price,
                                  "TaxCodeRef": {"value": "TAX" if line.taxable else "NON"}}
        lines.append({"DetailType": "SalesItemLineDetail",
                      "Amount": (unit_price * line.quantity).quantize(q),
                      "Description": _truncate(_clean(line.title), DESCRIPTION_MAX) or key,
                      "SalesItemLineDetail": detail})

    shipping_amount = sum((s.amount for s in order.shipping_lines), Decimal("0")).quantize(q)
    if shipping_amount:
        if not shipping_item_id:
            raise MappingError(f"{_order_label(order)} charges shipping but no QuickBooks shipping item was "
                               f"given (rule shipping.item = {rules.shipping.item!r})", rule="shipping.item")
        titles = ", ".join(dict.fromkeys(_clean(s.title) for s in order.shipping_lines if _clean(s.title)))
        taxed = any(s.tax_lines and any(t.amount for t in s.tax_lines) for s in order.shipping_lines)
        lines.append({"DetailType": "SalesItemLineDetail", "Amount": shipping_amount,
                      "Description": _truncate(titles or rules.shipping.item, DESCRIPTION_MAX),
                      "SalesItemLineDetail": {"ItemRef": {"value": str(shipping_item_id)}, "Qty": 1,
                                              "UnitPrice": shipping_amount,
                                              "TaxCodeRef": {"value": "TAX" if taxed else "NON"}}})

    discount = order.discount_total.quantize(q)
    if discount:
        lines.append({"DetailType": "DiscountLineDetail", "Amount": discount,
                      "Description": "Discounts", "DiscountLineDetail": {"PercentBased": False}})

    payload: dict[str, Any] = {
        "DocNumber": doc_number(order, rules),
        "TxnDate": order.created_at.date().isoformat(),
        "CustomerRef": {"value": str(customer_id)},
        "CurrencyRef": {"value": order.currency},
        "Line": lines,
        "TxnTaxDetail": {"TotalTax": order.total_tax.quantize(q)},
        "PrivateNote": _truncate(private_note(order), PRIVATE_NOTE_MAX),
    }
    if order.taxes_included:
        payload["GlobalTaxCalculation"] = "TaxInclusive"
    email = _clean(order.customer.email)
    if email and len(email) <= EMAIL_MAX:
        payload["BillEmail"] = {"Address": email}
    bill = _address(order.customer.billing_address)
    ship = _address(order.customer.shipping_address)
    if bill:
        payload["BillAddr"] = bill
    if ship:
        payload["ShipAddr"] = ship
    if customer_memo:
        payload["CustomerMemo"] = {"value": _truncate(_clean(customer_memo), 1000)}
    return payload


def invoice_total(payload: dict[str, Any]) -> Decimal:
    """What QuickBooks will compute as the invoice's TotalAmt: sales lines − discount lines, plus
    ``TxnTaxDetail.TotalTax`` unless the invoice is TaxInclusive."""
    currency = (payload.get("CurrencyRef") or {}).get("value") or "USD"
    q = cents(currency)
    subtotal = Decimal("0")
    discount = Decimal("0")
    for line in payload.get("Line") or []:
        kind = line.get("DetailType")
        amount = Decimal(str(line.get("Amount", "0")))
        if kind == "SalesItemLineDetail":
            subtotal += amount
        elif kind == "DiscountLineDetail":
            detail = line.get("DiscountLineDetail") or {}
            if detail.get("PercentBased"):
                discount += (subtotal * Decimal(str(detail.get("DiscountPercent", "0"))) / 100).quantize(q)
            else:
                discount += amount
    total = subtotal - discount
    if payload.get("GlobalTaxCalculation") != "TaxInclusive":
        total += Decimal(str((payload.get("TxnTaxDetail") or {}).get("TotalTax", "0")))
    return total.quantize(q)


def check_invoice_total(order: Order, payload: dict[str, Any]) -> None:
    """Raise ``MappingError`` unless the invoice's total equals the order's total to the cent."""
    computed = invoice_total(payload)
    expected = order.total.quantize(cents(order.currency))
    if computed != expected:
        raise MappingError(f"invoice total {computed} differs from order total {expected} by "
                           f"{abs(computed - expected)} ({order.currency}) on {_order_label(order)}",
                           rule="invoice.total")


# --- payments ----------------------------------------------------------------------------------

def payment_payload(order: Order, *, customer_id: str, invoice_id: str, amount: Decimal) -> dict[str, Any]:
    """A QuickBooks Payment for ``amount`` applied to invoice ``invoice_id``."""
    if isinstance(amount, float) or not isinstance(amount, Decimal | int):
        raise MappingError(f"payment amount for {_order_label(order)} must be a Decimal", rule="payment")
    q = cents(order.currency)
    value = Decimal(amount).quantize(q)
    if value <= 0:
        raise MappingError(f"payment amount {value} for {_order_label(order)} must be positive", rule="payment")
    if not invoice_id or not customer_id:
        raise MappingError(f"payment for {_order_label(order)} needs an invoice and a customer", rule="payment")
    paid_at = max((p.processed_at for p in order.payments if p.processed_at), default=None)
    return {
        "TotalAmt": value,
        "CustomerRef": {"value": str(customer_id)},
        "CurrencyRef": {"value": order.currency},
        "TxnDate": (paid_at or order.created_at).date().isoformat(),
        "PaymentRefNum": _truncate(order.name, PAYMENT_REF_MAX),
        "PrivateNote": _truncate(f"Payment for {private_note(order)}", PRIVATE_NOTE_MAX),
        "Line": [{"Amount": value, "LinkedTxn": [{"TxnId": str(invoice_id), "TxnType": "Invoice"}]}],
    }


# --- helpers -----------------------------------------------------------------------------------

def _order_label(order: Order) -> str:
    platform = _PLATFORM_LABELS.get(order.platform, order.platform.capitalize())
    return f"{platform} order {order.name} (id {order.source_id})"


def _clean(value: str | None) -> str:
    """One line of text: control characters and runs of whitespace become single spaces."""
    if not value:
        return ""
    text = "".join(" " if (ord(c) < 32 or ord(c) == 127) else c for c in str(value))
    return _SPACES.sub(" ", text).strip()


def _truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit].rstrip()


def _put(target: dict[str, Any], key: str, value: str) -> None:
    if value:
        target[key] = value
