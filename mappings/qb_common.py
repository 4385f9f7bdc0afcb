"""Text helpers and field limits shared by the QuickBooks payload builders. Pure: no I/O."""

from __future__ import annotations

import re
from typing import Any

from mappings.model import Address, Order, store_label

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

_PLATFORM_LABELS = {"shopify": "Shopify", "woocommerce": "WooCommerce"}
_SPACES = re.compile(r"\s+")


def order_label(order: Order) -> str:
    """E.g. ``Shopify order #1001 (id 4501)``, or ``WooCommerce order #12 (id 12) at shop.example`` where
    the store numbers its own orders: how an accountant finds the order again."""
    platform = _PLATFORM_LABELS.get(order.platform, order.platform.capitalize())
    label = f"{platform} order {order.name} (id {order.source_id})"
    return f"{label} at {store_label(order.store)}" if order.store else label


def clean(value: str | None) -> str:
    """One line of text: control characters and runs of whitespace become single spaces."""
    if not value:
        return ""
    text = "".join(" " if (ord(c) < 32 or ord(c) == 127) else c for c in str(value))
    return _SPACES.sub(" ", text).strip()


def truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit].rstrip()


def put(target: dict[str, Any], key: str, value: str) -> None:
    if value:
        target[key] = value


def address(a: Address | None) -> dict[str, str] | None:
    if a is None:
        return None
    out: dict[str, str] = {}
    put(out, "Line1", truncate(clean(a.line1), ADDRESS_LINE_MAX))
    put(out, "Line2", truncate(clean(a.line2), ADDRESS_LINE_MAX))
    put(out, "City", truncate(clean(a.city), CITY_MAX))
    put(out, "CountrySubDivisionCode", truncate(clean(a.region), REGION_MAX))
    put(out, "PostalCode", truncate(clean(a.postal_code), POSTAL_CODE_MAX))
    put(out, "Country", truncate(clean(a.country), COUNTRY_MAX))
    return out or None
