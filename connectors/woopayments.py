"""WooPayments deposits and their transactions through the store's REST API (``wc/v3/payments/…``).

Shapes as the WooPayments plugin relays them from its server ⚠ (PLATFORMS.md "Added 2026-12"; field names from
the plugin's client code): lists are ``{"data": [...], "total_count": N}``, amounts integers in cents, deposit
``date`` in milliseconds since the epoch. ``amount`` below turns cents into a Decimal."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

PAGE_SIZE = 100


def amount(cents: Any) -> Decimal:
    """Integer cents (``1999``) as a Decimal (``19.99``); anything else is 0."""
    try:
        return (Decimal(int(cents)) / 100).quantize(Decimal("0.01"))
    except (TypeError, ValueError):
        return Decimal("0.00")


def deposits(client: Any) -> Iterator[dict[str, Any]]:
    yield from _pages(client, "deposits", {})


def deposit_transactions(client: Any, deposit_id: str) -> list[dict[str, Any]]:
    return list(_pages(client, "transactions", {"deposit_id": deposit_id}))


def _pages(client: Any, resource: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    page = 1
    while True:
        body = client.payments_page(resource, {**params, "page": page, "pagesize": PAGE_SIZE})
        rows = body.get("data") if isinstance(body, dict) else None
        rows = rows if isinstance(rows, list) else []
        yield from (r for r in rows if isinstance(r, dict))
        total = body.get("total_count") if isinstance(body, dict) else None
        if not rows or not isinstance(total, int) or page * PAGE_SIZE >= total:
            return
        page += 1
