"""Which QuickBooks object each part of an order maps to, by the merchant's rules. Pure: no I/O.

The pipeline resolves these names to QuickBooks ids (looking up or creating) and hands the ids to the
payload builders:

* ``item_target(line, rules)`` / ``required_items(order, rules)``: the item of every invoice line;
* ``tax_code_for(...)`` / ``required_tax_codes(order, rules)``: tax codes (``tax.mode: line_tax_codes``);
* ``deposit_account_for(order, rules)`` / ``payment_splits(order, rules)``: deposit accounts;
* ``invoice_currency(order, rules, home_currency)`` / ``exchange_rate_for(...)``: foreign currency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase

from mappings.inputs import shown
from mappings.model import FeeLine, MappingError, Order, OrderLine, Payment, ShippingLine, TaxLine
from mappings.qb_common import order_label
from mappings.rule_fields import percent_text
from mappings.rules import MappingRules

ITEM_NAME_MAX = 100


def sku_key(line: OrderLine) -> str:
    """The key of ``item_ids``: the line's SKU, or ``"title:<title>"`` when it has none."""
    sku = (line.sku or "").strip()
    return sku if sku else "title:" + (line.title or "").strip()


def item_name(text: str) -> str:
    """A QuickBooks item name: at most 100 characters, no ':' (QuickBooks' sub-item separator)."""
    return re.sub(r"\s+", " ", (text or "").replace(":", "-")).strip()[:ITEM_NAME_MAX] or "Item"


@dataclass(frozen=True)
class ItemTarget:
    """The QuickBooks item for an invoice line.

    ``how``: ``map`` | ``pattern`` (``items.map`` / ``items.patterns``: an existing item, never created),
    ``sku`` | ``name`` (look the item up as ``lookups`` says), ``fallback`` (``items.fallback_item``
    directly), ``gift_card`` | ``shipping`` | ``tip`` | ``fee`` (the item of that rule).
    ``lookups``: ``(QuickBooks field, value)`` pairs to try in order, e.g. ``(("Sku", "TS-1"), ("Name",
    "TS-1"))``. When none finds an item: ``create`` it (as ``type``, its income account ``account`` or
    ``items.income_account`` when None), else use ``fallback`` when set, else fail (rule ``rule``).
    """

    key: str
    name: str
    how: str
    create: bool
    lookups: tuple[tuple[str, str], ...] = ()
    sku: str | None = None
    fallback: str | None = None
    type: str = "NonInventory"
    account: str | None = None
    rule: str = "items"


def item_target(line: OrderLine | ShippingLine | FeeLine, rules: MappingRules) -> ItemTarget:
    """The item an order line (product or gift card), a shipping line or a fee/tip line books to."""
    if isinstance(line, ShippingLine):
        return ItemTarget("shipping", rules.shipping.item, "shipping", True, (("Name", rules.shipping.item),),
                          type="Service", rule="shipping.item")
    if isinstance(line, FeeLine):
        rule = rules.tips if line.kind == "tip" else rules.fees
        sec = "tips" if line.kind == "tip" else "fees"
        kind = "tip" if line.kind == "tip" else "fee"
        return ItemTarget(kind, rule.item, kind, True, (("Name", rule.item),), type="Service",
                          account=rule.account, rule=f"{sec}.item")
    key = sku_key(line)
    sku = (line.sku or "").strip() or None
    if line.is_gift_card:
        g = rules.gift_cards
        return ItemTarget(key, g.item, "gift_card", True, (("Name", g.item),), type="Service",
                          account=g.account, rule="gift_cards.item")
    items = rules.items
    if sku and (sku in items.map or sku.casefold() in _folded(items.map)):
        name = items.map.get(sku) or _folded(items.map)[sku.casefold()]
        return ItemTarget(key, name, "map", False, (("Name", name),), sku=sku, rule=f"items.map.{sku}")
    subject = (sku or line.title or "").strip().upper()
    for i, p in enumerate(items.patterns):
        if fnmatchcase(subject, p.match.upper()):
            return ItemTarget(key, p.item, "pattern", False, (("Name", p.item),), sku=sku,
                              rule=f"items.patterns[{i}]")
    name = item_name(sku or line.title)
    lookups = tuple(("Sku", sku) if f == "sku" else ("Name", name)
                    for f in items.match_by if f == "name" or sku)
    fallback = items.fallback_item if items.when_missing == "fallback" else None
    if not lookups and fallback:
        return ItemTarget(key, fallback, "fallback", False, (("Name", fallback),), sku=sku,
                          rule="items.fallback_item")
    how = "sku" if lookups and lookups[0][0] == "Sku" else "name"
    return ItemTarget(key, name, how, items.when_missing == "create", lookups, sku=sku, fallback=fallback,
                      type=items.type, rule="items.when_missing")


def required_items(order: Order, rules: MappingRules) -> dict[str, ItemTarget]:
    """Every item the invoice of ``order`` needs, keyed as ``invoice_payload`` takes them: ``sku_key(line)``
    for ``item_ids``, ``"shipping"`` (``shipping_item_id``), ``"tip"`` (``tip_item_id``), ``"fee"``
    (``fee_item_id``)."""
    out: dict[str, ItemTarget] = {}
    for line in order.lines:
        out.setdefault(sku_key(line), item_target(line, rules))
    if any(s.amount != 0 for s in order.shipping_lines):
        out["shipping"] = item_target(order.shipping_lines[0], rules)
    for fee in order.fee_lines:
        target = item_target(fee, rules)
        out.setdefault(target.key, target)
    return out


def _folded(mapping: dict[str, str]) -> dict[str, str]:
    return {k.casefold(): v for k, v in mapping.items()}


# --- tax codes ---------------------------------------------------------------------------------

def tax_code_for(tax_lines: list[TaxLine], taxable: bool, rules: MappingRules, *, what: str,
                 order: Order) -> tuple[str, str]:
    """(TaxCode name, why) for a line under ``tax.mode: line_tax_codes``.

    A line without tax (not taxable, no tax lines, or tax lines summing to zero at a non-zero rate: an
    exempt buyer) gets ``tax.exempt_code``. Otherwise ``tax.codes`` is looked up by the tax line's title,
    then by its rate in percent; several tax lines (e.g. GST + PST) by their titles joined with " + ",
    then by the sum of their rates. No match: ``MappingError`` naming the rate and the rule ``tax.codes``.
    """
    codes = rules.tax.codes
    rate = sum((t.rate for t in tax_lines), Decimal("0"))
    amount = sum((t.amount for t in tax_lines), Decimal("0"))
    if not taxable or not tax_lines or (amount == 0 and rate != 0):
        return rules.tax.exempt_code, "no tax on the line → tax.exempt_code"
    percent = percent_text(rate * 100)
    title = " + ".join(t.title for t in tax_lines)
    folded = {k.casefold(): (k, v) for k, v in codes.items()}
    if title.casefold() in folded:
        key, code = folded[title.casefold()]
        return code, f"tax line {title!r} → tax.codes.{key}"
    if percent in codes:
        return codes[percent], f"rate {percent}% → tax.codes.{percent}"
    if amount == 0:
        return rules.tax.exempt_code, f"rate {percent}% with no tax → tax.exempt_code"
    raise MappingError(f"no QuickBooks tax code for the {percent}% rate ({title}) on {what} of {order_label(order)}: "
                       f"add it to the rule tax.codes, e.g. \"{percent}\": \"<QuickBooks tax code name>\"",
                       rule="tax.codes")


def required_tax_codes(order: Order, rules: MappingRules) -> list[str]:
    """The TaxCode names the invoice of ``order`` needs (empty unless ``tax.mode: line_tax_codes``);
    resolve them to ids for ``invoice_payload(tax_code_ids=...)``. Raises ``MappingError`` for an
    unmapped rate."""
    if rules.tax.mode != "line_tax_codes":
        return []
    names: dict[str, None] = {}
    for ln in order.lines:
        names[tax_code_for(ln.tax_lines, ln.taxable and not ln.is_gift_card, rules, what=f"line {shown(ln.title)}",
                           order=order)[0]] = None
    for s in order.shipping_lines:
        names[tax_code_for(s.tax_lines, True, rules, what=f"shipping {shown(s.title)}", order=order)[0]] = None
    for f in order.fee_lines:
        names[tax_code_for(f.tax_lines, f.taxable, rules, what=f"{f.kind} {shown(f.title)}", order=order)[0]] = None
    return list(names)


# --- payments ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PaymentSplit:
    """One QuickBooks payment: ``amount`` deposited to ``account`` (received through ``gateways``)."""

    account: str
    amount: Decimal
    gateways: tuple[str, ...]


WHOLE_ORDER = "order"   # the capture id of a payment the store reports without a transaction of its own


def captures(order: Order) -> list[Payment]:
    """The payments the invoice receives, one QuickBooks payment each: every capture (a Shopify SALE or
    CAPTURE, a WooCommerce payment) the store holds, and, when the store says the order is paid but its
    captures fall short (a payment marked by hand, a gateway without transactions), the rest as one payment
    ``WHOLE_ORDER``. An unpaid or zero order has none."""
    if order.total <= 0:
        return []
    paid = [p for p in order.payments if p.amount > 0]
    rest = order.total - sum((p.amount for p in paid), Decimal("0"))
    if order.is_paid and rest > 0:
        gateway = order.payment_gateways[0] if order.payment_gateways else None
        paid.append(Payment(WHOLE_ORDER, rest, gateway=gateway, processed_at=None,
                            source_path="the order's financial status (paid)"))
    return paid


def deposit_account_for(order: Order, rules: MappingRules) -> str:
    """The deposit account (``payments.deposit_accounts``) of the gateway that took most of the money
    (else the order's first gateway; else ``payments.default_account``)."""
    gateway = None
    if order.payments:
        gateway = max(order.payments, key=lambda p: p.amount).gateway
    elif order.payment_gateways:
        gateway = order.payment_gateways[0]
    return rules.payments.account_for(gateway)


def payment_splits(order: Order, rules: MappingRules, amount: Decimal | None = None) -> list[PaymentSplit]:
    """``amount`` (default ``order.total``) as one payment per deposit account, when the order's payments
    (e.g. a gift card redeemed plus a card payment) add up to it; else one payment to
    ``deposit_account_for(order, rules)``."""
    total = order.total if amount is None else amount
    if order.payments and sum((p.amount for p in order.payments), Decimal("0")) == total:
        by_account: dict[str, list] = {}
        for p in order.payments:
            by_account.setdefault(rules.payments.account_for(p.gateway), []).append(p)
        return [PaymentSplit(account, sum((p.amount for p in ps), Decimal("0")),
                             tuple(dict.fromkeys(p.gateway or "" for p in ps)))
                for account, ps in by_account.items()]
    gateways = tuple(dict.fromkeys(p.gateway or "" for p in order.payments)) or tuple(order.payment_gateways)
    return [PaymentSplit(deposit_account_for(order, rules), total, gateways)]


# --- currency ----------------------------------------------------------------------------------

def invoice_currency(order: Order, rules: MappingRules, home_currency: str | None) -> str | None:
    """The foreign currency the invoice, payment and customer must be in; None when the order is in the
    home currency (or the home currency is unknown). ``MappingError`` when ``currency.multi_currency``
    is off and the currencies differ."""
    if not home_currency or order.currency.upper() == home_currency.upper():
        return None
    if rules.currency.multi_currency == "off":
        raise MappingError(f"{order_label(order)} is in {order.currency} but the QuickBooks home currency is "
                           f"{home_currency.upper()} and the rule currency.multi_currency is off",
                           rule="currency.multi_currency")
    return order.currency


def exchange_rate_for(order: Order, rules: MappingRules, home_currency: str | None,
                      exchange_rate: Decimal | None = None) -> tuple[Decimal | None, str]:
    """(home currency per unit of the order's currency, why), or (None, …) when the order is in the home
    currency. ``exchange_rate`` (e.g. from QuickBooks' own rate table) wins over the order's."""
    currency = invoice_currency(order, rules, home_currency)
    if currency is None:
        return None, "same currency"
    home = (home_currency or "").upper()
    if exchange_rate is not None:
        if isinstance(exchange_rate, float) or exchange_rate <= 0:
            raise MappingError(f"exchange rate {shown(exchange_rate)} for {order_label(order)} must be a positive "
                               "number",
                               rule="currency")
        return Decimal(exchange_rate), f"exchange rate supplied for {currency}→{home}"
    target = (order.exchange_rate_currency or home).upper()
    if order.exchange_rate and order.exchange_rate > 0 and target == home:
        return order.exchange_rate, f"exchange_rate ({currency}→{home}, from the store's shop vs presentment amounts)"
    known = f" (the store only gives {currency}→{target})" if order.exchange_rate and target != home else ""
    raise MappingError(f"{order_label(order)} is in {currency} but the QuickBooks home currency is {home}, and no "
                       f"{currency}→{home} exchange rate is known{known}", rule="currency")
