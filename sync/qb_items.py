"""The QuickBooks items a merchant can map SKUs to, for the console's item picker: read from the
merchant's company (``Item`` query, 1,000 a page, at most 5 pages) and kept a minute per merchant in this
process, so opening the rules page again costs no call."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.errors import ConnectorError
from sync.accounts import Accounts

if TYPE_CHECKING:
    from hub.runtime import Hub

TTL = 60.0
PAGE = 1000
MAX_PAGES = 5

_cache: dict[tuple[int, int], tuple[float, list[str]]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class ItemChoices:
    names: list[str]
    problem: str | None = None    # why there are none: no QuickBooks connection, or the call failed


def item_choices(hub: Hub, merchant_id: int) -> ItemChoices:
    """The names of the company's active items (sorted), or why they could not be read."""
    key = (id(hub), merchant_id)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return ItemChoices(hit[1])
    accounts = Accounts(hub, merchant_id)
    if accounts.connection("quickbooks") is None:
        return ItemChoices([], "The merchant has not connected QuickBooks yet, so its items cannot be listed.")
    try:
        qb = accounts.quickbooks()
        names: list[str] = []
        for page in range(MAX_PAGES):
            rows = qb.query(f"SELECT * FROM Item STARTPOSITION {page * PAGE + 1} MAXRESULTS {PAGE}")
            names.extend(str(r["Name"]) for r in rows if r.get("Name"))
            if len(rows) < PAGE:
                break
    except ConnectorError as exc:
        return ItemChoices([], f"QuickBooks items could not be read: {exc}")
    names = sorted(set(names), key=str.casefold)
    with _lock:
        _cache[key] = (time.monotonic() + TTL, names)
    return ItemChoices(names)


def forget(hub: Hub, merchant_id: int) -> None:
    """Drop the cached items (after the hub created one, or in tests)."""
    with _lock:
        _cache.pop((id(hub), merchant_id), None)
