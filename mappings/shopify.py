"""Shopify (GraphQL Admin API 2025-01) → canonical model. Pure: no I/O.

``order_from_graphql(node)`` takes ``data.order`` as returned by ``connectors.shopify_queries.ORDER_QUERY``
(plus the line item nodes of further pages). All amounts are the *shop* currency (``shopMoney``).
Malformed input raises ``MappingError`` with a message a support agent can act on.

* ``Order.total`` is ``totalPriceSet``: the order as sold, after edits and before refunds and returns.
  The invoice is for that amount; what was refunded (``totalRefundedSet`` → ``Order.total_refunded``) is
  carried by its own document later (credit memo / refund receipt), never by shrinking the invoice.
  Line quantities are ``quantity`` (refunded units included) to match.
* Tips are line items in Shopify (no variant, no shipping, title "Tip"): the lines adding up to
  ``totalTipReceivedSet`` become ``FeeLine(kind="tip")``; gift cards sold stay order lines with
  ``is_gift_card``; a gift card redeemed at checkout is a transaction with gateway ``gift_card``, i.e. a
  payment like any other.
* A buyer paying in another currency (``presentmentMoney`` ≠ ``shopMoney`` currency): amounts stay in
  the shop currency and ``Order.exchange_rate`` = presentment per shop unit (from ``totalPriceSet``),
  ``exchange_rate_currency`` = the presentment currency.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from mappings.inputs import UINT64_MAX, InvalidInput, clean_text, is_ascii_digits, parse_id, shown
from mappings.model import (
    Address,
    Customer,
    FeeLine,
    Fulfillment,
    MappingError,
    Order,
    OrderLine,
    Payment,
    ShippingLine,
    TaxLine,
    to_money,
)
from mappings.shopify_refunds import refunds_from_graphql
from mappings.shopify_values import _datetime, _dig, _dig_obj, _gid_tail, _money, _nodes, _rate, _str

PLATFORM = "shopify"
_PAID_KINDS = ("SALE", "CAPTURE")
_TIP_TITLE = re.compile(r"\b(tips?|gratuity)\b", re.IGNORECASE)
_RATE_PLACES = Decimal("0.00000001")
SOURCE_FIELDS = {
    "currency": "Shopify currencyCode", "total": "Shopify totalPriceSet", "total_tax": "Shopify totalTaxSet",
    "taxes_included": "Shopify taxesIncluded", "total_outstanding": "Shopify totalOutstandingSet",
    "total_refunded": "Shopify totalRefundedSet", "exchange_rate": "Shopify totalPriceSet shop vs presentment",
}


def order_from_graphql(node: dict, extra_line_nodes: Iterable[dict] = ()) -> Order:
    """Map a GraphQL ``order`` object (and the nodes of further ``lineItems`` pages) to an ``Order``."""
    if not isinstance(node, dict):
        raise MappingError(f"Shopify order must be a JSON object, got {type(node).__name__}", rule="order")
    gid = _str(node.get("id"))
    source_id = _str(node.get("legacyResourceId")) or _gid_tail(gid)
    if not source_id:
        raise MappingError("Shopify order has no id (legacyResourceId / id missing)", rule="order.id")
    name = _str(node.get("name"))
    if not name:
        raise MappingError(f"Shopify order {source_id} has no name (e.g. #1001)", rule="order.name")
    where = f"Shopify order {name} (id {source_id})"

    currency = _str(node.get("currencyCode"))
    if not currency:
        currency = (_str(_dig(node, "totalPriceSet", "shopMoney", "currencyCode"))
                    or _str(_dig(node, "currentTotalPriceSet", "shopMoney", "currencyCode")))
    if not currency:
        raise MappingError(f"{where} has no currencyCode", rule="order.currencyCode")
    currency = currency.upper()

    def money(value: Any, field: str, *, required: bool = False) -> Decimal:
        return _money(value, field, currency, where, required=required)

    created_at = _datetime(node.get("createdAt"), "createdAt", where, required=True)
    updated_at = _datetime(node.get("updatedAt"), "updatedAt", where) or created_at

    lines_conn = node.get("lineItems")
    if lines_conn is None:
        raise MappingError(f"{where} has no lineItems", rule="order.lineItems")
    line_nodes = _nodes(lines_conn, "lineItems", where)
    extra = []
    for item in extra_line_nodes or ():
        if isinstance(item, dict) and "nodes" in item and "id" not in item:  # a whole page was passed
            extra.extend(_nodes(item, "lineItems", where))
        else:
            extra.append(item)
    if not extra and _dig(lines_conn, "pageInfo", "hasNextPage") is True:
        raise MappingError(f"{where} has more than {len(line_nodes)} line items: fetch the remaining pages "
                           "(ORDER_LINES_QUERY) and pass them as extra_line_nodes", rule="order.lineItems")
    pairs: list[tuple[dict, OrderLine]] = []
    seen: set[str] = set()
    for index, ln in enumerate([*line_nodes, *extra], start=1):
        line = _line(ln, index, money, where)
        if line.source_id and line.source_id in seen:
            continue
        seen.add(line.source_id)
        pairs.append((ln, line))
    lines, fee_lines = _split_tips(pairs, money(node.get("totalTipReceivedSet"), "totalTipReceivedSet"), where)

    shipping_lines = [_shipping(s, i, money, where)
                      for i, s in enumerate(_nodes(node.get("shippingLines") or {}, "shippingLines", where), 1)]

    total_node = node.get("totalPriceSet") or node.get("currentTotalPriceSet")
    total = money(total_node, "totalPriceSet", required=True)
    tax_node = node.get("totalTaxSet") or node.get("currentTotalTaxSet")
    total_tax = money(tax_node, "totalTaxSet")
    presentment, rate = _exchange(node, currency, where)

    payments = []
    transactions = node.get("transactions") or []
    if not isinstance(transactions, list):
        raise MappingError(f"{where}: transactions must be a list", rule="order.transactions")
    if not all(isinstance(t, dict) for t in transactions):
        raise MappingError(f"{where}: a transaction is not an object", rule="order.transactions")
    voided = {_gid_tail(_str(_dig_obj(_dig_obj(t, "parentTransaction"), "id"))) for t in transactions
              if t.get("kind") == "VOID" and t.get("status") == "SUCCESS"} - {None, ""}
    voided_payments = []
    for i, t in enumerate(transactions):
        if t.get("kind") in _PAID_KINDS and t.get("status") == "SUCCESS" and _gid_tail(_str(t.get("id"))) in voided:
            voided_payments.append(_gid_tail(_str(t.get("id"))) or "")
        elif t.get("kind") in _PAID_KINDS and t.get("status") == "SUCCESS":
            payments.append(Payment(
                source_id=_gid_tail(_str(t.get("id"))) or "",
                amount=money(t.get("amountSet"), "transaction amountSet", required=True),
                gateway=_str(t.get("gateway")),
                processed_at=_datetime(t.get("processedAt"), "transaction processedAt", where),
                source_path=f"Shopify transactions[{i}]",
            ))

    fulfillments = _fulfillments(node.get("fulfillments"), where)

    gateways = node.get("paymentGatewayNames") or []
    if not isinstance(gateways, list):
        raise MappingError(f"{where}: paymentGatewayNames must be a list", rule="order.paymentGatewayNames")

    status = _str(node.get("displayFinancialStatus"))
    return Order(
        platform=PLATFORM,
        source_id=source_id,
        name=name,
        number=name.lstrip("#").strip() or source_id,
        currency=currency,
        created_at=created_at,
        updated_at=updated_at,
        customer=_customer(node, where),
        lines=lines,
        total=total,
        total_tax=total_tax,
        taxes_included=bool(node.get("taxesIncluded")),
        shipping_lines=shipping_lines,
        fee_lines=fee_lines,
        tax_lines=_tax_lines(node.get("taxLines"), money, where, "order"),
        financial_status=status.lower() if status else "pending",
        total_outstanding=money(node.get("totalOutstandingSet"), "totalOutstandingSet"),
        payments=payments,
        payment_gateways=[str(g) for g in gateways if g],
        cancelled_at=_datetime(node.get("cancelledAt"), "cancelledAt", where),
        note=_str(node.get("note")),
        source_gid=gid or f"gid://shopify/Order/{source_id}",
        exchange_rate=rate,
        total_refunded=money(node.get("totalRefundedSet"), "totalRefundedSet"),
        refunds=refunds_from_graphql(node.get("refunds"), money, where),
        presentment_currency=presentment,
        exchange_rate_currency=presentment if rate is not None else None,
        source_fields=dict(SOURCE_FIELDS),
        voided_payments=voided_payments,
        fulfillments=fulfillments,
        payment_terms=_payment_terms(node.get("paymentTerms")),
    )


def _fulfillments(raw: Any, where: str) -> list[Fulfillment]:
    """``Order.fulfillments``: each with its status (cancelled ones kept, as reversals) and tracking."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(f, dict) for f in raw):
        raise MappingError(f"{where}: fulfillments must be a list of objects", rule="order.fulfillments")
    out = []
    for f in raw:
        tracking = [t for t in (f.get("trackingInfo") or []) if isinstance(t, dict)]
        status = (_str(f.get("status")) or "").upper()
        if status in ("PENDING", "OPEN", "ERROR", "FAILURE"):
            continue   # nothing left the warehouse
        out.append(Fulfillment(
            source_id=_gid_tail(_str(f.get("id"))) or "",
            created_at=_datetime(f.get("createdAt"), "fulfillment createdAt", where),
            status="cancelled" if status == "CANCELLED" else "success",
            carrier=next((clean_text(_str(t.get("company")) or "") or None for t in tracking if t.get("company")),
                         None),
            tracking_numbers=[n for n in (clean_text(_str(t.get("number")) or "") for t in tracking) if n],
            tracking_urls=[u for u in (_str(t.get("url")) or "" for t in tracking) if u]))
    return out


def _payment_terms(node: Any) -> dict[str, Any] | None:
    """``Order.paymentTerms`` as ``{type, due_in_days, due_at}`` (the first schedule's due time)."""
    if not isinstance(node, dict) or not node.get("paymentTermsType"):
        return None
    schedules = (node.get("paymentSchedules") or {}).get("nodes") or []
    due_at = schedules[0].get("dueAt") if schedules and isinstance(schedules[0], dict) else None
    days = node.get("dueInDays")
    return {"type": str(node["paymentTermsType"]).upper(), "due_in_days": days if isinstance(days, int) else None,
            "due_at": str(due_at) if due_at else None}


def order_ref_from_webhook(body: dict) -> tuple[str, str, str, str | None]:
    """(order id, order gid, name, updated_at) from a REST-shaped ``orders/*`` webhook body."""
    if not isinstance(body, dict):
        raise MappingError("Shopify webhook body must be a JSON object", rule="webhook")
    raw_id = body.get("id")
    if raw_id is None or isinstance(raw_id, bool) or str(raw_id).strip() == "":
        raise MappingError("Shopify webhook body has no order id", rule="webhook.id")
    try:  # an UnsignedInt64 in ASCII digits: "²" or "١٢٣" would reach Shopify's API as an invalid global id
        order_id = str(parse_id(raw_id, name="Shopify webhook order id", high=UINT64_MAX))
    except InvalidInput as exc:
        raise MappingError(f"{exc}: it is not a Shopify order id", rule="webhook.id") from None
    gid = f"gid://shopify/Order/{order_id}"  # from the id just checked, never from the body's own text
    number = body.get("order_number")
    number = number if isinstance(number, int | str) and not isinstance(number, bool) else None
    name = clean_text(_str(body.get("name")) or f"#{number or order_id}")[:100]
    updated = _str(body.get("updated_at"))
    return order_id, gid, name, clean_text(updated)[:40] if updated else None


# --- pieces ------------------------------------------------------------------------------------

def _line(ln: Any, index: int, money, where: str) -> OrderLine:
    if not isinstance(ln, dict):
        raise MappingError(f"{where}: line {index} is not an object", rule="order.lineItems")
    title = _str(ln.get("title")) or _str(ln.get("name"))
    label = f"line {index}" + (f" ({title})" if title else "")
    if not title:
        raise MappingError(f"{where}: {label} has no title", rule="order.lineItems.title")
    qty = ln.get("quantity")
    if qty is None:
        raise MappingError(f"{where}: {label} has no quantity", rule="order.lineItems.quantity")
    if isinstance(qty, bool) or not isinstance(qty, int):
        if isinstance(qty, str) and is_ascii_digits(qty.strip()):
            qty = int(qty.strip())
        else:
            raise MappingError(f"{where}: {label} has an invalid quantity {shown(qty)}",
                               rule="order.lineItems.quantity")
    if qty < 0:
        raise MappingError(f"{where}: {label} has a negative quantity {qty}", rule="order.lineItems.quantity")
    unit_price = money(ln.get("originalUnitPriceSet"), f"{label} originalUnitPriceSet", required=True)
    allocations = ln.get("discountAllocations") or []
    if not isinstance(allocations, list):
        raise MappingError(f"{where}: {label} discountAllocations must be a list", rule="order.lineItems")
    discount = sum((money(_dig_obj(a, "allocatedAmountSet"), f"{label} discount allocation", required=True)
                    for a in allocations), Decimal("0"))
    if not allocations and ln.get("totalDiscountSet"):
        discount = money(ln.get("totalDiscountSet"), f"{label} totalDiscountSet")
    sku = _str(ln.get("sku")) or _str(_dig(ln, "variant", "sku"))
    current = ln.get("currentQuantity")
    return OrderLine(
        source_id=_gid_tail(_str(ln.get("id"))) or f"line-{index}",
        sku=sku,
        title=title,
        quantity=qty,
        unit_price=unit_price,
        discount=discount,
        tax_lines=_tax_lines(ln.get("taxLines"), money, where, label),
        taxable=bool(ln.get("taxable", True)),
        is_gift_card=bool(ln.get("isGiftCard")),
        source_path=f"Shopify lineItems[{index - 1}]",
        current_quantity=current if isinstance(current, int) and not isinstance(current, bool) else None,
    )


def _split_tips(pairs: list[tuple[dict, OrderLine]], tip_total: Decimal,
                where: str) -> tuple[list[OrderLine], list[FeeLine]]:
    """Separate the tip line items (summing to ``totalTipReceivedSet``) from the product lines.

    Candidates are lines without a variant that need no shipping and are not gift cards; those titled
    like a tip are tried first, then all candidates, then a single candidate of exactly the tip's amount.
    No candidate at all: the tip becomes a fee line of its own (Shopify counts it in the total).
    """
    lines = [line for _, line in pairs]
    if tip_total <= 0:
        return lines, []
    cands = [k for k, (raw, line) in enumerate(pairs)
             if not line.is_gift_card and raw.get("variant") is None and raw.get("requiresShipping") is not True]
    named = [k for k in cands if _TIP_TITLE.search(pairs[k][1].title)]
    chosen = None
    for group in (named, cands):
        if group and sum((lines[k].net_amount for k in group), Decimal("0")) == tip_total:
            chosen = group
            break
    if chosen is None:
        exact = [k for k in (named or cands) if lines[k].net_amount == tip_total]
        if exact:
            chosen = exact[:1]
        elif not cands:
            return lines, [FeeLine(title="Tip", amount=tip_total, kind="tip",
                                   source_path="Shopify totalTipReceivedSet")]
        else:
            raise MappingError(f"{where}: the tip of {tip_total} (totalTipReceivedSet) does not match its line "
                               f"items ({', '.join(repr(lines[k].title) for k in cands)})",
                               rule="order.totalTipReceivedSet")
    tips = [FeeLine(title=lines[k].title, amount=lines[k].net_amount, kind="tip", taxable=False,
                    tax_lines=lines[k].tax_lines, source_path=lines[k].source_path) for k in chosen]
    return [ln for k, ln in enumerate(lines) if k not in chosen], tips


def _exchange(node: dict, currency: str, where: str) -> tuple[str | None, Decimal | None]:
    """(presentment currency, presentment units per shop unit) when the buyer paid in another currency."""
    presentment = (_str(node.get("presentmentCurrencyCode")) or "").upper() or None
    for key in ("totalPriceSet", "subtotalPriceSet", "totalReceivedSet", "currentTotalPriceSet"):
        bag = node.get(key)
        if not isinstance(bag, dict) or not isinstance(bag.get("presentmentMoney"), dict):
            continue
        pres_currency = (_str(bag["presentmentMoney"].get("currencyCode")) or presentment or "").upper()
        presentment = presentment or pres_currency or None
        if not pres_currency or pres_currency == currency:
            return (presentment if presentment != currency else None), None
        shop = _money(bag, key, currency, where)
        pres = _money(bag["presentmentMoney"], f"{key}.presentmentMoney", pres_currency, where)
        if shop > 0 and pres > 0:
            rate = (pres / shop).quantize(_RATE_PLACES, rounding=ROUND_HALF_UP)
            return pres_currency, Decimal(format(rate.normalize(), "f"))
    return (presentment if presentment != currency else None), None


def _shipping(s: Any, index: int, money, where: str) -> ShippingLine:
    if not isinstance(s, dict):
        raise MappingError(f"{where}: shipping line {index} is not an object", rule="order.shippingLines")
    title = _str(s.get("title")) or "Shipping"
    label = f"shipping line {index} ({title})"
    amount = money(s.get("originalPriceSet"), f"{label} originalPriceSet", required=True)
    allocations = s.get("discountAllocations") or []
    if not isinstance(allocations, list):
        raise MappingError(f"{where}: {label} discountAllocations must be a list", rule="order.shippingLines")
    discount = sum((money(_dig_obj(a, "allocatedAmountSet"), f"{label} discount allocation", required=True)
                    for a in allocations), Decimal("0"))
    if not allocations and s.get("discountedPriceSet"):
        discounted = money(s.get("discountedPriceSet"), f"{label} discountedPriceSet")
        if discounted < amount:
            discount = amount - discounted
    return ShippingLine(title=title, amount=amount, discount=discount, code=_str(s.get("code")),
                        tax_lines=_tax_lines(s.get("taxLines"), money, where, label),
                        source_path=f"Shopify shippingLines[{index - 1}]")


def _tax_lines(value: Any, money, where: str, label: str) -> list[TaxLine]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MappingError(f"{where}: {label} taxLines must be a list", rule="taxLines")
    out = []
    for t in value:
        if not isinstance(t, dict):
            raise MappingError(f"{where}: {label} has a tax line that is not an object", rule="taxLines")
        title = _str(t.get("title")) or "Tax"
        out.append(TaxLine(title=title, rate=_rate(t.get("rate"), where, f"{label} tax {title}"),
                           amount=money(t.get("priceSet"), f"{label} tax {title} priceSet", required=True)))
    return out


def _customer(node: dict, where: str) -> Customer:
    c = node.get("customer") or {}
    if not isinstance(c, dict):
        raise MappingError(f"{where}: customer is not an object", rule="order.customer")
    billing = _address(node.get("billingAddress"), where, "billingAddress")
    shipping = _address(node.get("shippingAddress"), where, "shippingAddress")
    bill_raw = node.get("billingAddress") or {}
    ship_raw = node.get("shippingAddress") or {}
    first = _str(c.get("firstName")) or _str(bill_raw.get("firstName")) or _str(ship_raw.get("firstName"))
    last = _str(c.get("lastName")) or _str(bill_raw.get("lastName")) or _str(ship_raw.get("lastName"))
    if not first and not last:
        full = (billing and billing.name) or (shipping and shipping.name)
        if full:
            first = full
    return Customer(
        source_id=_str(c.get("legacyResourceId")) or _gid_tail(_str(c.get("id"))),
        email=_str(node.get("email")) or _str(c.get("email")),
        first_name=first,
        last_name=last,
        company=(billing and billing.company) or (shipping and shipping.company),
        phone=_str(c.get("phone")) or _str(node.get("phone")) or (billing and billing.phone)
        or (shipping and shipping.phone),
        billing_address=billing,
        shipping_address=shipping,
        number_of_orders=_count(c.get("numberOfOrders")),
        amount_spent=_spent(c.get("amountSpent")),
    )


def _count(value: Any) -> int | None:
    """``numberOfOrders`` (an UnsignedInt64: Shopify sends it as a string)."""
    text = _str(value)
    return int(text) if text and is_ascii_digits(text) and len(text) <= 20 else None


def _spent(value: Any) -> Decimal | None:
    if not isinstance(value, dict):
        return None
    try:
        return to_money(Decimal(str(value.get("amount"))), _str(value.get("currencyCode")) or "USD")
    except (InvalidOperation, TypeError):
        return None


def _address(a: Any, where: str, field: str) -> Address | None:
    if a is None:
        return None
    if not isinstance(a, dict):
        raise MappingError(f"{where}: {field} is not an object", rule=f"order.{field}")
    name = _str(a.get("name")) or " ".join(p for p in (_str(a.get("firstName")), _str(a.get("lastName"))) if p)
    addr = Address(
        name=name or None,
        company=_str(a.get("company")),
        line1=_str(a.get("address1")),
        line2=_str(a.get("address2")),
        city=_str(a.get("city")),
        region=_str(a.get("provinceCode")) or _str(a.get("province")),
        postal_code=_str(a.get("zip")),
        country=_str(a.get("countryCodeV2")) or _str(a.get("country")),
        phone=_str(a.get("phone")),
    )
    return addr if any(vars(addr).values()) else None
