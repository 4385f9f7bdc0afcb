"""Canonical order → QuickBooks Online Invoice, with a trace of where every amount came from. Pure.

``explain_invoice(order, rules, **resolved)`` returns ``(payload, traces)``; ``invoice_payload`` is the
same payload without the traces. Lines, in order:

* one SalesItemLineDetail per order line (gift cards sold on ``gift_cards.item``), ``Amount = Qty ×
  UnitPrice`` exactly; with ``discounts.mode: unit_price`` the unit price is net of the line's discount
  and a line whose discount does not divide into cents is split in two (unit prices one cent apart);
* shipping (one line; one per shipping line with ``tax.mode: line_tax_codes``), gross with
  ``discounts.mode: line``, net of its discount with ``unit_price``;
* one line per fee or tip (``fees.item`` / ``tips.item``);
* with ``discounts.mode: line``, one DiscountLineDetail for every discount of the order.

Tax: ``TxnTaxDetail.TotalTax`` is the order's tax in both modes; lines carry ``TaxCodeRef`` TAX/NON
(``total_tax``) or the id of their ``tax.codes`` code (``line_tax_codes``). Tax-inclusive orders are
``GlobalTaxCalculation: TaxInclusive``. Foreign currency: ``CurrencyRef`` always, ``ExchangeRate`` when
``home_currency`` is given and differs (see ``mappings.targets.exchange_rate_for``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mappings.inputs import shown
from mappings.model import FeeLine, MappingError, Order, OrderLine, TaxLine, cents
from mappings.qb_common import DESCRIPTION_MAX, EMAIL_MAX, PRIVATE_NOTE_MAX, address, clean, order_label, truncate
from mappings.rules import DOC_NUMBER_MAX, MappingRules
from mappings.targets import exchange_rate_for, sku_key, tax_code_for
from mappings.trace import Trace, fee_context, field_source, line_context, shipping_context, text


def doc_number(order: Order, rules: MappingRules) -> str:
    """The invoice DocNumber: the order number per ``invoice.doc_number`` / ``invoice.prefix``."""
    value = rules.invoice.render_doc_number(number=order.number, name=order.name, id=order.source_id,
                                            store=order.store)
    if not value or len(value) > DOC_NUMBER_MAX:
        raise MappingError(f"invoice DocNumber {shown(value)} for {order_label(order)} is longer than QuickBooks' "
                           f"{DOC_NUMBER_MAX} characters: shorten invoice.prefix (or the store's prefix) or "
                           "invoice.doc_number",
                           rule="invoice.doc_number")
    return value


def private_note(order: Order) -> str:
    """E.g. ``Shopify order #1001 (id 4501)``: how an accountant finds the order again."""
    return order_label(order)


TRACKING_NUM_MAX = 31   # Invoice.TrackingNum
SHIP_METHOD_MAX = 31    # Invoice.ShipMethodRef


def tracking_text(numbers: list[str]) -> str:
    """Tracking numbers joined with ", " within ``TRACKING_NUM_MAX``; those that don't fit are counted
    ("1Z999AA10123456784 +2 more"), a single number too long cut."""
    for kept in range(len(numbers), 0, -1):
        text = ", ".join(numbers[:kept]) + (f" +{len(numbers) - kept} more" if kept < len(numbers) else "")
        if len(text) <= TRACKING_NUM_MAX:
            return text
    return numbers[0][:TRACKING_NUM_MAX] if numbers else ""


def split_net(net: Decimal, qty: int, q: Decimal) -> list[tuple[int, Decimal]]:
    """``net`` over ``qty`` units as ``[(qty, unit price)]`` with ``Σ qty × price == net`` exactly: one
    part when it divides into minor units ``q``, else two parts whose unit prices are one unit apart."""
    units = int(net / q)
    base, extra = divmod(units, qty)
    parts = [(qty - extra, base * q)] if qty - extra else []
    if extra:
        parts.append((extra, (base + 1) * q))
    return parts


def explain_invoice(order: Order, rules: MappingRules, **resolved: Any) -> tuple[dict[str, Any], list[Trace]]:
    """The invoice payload and its traces. ``resolved`` are ``invoice_payload``'s keywords (customer_id,
    item_ids, shipping_item_id, tip_item_id, fee_item_id, tax_code_ids, home_currency, exchange_rate,
    customer_memo)."""
    return _Invoice(order, rules, **resolved).build()


def invoice_payload(order: Order, *, customer_id: str, item_ids: dict[str, str], shipping_item_id: str | None = None,
                    rules: MappingRules, customer_memo: str | None = None, tip_item_id: str | None = None,
                    fee_item_id: str | None = None, tax_code_ids: dict[str, str] | None = None,
                    home_currency: str | None = None, exchange_rate: Decimal | None = None,
                    shipping_fields: bool = True) -> dict[str, Any]:
    """A QuickBooks Invoice create body for ``order`` (see the module docstring).

    ``item_ids``: ``sku_key(line)`` → Item Id for every order line (gift cards included);
    ``shipping_item_id`` / ``tip_item_id`` / ``fee_item_id``: the items of ``shipping.item``,
    ``tips.item``, ``fees.item`` when the order has such lines; ``tax_code_ids``: TaxCode name → Id for
    ``mappings.targets.required_tax_codes`` (``tax.mode: line_tax_codes``); ``home_currency``: the
    company's home currency (None: unknown, no ``ExchangeRate``); ``exchange_rate`` overrides the order's;
    ``shipping_fields``: the company shows shipping on sales forms (``SalesFormsPrefs.AllowShipping``), so
    a shipped order's invoice carries ``ShipDate``, ``TrackingNum`` and ``ShipMethodRef``.
    """
    payload, _ = explain_invoice(order, rules, customer_id=customer_id, item_ids=item_ids,
                                 shipping_item_id=shipping_item_id, customer_memo=customer_memo,
                                 tip_item_id=tip_item_id, fee_item_id=fee_item_id, tax_code_ids=tax_code_ids,
                                 home_currency=home_currency, exchange_rate=exchange_rate,
                                 shipping_fields=shipping_fields)
    return payload


class _Invoice:
    def __init__(self, order: Order, rules: MappingRules, *, customer_id: str, item_ids: dict[str, str],
                 shipping_item_id: str | None = None, tip_item_id: str | None = None,
                 fee_item_id: str | None = None, tax_code_ids: dict[str, str] | None = None,
                 home_currency: str | None = None, exchange_rate: Decimal | None = None,
                 customer_memo: str | None = None, shipping_fields: bool = True) -> None:
        self.order, self.rules = order, rules
        self.customer_id, self.item_ids = customer_id, item_ids or {}
        self.ids = {"shipping": shipping_item_id, "tip": tip_item_id, "fee": fee_item_id}
        self.tax_code_ids = tax_code_ids or {}
        self.home_currency, self.exchange_rate, self.memo = home_currency, exchange_rate, customer_memo
        self.shipping_fields = shipping_fields
        self.q = cents(order.currency)
        self.lines: list[dict[str, Any]] = []
        self.traces: list[Trace] = []
        self.unit_price_mode = rules.discounts.mode == "unit_price"
        self.line_codes = rules.tax.mode == "line_tax_codes"

    def trace(self, path: str, value: Any, source: str) -> None:
        self.traces.append(Trace(path, text(value), source))

    def build(self) -> tuple[dict[str, Any], list[Trace]]:
        order = self.order
        if not self.customer_id:
            raise MappingError(f"no QuickBooks customer for {order_label(order)}", rule="customers")
        for i, line in enumerate(order.lines):
            self._product(i, line)
        self._shipping()
        for i, fee in enumerate(order.fee_lines):
            self._fee(i, fee)
        if not self.unit_price_mode:
            self._discount()
        rate, why = exchange_rate_for(order, self.rules, self.home_currency, self.exchange_rate)
        payload: dict[str, Any] = {
            "DocNumber": doc_number(order, self.rules),
            "TxnDate": order.created_at.date().isoformat(),
            "CustomerRef": {"value": str(self.customer_id)},
            "CurrencyRef": {"value": order.currency},
            "Line": self.lines,
            "TxnTaxDetail": {"TotalTax": order.total_tax.quantize(self.q)},
            "PrivateNote": truncate(private_note(order), PRIVATE_NOTE_MAX),
        }
        self.trace("DocNumber", payload["DocNumber"], f"number {order.number!r} / name {order.name!r} by rule "
                                                      f"invoice.doc_number {self.rules.invoice.doc_number!r}")
        self.trace("CurrencyRef", order.currency, field_source(order, "currency"))
        if rate is not None:
            payload["ExchangeRate"] = rate
            self.trace("ExchangeRate", rate, why)
        self.trace("TxnTaxDetail.TotalTax", payload["TxnTaxDetail"]["TotalTax"], field_source(order, "total_tax"))
        if order.taxes_included:
            payload["GlobalTaxCalculation"] = "TaxInclusive"
            self.trace("GlobalTaxCalculation", "TaxInclusive", field_source(order, "taxes_included"))
        elif self.line_codes:
            payload["GlobalTaxCalculation"] = "TaxExcluded"
        email = clean(order.customer.email)
        if email and len(email) <= EMAIL_MAX:
            payload["BillEmail"] = {"Address": email}
        bill, ship = address(order.customer.billing_address), address(order.customer.shipping_address)
        if bill:
            payload["BillAddr"] = bill
        if ship:
            payload["ShipAddr"] = ship
        if self.memo:
            payload["CustomerMemo"] = {"value": truncate(clean(self.memo), 1000)}
        if self.shipping_fields:
            self._shipment(payload)
        return payload, self.traces

    def _shipment(self, payload: dict[str, Any]) -> None:
        """Once goods left: the first shipment's date, every tracking number that fits QuickBooks' field,
        and the ship method (the carrier, or its name by rule ``shipping.methods``)."""
        shipments = self.order.shipments
        if not shipments:
            return
        first = shipments[0]
        if first.created_at is not None:
            payload["ShipDate"] = first.created_at.date().isoformat()
            self.trace("ShipDate", payload["ShipDate"], "fulfillments[0].created_at (the first shipment)")
        numbers = list(dict.fromkeys(n for f in shipments for n in f.tracking_numbers))
        joined = tracking_text(numbers)
        if joined:
            payload["TrackingNum"] = joined
            self.trace("TrackingNum", joined, f"fulfillments[*].tracking_numbers ({len(numbers)}, within "
                                              f"QuickBooks' {TRACKING_NUM_MAX} characters)")
        carrier = next((f.carrier for f in shipments if f.carrier), None)
        if carrier:
            method = self.rules.shipping.methods.get(carrier.lower()) or truncate(clean(carrier), SHIP_METHOD_MAX)
            payload["ShipMethodRef"] = {"value": method, "name": method}
            self.trace("ShipMethodRef", method, f"fulfillments[*].carrier ({carrier}) by rule shipping.methods")

    # -- lines ----------------------------------------------------------------------------------
    def _add(self, amount: Decimal, description: str, item_id: str, qty: int, unit: Decimal,
             tax_code: str, source: str, amount_source: str, tax_why: str,
             qty_source: str = "1", unit_source: str | None = None) -> None:
        i = len(self.lines)
        self.lines.append({"DetailType": "SalesItemLineDetail", "Amount": amount,
                           "Description": truncate(description, DESCRIPTION_MAX),
                           "SalesItemLineDetail": {"ItemRef": {"value": str(item_id)}, "Qty": qty,
                                                   "UnitPrice": unit, "TaxCodeRef": {"value": tax_code}}})
        p = f"Line[{i}]"
        self.trace(f"{p}.Amount", amount, f"{amount_source} ({source})")
        self.trace(f"{p}.SalesItemLineDetail.Qty", qty, f"{qty_source} ({source})")
        self.trace(f"{p}.SalesItemLineDetail.UnitPrice", unit, f"{unit_source or amount_source} ({source})")
        self.trace(f"{p}.SalesItemLineDetail.TaxCodeRef", tax_code, f"{tax_why} ({source})")

    def _tax_code(self, tax_lines: list[TaxLine], taxable: bool, what: str) -> tuple[str, str]:
        if not self.line_codes:
            return ("TAX", "taxable line → TAX") if taxable else ("NON", "untaxed line → NON")
        name, why = tax_code_for(tax_lines, taxable, self.rules, what=what, order=self.order)
        code_id = self.tax_code_ids.get(name)
        if not code_id:
            raise MappingError(f"no QuickBooks id for tax code {shown(name)} ({what} of {order_label(self.order)}): "
                               "resolve mappings.targets.required_tax_codes before building the invoice",
                               rule="tax.exempt_code" if name == self.rules.tax.exempt_code else "tax.codes")
        return str(code_id), f"{why} = {name!r}"

    def _product(self, i: int, line: OrderLine) -> None:
        order, key = self.order, sku_key(line)
        item_id = self.item_ids.get(key)
        rule = "gift_cards.item" if line.is_gift_card else "items"
        if not item_id:
            raise MappingError(f"no QuickBooks item for {shown(key)} ({line.title}) on {order_label(order)}",
                               rule=rule)
        if line.quantity < 0:
            raise MappingError(f"line {shown(line.title)} on {order_label(order)} has a negative quantity",
                               rule="items")
        unit = line.unit_price.quantize(self.q)
        if unit != line.unit_price:
            raise MappingError(f"unit price {line.unit_price} of {shown(line.title)} on {order_label(order)} has "
                               f"more decimals than {order.currency} allows", rule="items")
        taxable = line.taxable and not line.is_gift_card
        code, why = self._tax_code(line.tax_lines, taxable, f"line {shown(line.title)}")
        description = clean(line.title) or key
        context, f = line_context(line), f"lines[{i}]"
        if not self.unit_price_mode or not line.discount:
            self._add((unit * line.quantity).quantize(self.q), description, item_id, line.quantity, unit, code,
                      context, f"{f}.unit_price × {f}.quantity", why, f"{f}.quantity", f"{f}.unit_price")
            return
        net = (unit * line.quantity - line.discount).quantize(self.q)
        if line.quantity == 0 or net < 0:
            raise MappingError(f"line {shown(line.title)} on {order_label(order)} has a discount of {line.discount} "
                               "that "
                               f"cannot be taken off its unit price (quantity {line.quantity}, amount "
                               f"{unit * line.quantity}); use discounts.mode line", rule="discounts.mode")
        parts = split_net(net, line.quantity, self.q)
        net_unit = f"({f}.unit_price × {f}.quantity − {f}.discount) ÷ {f}.quantity"
        for n, (qty, price) in enumerate(parts):
            split = f", split in {len(parts)} to the cent (part {n + 1})" if len(parts) > 1 else ""
            self._add((price * qty).quantize(self.q), description, item_id, qty, price, code, context,
                      f"Qty × UnitPrice{split}", why, f"{f}.quantity{split}", net_unit + split)

    def _shipping(self) -> None:
        order = self.order
        groups = ([[s] for s in order.shipping_lines] if self.line_codes else [order.shipping_lines])
        for group in groups:
            gross = sum((s.amount for s in group), Decimal("0")).quantize(self.q)
            if not gross:
                continue
            item_id = self.ids["shipping"]
            if not item_id:
                raise MappingError(f"{order_label(order)} charges shipping but no QuickBooks shipping item was "
                                   f"given (rule shipping.item = {shown(self.rules.shipping.item)})",
                                   rule="shipping.item")
            idx = [order.shipping_lines.index(s) for s in group]
            refs = " + ".join(f"shipping_lines[{k}].amount" for k in idx)
            amount = gross
            if self.unit_price_mode:
                amount = sum((s.net_amount for s in group), Decimal("0")).quantize(self.q)
                refs += "".join(f" − shipping_lines[{k}].discount" for k in idx if order.shipping_lines[k].discount)
            if amount < 0:
                raise MappingError(f"shipping discount exceeds the shipping charge on {order_label(order)}",
                                   rule="discounts.mode")
            titles = ", ".join(dict.fromkeys(clean(s.title) for s in group if clean(s.title)))
            taxes = [t for s in group for t in s.tax_lines]
            if self.line_codes:
                code, why = self._tax_code(taxes, True, f"shipping {shown(titles)}")
            else:
                taxed = any(t.amount for t in taxes)
                code, why = ("TAX", "shipping carries tax → TAX") if taxed else ("NON", "untaxed shipping → NON")
            self._add(amount, titles or self.rules.shipping.item, item_id, 1, amount, code,
                      shipping_context(group), refs, why)

    def _fee(self, i: int, fee: FeeLine) -> None:
        kind = "tip" if fee.kind == "tip" else "fee"
        item_id = self.ids[kind]
        rule = "tips.item" if kind == "tip" else "fees.item"
        if not item_id:
            name = self.rules.tips.item if kind == "tip" else self.rules.fees.item
            raise MappingError(f"{order_label(self.order)} has a {kind} ({fee.title}, {fee.amount}) but no QuickBooks "
                               f"{kind} item was given (rule {rule} = {shown(name)})", rule=rule)
        amount = fee.amount.quantize(self.q)
        if self.line_codes:
            code, why = self._tax_code(fee.tax_lines, fee.taxable, f"{kind} {shown(fee.title)}")
        else:
            taxed = fee.taxable and any(t.amount for t in fee.tax_lines)
            code, why = ("TAX", f"taxed {kind} → TAX") if taxed else ("NON", f"untaxed {kind} → NON")
        self._add(amount, clean(fee.title) or kind.capitalize(), item_id, 1, amount, code, fee_context(fee),
                  f"fee_lines[{i}].amount", why)

    def _discount(self) -> None:
        order = self.order
        discount = order.discount_total.quantize(self.q)
        if not discount:
            return
        parts = [f"lines[{i}].discount" for i, ln in enumerate(order.lines) if ln.discount]
        parts += [f"shipping_lines[{i}].discount" for i, s in enumerate(order.shipping_lines) if s.discount]
        self.traces.append(Trace(f"Line[{len(self.lines)}].Amount", text(discount),
                                 " + ".join(parts) + " (every discount of the order; rule discounts.mode line)"))
        self.lines.append({"DetailType": "DiscountLineDetail", "Amount": discount,
                           "Description": "Discounts", "DiscountLineDetail": {"PercentBased": False}})


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
    """Raise ``MappingError`` unless the invoice's total equals the order's total to the cent; the message
    says what may explain a difference."""
    computed = invoice_total(payload)
    expected = order.total.quantize(cents(order.currency))
    if computed == expected:
        return
    hints = []
    if order.total_refunded:
        hints.append(f"{order.total_refunded} was refunded (refunds are not on the invoice)")
    removed = [ln.title for ln in order.lines if ln.current_quantity is not None and ln.current_quantity < ln.quantity]
    if removed and not order.total_refunded:
        hints.append("units were removed after the order was placed (" + ", ".join(removed[:3]) + ")")
    parts = (order.discount_total, order.total_tax)
    if not hints and sum(parts, Decimal("0")) and abs(computed - expected) <= Decimal("0.05"):
        hints.append("the store rounded its discounts or taxes differently from the sum of its lines")
    why = f": {'; '.join(hints)}" if hints else ""
    raise MappingError(f"invoice total {computed} differs from order total {expected} by "
                       f"{abs(computed - expected)} ({order.currency}) on {order_label(order)}{why}",
                       rule="invoice.total")
