"""Validation of single rule settings: each helper returns the clean value or raises ``RulesError``
naming the dotted field (``items.when_missing``) and the reason. Used by ``mappings.rules``."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from mappings.inputs import shown

ITEM_NAME_MAX = 100          # QuickBooks Item.Name
ACCOUNT_NAME_MAX = 100       # QuickBooks Account.Name
TAX_CODE_NAME_MAX = 100      # QuickBooks TaxCode.Name
_PROPERTY_RE = re.compile(r"^[a-z][a-z0-9_]{0,99}$")   # a HubSpot property's internal name
_GATEWAY_RE = re.compile(r"[^a-z0-9]+")


class RulesError(ValueError):
    """An invalid rule set. ``field`` is the dotted path of the offending setting."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def choice(section: dict, sec: str, key: str, allowed: tuple[str, ...], *, default: str) -> str:
    value = section.get(key, default)
    if not isinstance(value, str) or value not in allowed:
        raise RulesError(f"{sec}.{key}", f"must be one of {', '.join(allowed)} (got {shown(value)})")
    return value


def list_of(section: dict, sec: str, key: str, allowed: tuple[str, ...], *,
            default: tuple[str, ...]) -> tuple[str, ...]:
    value = section.get(key, list(default))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise RulesError(f"{sec}.{key}", f"must be a non-empty list of {', '.join(allowed)}")
    for v in value:
        if v not in allowed:
            raise RulesError(f"{sec}.{key}", f"{shown(v)} is not one of {', '.join(allowed)}")
    if len(set(value)) != len(value):
        raise RulesError(f"{sec}.{key}", "must not repeat an entry")
    return tuple(value)


def qb_name(value: Any, field: str, max_len: int, *, optional: bool = False, what: str = "name") -> str | None:
    """A QuickBooks list name (item, account, tax code): one line, not empty, no ':' (the sub-item
    separator), at most ``max_len`` characters."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise RulesError(field, f"must be a non-empty {what}")
    value = value.strip()
    if len(value) > max_len:
        raise RulesError(field, f"must be at most {max_len} characters (got {len(value)})")
    if ":" in value:
        raise RulesError(field, "must not contain ':' (QuickBooks uses it for sub-items)")
    if any(ord(c) < 32 for c in value):
        raise RulesError(field, "must not contain line breaks or tabs")
    return value


def name(section: dict, sec: str, key: str, max_len: int, *, default: str | None,
         optional: bool = False) -> str | None:
    return qb_name(section.get(key, default), f"{sec}.{key}", max_len, optional=optional)


def mapping(section: dict, sec: str, key: str) -> dict[Any, Any]:
    value = section.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RulesError(f"{sec}.{key}", "must be a mapping (key: value), or empty")
    return value


def rate_key(value: Any) -> str | None:
    """A tax rate in percent as the canonical text key (``"20"``, ``"7.5"``, ``"6.25"``), or None when
    ``value`` is not a number (then it is a tax line title)."""
    if isinstance(value, bool):
        return None
    text = str(value).strip()
    if text.endswith("%"):
        text = text[:-1].strip()
    try:
        rate = Decimal(text)
    except InvalidOperation:
        return None
    if not rate.is_finite() or rate < 0 or rate > 100:
        return None
    return percent_text(rate)


def percent_text(percent: Decimal) -> str:
    """``Decimal("20.00")`` → ``"20"``, ``Decimal("7.50")`` → ``"7.5"`` (never an exponent)."""
    text = format(percent.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def gateway_key(gateway: str | None) -> str:
    """A payment gateway as a rule key: ``"Cash on Delivery (COD)"`` → ``"cash_on_delivery_cod"``."""
    return _GATEWAY_RE.sub("_", (gateway or "").strip().lower()).strip("_")


def hubspot_property(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _PROPERTY_RE.match(value):
        raise RulesError(field, "must be a HubSpot property's internal name (lower-case letters, digits and _, "
                                "starting with a letter), e.g. o2c_total_spent")
    return value
