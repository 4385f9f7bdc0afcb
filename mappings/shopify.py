"""Shopify (GraphQL Admin API 2025-01) → canonical model. Pure: no I/O.

``order_from_graphql(node)`` takes ``data.order`` as returned by ``connectors.shopify_queries.ORDER_QUERY``
(plus the line item nodes of further pages). All amounts are the *shop* currency (``shopMoney``).
Malformed input raises ``MappingError`` with a message a support agent can act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mappings.model import (
    Address,
    Customer,
    MappingError,
    Order,
    OrderLine,
    Payment,
    ShippingLine,
    TaxLine,
    to_money,
)

PLATFORM = "shopify"
_PAID_KINDS = ("SALE", "CAPTURE")


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
        currency = _str(_dig(node, "currentTotalPriceSet", "shopMoney", "currencyCode"))
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
    lines: list[OrderLine] = []
    seen: set[str] = set()
    for index, ln in enumerate([*line_nodes, *extra], start=1):
        line = _line(ln, index, money, where)
        if line.source_id and line.source_id in seen:
            continue
        seen.add(line.source_id)
        lines.append(line)

    shipping_lines = [_shipping(s, i, money, where)
                      for i, s in enumerate(_nodes(node.get("shippingLines") or {}, "shippingLines", where), 1)]

    total_node = node.get("currentTotalPriceSet") or node.get("totalPriceSet")
    total = money(total_node, "currentTotalPriceSet", required=True)
    tax_node = node.get("currentTotalTaxSet") or node.get("totalTaxSet")
    total_tax = money(tax_node, "currentTotalTaxSet")

    payments = []
    transactions = node.get("transactions") or []
    if not isinstance(transactions, list):
        raise MappingError(f"{where}: transactions must be a list", rule="order.transactions")
    for t in transactions:
        if not isinstance(t, dict):
            raise MappingError(f"{where}: a transaction is not an object", rule="order.transactions")
        if t.get("kind") in _PAID_KINDS and t.get("status") == "SUCCESS":
            payments.append(Payment(
                source_id=_gid_tail(_str(t.get("id"))) or "",
                amount=money(t.get("amountSet"), "transaction amountSet", required=True),
                gateway=_str(t.get("gateway")),
                processed_at=_datetime(t.get("processedAt"), "transaction processedAt", where),
            ))

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
        tax_lines=_tax_lines(node.get("taxLines"), money, where, "order"),
        financial_status=status.lower() if status else "pending",
        total_outstanding=money(node.get("totalOutstandingSet"), "totalOutstandingSet"),
        payments=payments,
        payment_gateways=[str(g) for g in gateways if g],
        cancelled_at=_datetime(node.get("cancelledAt"), "cancelledAt", where),
        note=_str(node.get("note")),
        source_gid=gid or f"gid://shopify/Order/{source_id}",
    )


def order_ref_from_webhook(body: dict) -> tuple[str, str, str, str | None]:
    """(order id, order gid, name, updated_at) from a REST-shaped ``orders/*`` webhook body."""
    if not isinstance(body, dict):
        raise MappingError("Shopify webhook body must be a JSON object", rule="webhook")
    raw_id = body.get("id")
    if raw_id is None or isinstance(raw_id, bool) or str(raw_id).strip() == "":
        raise MappingError("Shopify webhook body has no order id", rule="webhook.id")
    order_id = str(raw_id).strip()
    if not order_id.isdigit() or len(order_id) > 20:
        raise MappingError(f"Shopify webhook order id {order_id[:40]!r} is not a Shopify order id",
                           rule="webhook.id")
    gid = _str(body.get("admin_graphql_api_id")) or f"gid://shopify/Order/{order_id}"
    name = (_str(body.get("name")) or f"#{body.get('order_number') or order_id}")[:100]
    return order_id, gid, name, _str(body.get("updated_at"))


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
        if isinstance(qty, str) and qty.strip().isdigit():
            qty = int(qty.strip())
        else:
            raise MappingError(f"{where}: {label} has an invalid quantity {qty!r}",
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
    )


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
                        tax_lines=_tax_lines(s.get("taxLines"), money, where, label))


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
    )


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


# --- scalars -----------------------------------------------------------------------------------

def _str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    s = str(value).strip()
    return s or None


def _gid_tail(gid: str | None) -> str | None:
    if not gid:
        return None
    tail = gid.rsplit("/", 1)[-1].split("?", 1)[0]
    return tail or None


def _dig(obj: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def _dig_obj(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _nodes(conn: Any, field: str, where: str) -> list:
    if isinstance(conn, list):  # already a list of nodes
        return conn
    if not isinstance(conn, dict):
        raise MappingError(f"{where}: {field} is not a connection", rule=f"order.{field}")
    if "nodes" in conn:
        nodes = conn["nodes"] or []
    elif "edges" in conn:
        nodes = [e.get("node") if isinstance(e, dict) else e for e in conn["edges"] or []]
    else:
        nodes = []
    if not isinstance(nodes, list):
        raise MappingError(f"{where}: {field}.nodes is not a list", rule=f"order.{field}")
    return nodes


def _money(bag: Any, field: str, currency: str, where: str, *, required: bool = False) -> Decimal:
    """The ``shopMoney.amount`` of a MoneyBag (or a bare MoneyV2 / amount) as Decimal cents."""
    raw = bag
    if isinstance(raw, dict):
        raw = raw.get("shopMoney", raw)
        raw = raw.get("amount") if isinstance(raw, dict) else None
    if raw is None or raw == "":
        if required:
            raise MappingError(f"{where}: {field} is missing an amount", rule=field)
        return to_money(None, currency)
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise MappingError(f"{where}: {field} amount {raw!r} is not a number", rule=field)
    try:
        value = Decimal(str(raw).strip())  # floats via their shortest repr: never float arithmetic
    except InvalidOperation:
        raise MappingError(f"{where}: {field} amount {raw!r} is not a number", rule=field) from None
    if not value.is_finite():
        raise MappingError(f"{where}: {field} amount {raw!r} is not a number", rule=field)
    return to_money(value, currency)


def _rate(value: Any, where: str, label: str) -> Decimal:
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise MappingError(f"{where}: {label} rate {value!r} is not a number", rule="taxLines.rate")
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise MappingError(f"{where}: {label} rate {value!r} is not a number", rule="taxLines.rate") from None
    if not rate.is_finite():
        raise MappingError(f"{where}: {label} rate {value!r} is not a number", rule="taxLines.rate")
    return rate


def _datetime(value: Any, field: str, where: str, *, required: bool = False) -> datetime | None:
    if value is None or value == "":
        if required:
            raise MappingError(f"{where} has no {field}", rule=f"order.{field}")
        return None
    if not isinstance(value, str):
        raise MappingError(f"{where}: {field} {value!r} is not an ISO 8601 date-time", rule=f"order.{field}")
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise MappingError(f"{where}: {field} {value!r} is not an ISO 8601 date-time",
                           rule=f"order.{field}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
