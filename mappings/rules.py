"""A merchant's mapping rules: the defaults (``config/default_rules.yaml``, read by ``config`` and handed in
as data with ``provide_defaults``: nothing here reads a file) plus per-merchant overrides.

``load_rules(overrides)`` merges the overrides onto the defaults (nested mappings merge, lists and
scalars replace), validates, and returns a frozen ``MappingRules``. Anything wrong raises
``RulesError`` whose message starts with the field path, e.g.
``items.when_missing: must be one of create, fallback, fail``.

``referenced_objects(rules)`` lists every QuickBooks object (item, account, tax code) the rules name, so
the hub can check that the company has them.
"""

from __future__ import annotations

import copy
import re
import string
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from mappings.inputs import shown
from mappings.model import store_label
from mappings.payout_rules import PayoutRules, payout_rules
from mappings.receivables import ReceivablesRules, parse_receivables
from mappings.rule_fields import (
    ACCOUNT_NAME_MAX,
    ITEM_NAME_MAX,
    TAX_CODE_NAME_MAX,
    RulesError,
    choice,
    gateway_key,
    hubspot_property,
    list_of,
    mapping,
    name,
    qb_name,
    rate_key,
)

__all__ = ["RulesError", "MappingRules", "Reference", "load_rules", "rules_from_yaml", "rules_from_dict",
           "default_rules_dict", "provide_defaults", "referenced_objects"]

DOC_NUMBER_MAX = 21          # QuickBooks Invoice.DocNumber

ITEM_MATCH_BY = ("sku", "name")
WHEN_MISSING = ("create", "fallback", "fail")
ITEM_TYPES = ("NonInventory", "Service")
DISCOUNT_MODES = ("line", "unit_price")
TAX_MODES = ("total_tax", "line_tax_codes")
MULTI_CURRENCY = ("auto", "off")
EXCHANGE_RATES = ("store", "quickbooks")
CUSTOMER_MATCH_BY = ("email", "display_name")
DOC_NUMBER_FIELDS = ("number", "name", "id")
HUBSPOT_PROPERTIES = ("email", "firstname", "lastname", "phone", "company", "address", "city", "state", "zip",
                      "country")
HUBSPOT_CUSTOM = ("total_spent", "order_count", "last_order_number")
_PLACEHOLDERS = ", ".join("{" + n + "}" for n in DOC_NUMBER_FIELDS)

# A realistic long order, used to check that prefix + doc number fits in 21 characters.
_SAMPLE_ORDER = {"number": "100000", "name": "#100000", "id": "5000000000000"}
_STAGE_RE = re.compile(r"^[A-Za-z0-9_]{1,100}$")
# the order's state → the stage of its deal in HubSpot's default pipeline ("shipped" has no stage of its own
# there: a merchant with a fulfilment stage in a pipeline of theirs maps it)
DEFAULT_DEAL_STAGES = {"awaiting_payment": "contractsent", "paid": "closedwon", "shipped": "closedwon",
                       "refunded": "closedlost", "cancelled": "closedlost"}


@dataclass(frozen=True)
class ItemPattern:
    match: str        # a glob over the SKU (the title when a line has none), e.g. "TSHIRT-*"
    item: str


@dataclass(frozen=True)
class ItemRules:
    match_by: tuple[str, ...] = ("sku", "name")
    when_missing: str = "create"
    fallback_item: str | None = None
    income_account: str = "Sales of Product Income"
    type: str = "NonInventory"
    map: dict[str, str] = field(default_factory=dict)          # exact SKU → item name
    patterns: tuple[ItemPattern, ...] = ()


@dataclass(frozen=True)
class ShippingRules:
    item: str = "Shipping"
    # carrier (as the store names it, e.g. "UPS") → the invoice's ship method; unmapped: the carrier's name
    methods: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TipRules:
    item: str = "Tips"
    account: str | None = None       # account of the item when the hub creates it (None: items.income_account)


@dataclass(frozen=True)
class FeeRules:
    item: str = "Fees"
    account: str | None = None


@dataclass(frozen=True)
class GiftCardRules:
    item: str = "Gift Cards"
    account: str = "Gift Card Liability"   # an Other Current Liability account


@dataclass(frozen=True)
class DiscountRules:
    mode: str = "line"


@dataclass(frozen=True)
class TaxRules:
    mode: str = "total_tax"
    codes: dict[str, str] = field(default_factory=dict)   # rate in percent ("20") or tax line title → TaxCode
    exempt_code: str = "Exempt"


@dataclass(frozen=True)
class PaymentRules:
    deposit_accounts: dict[str, str | None] = field(default_factory=dict)   # gateway → account name
    default_account: str = "Undeposited Funds"

    def account_for(self, gateway: str | None) -> str:
        return self.deposit_accounts.get(gateway_key(gateway)) or self.default_account


@dataclass(frozen=True)
class CurrencyRules:
    multi_currency: str = "auto"
    exchange_rate: str = "store"   # store: the store's own rate, else QuickBooks'; quickbooks: always QuickBooks'


@dataclass(frozen=True)
class InvoiceRules:
    doc_number: str = "{number}"
    prefix: str = ""
    # store (URL without the scheme) → the prefix its orders get instead of ``prefix``: two WooCommerce
    # stores of one merchant both number their orders from 1
    store_prefixes: dict[str, str] = field(default_factory=dict)

    def render_doc_number(self, *, number: str, name: str, id: str, store: str = "") -> str:
        """The DocNumber for an order (not length-checked; see ``mappings.quickbooks``)."""
        prefix = self.store_prefixes.get(store_label(store), self.prefix) if store else self.prefix
        return prefix + self.doc_number.format(number=number, name=name, id=id)


@dataclass(frozen=True)
class CustomerRules:
    match_by: tuple[str, ...] = ("email", "display_name")


@dataclass(frozen=True)
class HubSpotRules:
    lifecycle_stage: str | None = "customer"
    properties: tuple[str, ...] = HUBSPOT_PROPERTIES
    custom: dict[str, str | None] = field(default_factory=dict)   # total_spent → HubSpot property name
    deals: bool = True                 # one deal per order, with its line items
    deal_pipeline: str = "default"
    deal_stages: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_DEAL_STAGES))


@dataclass(frozen=True)
class MappingRules:
    items: ItemRules = ItemRules()
    shipping: ShippingRules = ShippingRules()
    tips: TipRules = TipRules()
    fees: FeeRules = FeeRules()
    gift_cards: GiftCardRules = GiftCardRules()
    discounts: DiscountRules = DiscountRules()
    tax: TaxRules = TaxRules()
    payments: PaymentRules = PaymentRules()
    currency: CurrencyRules = CurrencyRules()
    invoice: InvoiceRules = InvoiceRules()
    customers: CustomerRules = CustomerRules()
    hubspot: HubSpotRules = HubSpotRules()
    payouts: PayoutRules = PayoutRules()
    receivables: ReceivablesRules = ReceivablesRules()   # terms, DSO period, dunning (mappings.receivables)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, not tuples) in the YAML's shape: for export and storage."""
        def plain(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            if isinstance(v, tuple | list):
                return [plain(x) for x in v]
            return v
        return plain(asdict(self))


@dataclass(frozen=True)
class Reference:
    """A QuickBooks object the rules name. ``creatable``: the hub creates it on first use when missing
    (as ``account_type`` for an account)."""

    kind: str            # "Item" | "Account" | "TaxCode"
    name: str
    field: str           # the dotted rule, e.g. "tax.codes.20"
    creatable: bool = False
    account_type: str | None = None


_SECTIONS: dict[str, type] = {
    "items": ItemRules, "shipping": ShippingRules, "tips": TipRules, "fees": FeeRules,
    "gift_cards": GiftCardRules, "discounts": DiscountRules, "tax": TaxRules, "payments": PaymentRules,
    "currency": CurrencyRules, "invoice": InvoiceRules, "customers": CustomerRules, "hubspot": HubSpotRules,
    "payouts": PayoutRules,
    "receivables": ReceivablesRules,
}


_defaults: dict[str, Any] | None = None
SHIP_METHOD_MAX = 31   # QuickBooks' ShipMethodRef


def _ship_methods(section: dict) -> dict[str, str]:
    out = {}
    for carrier, method in mapping(section, "shipping", "methods").items():
        key = qb_name(carrier, "shipping.methods", 100, what="carrier")
        out[str(key).lower()] = qb_name(method, f"shipping.methods.{carrier}", SHIP_METHOD_MAX, what="ship method")
    return out


def provide_defaults(data: Any) -> None:
    """Hand in the default rules as parsed data (``config.default_rules()``; ``hub`` does it on import)."""
    global _defaults
    if not isinstance(data, dict):
        raise RulesError("(defaults)", "the default rules must be a mapping of sections")
    _defaults = copy.deepcopy(data)


def default_rules_dict() -> dict[str, Any]:
    """The defaults handed in as plain data (a fresh copy)."""
    if _defaults is None:
        raise RulesError("(defaults)", "no default rules were handed in (mappings.rules.provide_defaults)")
    return copy.deepcopy(_defaults)


def load_rules(overrides: dict[str, Any] | None = None) -> MappingRules:
    """Defaults merged with ``overrides`` (nested dicts merge; other values replace), validated."""
    data = default_rules_dict()
    if overrides is not None:
        if not isinstance(overrides, dict):
            raise RulesError("(rules)", f"must be a mapping of sections, got {type(overrides).__name__}")
        data = _merge(data, overrides, "")
    return rules_from_dict(data)


def rules_from_yaml(text: str) -> MappingRules:
    """Parse a merchant's YAML overrides (e.g. an import) and load them onto the defaults."""
    try:
        data = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise RulesError("(yaml)", f"not valid YAML: {exc}") from None
    return load_rules(data)


def rules_from_dict(data: dict[str, Any]) -> MappingRules:
    """Validate a complete rule set (every section present) and build ``MappingRules``."""
    if not isinstance(data, dict):
        raise RulesError("(rules)", "must be a mapping of sections")
    for key in data:
        if key not in _SECTIONS:
            raise RulesError(str(key), f"unknown section (known: {', '.join(_SECTIONS)})")
    s: dict[str, Any] = {}
    for sec, cls in _SECTIONS.items():
        section = data.get(sec)
        if section is None:
            section = {}
        if not isinstance(section, dict):
            raise RulesError(sec, "must be a mapping")
        known = set(cls.__dataclass_fields__)
        for key in section:
            if key not in known:
                raise RulesError(f"{sec}.{key}", f"unknown setting (known: {', '.join(sorted(known))})")
        s[sec] = section
    return MappingRules(
        items=_items(s["items"]),
        shipping=ShippingRules(item=name(s["shipping"], "shipping", "item", ITEM_NAME_MAX, default="Shipping"),
                               methods=_ship_methods(s["shipping"])),
        tips=TipRules(item=name(s["tips"], "tips", "item", ITEM_NAME_MAX, default="Tips"),
                      account=name(s["tips"], "tips", "account", ACCOUNT_NAME_MAX, default=None, optional=True)),
        fees=FeeRules(item=name(s["fees"], "fees", "item", ITEM_NAME_MAX, default="Fees"),
                      account=name(s["fees"], "fees", "account", ACCOUNT_NAME_MAX, default=None, optional=True)),
        gift_cards=GiftCardRules(
            item=name(s["gift_cards"], "gift_cards", "item", ITEM_NAME_MAX, default="Gift Cards"),
            account=name(s["gift_cards"], "gift_cards", "account", ACCOUNT_NAME_MAX,
                         default="Gift Card Liability")),
        discounts=DiscountRules(mode=choice(s["discounts"], "discounts", "mode", DISCOUNT_MODES, default="line")),
        tax=_tax(s["tax"]),
        payments=_payments(s["payments"]),
        currency=CurrencyRules(multi_currency=choice(s["currency"], "currency", "multi_currency", MULTI_CURRENCY,
                                                     default="auto"),
                               exchange_rate=choice(s["currency"], "currency", "exchange_rate", EXCHANGE_RATES,
                                                    default="store")),
        invoice=_invoice(s["invoice"]),
        customers=CustomerRules(match_by=list_of(s["customers"], "customers", "match_by", CUSTOMER_MATCH_BY,
                                                 default=("email", "display_name"))),
        hubspot=_hubspot(s["hubspot"]),
        payouts=payout_rules(s["payouts"]),
        receivables=parse_receivables(s["receivables"]),
    )


def referenced_objects(rules: MappingRules) -> list[Reference]:
    """Every QuickBooks object the rules point at, in rule order, each once per rule."""
    refs = [Reference("Account", rules.items.income_account, "items.income_account", account_type="Income")]
    if rules.items.fallback_item:
        refs.append(Reference("Item", rules.items.fallback_item, "items.fallback_item"))
    refs += [Reference("Item", item, f"items.map.{sku}") for sku, item in rules.items.map.items()]
    refs += [Reference("Item", p.item, f"items.patterns[{i}].item") for i, p in enumerate(rules.items.patterns)]
    refs.append(Reference("Item", rules.shipping.item, "shipping.item", creatable=True))
    for sec, rule in (("tips", rules.tips), ("fees", rules.fees)):
        refs.append(Reference("Item", rule.item, f"{sec}.item", creatable=True))
        if rule.account:
            refs.append(Reference("Account", rule.account, f"{sec}.account"))
    refs.append(Reference("Item", rules.gift_cards.item, "gift_cards.item", creatable=True))
    refs.append(Reference("Account", rules.gift_cards.account, "gift_cards.account", creatable=True,
                          account_type="Other Current Liability"))
    if rules.tax.mode == "line_tax_codes":
        refs += [Reference("TaxCode", code, f"tax.codes.{key}") for key, code in rules.tax.codes.items()]
        refs.append(Reference("TaxCode", rules.tax.exempt_code, "tax.exempt_code"))
    refs += [Reference("Account", account, f"payments.deposit_accounts.{gw}")
             for gw, account in rules.payments.deposit_accounts.items() if account]
    refs.append(Reference("Account", rules.payments.default_account, "payments.default_account"))
    return refs


# --- sections ----------------------------------------------------------------------------------

def _merge(base: dict[str, Any], over: dict[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if not isinstance(key, str) and path.count(".") < 2:  # deeper: map keys (a rate may be a number)
            raise RulesError(f"{path}{shown(key)}", "setting names must be strings")
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, f"{path}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _items(section: dict) -> ItemRules:
    match_by = list_of(section, "items", "match_by", ITEM_MATCH_BY, default=("sku", "name"))
    when_missing = choice(section, "items", "when_missing", WHEN_MISSING, default="create")
    fallback = name(section, "items", "fallback_item", ITEM_NAME_MAX, default=None, optional=True)
    if when_missing == "fallback" and not fallback:
        raise RulesError("items.fallback_item", "is required when items.when_missing is fallback")
    income = section.get("income_account", "Sales of Product Income")
    if not isinstance(income, str) or not income.strip():
        raise RulesError("items.income_account", "must be the name of a QuickBooks income account")
    if len(income.strip()) > ACCOUNT_NAME_MAX:
        raise RulesError("items.income_account", f"must be at most {ACCOUNT_NAME_MAX} characters")
    item_type = choice(section, "items", "type", ITEM_TYPES, default="NonInventory")
    item_map: dict[str, str] = {}
    for sku, item in mapping(section, "items", "map").items():
        if isinstance(sku, bool) or not isinstance(sku, str | int) or not str(sku).strip():
            raise RulesError(f"items.map.{sku}", "must map a SKU (text) to an item name")
        key = str(sku).strip()
        item_map[key] = qb_name(item, f"items.map.{key}", ITEM_NAME_MAX, what="item name")
    patterns = section.get("patterns") or []
    if not isinstance(patterns, list):
        raise RulesError("items.patterns", "must be a list of {match: \"TSHIRT-*\", item: \"T-shirts\"}")
    parsed = []
    for i, p in enumerate(patterns):
        where = f"items.patterns[{i}]"
        if not isinstance(p, dict) or set(p) != {"match", "item"}:
            raise RulesError(where, "must be {match: <glob over the SKU>, item: <QuickBooks item name>}")
        if not isinstance(p["match"], str) or not p["match"].strip() or len(p["match"]) > 200:
            raise RulesError(f"{where}.match", "must be a non-empty glob such as \"TSHIRT-*\"")
        parsed.append(ItemPattern(match=p["match"].strip(),
                                  item=qb_name(p["item"], f"{where}.item", ITEM_NAME_MAX, what="item name")))
    return ItemRules(match_by=match_by, when_missing=when_missing, fallback_item=fallback,
                     income_account=income.strip(), type=item_type, map=item_map, patterns=tuple(parsed))


def _tax(section: dict) -> TaxRules:
    mode = choice(section, "tax", "mode", TAX_MODES, default="total_tax")
    codes: dict[str, str] = {}
    for key, code in mapping(section, "tax", "codes").items():
        if isinstance(key, bool) or not isinstance(key, str | int | float) or not str(key).strip():
            raise RulesError(f"tax.codes.{key}", "keys are a rate in percent (\"20\", \"7.5\") or a tax line title")
        canonical = rate_key(key) or str(key).strip()
        if canonical in codes:
            raise RulesError(f"tax.codes.{key}", f"repeats the rate {canonical}%")
        codes[canonical] = qb_name(code, f"tax.codes.{canonical}", TAX_CODE_NAME_MAX, what="tax code name")
    exempt = qb_name(section.get("exempt_code", "Exempt"), "tax.exempt_code", TAX_CODE_NAME_MAX,
                     what="tax code name")
    if mode == "line_tax_codes" and not codes:
        raise RulesError("tax.codes", "is required when tax.mode is line_tax_codes: map each rate to a "
                                      "QuickBooks tax code, e.g. \"20\": \"20.0% S\"")
    return TaxRules(mode=mode, codes=codes, exempt_code=exempt)


def _payments(section: dict) -> PaymentRules:
    accounts: dict[str, str | None] = {}
    for gateway, account in mapping(section, "payments", "deposit_accounts").items():
        key = gateway_key(str(gateway)) if isinstance(gateway, str) else ""
        if not key:
            raise RulesError(f"payments.deposit_accounts.{gateway}", "keys are payment gateway names, e.g. paypal")
        accounts[key] = qb_name(account, f"payments.deposit_accounts.{key}", ACCOUNT_NAME_MAX, optional=True,
                                what="account name")
    default = qb_name(section.get("default_account", "Undeposited Funds"), "payments.default_account",
                      ACCOUNT_NAME_MAX, what="account name")
    return PaymentRules(deposit_accounts=accounts, default_account=default)


def _invoice(section: dict) -> InvoiceRules:
    template = section.get("doc_number", "{number}")
    if not isinstance(template, str) or not template:
        raise RulesError("invoice.doc_number", "must be a template such as \"{number}\"")
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise RulesError("invoice.doc_number", f"is not a valid template: {exc}") from None
    for f in fields:
        if f not in DOC_NUMBER_FIELDS:
            raise RulesError("invoice.doc_number",
                             f"unknown placeholder {{{f}}} (use {_PLACEHOLDERS})")
    if not fields:
        raise RulesError("invoice.doc_number", "must contain {number}, {name} or {id} so each invoice differs")
    try:
        template.format(**_SAMPLE_ORDER)
    except (ValueError, IndexError, KeyError) as exc:
        raise RulesError("invoice.doc_number", f"is not a valid template: {exc}") from None
    prefix = section.get("prefix")
    if prefix is None:
        prefix = ""
    if not isinstance(prefix, str):
        raise RulesError("invoice.prefix", "must be text")
    if any(c in prefix for c in "\r\n\t"):
        raise RulesError("invoice.prefix", "must not contain line breaks or tabs")
    by_store = section.get("store_prefixes") or {}
    if not isinstance(by_store, dict):
        raise RulesError("invoice.store_prefixes", "must map a store (its URL without https://) to a prefix")
    store_prefixes: dict[str, str] = {}
    for store, value in by_store.items():
        where = f"invoice.store_prefixes.{store}"
        if not isinstance(store, str) or not store.strip() or not isinstance(value, str):
            raise RulesError("invoice.store_prefixes", "must map a store (its URL without https://) to a prefix")
        if any(c in value for c in "\r\n\t"):
            raise RulesError(where, "must not contain line breaks or tabs")
        store_prefixes[store_label(store.strip())] = value
    rules = InvoiceRules(doc_number=template, prefix=prefix, store_prefixes=store_prefixes)
    for field_name, candidate in (("invoice.prefix", prefix), *((f"invoice.store_prefixes.{k}", v)
                                                                for k, v in store_prefixes.items())):
        sample = candidate + template.format(**_SAMPLE_ORDER)
        if len(sample) > DOC_NUMBER_MAX:
            where = field_name if candidate else "invoice.doc_number"
            raise RulesError(where, f"cannot fit QuickBooks' {DOC_NUMBER_MAX}-character DocNumber: a 6-digit "
                                    f"order gives {shown(sample)} ({len(sample)} characters)")
    return rules


def _hubspot(section: dict) -> HubSpotRules:
    stage = section.get("lifecycle_stage", "customer")
    if stage is None or stage == "":
        stage = None
    elif not isinstance(stage, str) or not _STAGE_RE.match(stage):
        raise RulesError("hubspot.lifecycle_stage",
                         "must be a HubSpot lifecycle stage id such as customer (letters, digits, _)")
    properties = list_of(section, "hubspot", "properties", HUBSPOT_PROPERTIES, default=HUBSPOT_PROPERTIES)
    if "email" not in properties:
        raise RulesError("hubspot.properties", "must include email (contacts are matched by e-mail)")
    custom: dict[str, str | None] = {}
    for key, prop in mapping(section, "hubspot", "custom").items():
        if key not in HUBSPOT_CUSTOM:
            raise RulesError(f"hubspot.custom.{key}", f"unknown figure (known: {', '.join(HUBSPOT_CUSTOM)})")
        if prop is None or prop == "":
            custom[key] = None
            continue
        prop = hubspot_property(prop, f"hubspot.custom.{key}")
        if prop in HUBSPOT_PROPERTIES or prop == "lifecyclestage":
            raise RulesError(f"hubspot.custom.{key}", f"must not overwrite the standard property {prop}")
        if prop in custom.values():
            raise RulesError(f"hubspot.custom.{key}", f"writes {prop} already written by another figure")
        custom[key] = prop
    deals = section.get("deals", True)
    if not isinstance(deals, bool):
        raise RulesError("hubspot.deals", "must be true or false")
    pipeline = section.get("deal_pipeline", "default")
    if not isinstance(pipeline, str) or not _STAGE_RE.match(pipeline):
        raise RulesError("hubspot.deal_pipeline", "must be a HubSpot deal pipeline id such as default")
    stages = dict(DEFAULT_DEAL_STAGES)
    for key, stage_id in mapping(section, "hubspot", "deal_stages").items():
        if key not in DEFAULT_DEAL_STAGES:
            raise RulesError(f"hubspot.deal_stages.{key}",
                             f"unknown order state (known: {', '.join(DEFAULT_DEAL_STAGES)})")
        if not isinstance(stage_id, str | int) or not _STAGE_RE.match(str(stage_id)):
            raise RulesError(f"hubspot.deal_stages.{key}", "must be a HubSpot deal stage id")
        stages[key] = str(stage_id)
    return HubSpotRules(lifecycle_stage=stage, properties=properties, custom=custom, deals=deals,
                        deal_pipeline=pipeline, deal_stages=stages)
