"""Pulling the orders of a batch fresh from their stores: Shopify ``BY_ID_MAX`` orders per GraphQL call
(``connectors.shopify_bulk_queries``), WooCommerce one call per order. An order the small pages cut short
is fetched again on its own; an order the store no longer has is ``None`` (the pipeline decides)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from connectors.shopify import order_gid
from connectors.shopify_bulk_queries import BY_ID_MAX, orders_by_id_query, truncated
from mappings.shopify import order_from_graphql
from sync.orders import pull_order

if TYPE_CHECKING:
    from sync.batch import Entry
    from sync.batch_context import BatchContext


def pull(ctx: BatchContext) -> None:
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
    for connection_id, group in shopify.items():
        try:
            shop = ctx.accounts.secrets_of(connection_id)[0].account if connection_id else None
            client = ctx.accounts.shopify(shop)
        except Exception as exc:  # noqa: BLE001 - no usable connection: these orders wait or fail
            for e in group:
                e.fail(exc)
            continue
        for start in range(0, len(group), BY_ID_MAX):
            _pull_shopify(ctx, client, group[start:start + BY_ID_MAX])


def _pull_shopify(ctx: BatchContext, client: Any, chunk: list[Entry]) -> None:
    try:
        data = client.graphql(orders_by_id_query(len(chunk)),
                              {f"id{i}": order_gid(e.run.source_id) for i, e in enumerate(chunk)})
    except Exception as exc:  # noqa: BLE001 - the call failed: every order in it retries
        for e in chunk:
            e.fail(exc)
        return
    for i, e in enumerate(chunk):
        node = data.get(f"o{i}")

        def load(e: Entry, node: dict[str, Any] | None = node) -> None:
            if node is None:
                e.order = None
            elif truncated(node):
                fetched = client.fetch_order(e.run.source_id)
                e.order = None if fetched is None else order_from_graphql(*fetched)
            else:
                e.order = order_from_graphql(node)
        ctx.each([e], load)
