"""Shopify bulk query operations: every order of a period in a handful of calls (for backfills).

``bulkOperationRunQuery`` starts the operation (10 points, like any mutation); ``node(id:)`` is polled, with
growing pauses, until it is ``COMPLETED`` (``currentBulkOperation`` tells whose operation is in progress);
then the JSONL file at its ``url`` is downloaded (from Shopify's storage, not the Admin API: no token, no
cost) into a temporary file. API versions before 2026-01
run one bulk query operation at a time per shop: when one is in progress already, the hub's own (the same
query, e.g. left by an interrupted backfill) is taken over, anyone else's waited for.

The file (shopify.dev, "Perform bulk operations with the GraphQL Admin API"; Shopify/shopify-api-ruby issue
729): one JSON object per line, each order, and each node of its nested connections on a line of its own
with ``__parentId`` (the order's id; ⚠ for a connection under an object with an id, such as
``paymentTerms``, that object's id is accepted too) somewhere *after* its parent. So the file is read
backwards: when an order's line is reached, all of its children have been seen, and it is given out whole
(``orders_from_jsonl``) with little held in memory, newest order first.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from connectors.errors import Permanent, Retryable
from connectors.shopify_bulk_queries import BULK_CHILDREN

PLATFORM = "shopify"
POLL_FIRST = 0.5          # seconds before the first poll; each pause then grows by half, up to POLL_MAX
POLL_MAX = 10.0
WAIT_MAX = 3 * 3600.0     # a bulk operation still running after this long is given up (Shopify allows days)
BLOCK = 1 << 16

BULK_RUN = """
mutation HubBulkOrders($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

BULK_CURRENT = """
query HubBulkCurrent {
  currentBulkOperation(type: QUERY) { id status errorCode objectCount rootObjectCount url query }
}
"""

BULK_OPERATION = """
query HubBulkOperation($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount rootObjectCount url query } }
}
"""

DOCUMENTS = {"BULK_RUN": BULK_RUN, "BULK_CURRENT": BULK_CURRENT, "BULK_OPERATION": BULK_OPERATION}

GraphQLCall = Callable[[str, dict[str, Any]], dict[str, Any]]


def run_bulk_query(call: GraphQLCall, query: str, *, sleep: Callable[[float], object] = time.sleep,
                   wait_max: float = WAIT_MAX) -> dict[str, Any]:
    """Run ``query`` as a bulk operation and wait for it; returns the finished operation (``url`` is None
    when nothing matched). Raises ``Permanent`` for a refused query or an operation that failed for good,
    ``Retryable`` for one that failed for a passing reason or ran too long."""
    waited = 0.0
    pause = POLL_FIRST
    op_id = None
    while op_id is None:
        result = call(BULK_RUN, {"query": query}).get("bulkOperationRunQuery") or {}
        errors = [e for e in result.get("userErrors") or [] if isinstance(e, dict)]
        if not errors:
            op_id = (result.get("bulkOperation") or {}).get("id")
            if not op_id:
                raise Retryable("Shopify did not start the bulk operation", platform=PLATFORM)
            break
        if not any(e.get("code") == "OPERATION_IN_PROGRESS" for e in errors):
            text = "; ".join(str(e.get("message")) for e in errors)
            raise Permanent(f"Shopify refused the bulk query: {text}", platform=PLATFORM, code="bulk_invalid")
        current = _current(call)
        if current.get("query") == query:   # ours, left by an interrupted run: take it over
            op_id = current.get("id")
            break
        while current.get("status") in ("CREATED", "RUNNING", "CANCELING"):  # someone else's: wait for it
            waited = _pause(sleep, pause, waited, wait_max)
            pause = min(POLL_MAX, pause * 1.5)
            current = _current(call)
    while True:   # by its id: whatever bulk operation someone starts meanwhile, this one is followed
        waited = _pause(sleep, pause, waited, wait_max)
        pause = min(POLL_MAX, pause * 1.5)
        current = call(BULK_OPERATION, {"id": op_id}).get("node") or {}
        if current.get("id") != op_id:
            raise Retryable("Shopify no longer knows the hub's bulk operation", platform=PLATFORM)
        status = current.get("status")
        if status == "COMPLETED":
            return current
        if status in ("FAILED", "CANCELED", "EXPIRED"):
            code = current.get("errorCode")
            kind = Permanent if code == "ACCESS_DENIED" else Retryable
            raise kind(f"Shopify's bulk operation ended {status.lower()}" + (f" ({code})" if code else ""),
                       platform=PLATFORM, code=code or status)


def _current(call: GraphQLCall) -> dict[str, Any]:
    return call(BULK_CURRENT, {}).get("currentBulkOperation") or {}


def _pause(sleep: Callable[[float], object], pause: float, waited: float, wait_max: float) -> float:
    if waited + pause > wait_max:
        raise Retryable(f"Shopify's bulk operation did not finish within {wait_max / 60:.0f} minutes",
                        platform=PLATFORM, code="bulk_timeout", retry_after=60.0)
    sleep(pause)
    return waited + pause


def download(url: str, *, allowed_prefix: str | None = None, timeout: float = 60.0) -> str:
    """The file at ``url`` in a temporary file (its path; the caller removes it). Only HTTPS, or a URL under
    ``allowed_prefix`` (the configured API URL of a local test platform)."""
    if not (url.startswith("https://") or (allowed_prefix and url.startswith(allowed_prefix.rstrip("/") + "/"))):
        raise Permanent("Shopify gave a bulk operation result URL the hub does not fetch", platform=PLATFORM,
                        code="bulk_url")
    fd, path = tempfile.mkstemp(prefix="o2c-bulk-", suffix=".jsonl")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            while chunk := response.read(BLOCK):
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        os.unlink(path)
        kind = Retryable if exc.code >= 500 or exc.code == 429 else Permanent
        raise kind(f"the bulk operation's file answered HTTP {exc.code}", platform=PLATFORM,
                   status=exc.code) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        os.unlink(path)
        raise Retryable("cannot download the bulk operation's file", platform=PLATFORM) from exc
    return path


def orders_from_jsonl(path: str) -> Iterator[dict[str, Any]]:
    """Each order of a file of ``bulk_orders_query``, whole (``lineItems``, ``shippingLines`` and
    ``paymentTerms.paymentSchedules`` as ``{"nodes": [...]}``), newest first."""
    pending: dict[str, list[dict[str, Any]]] = {}
    for raw in _lines_backwards(path):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise Retryable("the bulk operation's file has a line that is not JSON", platform=PLATFORM) from exc
        parent = obj.pop("__parentId", None)
        if parent is not None:
            pending.setdefault(str(parent), []).append(obj)
            continue
        yield _assemble(obj, pending)


def _assemble(order: dict[str, Any], pending: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    terms = order.get("paymentTerms") if isinstance(order.get("paymentTerms"), dict) else None
    children = pending.pop(str(order.get("id")), [])
    if terms is not None:
        children += pending.pop(str(terms.get("id")), [])
        terms["paymentSchedules"] = {"nodes": []}
    order["lineItems"] = {"nodes": []}
    order["shippingLines"] = {"nodes": []}
    for child in reversed(children):   # read backwards: put them back in the file's order
        kind = str(child.get("id") or "").split("/")[-2:-1]
        path = BULK_CHILDREN.get(kind[0] if kind else "")
        if path is None:
            raise Permanent(f"the bulk operation's file has a line of an unexpected kind ({child.get('id')})",
                            platform=PLATFORM, code="bulk_shape")
        holder: Any = order
        for key in path[:-1]:
            holder = holder.get(key)
        if isinstance(holder, dict):
            holder[path[-1]]["nodes"].append(child)
    return order


def _lines_backwards(path: str) -> Iterator[str]:
    """The lines of a file, last first, reading blocks from its end."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        rest = b""
        while end > 0:
            start = max(0, end - BLOCK)
            fh.seek(start)
            block = fh.read(end - start) + rest
            end = start
            lines = block.split(b"\n")
            rest = lines.pop(0)  # maybe cut: completed by the next block read
            for line in reversed(lines):
                yield line.decode("utf-8")
        if rest:
            yield rest.decode("utf-8")
