"""Canonical model → QuickBooks Online (Accounting API v3) payloads. Pure: no I/O.

Payloads use the API's own field names; amounts are ``Decimal`` quantized to the currency's minor unit
(the caller serialises them, e.g. ``json.dumps(payload, default=str)`` or as JSON numbers).

Invoices live in ``mappings.qb_invoice`` and what each line maps to in ``mappings.targets``; their public
names are re-exported here.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from mappings.model import Customer, MappingError, Order, Payment, cents
from mappings.qb_common import (
    COMPANY_NAME_MAX,
    DISPLAY_NAME_MAX,
    EMAIL_MAX,
    PAYMENT_REF_MAX,
    PERSON_NAME_MAX,
    PHONE_MAX,
    PRIVATE_NOTE_MAX,
    address,
    clean,
    put,
    truncate,
)
from mappings.qb_common import order_label as _order_label
from mappings.qb_invoice import (
    check_invoice_total,
    doc_number,
    explain_invoice,
    invoice_payload,
    invoice_total,
    private_note,
    split_net,
)
from mappings.rules import MappingRules
from mappings.targets import (
    WHOLE_ORDER,
    ItemTarget,
    PaymentSplit,
    captures,
    deposit_account_for,
    exchange_rate_for,
    invoice_currency,
    item_target,
    payment_splits,
    required_items,
    required_tax_codes,
    sku_key,
)
from mappings.trace import Trace, field_source, text

__all__ = [
    "WHOLE_ORDER", "ItemTarget", "PaymentSplit", "Trace", "captures", "check_invoice_total", "clean_display_name",
    "customer_payload",
    "deposit_account_for", "doc_number", "exchange_rate_for", "explain_invoice", "explain_payment",
    "invoice_currency", "invoice_payload", "invoice_total", "item_target", "payment_payload", "payment_splits",
    "private_note", "request_id", "required_items", "required_tax_codes", "sku_key", "split_net",
]

REQUEST_ID_LENGTH = 32     # ≤ 36 so it also fits a batch bId


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
    text_ = clean(name).replace(":", "-")
    return truncate(text_, DISPLAY_NAME_MAX) or "Guest customer"


def customer_payload(customer: Customer, display_name: str | None = None, *,
                     currency: str | None = None) -> dict[str, Any]:
    """A QuickBooks Customer create body (``display_name`` overrides the derived one, e.g. to
    disambiguate a "Duplicate Name Exists"). ``currency``: the customer's currency when it is not the
    home currency (``mappings.targets.invoice_currency``); QuickBooks fixes it at creation."""
    payload: dict[str, Any] = {"DisplayName": clean_display_name(display_name or customer.display_name)}
    put(payload, "GivenName", truncate(clean(customer.first_name), PERSON_NAME_MAX))
    put(payload, "FamilyName", truncate(clean(customer.last_name), PERSON_NAME_MAX))
    put(payload, "CompanyName", truncate(clean(customer.company), COMPANY_NAME_MAX))
    email = clean(customer.email)
    if email and len(email) <= EMAIL_MAX:  # a truncated e-mail would be wrong: leave it out
        payload["PrimaryEmailAddr"] = {"Address": email}
    phone = clean(customer.phone) or clean(customer.billing_address and customer.billing_address.phone)
    if phone:
        payload["PrimaryPhone"] = {"FreeFormNumber": truncate(phone, PHONE_MAX)}
    bill = address(customer.billing_address)
    ship = address(customer.shipping_address)
    if bill:
        payload["BillAddr"] = bill
    if ship:
        payload["ShipAddr"] = ship
    if currency:
        payload["CurrencyRef"] = {"value": currency.upper()}
    return payload


# --- payments ----------------------------------------------------------------------------------

def explain_payment(order: Order, *, customer_id: str, invoice_id: str, amount: Decimal,
                    deposit_account_id: str | None = None, rules: MappingRules | None = None,
                    home_currency: str | None = None, exchange_rate: Decimal | None = None,
                    amount_source: str = "total", capture: Payment | None = None,
                    ) -> tuple[dict[str, Any], list[Trace]]:
    """``payment_payload`` and its traces (``amount_source``: the order field the amount came from;
    ``capture``: the store payment this QuickBooks payment is for, named in its note, dated by it)."""
    if isinstance(amount, float) or not isinstance(amount, Decimal | int):
        raise MappingError(f"payment amount for {_order_label(order)} must be a Decimal", rule="payment")
    q = cents(order.currency)
    value = Decimal(amount).quantize(q)
    if value <= 0:
        raise MappingError(f"payment amount {value} for {_order_label(order)} must be positive", rule="payment")
    if not invoice_id or not customer_id:
        raise MappingError(f"payment for {_order_label(order)} needs an invoice and a customer", rule="payment")
    if capture is not None and capture.processed_at is not None:
        paid_at = capture.processed_at
    else:
        paid_at = max((p.processed_at for p in order.payments if p.processed_at), default=None)
    note = f"Payment for {private_note(order)}"
    if capture is not None and capture.source_id != WHOLE_ORDER:
        note += f", capture {capture.source_id}"
    payload: dict[str, Any] = {
        "TotalAmt": value,
        "CustomerRef": {"value": str(customer_id)},
        "CurrencyRef": {"value": order.currency},
        "TxnDate": (paid_at or order.created_at).date().isoformat(),
        "PaymentRefNum": truncate(order.name, PAYMENT_REF_MAX),
        "PrivateNote": truncate(note, PRIVATE_NOTE_MAX),
        "Line": [{"Amount": value, "LinkedTxn": [{"TxnId": str(invoice_id), "TxnType": "Invoice"}]}],
    }
    traces = [Trace("TotalAmt", text(value), field_source(order, amount_source)),
              Trace("Line[0].Amount", text(value), field_source(order, amount_source)),
              Trace("TxnDate", payload["TxnDate"], "payments[*].processed_at (latest)" if paid_at else "created_at")]
    if deposit_account_id:
        payload["DepositToAccountRef"] = {"value": str(deposit_account_id)}
        gateways = ", ".join(dict.fromkeys(p.gateway or "?" for p in ([capture] if capture else order.payments))
                             ) or "no gateway"
        traces.append(Trace("DepositToAccountRef", str(deposit_account_id),
                            f"payments[*].gateway ({gateways}) by rule payments.deposit_accounts"))
    if home_currency is not None:
        rate, why = exchange_rate_for(order, rules or _default_rules(), home_currency, exchange_rate)
        if rate is not None:
            payload["ExchangeRate"] = rate
            traces.append(Trace("ExchangeRate", text(rate), why))
    return payload, traces


def payment_payload(order: Order, *, customer_id: str, invoice_id: str, amount: Decimal,
                    deposit_account_id: str | None = None, rules: MappingRules | None = None,
                    home_currency: str | None = None, exchange_rate: Decimal | None = None,
                    capture: Payment | None = None) -> dict[str, Any]:
    """A QuickBooks Payment for ``amount`` applied to invoice ``invoice_id``, deposited to
    ``deposit_account_id`` when given (see ``mappings.targets.payment_splits`` for which account), with the
    invoice's ``ExchangeRate`` when the order is foreign to ``home_currency``."""
    payload, _ = explain_payment(order, customer_id=customer_id, invoice_id=invoice_id, amount=amount,
                                 deposit_account_id=deposit_account_id, rules=rules, home_currency=home_currency,
                                 exchange_rate=exchange_rate, capture=capture)
    return payload


def _default_rules() -> MappingRules:
    from mappings.rules import load_rules

    return load_rules()
