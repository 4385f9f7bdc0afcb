"""The backfill figures of issue 18 (item 2), side by side in one run: orders backfilled with Shopify pages of
whole orders (what the hub did before bulk operations, and still does for small periods) and with one bulk
operation (what it does for history), each on fresh simulated platforms. The paged run is smaller
(``--paged-orders``, 200): on a Standard shop's cost bucket a page of 6 whole orders waits ~10 s for its
1,000 points, so 2,000 orders take half an hour that way.

``rows(...)`` gives the rows for ``benchmarks.run``'s table (``python -m benchmarks --only backfill``):
calls per order (target ≤ 0.1), 429s from QuickBooks and HubSpot (target 0), throughput against what
QuickBooks' limits allow (40 batch requests a minute × 30 creates, over the creates each order needs; ≥ 90 %).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import harness

Row = tuple[str, str, str]


def rows(sims: harness.Sims, folder: Path, *, orders: int, customers: int, skus: int, paged_orders: int,
         reset: Callable[[], None]) -> list[Row]:
    """Backfill ``paged_orders`` orders with the paged listing (customers in proportion), then ``orders`` with a
    bulk operation, the platforms reset before each."""
    measured: dict[str, dict[str, Any]] = {}
    for listing, count in (("paged", paged_orders), ("bulk", orders)):
        reset()
        measured[listing] = harness.backfill(sims, folder / f"backfill-{listing}", orders=count,
                                             customers=max(1, customers * count // max(1, orders)), skus=skus,
                                             listing=listing)
    paged, bulk = measured["paged"], measured["bulk"]
    return [
        ("API calls per order (backfill, Shopify bulk operation)", _calls(bulk),
         f"{bulk['synced']}/{bulk['orders']} orders synced ({bulk['failed']} failed), {customers} customers, "
         f"{skus} SKUs; paged listing ({paged['orders']} orders): {_calls(paged)}; <= 0.1"),
        ("429s during the backfill (QuickBooks, HubSpot)", _throttled(bulk),
         f"paged listing: {_throttled(paged)}; 0 (the hub's limiter keeps under the published limits)"),
        ("backfill throughput vs QuickBooks ceiling", _throughput(bulk),
         f"ceiling = 40 batches/min x 30 ops / {bulk['ops_per_order']:.2f} creates per order; {bulk['batches']} "
         f"batch requests ({bulk['ops_per_batch']:.1f} creates each) in {bulk['seconds']:.0f} s (the process, "
         f"simulators included, on a CPU {bulk['cpu_seconds']:.0f} s of them); paged listing: {_throughput(paged)}; "
         ">= 90%"),
    ]


def _calls(r: dict[str, Any]) -> str:
    per = r["per_order"]
    return (f"{sum(per.values()):.3f} (Shopify {per['shopify']:.3f}, QuickBooks {per['quickbooks']:.3f}, "
            f"HubSpot {per['hubspot']:.3f})")


def _throttled(r: dict[str, Any]) -> str:
    return f"QuickBooks {r['throttled']['quickbooks']}, HubSpot {r['throttled']['hubspot']}"


def _throughput(r: dict[str, Any]) -> str:
    return f"{r['percent']:.0f}% ({r['rate']:.2f} orders/s of {r['ceiling']:.2f})"
