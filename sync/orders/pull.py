"""The pull step: the orders of the entries fresh from their stores: Shopify ``BY_ID_MAX`` orders per GraphQL call
(``connectors.shopify_bulk_queries``), WooCommerce one call per order. An order the small pages cut short
is fetched again on its own; an order the store no longer has is ``None`` (the pipeline decides). A query
Shopify refuses for one order's sake fails that order alone (``sync.narrowing.settle``); a query Shopify
throttles waits for the shop's cost bucket (``Patient``) rather than fail its orders. An order deleted from
the store ends here: skipped when it was never invoiced, failed (for a person to decide) when it was."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from connectors.errors import Permanent, Retryable
from connectors.shopify import order_gid
from connectors.shopify_bulk_queries import BY_ID_MAX, orders_by_id_query, truncated
from hub.models import SyncRun
from mappings.model import Order
from mappings.shopify import order_from_graphql
from mappings.woocommerce import order_from_rest
from sync.jobs import Outcome
from sync.narrowing import named_variables, settle

if TYPE_CHECKING:
    from sync.accounts import Accounts
    from sync.orders.context import Entry, OrderContext

THROTTLE_WAIT_MAX = 60.0   # seconds one pass may wait in all for a shop's cost bucket to refill


def pull(ctx: OrderContext) -> None:
    """Every entry's order (given by its loader, else pulled); deleted ones settled, the others kept on
    their runs."""
    _fetch(ctx)
    pulled: list[Entry] = []
    for e in ctx.entries:
        if e.error is not None or e.outcome is not None:
            continue
        if e.order is None:
            ctx.each([e], lambda e: _deleted(ctx, e))
        else:
            pulled.append(e)
    if pulled:
        ctx.save_canonical(pulled)


def _deleted(ctx: OrderContext, e: Entry) -> None:
    run = e.run
    invoiced = ctx.ledger.find(ctx.ledger.order_source(run.source_platform, run.source_id, run.connection_id),
                               "quickbooks", "invoice")
    if invoiced is None:
        if _seen_before(ctx, run):
            raise Outcome("skipped", f"order {run.source_name or run.source_id} was deleted from the store "
                                     "before it was invoiced")
        raise Outcome("skipped", f"the store has no order {run.source_name or run.source_id}: it never read as an "
                                 "order of this store (a test delivery, or deleted before the hub could read it), "
                                 "so there is nothing to invoice")
    raise Permanent(f"order {run.source_name or run.source_id} was deleted from the store after it was "
                    f"invoiced (QuickBooks invoice {invoiced.target_id}): void or keep the invoice by hand",
                    platform=run.source_platform, code="deleted")


def _seen_before(ctx: OrderContext, run: SyncRun) -> bool:
    """Whether the hub ever read this order from its store (an earlier run kept the order it pulled)."""
    with ctx.hub.sessions() as s:
        return s.scalar(select(SyncRun.id).where(SyncRun.merchant_id == run.merchant_id,
                                                 SyncRun.source_platform == run.source_platform,
                                                 SyncRun.source_id == run.source_id, SyncRun.id != run.id,
                                                 SyncRun.canonical.is_not(None)).limit(1)) is not None


def pull_order(accounts: Accounts, run: SyncRun) -> Order | None:
    """One order as the store has it now (mapped), or None when the store no longer has it."""
    if run.source_platform == "woocommerce":
        client = accounts.woocommerce(run.connection_id)
        data = client.fetch_order(run.source_id)
        if data is None:
            return None
        # a completed order left: the Shipment Tracking extension, when the store has it, says how
        trackings = client.shipment_trackings(run.source_id) if data.get("status") == "completed" else None
        return order_from_rest(data, trackings)
    if run.source_platform != "shopify":
        raise Permanent(f"orders from {run.source_platform} are not supported")
    shop = None
    if run.connection_id:
        conn, _ = accounts.secrets_of(run.connection_id)
        shop = conn.account
    fetched = accounts.shopify(shop).fetch_order(run.source_id)
    if fetched is None:
        return None
    node, extra_lines = fetched
    return order_from_graphql(node, extra_lines)


def _fetch(ctx: OrderContext) -> None:
    ctx.begin(ctx.entries, "pull")
    shopify: dict[int | None, list[Entry]] = defaultdict(list)
    for e in ctx.entries:
        if e.error is not None or e.outcome is not None:
            continue
        if e.load is not None:
            ctx.each([e], lambda e: setattr(e, "order", e.load()))
        elif e.run.source_platform == "shopify":
            shopify[e.run.connection_id].append(e)
        else:
            ctx.each([e], lambda e: setattr(e, "order", pull_order(ctx.accounts, e.run)))
    for e in ctx.entries:   # where the store numbers its own orders, the order carries its store
        if e.order is not None and not e.order.store:
            e.order.store = ctx.ledger.store_of(e.order.platform, e.run.connection_id)
    for connection_id, group in shopify.items():
        try:
            shop = ctx.accounts.secrets_of(connection_id)[0].account if connection_id else None
            client = Patient(ctx.accounts.shopify(shop), THROTTLE_WAIT_MAX)
        except Exception as exc:  # noqa: BLE001 - no usable connection: these orders wait or fail
            ctx.fail_all(group, exc)
            continue
        for start in range(0, len(group), BY_ID_MAX):
            _pull_shopify(ctx, client, group[start:start + BY_ID_MAX])


def _pull_shopify(ctx: OrderContext, client: Any, chunk: list[Entry]) -> None:
    """One query for the orders of ``chunk``; a query refused for good for one order's sake (an id Shopify
    calls invalid, say) is narrowed to that order, and the others are pulled in this pass."""
    def call(part: list[Entry]) -> dict[str, Any]:
        return client.graphql(orders_by_id_query(len(part)),
                              {f"id{i}": order_gid(e.run.source_id) for i, e in enumerate(part)})

    for part, answer in settle(chunk, call, suspects=named_variables("id")):
        if isinstance(answer, Exception):
            ctx.fail_all(part, _own_error(part[0], answer) if len(part) == 1 else answer)
            continue
        for i, e in enumerate(part):
            node = answer.get(f"o{i}")

            def load(e: Entry, node: dict[str, Any] | None = node) -> None:
                if node is None:
                    e.order = None
                elif truncated(node):
                    fetched = client.fetch_order(e.run.source_id)
                    e.order = None if fetched is None else order_from_graphql(*fetched)
                else:
                    e.order = order_from_graphql(node)
            ctx.each([e], load)


class Patient:
    """A Shopify client whose reads wait for the cost bucket when Shopify answers ``THROTTLED`` (it says how
    long to wait), up to ``budget`` seconds in all, instead of failing the orders they are for: a burst is
    pulled at the pace the shop's bucket allows, in one pass."""

    def __init__(self, client: Any, budget: float) -> None:
        self._client = client
        self.left = budget

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._waiting(self._client.graphql, query, variables)

    def fetch_order(self, order_id: str) -> Any:
        return self._waiting(self._client.fetch_order, order_id)

    def _waiting(self, fn: Callable[..., Any], *args: Any) -> Any:
        while True:
            try:
                return fn(*args)
            except Retryable as exc:
                wait = max(0.1, exc.retry_after or 1.0)
                if exc.code != "THROTTLED" or wait > self.left:
                    raise
                self.left -= wait
                time.sleep(wait)


def _own_error(e: Entry, exc: Exception) -> Exception:
    """A permanent refusal of the query for this order alone, worded to name the order."""
    if not isinstance(exc, Permanent):
        return exc
    own = Permanent(f"Shopify refused to return order {e.run.source_id}: {exc.message}", platform=exc.platform,
                    code=exc.code, detail=exc.detail, status=exc.status, excerpt=exc.excerpt)
    own.__cause__ = exc
    return own
