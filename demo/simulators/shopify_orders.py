"""Shopify orders for the simulator: one canonical internal state, two renderings.

``build_order(...)`` computes every amount once (line discounts, an order discount allocated pro rata,
per-line and shipping tax, added or carved out of the prices) and returns a ``ShopifyOrder``:

* ``.graphql()`` is the order as the GraphQL Admin API 2025-01 serves it (the simulator executes real
  queries against it; connection fields are callables taking ``(info, **args)``);
* ``.webhook_body()`` is the REST-shaped JSON a store posts for ``orders/create|updated|paid``.

Money rules (as Shopify): amounts are decimals in the shop currency; a buyer paying in another currency
(``presentment_currency`` with ``fx`` presentment units per shop unit) gets every ``presentmentMoney``
converted and rounded on its own;
``total = Σ qty × unit price − total discounts + shipping + tax`` where total discounts include line,
order and shipping discounts and tax is only added when ``taxes_included`` is false;
``total_tax = Σ line tax + shipping tax``; a line's ``discountAllocations`` sum to its line discount plus
its share of the order discount; ``total_outstanding = total − received`` (received = successful sale
and capture transactions). Gift cards sold and tips are line items that take no discount and no tax (a
tip has no variant and needs no shipping; ``totalTipReceivedSet`` is their sum); a line may carry its
own tax rates (several tax lines). Refunds leave ``totalPriceSet`` alone and lower
``currentTotalPriceSet`` and the refunded lines' ``currentQuantity``.
"""

from __future__ import annotations

import base64
import json
import random
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
FINANCIAL_STATUSES = ("paid", "pending", "partially_paid", "authorized")
_WHOLE_CURRENCIES = ("JPY", "KRW", "CLP", "ISK", "VND", "HUF")  # presentment amounts without minor units


def _d(value: str | int | float | Decimal) -> Decimal:
    return Decimal(str(value))


def _cents(value: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    return value.quantize(CENT, rounding=rounding)


def rest_money(value: Decimal) -> str:
    """REST style: always two decimals (``"10.00"``)."""
    return str(_cents(value))


def gql_money(value: Decimal) -> str:
    """GraphQL ``Decimal`` style as Shopify sends it: no trailing zeros, at least one decimal
    (``"10.0"``, ``"12.5"``, ``"19.99"``)."""
    text = format(_cents(value).normalize(), "f")
    return text if "." in text else text + ".0"


def money_bag(value: Decimal, currency: str, presentment: str | None = None,
              fx: Decimal = Decimal("1")) -> dict[str, Any]:
    money = {"amount": gql_money(value), "currencyCode": currency}
    if not presentment or presentment == currency:
        return {"shopMoney": dict(money), "presentmentMoney": dict(money)}
    step = Decimal("1") if presentment in _WHOLE_CURRENCIES else CENT
    converted = (value * fx).quantize(step, rounding=ROUND_HALF_UP)
    return {"shopMoney": money, "presentmentMoney": {"amount": gql_money(converted), "currencyCode": presentment}}


def rest_money_set(value: Decimal, currency: str) -> dict[str, Any]:
    money = {"amount": rest_money(value), "currency_code": currency}
    return {"shop_money": dict(money), "presentment_money": dict(money)}


def iso(dt: datetime) -> str:
    """ISO 8601 with an explicit offset, whole seconds (``2024-05-01T12:00:00+00:00``)."""
    return dt.astimezone(UTC).replace(microsecond=0).isoformat()


def gql_time(dt: datetime) -> str:
    """GraphQL ``DateTime`` as Shopify sends it (``2024-05-01T12:00:00Z``)."""
    return dt.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_cursor(last_id: int, last_value: Any = None) -> str:
    raw = json.dumps({"last_id": last_id, "last_value": last_value if last_value is not None else last_id})
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The cursor's content; ``ValueError`` when it is not one of ours."""
    try:
        data = json.loads(base64.b64decode(cursor.encode(), validate=True))
    except Exception as exc:  # binascii.Error, UnicodeDecodeError, JSONDecodeError
        raise ValueError("Invalid cursor") from exc
    if not isinstance(data, dict) or "last_id" not in data:
        raise ValueError("Invalid cursor")
    return data


@dataclass
class Line:
    id: int
    sku: str | None
    title: str
    quantity: int
    price: Decimal
    discount: Decimal          # line-level discount on the whole line
    taxable: bool = True
    variant_id: int = 0
    requires_shipping: bool = True
    gift_card: bool = False
    tip: bool = False
    tax_rates: list[tuple[str, Decimal]] | None = None   # the line's own (title, rate)s; None: the order's
    refunded: int = 0                                     # units refunded
    # computed by ShopifyOrder.recompute()
    order_discount: Decimal = Decimal("0")
    tax: Decimal = Decimal("0")
    taxes: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)   # (title, rate, amount)

    @property
    def discountable(self) -> bool:
        return not (self.gift_card or self.tip)

    @property
    def original_total(self) -> Decimal:
        return self.price * self.quantity

    @property
    def subtotal(self) -> Decimal:
        """After the line's own discount, before the order discount."""
        return self.original_total - self.discount

    @property
    def total_discount(self) -> Decimal:
        return self.discount + self.order_discount

    @property
    def net(self) -> Decimal:
        return self.original_total - self.total_discount


@dataclass
class Fulfillment:
    """A shipment of some of the order's lines, with its carrier's tracking."""

    id: int
    order_id: int
    created_at: datetime
    updated_at: datetime
    status: str = "SUCCESS"               # SUCCESS | CANCELLED (FulfillmentStatus)
    company: str | None = None
    numbers: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    lines: dict[int, int] = field(default_factory=dict)   # line item id → quantity

    def gql(self, first: int | None = None) -> dict[str, Any]:
        tracking = [{"company": self.company, "number": n, "url": u}
                    for n, u in zip(self.numbers, self.urls + [None] * len(self.numbers), strict=False)]
        return {"id": f"gid://shopify/Fulfillment/{self.id}", "createdAt": gql_time(self.created_at),
                "updatedAt": gql_time(self.updated_at), "status": self.status,
                "trackingInfo": lambda info, first=None, **_: tracking[:first]}

    def webhook_body(self) -> dict[str, Any]:
        """The REST fulfilment of a ``fulfillments/create|update`` webhook."""
        return {"id": self.id, "order_id": self.order_id, "status": self.status.lower(),
                "created_at": iso(self.created_at), "updated_at": iso(self.updated_at),
                "tracking_company": self.company, "tracking_number": self.numbers[0] if self.numbers else None,
                "tracking_numbers": list(self.numbers), "tracking_url": self.urls[0] if self.urls else None,
                "tracking_urls": list(self.urls), "admin_graphql_api_id": f"gid://shopify/Fulfillment/{self.id}",
                "line_items": [{"id": i, "quantity": q} for i, q in self.lines.items()]}


@dataclass
class Transaction:
    id: int
    kind: str      # SALE | CAPTURE | AUTHORIZATION | REFUND | VOID
    status: str    # SUCCESS | PENDING
    gateway: str
    amount: Decimal
    processed_at: datetime
    parent_id: int | None = None   # the transaction a CAPTURE, REFUND or VOID acts on


@dataclass
class ShopifyOrder:
    """The canonical state of one order. Change the inputs, then call ``recompute()``."""

    order_id: int
    number: int
    lines: list[Line]
    shipping: Decimal
    shipping_discount: Decimal
    order_discount: Decimal
    tax_rate: Decimal
    taxes_included: bool
    currency: str
    email: str | None
    customer: dict[str, Any] | None
    financial_status: str
    gateway: str
    created_at: datetime
    updated_at: datetime
    tax_title: str = "Tax"
    shipping_title: str = "Standard Shipping"
    note: str | None = None
    tags: list[str] = field(default_factory=list)
    phone: str | None = None
    test: bool = False
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    address: dict[str, Any] | None = None
    transactions: list[Transaction] = field(default_factory=list)
    fulfillments: list[Fulfillment] = field(default_factory=list)
    shipping_tax: Decimal = Decimal("0")
    presentment_currency: str | None = None
    fx: Decimal = Decimal("1")
    refunds: list[dict[str, Any]] = field(default_factory=list)   # {id, amount, tax, created_at}
    # Order.paymentTerms: {"type": NET|FIXED|FULFILLMENT|RECEIPT, "due_in_days": n, "due_at": datetime}
    payment_terms: dict[str, Any] | None = None
    # fulfilment orders: one per location (line i ships from location i % locations); their holds by index
    locations: int = 1
    holds: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    # -- amounts -------------------------------------------------------------------------------
    def recompute(self) -> None:
        """Allocate the order discount and compute every tax amount from the inputs."""
        base = sum((ln.subtotal for ln in self.lines if ln.discountable), Decimal("0"))
        discount = min(self.order_discount, max(base, Decimal("0")))
        self.order_discount = discount
        weighted = [ln for ln in self.lines if ln.subtotal > 0 and ln.discountable]
        allocated = Decimal("0")
        for ln in self.lines:
            ln.order_discount = Decimal("0")
        for i, ln in enumerate(weighted):
            if i == len(weighted) - 1:
                share = discount - allocated          # the cent remainder lands on the last line
            else:
                share = _cents(discount * ln.subtotal / base, ROUND_DOWN)
            ln.order_discount = share
            allocated += share
        for ln in self.lines:
            rates = ln.tax_rates if ln.tax_rates is not None else [(self.tax_title, self.tax_rate)]
            rates = [(t, r) for t, r in rates if r > 0] if ln.taxable and ln.discountable else []
            combined = sum((r for _, r in rates), Decimal("0"))
            ln.taxes = [(t, r, self._tax(ln.net, r, combined)) for t, r in rates]
            ln.tax = sum((a for _, _, a in ln.taxes), Decimal("0"))
        self.shipping_tax = self._tax(self.shipping - self.shipping_discount, self.tax_rate, self.tax_rate)

    def _tax(self, amount: Decimal, rate: Decimal, combined: Decimal) -> Decimal:
        if rate <= 0 or amount <= 0:
            return Decimal("0")
        if self.taxes_included:
            return _cents(amount * rate / (1 + combined))
        return _cents(amount * rate)

    def bag(self, value: Decimal) -> dict[str, Any]:
        return money_bag(value, self.currency, self.presentment_currency, self.fx)

    @property
    def tip_total(self) -> Decimal:
        return sum((ln.net for ln in self.lines if ln.tip), Decimal("0"))

    @property
    def refunded(self) -> Decimal:
        return sum((r["amount"] for r in self.refunds), Decimal("0"))

    def tax_summary(self) -> list[tuple[str, Decimal, Decimal]]:
        """The order's tax lines: (title, rate, amount) summed over lines and shipping."""
        out: dict[tuple[str, Decimal], Decimal] = {}
        for ln in self.lines:
            for t, r, a in ln.taxes:
                out[(t, r)] = out.get((t, r), Decimal("0")) + a
        if self.shipping_tax:
            key = (self.tax_title, self.tax_rate)
            out[key] = out.get(key, Decimal("0")) + self.shipping_tax
        return [(t, r, a) for (t, r), a in out.items() if a > 0]

    @property
    def line_items_total(self) -> Decimal:
        return sum((ln.original_total for ln in self.lines), Decimal("0"))

    @property
    def subtotal(self) -> Decimal:
        """Line items after all their discounts (tax inside when taxes are included)."""
        return sum((ln.net for ln in self.lines), Decimal("0"))

    @property
    def total_discounts(self) -> Decimal:
        return sum((ln.total_discount for ln in self.lines), Decimal("0")) + self.shipping_discount

    @property
    def total_tax(self) -> Decimal:
        return sum((ln.tax for ln in self.lines), Decimal("0")) + self.shipping_tax

    @property
    def total(self) -> Decimal:
        added_tax = Decimal("0") if self.taxes_included else self.total_tax
        return self.line_items_total - self.total_discounts + self.shipping + added_tax

    @property
    def received(self) -> Decimal:
        voided = {t.parent_id for t in self.transactions if t.kind == "VOID" and t.status == "SUCCESS"}
        return sum((t.amount for t in self.transactions
                    if t.kind in ("SALE", "CAPTURE") and t.status == "SUCCESS" and t.id not in voided), Decimal("0"))

    @property
    def outstanding(self) -> Decimal:
        return self.total - self.received

    @property
    def fully_paid(self) -> bool:
        return self.outstanding <= 0

    @property
    def gid(self) -> str:
        return f"gid://shopify/Order/{self.order_id}"

    @property
    def name(self) -> str:
        return f"#{self.number}"

    @property
    def customer_email(self) -> str | None:
        return self.email or (self.customer or {}).get("email")

    def add_transaction(self, kind: str, amount: Decimal, status: str = "SUCCESS",
                        at: datetime | None = None, gateway: str | None = None,
                        parent: Transaction | None = None) -> Transaction:
        txn = Transaction(id=self.order_id * 100 + len(self.transactions) + 1, kind=kind, status=status,
                          gateway=gateway or self.gateway, amount=amount, processed_at=at or self.updated_at,
                          parent_id=parent.id if parent is not None else None)
        self.transactions.append(txn)
        return txn

    def fulfil(self, at: datetime, *, company: str | None = None, numbers: list[str] | tuple = (),
               urls: list[str] | tuple = (), lines: dict[int, int] | None = None) -> Fulfillment:
        """Ship ``lines`` (line item id → quantity; default: everything not shipped yet), as
        ``fulfillmentCreate`` does; the order's fulfilment status follows."""
        shipped = self.shipped()
        todo = lines if lines is not None else {ln.id: ln.quantity - shipped.get(ln.id, 0) for ln in self.lines
                                                 if ln.quantity - shipped.get(ln.id, 0) > 0}
        if not todo:
            raise ValueError("nothing left to fulfil")
        held = {i % self.locations for i, ln in enumerate(self.lines) if ln.id in todo} & set(self.holds)
        if any(self.holds.get(i) for i in held):   # Shopify: a fulfilment order on hold cannot be fulfilled
            raise ValueError("the fulfilment order is on hold")
        f = Fulfillment(id=self.order_id * 100 + 50 + len(self.fulfillments), order_id=self.order_id,
                        created_at=at, updated_at=at, company=company, numbers=list(numbers), urls=list(urls),
                        lines=dict(todo))
        self.fulfillments.append(f)
        self.updated_at = at
        return f

    def cancel_fulfillment(self, f: Fulfillment, at: datetime) -> Fulfillment:
        f.status, f.updated_at = "CANCELLED", at
        self.updated_at = at
        return f

    def shipped(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for f in self.fulfillments:
            if f.status == "SUCCESS":
                for line_id, qty in f.lines.items():
                    out[line_id] = out.get(line_id, 0) + qty
        return out

    @property
    def fulfillment_status(self) -> str | None:
        """REST ``fulfillment_status``: None (nothing shipped), ``partial`` or ``fulfilled``."""
        shipped = self.shipped()
        if not shipped:
            return None
        return "fulfilled" if all(shipped.get(ln.id, 0) >= ln.quantity for ln in self.lines) else "partial"

    def capture(self, amount: Decimal | str, at: datetime) -> Transaction:
        """A capture of part (or the rest) of an authorized order, as ``orderCapture`` does: the financial
        status becomes partially_paid, or paid once nothing is outstanding."""
        value = Decimal(str(amount))
        if value <= 0 or value > self.outstanding:
            raise ValueError(f"cannot capture {value}: {self.outstanding} is outstanding")
        auth = next((t for t in self.transactions if t.kind == "AUTHORIZATION"), None)
        txn = self.add_transaction("CAPTURE", value, at=at, parent=auth)
        self.updated_at = at
        self.financial_status = "paid" if self.outstanding <= 0 else "partially_paid"
        return txn

    def void(self, txn: Transaction, at: datetime) -> Transaction:
        """A void of ``txn`` (a capture not yet settled): its money is no longer received."""
        voided = self.add_transaction("VOID", txn.amount, at=at, gateway=txn.gateway, parent=txn)
        self.updated_at = at
        self.financial_status = ("paid" if self.outstanding <= 0 else
                                 "partially_paid" if self.received > 0 else "authorized")
        return voided

    def mark_paid(self, at: datetime) -> None:
        """What ``orderMarkAsPaid`` does: a sale for the outstanding amount, status paid."""
        outstanding = self.outstanding
        self.updated_at = at
        if outstanding > 0:
            self.add_transaction("SALE", outstanding, at=at)
        self.financial_status = "paid"

    def refund(self, lines: dict[int, int], *, shipping: bool = False, note: str | None = None,
               at: datetime | None = None) -> dict[str, Any]:
        """What the admin's Refund button does: ``lines`` {line index: units}, each refunded at its net
        price with its tax, plus the whole shipping when ``shipping``; money goes back (a REFUND)."""
        at = at or max(datetime.now(UTC), self.updated_at + timedelta(seconds=1))
        detail, amount, tax = [], Decimal("0"), Decimal("0")
        for index, qty in lines.items():
            ln = self.lines[int(index)]
            if qty <= 0 or qty > ln.quantity - ln.refunded:
                raise ValueError(f"cannot refund {qty} of line {index} ({ln.quantity - ln.refunded} left)")
            subtotal = _cents(ln.net * qty / ln.quantity)
            line_tax = _cents(ln.tax * qty / ln.quantity)
            if self.taxes_included:
                subtotal -= line_tax
            ln.refunded += qty
            detail.append({"line": ln, "quantity": qty, "subtotal": subtotal, "tax": line_tax})
            amount += subtotal + line_tax
            tax += line_tax
        ship = ship_tax = Decimal("0")
        if shipping:
            ship_tax = self.shipping_tax
            ship = self.shipping - self.shipping_discount - (ship_tax if self.taxes_included else Decimal("0"))
            amount += ship + ship_tax
            tax += ship_tax
        refund = {"id": self.order_id * 10 + len(self.refunds) + 1, "amount": amount, "tax": tax, "created_at": at,
                  "detail": detail, "shipping": ship, "shipping_tax": ship_tax, "note": note}
        self.refunds.append(refund)
        self.add_transaction("REFUND", amount, at=at)
        self.updated_at = at
        self.financial_status = "refunded" if self.refunded >= self.total else "partially_refunded"
        return refund

    def _gql_refund(self, r: dict[str, Any]) -> dict[str, Any]:
        """A refund as GraphQL serves it; its lines and shipping lines are paged connections."""
        lines = [{"quantity": d["quantity"], "lineItem": {"id": f"gid://shopify/LineItem/{d['line'].id}"},
                  "subtotalSet": self.bag(d["subtotal"]), "totalTaxSet": self.bag(d["tax"])}
                 for d in r.get("detail", [])]
        line_ids = [d["line"].id for d in r.get("detail", [])]
        shipping = ([{"subtotalAmountSet": self.bag(r["shipping"]), "taxAmountSet": self.bag(r["shipping_tax"])}]
                    if r.get("shipping") else [])
        return {"id": f"gid://shopify/Refund/{r['id']}", "legacyResourceId": str(r["id"]),
                "createdAt": gql_time(r["created_at"]), "note": r.get("note"),
                "totalRefundedSet": self.bag(r["amount"]),
                "refundLineItems": lambda info, **args: connection(lines, line_ids, **args),
                "refundShippingLines": lambda info, **args: connection(shipping, [r["id"]][:len(shipping)],
                                                                       **args)}

    def graphql_refund(self, refund_id: int) -> dict[str, Any] | None:
        """One refund of this order (``refund(id:)``), or None."""
        for r in self.refunds:
            if r["id"] == refund_id:
                return self._gql_refund(r)
        return None

    # -- GraphQL rendering ---------------------------------------------------------------------
    def _tax_lines(self, amount: Decimal, taxable: bool = True) -> list[dict[str, Any]]:
        if not taxable or self.tax_rate <= 0:
            return []
        return self._gql_taxes([(self.tax_title, self.tax_rate, amount)])

    def _gql_taxes(self, taxes: list[tuple[str, Decimal, Decimal]]) -> list[dict[str, Any]]:
        return [{"title": t, "rate": float(r), "ratePercentage": round(float(r) * 100, 4),
                 "priceSet": self.bag(a)} for t, r, a in taxes]

    def _allocations(self, *amounts: Decimal) -> list[dict[str, Any]]:
        return [{"allocatedAmountSet": self.bag(a)} for a in amounts if a > 0]

    def _gql_line(self, ln: Line) -> dict[str, Any]:
        discounted_unit = _cents(ln.subtotal / ln.quantity) if ln.quantity else ln.price
        return {
            "id": f"gid://shopify/LineItem/{ln.id}",
            "name": ln.title,
            "title": ln.title,
            "sku": ln.sku,
            "quantity": ln.quantity,
            "currentQuantity": ln.quantity - ln.refunded,
            "taxable": ln.taxable and ln.discountable,
            "requiresShipping": ln.requires_shipping,
            "isGiftCard": ln.gift_card,
            "originalUnitPriceSet": self.bag(ln.price),
            "discountedUnitPriceSet": self.bag(discounted_unit),
            "originalTotalSet": self.bag(ln.original_total),
            "totalDiscountSet": self.bag(ln.total_discount),
            "discountAllocations": self._allocations(ln.discount, ln.order_discount),
            "taxLines": self._gql_taxes(ln.taxes),
            "variant": None if ln.tip else {"id": f"gid://shopify/ProductVariant/{ln.variant_id}", "sku": ln.sku},
        }

    def _gql_shipping_lines(self) -> list[dict[str, Any]]:
        if self.shipping <= 0 and self.shipping_discount <= 0:
            return []
        return [{
            "id": f"gid://shopify/ShippingLine/{self.order_id * 10 + 1}",
            "title": self.shipping_title,
            "code": self.shipping_title,
            "originalPriceSet": self.bag(self.shipping),
            "discountedPriceSet": self.bag(self.shipping - self.shipping_discount),
            "discountAllocations": self._allocations(self.shipping_discount),
            "taxLines": self._tax_lines(self.shipping_tax),
        }]

    def _gql_customer(self) -> dict[str, Any] | None:
        c = self.customer
        if not c:
            return None
        first, last = c.get("first_name"), c.get("last_name")
        display = " ".join(p for p in (first, last) if p) or c.get("email") or self.customer_email or ""
        return {"id": f"gid://shopify/Customer/{c['id']}", "legacyResourceId": str(c["id"]),
                "email": c.get("email") or self.email, "firstName": first, "lastName": last,
                "displayName": display, "phone": c.get("phone"),
                "numberOfOrders": str(c.get("orders_count", 1)),
                "amountSpent": {"amount": gql_money(_d(c.get("total_spent", self.total))),
                                "currencyCode": self.currency}}

    def _gql_address(self) -> dict[str, Any] | None:
        a = self._address()
        if a is None:
            return None
        return {"firstName": a["first_name"], "lastName": a["last_name"], "name": a["name"],
                "company": a["company"], "address1": a["address1"], "address2": a["address2"],
                "city": a["city"], "province": a["province"], "provinceCode": a["province_code"],
                "country": a["country"], "countryCodeV2": a["country_code"], "zip": a["zip"],
                "phone": a["phone"]}

    def _address(self) -> dict[str, Any] | None:
        if self.address is not None:
            return self.address
        c = self.customer or {}
        if not c:
            return None
        first, last = c.get("first_name"), c.get("last_name")
        return {"first_name": first, "last_name": last,
                "name": " ".join(p for p in (first, last) if p) or None, "company": None,
                "address1": f"{100 + self.order_id % 900} Main Street", "address2": None,
                "city": "Springfield", "province": "Illinois", "province_code": "IL",
                "country": "United States", "country_code": "US", "zip": "62701", "phone": None}

    def graphql(self) -> dict[str, Any]:
        """The order as a GraphQL-shaped dict (resolved by graphql-core's default resolver)."""
        self.recompute()
        cur = self.currency
        nodes = [self._gql_line(ln) for ln in self.lines]
        ids = [ln.id for ln in self.lines]
        transactions = [{
            "id": f"gid://shopify/OrderTransaction/{t.id}", "kind": t.kind, "status": t.status,
            "gateway": t.gateway, "amountSet": self.bag(t.amount),
            "processedAt": gql_time(t.processed_at), "test": self.test,
            "parentTransaction": ({"id": f"gid://shopify/OrderTransaction/{t.parent_id}"}
                                  if t.parent_id is not None else None)} for t in self.transactions]
        tax_lines = self._gql_taxes(self.tax_summary())
        refunds = [self._gql_refund(r) for r in self.refunds]
        refunded_tax = sum((r.get("tax", Decimal("0")) for r in self.refunds), Decimal("0"))
        return {
            "id": self.gid,
            "legacyResourceId": str(self.order_id),
            "name": self.name,
            "email": self.customer_email,
            "phone": self.phone,
            "createdAt": gql_time(self.created_at),
            "updatedAt": gql_time(self.updated_at),
            "processedAt": gql_time(self.created_at),
            "cancelledAt": gql_time(self.cancelled_at) if self.cancelled_at else None,
            "cancelReason": self.cancel_reason,
            "closed": False,
            "test": self.test,
            "note": self.note,
            "tags": list(self.tags),
            "currencyCode": cur,
            "presentmentCurrencyCode": self.presentment_currency or cur,
            "taxesIncluded": self.taxes_included,
            "displayFinancialStatus": self.financial_status.upper(),
            "fullyPaid": self.fully_paid,
            "paymentGatewayNames": self.gateway_names,
            "customer": self._gql_customer(),
            "billingAddress": self._gql_address(),
            "shippingAddress": self._gql_address(),
            "subtotalPriceSet": self.bag(self.subtotal),
            "totalPriceSet": self.bag(self.total),
            "currentTotalPriceSet": self.bag(self.total - self.refunded),
            "totalTaxSet": self.bag(self.total_tax),
            "currentTotalTaxSet": self.bag(self.total_tax - refunded_tax),
            "totalDiscountsSet": self.bag(self.total_discounts),
            "totalShippingPriceSet": self.bag(self.shipping),
            "totalOutstandingSet": self.bag(max(self.outstanding, Decimal("0"))),
            "totalReceivedSet": self.bag(self.received),
            "totalRefundedSet": self.bag(self.refunded),
            "totalTipReceivedSet": self.bag(self.tip_total),
            "taxLines": tax_lines,
            "paymentTerms": self._gql_payment_terms(),
            "lineItems": lambda info, **args: connection(nodes, ids, **args),
            "shippingLines": lambda info, **args: connection(self._gql_shipping_lines(),
                                                             [self.order_id * 10 + 1], **args),
            "transactions": lambda info, first=None, **_: transactions[:first],
            "refunds": lambda info, first=None: refunds[:first],
            "fulfillments": lambda info, first=None, **_: [f.gql() for f in self.fulfillments][:first],
            "fulfillmentOrders": lambda info, **args: connection(
                [self.gql_fulfillment_order(i) for i in range(self.locations)],
                [self.fulfillment_order_id(i) for i in range(self.locations)], **args),
        }

    # -- fulfilment orders ---------------------------------------------------------------------
    def fulfillment_order_id(self, index: int) -> int:
        return self.order_id * 100 + 10 + index

    def fulfillment_order_status(self, index: int) -> str:
        """OPEN, IN_PROGRESS (partly shipped), CLOSED (all shipped), CANCELLED or ON_HOLD."""
        if self.cancelled_at is not None:
            return "CANCELLED"
        lines = [ln for i, ln in enumerate(self.lines) if i % self.locations == index]
        shipped = self.shipped()
        if lines and all(shipped.get(ln.id, 0) >= ln.quantity for ln in lines):
            return "CLOSED"
        if self.holds.get(index):
            return "ON_HOLD"
        return "IN_PROGRESS" if any(shipped.get(ln.id, 0) for ln in lines) else "OPEN"

    def gql_fulfillment_order(self, index: int) -> dict[str, Any]:
        return {"id": f"gid://shopify/FulfillmentOrder/{self.fulfillment_order_id(index)}",
                "status": self.fulfillment_order_status(index), "orderId": self.gid, "orderName": self.name,
                "createdAt": gql_time(self.created_at), "updatedAt": gql_time(self.updated_at),
                "orderProcessedAt": gql_time(self.created_at), "requestStatus": "UNSUBMITTED",
                "fulfillmentHolds": [dict(h) for h in self.holds.get(index, [])]}

    def _gql_payment_terms(self) -> dict[str, Any] | None:
        terms = self.payment_terms
        if not terms:
            return None
        due = terms.get("due_at")
        if due is None and terms.get("due_in_days") is not None:
            due = self.created_at + timedelta(days=int(terms["due_in_days"]))
        schedules = [{"id": f"gid://shopify/PaymentSchedule/{self.order_id * 10 + 7}",
                      "dueAt": gql_time(due) if due else None, "issuedAt": gql_time(self.created_at)}]
        return {"id": f"gid://shopify/PaymentTerms/{self.order_id}", "paymentTermsType": str(terms["type"]).upper(),
                "dueInDays": terms.get("due_in_days"),
                "overdue": False,
                "paymentSchedules": lambda info, **args: connection(schedules, [self.order_id * 10 + 7], **args)}

    @property
    def gateway_names(self) -> list[str]:
        paid = [t.gateway for t in self.transactions if t.kind in ("SALE", "CAPTURE", "AUTHORIZATION")]
        return list(dict.fromkeys(paid)) or [self.gateway]

    # -- REST (webhook) rendering --------------------------------------------------------------
    def webhook_body(self) -> dict[str, Any]:
        """The REST-shaped order JSON of an ``orders/create|updated|paid`` webhook."""
        self.recompute()
        cur = self.currency

        def rest_tax_lines(amount: Decimal, taxable: bool = True) -> list[dict[str, Any]]:
            if not taxable or self.tax_rate <= 0:
                return []
            return rest_taxes([(self.tax_title, self.tax_rate, amount)])

        def rest_taxes(taxes: list[tuple[str, Decimal, Decimal]]) -> list[dict[str, Any]]:
            return [{"title": t, "price": rest_money(a), "rate": float(r), "price_set": rest_money_set(a, cur),
                     "channel_liable": False} for t, r, a in taxes]

        applications: list[dict[str, Any]] = []
        line_items = []
        for ln in self.lines:
            allocations = []
            for amount, kind in ((ln.discount, "line"), (ln.order_discount, "order")):
                if amount <= 0:
                    continue
                index = _application_index(applications, kind, self)
                allocations.append({"amount": rest_money(amount), "amount_set": rest_money_set(amount, cur),
                                    "discount_application_index": index})
            line_items.append({
                "id": ln.id, "admin_graphql_api_id": f"gid://shopify/LineItem/{ln.id}",
                "variant_id": ln.variant_id, "product_id": ln.variant_id // 10 or None,
                "sku": ln.sku, "title": ln.title, "name": ln.title, "quantity": ln.quantity,
                "current_quantity": ln.quantity - ln.refunded, "fulfillable_quantity": ln.quantity,
                "price": rest_money(ln.price), "price_set": rest_money_set(ln.price, cur),
                "total_discount": rest_money(ln.total_discount),
                "total_discount_set": rest_money_set(ln.total_discount, cur),
                "taxable": ln.taxable and ln.discountable, "requires_shipping": ln.requires_shipping,
                "gift_card": ln.gift_card, "tax_lines": rest_taxes(ln.taxes),
                "discount_allocations": allocations,
                **({"tip_payment_gateway": self.gateway} if ln.tip else {}),
            })
        shipping_lines = []
        if self.shipping > 0 or self.shipping_discount > 0:
            ship_alloc = []
            if self.shipping_discount > 0:
                index = _application_index(applications, "shipping", self)
                ship_alloc.append({"amount": rest_money(self.shipping_discount),
                                   "amount_set": rest_money_set(self.shipping_discount, cur),
                                   "discount_application_index": index})
            discounted = self.shipping - self.shipping_discount
            shipping_lines.append({
                "id": self.order_id * 10 + 1, "title": self.shipping_title, "code": self.shipping_title,
                "source": "shopify", "price": rest_money(self.shipping),
                "price_set": rest_money_set(self.shipping, cur),
                "discounted_price": rest_money(discounted),
                "discounted_price_set": rest_money_set(discounted, cur),
                "tax_lines": rest_tax_lines(self.shipping_tax), "discount_allocations": ship_alloc,
            })
        customer = None
        if self.customer:
            c = self.customer
            customer = {"id": c["id"], "admin_graphql_api_id": f"gid://shopify/Customer/{c['id']}",
                        "email": c.get("email") or self.email, "first_name": c.get("first_name"),
                        "last_name": c.get("last_name"), "phone": c.get("phone"),
                        "currency": cur}
        address = self._address()
        outstanding = max(self.outstanding, Decimal("0"))
        return {
            "id": self.order_id,
            "admin_graphql_api_id": self.gid,
            "name": self.name,
            "order_number": self.number,
            "number": self.number - 1000,
            "email": self.customer_email,
            "contact_email": self.customer_email,
            "phone": self.phone,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "processed_at": iso(self.created_at),
            "cancelled_at": iso(self.cancelled_at) if self.cancelled_at else None,
            "cancel_reason": self.cancel_reason,
            "closed_at": None,
            "test": self.test,
            "note": self.note,
            "tags": ", ".join(self.tags),
            "currency": cur,
            "presentment_currency": self.presentment_currency or cur,
            "financial_status": self.financial_status,
            "fulfillment_status": self.fulfillment_status,
            "confirmed": True,
            "taxes_included": self.taxes_included,
            "total_price": rest_money(self.total),
            "total_price_set": rest_money_set(self.total, cur),
            "current_total_price": rest_money(self.total - self.refunded),
            "subtotal_price": rest_money(self.subtotal),
            "subtotal_price_set": rest_money_set(self.subtotal, cur),
            "total_line_items_price": rest_money(self.line_items_total),
            "total_line_items_price_set": rest_money_set(self.line_items_total, cur),
            "total_tax": rest_money(self.total_tax),
            "total_tax_set": rest_money_set(self.total_tax, cur),
            "current_total_tax": rest_money(self.total_tax),
            "total_discounts": rest_money(self.total_discounts),
            "total_discounts_set": rest_money_set(self.total_discounts, cur),
            "total_shipping_price_set": rest_money_set(self.shipping, cur),
            "total_outstanding": rest_money(outstanding),
            "total_tip_received": rest_money(self.tip_total),
            "tax_lines": rest_taxes(self.tax_summary()),
            "discount_applications": [{k: v for k, v in a.items() if k != "_kind"} for a in applications],
            "discount_codes": [],
            "line_items": line_items,
            "shipping_lines": shipping_lines,
            "refunds": [{"id": r["id"], "created_at": iso(r["created_at"]),
                         "transactions": [{"kind": "refund", "amount": rest_money(r["amount"])}]}
                        for r in self.refunds],
            "customer": customer,
            "billing_address": address,
            "shipping_address": address,
            "payment_gateway_names": self.gateway_names,
            "source_name": "web",
        }


def _application_index(applications: list[dict[str, Any]], kind: str, order: ShopifyOrder) -> int:
    """The index of the (REST) discount application of one kind, adding it when first seen."""
    for i, app in enumerate(applications):
        if app["_kind"] == kind:
            return i
    amount = {"line": None, "order": order.order_discount, "shipping": order.shipping_discount}[kind]
    applications.append({
        "_kind": kind,
        "type": "manual",
        "title": {"line": "Line discount", "order": "Order discount", "shipping": "Shipping discount"}[kind],
        "description": None,
        "value": rest_money(amount) if amount is not None else "0.00",
        "value_type": "fixed_amount",
        "allocation_method": "each" if kind != "order" else "across",
        "target_selection": "explicit" if kind == "line" else "all",
        "target_type": "shipping_line" if kind == "shipping" else "line_item",
    })
    return len(applications) - 1


def connection(nodes: list[Any], ids: list[int], *, first: int | None = None, after: str | None = None,
               last: int | None = None, before: str | None = None, reverse: bool = False,
               unbounded: bool = False, **_: Any) -> dict[str, Any]:
    """A Relay connection over ``nodes`` (keyed by ``ids``) with Shopify's cursor rules (``unbounded``: a
    bulk operation's connection, which returns every node when neither ``first`` nor ``last`` is given)."""
    if unbounded and first is None and last is None:
        first = len(nodes)
    elif first is None and last is None:
        raise ValueError("you must provide one of first or last")
    for n in (first, last):
        if n is not None and not 0 <= n <= 250 and not unbounded:
            raise ValueError("The first/last argument must be between 0 and 250")
    order = list(range(len(nodes)))
    if reverse:
        order.reverse()
    start, end = 0, len(order)
    position = {ids[i]: k for k, i in enumerate(order)}
    if after is not None:
        last_id = decode_cursor(after)["last_id"]
        start = position.get(last_id, len(order) - 1) + 1
    if before is not None:
        end = position.get(decode_cursor(before)["last_id"], 0)
    window = order[start:end]
    if first is not None:
        has_next = len(window) > first or end < len(order)
        has_prev = start > 0
        window = window[:first]
    else:
        has_prev = len(window) > last or start > 0
        has_next = end < len(order)
        window = window[len(window) - last:] if last else []
    cursors = [encode_cursor(ids[i]) for i in window]
    return {
        "nodes": [nodes[i] for i in window],
        "edges": [{"node": nodes[i], "cursor": c} for i, c in zip(window, cursors, strict=True)],
        "pageInfo": {"hasNextPage": has_next,
                     "hasPreviousPage": has_prev,
                     "startCursor": cursors[0] if cursors else None,
                     "endCursor": cursors[-1] if cursors else None},
    }


def _variant_id(sku: str | None) -> int:
    return 40_000_000 + zlib.crc32(str(sku).encode()) % 10**6


def build_order(*, order_id: int, number: int, lines: list[dict[str, Any]], shipping: str = "0.00",
                shipping_discount: str = "0.00", order_discount: str = "0.00", tax_rate: str = "0",
                taxes_included: bool = False, currency: str = "USD", email: str | None = None,
                customer: dict[str, Any] | None = None, financial_status: str = "paid",
                gateway: str = "shopify_payments", created_at: datetime | None = None,
                updated_at: datetime | None = None, tip: str = "0.00", gift_card_payment: str = "0.00",
                refunds: list[dict[str, Any]] | tuple = (), presentment_currency: str | None = None,
                fx: str = "1", **extra: Any) -> ShopifyOrder:
    """Build one order; see the module docstring for the money rules.

    ``lines``: dicts with ``sku``, ``title``, ``quantity``, ``price`` (str), optional ``discount``
    (str, for the whole line), ``taxable`` (default true), ``gift_card`` (a gift card sold) and
    ``tax_rates`` (``[(title, rate)]``: the line's own tax lines instead of the order's ``tax_rate``).
    ``tip``: a tip line item of that amount. ``gift_card_payment``: that much of a paid order is paid with a
    gift card (gateway ``gift_card``). ``refunds``: ``{"amount", "tax" (optional), "lines": {index: qty}}``
    on a paid order (status then partially_refunded or refunded). ``presentment_currency`` / ``fx``: the
    buyer's currency and its units per shop unit. ``extra``: ``note``, ``tags``, ``phone``, ``test``,
    ``tax_title``, ``shipping_title``, ``address`` (REST-shaped dict).
    """
    if financial_status not in FINANCIAL_STATUSES:
        raise ValueError(f"financial_status must be one of {FINANCIAL_STATUSES}")
    if not lines:
        raise ValueError("an order needs at least one line")
    now = datetime.now(UTC)
    created = created_at or now
    built = []
    for i, spec in enumerate(lines):
        qty = int(spec["quantity"])
        if qty <= 0:
            raise ValueError("line quantity must be positive")
        price, discount = _d(spec["price"]), _d(spec.get("discount", "0"))
        if discount < 0 or discount > price * qty:
            raise ValueError("a line discount must be between 0 and the line amount")
        line_id = order_id * 1000 + i + 1
        gift = bool(spec.get("gift_card"))
        rates = spec.get("tax_rates")
        built.append(Line(id=line_id, sku=spec.get("sku"), title=spec.get("title") or spec.get("sku") or "Item",
                          quantity=qty, price=price, discount=discount, taxable=spec.get("taxable", not gift),
                          variant_id=int(spec.get("variant_id", _variant_id(spec.get("sku")))),
                          requires_shipping=spec.get("requires_shipping", not gift), gift_card=gift,
                          tax_rates=None if rates is None else [(t, _d(r)) for t, r in rates]))
    if _d(tip) > 0:
        built.append(Line(id=order_id * 1000 + len(built) + 1, sku=None, title="Tip", quantity=1, price=_d(tip),
                          discount=Decimal("0"), taxable=False, requires_shipping=False, tip=True))
    if _d(shipping_discount) > _d(shipping):
        raise ValueError("shipping_discount exceeds shipping")
    order = ShopifyOrder(
        order_id=order_id, number=number, lines=built, shipping=_d(shipping),
        shipping_discount=_d(shipping_discount), order_discount=_d(order_discount), tax_rate=_d(tax_rate),
        taxes_included=taxes_included, currency=currency, email=email or (customer or {}).get("email"),
        customer=customer, financial_status=financial_status, gateway=gateway, created_at=created,
        updated_at=updated_at or created, presentment_currency=presentment_currency, fx=_d(fx), **extra)
    order.recompute()
    total = order.total
    by_card = min(_d(gift_card_payment), total)
    if financial_status == "paid":
        if by_card > 0:
            order.add_transaction("SALE", by_card, at=created, gateway="gift_card")
        if total - by_card > 0 or by_card <= 0:
            order.add_transaction("SALE", total - by_card, at=created)
        for i, r in enumerate(refunds):
            at = created + timedelta(days=1 + i)
            for index, qty in (r.get("lines") or {}).items():
                built[int(index)].refunded += int(qty)
            order.refunds.append({"id": order_id * 10 + i + 1, "amount": _d(r["amount"]),
                                  "tax": _d(r.get("tax", "0")), "created_at": at})
            order.add_transaction("REFUND", _d(r["amount"]), at=at)
            order.updated_at = max(order.updated_at, at)
        if refunds:
            order.financial_status = "refunded" if order.refunded >= total else "partially_refunded"
    elif financial_status == "partially_paid":
        order.add_transaction("SALE", _cents(total / 2, ROUND_DOWN), at=created)
    elif financial_status == "authorized":
        order.add_transaction("AUTHORIZATION", total, at=created)
    return order


def random_order(rng: random.Random, order_id: int, number: int, *, skus: list[tuple[str, str, str]] | list[str],
                 customers: list[dict[str, Any]], created_at: datetime | None = None) -> ShopifyOrder:
    """A varied demo order. ``skus``: ``(sku, title, price)`` tuples or bare SKUs; ``customers``: dicts
    with ``id``, ``email``, ``first_name``, ``last_name``. Mostly paid, some pending."""
    n_lines = rng.choice([1, 1, 2, 2, 3, 4, 6])
    picks = rng.sample(list(skus), k=min(n_lines, len(skus)))
    lines = []
    for item in picks:
        if isinstance(item, str):
            cents = rng.choice(["00", "50", "95", "99"])
            sku, title, price = item, item.replace("-", " ").title(), f"{rng.randint(5, 120)}.{cents}"
        else:
            sku, title, price = item
        qty = rng.choice([1, 1, 1, 2, 3])
        line: dict[str, Any] = {"sku": sku, "title": title, "quantity": qty, "price": price}
        if rng.random() < 0.2:
            line["discount"] = str(_cents(_d(price) * qty * _d(rng.choice(["0.1", "0.15", "0.25"]))))
        if rng.random() < 0.1:
            line["taxable"] = False
        lines.append(line)
    subtotal = sum(_d(ln["price"]) * ln["quantity"] - _d(ln.get("discount", "0")) for ln in lines)
    order_discount = "0.00"
    if rng.random() < 0.25:
        order_discount = str(_cents(subtotal * _d(rng.choice(["0.05", "0.1", "0.2"]))))
    shipping = rng.choice(["0.00", "4.99", "7.50", "12.00"])
    shipping_discount = shipping if shipping != "0.00" and rng.random() < 0.15 else "0.00"
    taxes_included = rng.random() < 0.2
    tax_rate = rng.choice(["0", "0.0625", "0.08", "0.0875"]) if not taxes_included else rng.choice(["0.2", "0.19"])
    status = rng.choices(["paid", "pending", "partially_paid", "authorized"], weights=[80, 12, 4, 4])[0]
    customer = rng.choice(customers) if customers else None
    created = created_at or datetime.now(UTC) - timedelta(minutes=rng.randint(0, 60 * 24 * 30))
    return build_order(order_id=order_id, number=number, lines=lines, shipping=shipping,
                       shipping_discount=shipping_discount, order_discount=order_discount,
                       tax_rate=tax_rate, taxes_included=taxes_included, customer=customer,
                       email=(customer or {}).get("email"), financial_status=status,
                       gateway="manual" if status == "pending" else "shopify_payments",
                       created_at=created, updated_at=created)
