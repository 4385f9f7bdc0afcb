"""Connecting and disconnecting WooCommerce stores: check the keys, save the connection, register the
hub's order webhooks with the connection's secret, and undo all of it when any step fails."""

from __future__ import annotations

import logging
import secrets as pysecrets
from typing import TYPE_CHECKING

from sqlalchemy import select

from connectors.errors import ConnectorError
from connectors.woocommerce import ORDER_TOPICS, WooCommerceClient, normalise_store_url
from hub.merchants import NotFound, connect, find_merchant
from hub.models import Connection, utcnow

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.storefronts")
WEBHOOK_NAME = "O2C Hub"


class ConnectError(RuntimeError):
    """Connecting failed; the message names the cause. Nothing was saved."""


def woocommerce_delivery_url(hub: Hub, connection_id: int) -> str:
    return f"{hub.settings.public_url}/webhooks/woocommerce/{connection_id}"


def connect_woocommerce(hub: Hub, merchant_ref: str, *, url: str, consumer_key: str, consumer_secret: str,
                        webhook_secret: str | None = None, register_webhooks: bool = True) -> Connection:
    """Connect (or reconnect) a WooCommerce store for a merchant; returns the saved connection."""
    try:
        url = normalise_store_url(url)
    except ValueError as exc:
        raise ConnectError(str(exc)) from exc
    consumer_key, consumer_secret = consumer_key.strip(), consumer_secret.strip()
    if not consumer_key or not consumer_secret:
        raise ConnectError("the consumer key and secret must not be empty")
    webhook_secret = (webhook_secret or "").strip() or pysecrets.token_urlsafe(32)
    client = WooCommerceClient(url, consumer_key, consumer_secret, timeout=hub.settings.http_timeout)
    try:
        client.check_access()
    except ConnectorError as exc:
        raise ConnectError(f"cannot use the store's API with these keys: {exc}") from exc

    with hub.session() as s:
        try:
            merchant = find_merchant(s, merchant_ref)
            existing = s.scalar(select(Connection).where(Connection.platform == "woocommerce",
                                                         Connection.account == url))
            previous = None if existing is None else (existing.secrets, dict(existing.settings or {}),
                                                      existing.status)
            conn = connect(s, hub.secrets, merchant, "woocommerce", url,
                           {"consumer_key": consumer_key, "consumer_secret": consumer_secret,
                            "webhook_secret": webhook_secret}, {"url": url})
        except (NotFound, ValueError) as exc:
            raise ConnectError(str(exc)) from exc
        s.commit()  # the store pings the delivery URL while we register: the connection must exist
        conn_id = conn.id
    if not register_webhooks:
        return _load(hub, conn_id)
    delivery_url = woocommerce_delivery_url(hub, conn_id)
    created: list[int] = []
    try:
        for hook in client.webhooks():  # a previous connect's webhooks: replaced, since the secret changes
            if (hook.get("delivery_url") or "").rstrip("/") == delivery_url:
                client.delete_webhook(int(hook["id"]))
        for topic in ORDER_TOPICS:
            hook = client.create_webhook(topic=topic, delivery_url=delivery_url, secret=webhook_secret,
                                         name=f"{WEBHOOK_NAME} {topic}")
            created.append(int(hook["id"]))
    except (ConnectorError, KeyError, TypeError, ValueError) as exc:
        for hook_id in created:
            try:
                client.delete_webhook(hook_id)
            except ConnectorError:
                log.warning("could not remove webhook %s from %s after a failed connect", hook_id, url)
        _undo(hub, conn_id, previous)
        raise ConnectError(f"cannot register the order webhooks at {url} (delivery to {delivery_url}): {exc}") \
            from exc
    with hub.session() as s:
        row = s.get(Connection, conn_id)
        assert row is not None
        row.settings = {**(row.settings or {}), "webhook_ids": created, "delivery_url": delivery_url}
        s.commit()
    return _load(hub, conn_id)


def disconnect(hub: Hub, connection_id: int) -> Connection:
    """Stop syncing a connection: its store webhooks are removed (WooCommerce) and it is marked disconnected.
    Its bindings and sync history stay, so reconnecting later creates no duplicates."""
    with hub.session() as s:
        conn = s.get(Connection, connection_id)
        if conn is None:
            raise ConnectError(f"no connection {connection_id}")
        platform, settings = conn.platform, dict(conn.settings or {})
        secrets = hub.secrets.decrypt(conn.secrets) if conn.secrets else {}
    if platform == "woocommerce" and settings.get("webhook_ids"):
        client = WooCommerceClient(settings.get("url") or "", secrets.get("consumer_key", ""),
                                   secrets.get("consumer_secret", ""), timeout=hub.settings.http_timeout)
        for hook_id in settings["webhook_ids"]:
            try:
                client.delete_webhook(int(hook_id))
            except ConnectorError as exc:  # the store may be gone: disconnecting must still work
                log.warning("could not remove webhook %s from %s: %s", hook_id, settings.get("url"), exc)
    if platform in ("quickbooks", "hubspot") and secrets:
        from hub.revocation import revoke  # the grant dies at the platform too (best effort: never blocks)
        revoke(hub, platform, secrets)
    with hub.session() as s:
        conn = s.get(Connection, connection_id)
        assert conn is not None
        conn.status = "disconnected"
        conn.status_reason = f"disconnected {utcnow():%Y-%m-%d %H:%M} UTC"
        conn.settings = {**settings, "webhook_ids": []}
        s.commit()
    return _load(hub, connection_id)


def _undo(hub: Hub, conn_id: int, previous: tuple | None) -> None:
    with hub.session() as s:
        row = s.get(Connection, conn_id)
        if row is None:
            return
        if previous is None:
            s.delete(row)
        else:
            row.secrets, row.settings, row.status = previous
        s.commit()


def _load(hub: Hub, conn_id: int) -> Connection:
    with hub.session() as s:
        conn = s.get(Connection, conn_id)
        assert conn is not None
        s.expunge(conn)
        return conn
