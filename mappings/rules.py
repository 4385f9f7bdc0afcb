"""A merchant's mapping rules: defaults from ``config/default_rules.yaml`` plus per-merchant overrides.

``load_rules(overrides)`` merges the overrides onto the defaults (nested mappings merge, lists and
scalars replace), validates, and returns a frozen ``MappingRules``. Anything wrong raises
``RulesError`` whose message starts with the field path, e.g.
``items.when_missing: must be one of create, fallback, fail``.
"""

from __future__ import annotations

import copy
import re
import string
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

DOC_NUMBER_MAX = 21          # QuickBooks Invoice.DocNumber
ITEM_NAME_MAX = 100          # QuickBooks Item.Name
ACCOUNT_NAME_MAX = 100       # QuickBooks Account.Name

ITEM_MATCH_BY = ("sku", "name")
WHEN_MISSING = ("create", "fallback", "fail")
ITEM_TYPES = ("NonInventory", "Service")
DISCOUNT_MODES = ("line",)
TAX_MODES = ("total_tax", "line_tax_codes")
CUSTOMER_MATCH_BY = ("email", "display_name")
DOC_NUMBER_FIELDS = ("number", "name", "id")
_PLACEHOLDERS = ", ".join("{" + n + "}" for n in DOC_NUMBER_FIELDS)

# A realistic long order, used to check that prefix + doc number fits in 21 characters.
_SAMPLE_ORDER = {"number": "100000", "name": "#100000", "id": "5000000000000"}
_STAGE_RE = re.compile(r"^[A-Za-z0-9_]{1,100}$")


class RulesError(ValueError):
    """An invalid rule set. ``field`` is the dotted path of the offending setting."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class ItemRules:
    match_by: tuple[str, ...] = ("sku", "name")
    when_missing: str = "create"
    fallback_item: str | None = None
    income_account: str = "Sales of Product Income"
    type: str = "NonInventory"


@dataclass(frozen=True)
class ShippingRules:
    item: str = "Shipping"


@dataclass(frozen=True)
class DiscountRules:
    mode: str = "line"


@dataclass(frozen=True)
class TaxRules:
    mode: str = "total_tax"


@dataclass(frozen=True)
class InvoiceRules:
    doc_number: str = "{number}"
    prefix: str = ""

    def render_doc_number(self, *, number: str, name: str, id: str) -> str:
        """The DocNumber for an order (not length-checked; see ``mappings.quickbooks``)."""
        return self.prefix + self.doc_number.format(number=number, name=name, id=id)


@dataclass(frozen=True)
class CustomerRules:
    match_by: tuple[str, ...] = ("email", "display_name")


@dataclass(frozen=True)
class HubSpotRules:
    lifecycle_stage: str | None = "customer"


@dataclass(frozen=True)
class MappingRules:
    items: ItemRules = ItemRules()
    shipping: ShippingRules = ShippingRules()
    discounts: DiscountRules = DiscountRules()
    tax: TaxRules = TaxRules()
    invoice: InvoiceRules = InvoiceRules()
    customers: CustomerRules = CustomerRules()
    hubspot: HubSpotRules = HubSpotRules()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, not tuples) in the YAML's shape: for export and storage."""
        def plain(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            if isinstance(v, tuple | list):
                return [plain(x) for x in v]
            return v
        return plain(asdict(self))


_SECTIONS: dict[str, type] = {
    "items": ItemRules, "shipping": ShippingRules, "discounts": DiscountRules, "tax": TaxRules,
    "invoice": InvoiceRules, "customers": CustomerRules, "hubspot": HubSpotRules,
}


@lru_cache(maxsize=1)
def _defaults_text() -> str:
    return (resources.files("config") / "default_rules.yaml").read_text(encoding="utf-8")


def default_rules_dict() -> dict[str, Any]:
    """The packaged defaults as plain data (a fresh copy)."""
    data = yaml.safe_load(_defaults_text())
    if not isinstance(data, dict):
        raise RulesError("(defaults)", "default_rules.yaml must be a mapping")
    return data


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
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        section = data.get(name)
        if section is None:
            section = {}
        if not isinstance(section, dict):
            raise RulesError(name, "must be a mapping")
        known = set(cls.__dataclass_fields__)
        for key in section:
            if key not in known:
                raise RulesError(f"{name}.{key}", f"unknown setting (known: {', '.join(sorted(known))})")
        sections[name] = section
    return MappingRules(
        items=_items(sections["items"]),
        shipping=ShippingRules(item=_name(sections["shipping"], "shipping", "item", ITEM_NAME_MAX,
                                          default="Shipping")),
        discounts=DiscountRules(mode=_choice(sections["discounts"], "discounts", "mode", DISCOUNT_MODES,
                                             default="line")),
        tax=TaxRules(mode=_choice(sections["tax"], "tax", "mode", TAX_MODES, default="total_tax")),
        invoice=_invoice(sections["invoice"]),
        customers=CustomerRules(match_by=_list_of(sections["customers"], "customers", "match_by",
                                                  CUSTOMER_MATCH_BY, default=("email", "display_name"))),
        hubspot=_hubspot(sections["hubspot"]),
    )


# --- validation helpers ------------------------------------------------------------------------

def _merge(base: dict[str, Any], over: dict[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if not isinstance(key, str):
            raise RulesError(f"{path}{key!r}", "setting names must be strings")
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, f"{path}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _choice(section: dict, sec: str, key: str, allowed: tuple[str, ...], *, default: str) -> str:
    value = section.get(key, default)
    if not isinstance(value, str) or value not in allowed:
        raise RulesError(f"{sec}.{key}", f"must be one of {', '.join(allowed)} (got {value!r})")
    return value


def _list_of(section: dict, sec: str, key: str, allowed: tuple[str, ...], *,
             default: tuple[str, ...]) -> tuple[str, ...]:
    value = section.get(key, list(default))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise RulesError(f"{sec}.{key}", f"must be a non-empty list of {', '.join(allowed)}")
    for v in value:
        if v not in allowed:
            raise RulesError(f"{sec}.{key}", f"{v!r} is not one of {', '.join(allowed)}")
    if len(set(value)) != len(value):
        raise RulesError(f"{sec}.{key}", "must not repeat an entry")
    return tuple(value)


def _name(section: dict, sec: str, key: str, max_len: int, *, default: str | None,
          optional: bool = False) -> str | None:
    value = section.get(key, default)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise RulesError(f"{sec}.{key}", "must be a non-empty name")
    value = value.strip()
    if len(value) > max_len:
        raise RulesError(f"{sec}.{key}", f"must be at most {max_len} characters (got {len(value)})")
    if ":" in value:
        raise RulesError(f"{sec}.{key}", "must not contain ':' (QuickBooks uses it for sub-items)")
    return value


def _items(section: dict) -> ItemRules:
    match_by = _list_of(section, "items", "match_by", ITEM_MATCH_BY, default=("sku", "name"))
    when_missing = _choice(section, "items", "when_missing", WHEN_MISSING, default="create")
    fallback = _name(section, "items", "fallback_item", ITEM_NAME_MAX, default=None, optional=True)
    if when_missing == "fallback" and not fallback:
        raise RulesError("items.fallback_item", "is required when items.when_missing is fallback")
    income = section.get("income_account", "Sales of Product Income")
    if not isinstance(income, str) or not income.strip():
        raise RulesError("items.income_account", "must be the name of a QuickBooks income account")
    if len(income.strip()) > ACCOUNT_NAME_MAX:
        raise RulesError("items.income_account", f"must be at most {ACCOUNT_NAME_MAX} characters")
    item_type = _choice(section, "items", "type", ITEM_TYPES, default="NonInventory")
    return ItemRules(match_by=match_by, when_missing=when_missing, fallback_item=fallback,
                     income_account=income.strip(), type=item_type)


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
    rules = InvoiceRules(doc_number=template, prefix=prefix)
    sample = rules.render_doc_number(**_SAMPLE_ORDER)
    if len(sample) > DOC_NUMBER_MAX:
        field = "invoice.prefix" if prefix else "invoice.doc_number"
        raise RulesError(field, f"cannot fit QuickBooks' {DOC_NUMBER_MAX}-character DocNumber: a 6-digit "
                                f"order gives {sample!r} ({len(sample)} characters)")
    return rules


def _hubspot(section: dict) -> HubSpotRules:
    stage = section.get("lifecycle_stage", "customer")
    if stage is None or stage == "":
        return HubSpotRules(lifecycle_stage=None)
    if not isinstance(stage, str) or not _STAGE_RE.match(stage):
        raise RulesError("hubspot.lifecycle_stage",
                         "must be a HubSpot lifecycle stage id such as customer (letters, digits, _)")
    return HubSpotRules(lifecycle_stage=stage)
