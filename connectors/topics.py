"""Each platform's webhook topics, and the kind of sync run each one starts: pure data, read by the receiver
(``webhooks.py``), the webhook registration (``connectors.shopify_oauth``, ``hub.storefronts``) and the sync
code (``sync.compliance``), so that a topic is added in one place."""

from __future__ import annotations

# Shopify: the order topics the receiver syncs; a refund's or a fulfilment's body names its order
# (``order_id``): the order's run carries it
SHOPIFY_ORDER_REF_TOPICS = ("refunds/create", "fulfillments/create", "fulfillments/update")
SHOPIFY_ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/fulfilled",
                        "orders/partially_fulfilled", *SHOPIFY_ORDER_REF_TOPICS)
SHOPIFY_LIFECYCLE_TOPICS = ("app/uninstalled",)
# mandatory, not in WebhookSubscriptionTopic: Shopify takes them from the app's configuration
# (shopify.app.toml ``compliance_topics`` or the Partner Dashboard)
SHOPIFY_COMPLIANCE_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")
SHOPIFY_ERASURE_TOPICS = ("customers/redact", "shop/redact")
# what the hub subscribes to through the Admin API (GraphQL ``WebhookSubscriptionTopic`` names)
SHOPIFY_SUBSCRIBED = tuple(t.upper().replace("/", "_") for t in SHOPIFY_ORDER_TOPICS + SHOPIFY_LIFECYCLE_TOPICS)

# WooCommerce (wc/v3): ``order.updated`` also fires on refunds; a deleted event carries only ``{"id": …}``
WOOCOMMERCE_ORDER_TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored")

# QuickBooks: the changed entities that start a run (others are stored and acknowledged)
QUICKBOOKS_RUN_KINDS = {"Payment": "payment"}

# (platform, topic) → the kind of run a delivery opens; topics not here are stored and acknowledged
RUN_KINDS: dict[tuple[str, str], str] = {
    **{("shopify", t): "order" for t in SHOPIFY_ORDER_TOPICS},
    **{("woocommerce", t): "order" for t in WOOCOMMERCE_ORDER_TOPICS},
    **{("shopify", t): "privacy" for t in SHOPIFY_ERASURE_TOPICS},
}
