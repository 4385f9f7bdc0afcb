"""A merchant's connected accounts as ready-to-use API clients.

Secrets are decrypted only here. An access token refused by a platform is refreshed once, under a
lock so that two workers never refresh the same connection at once; the rotated refresh token is
committed before the new access token is used. When the refresh fails for good, the connection is
marked *needs reconnect* and ``NeedsReconnect`` is raised: the run waits instead of failing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from connectors import hubspot as hubspot_api
from connectors import logscrub
from connectors import quickbooks as quickbooks_api
from connectors.errors import AuthExpired, ConnectorError, Retryable
from connectors.hubspot import HubSpotClient
from connectors.quickbooks import QuickBooksClient
from connectors.shopify import ShopifyClient
from connectors.woocommerce import WooCommerceClient
from hub.models import Connection, utcnow
from sync import alerts, locks

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.accounts")
REFRESH_AHEAD = timedelta(minutes=5)   # an access token this close to expiry is refreshed before use
logscrub.install()                      # the SDKs' DEBUG logs never show a token


class NeedsReconnect(ConnectorError):
    """The platform no longer accepts this connection's credentials; a person must reconnect it."""

    kind = "auth"


class Accounts:
    def __init__(self, hub: Hub, merchant_id: int) -> None:
        self.hub = hub
        self.merchant_id = merchant_id

    def connection(self, platform: str, account: str | None = None) -> Connection | None:
        with self.hub.sessions() as s:
            q = select(Connection).where(Connection.merchant_id == self.merchant_id,
                                         Connection.platform == platform,
                                         Connection.status != "disconnected")
            if account:
                q = q.where(Connection.account == account)
            return s.scalar(q.order_by(Connection.id))

    def require(self, platform: str, account: str | None = None, *, conn: Connection | None = None) -> Connection:
        conn = conn or self.connection(platform, account)
        if conn is None:
            raise NeedsReconnect(f"the merchant has no {platform} connection", platform=platform)
        if conn.status == "needs_reconnect":
            raise NeedsReconnect(f"the {platform} connection needs reconnecting", platform=platform,
                                 detail=conn.status_reason)
        return conn

    def shopify(self, shop: str | None = None) -> ShopifyClient:
        conn = self.require("shopify", shop)
        return _Refreshing(self, conn, lambda sec: ShopifyClient(
            conn.account, sec["access_token"], api_url=self.hub.settings.shopify_api_url,
            timeout=self.hub.settings.http_timeout, throttle=self._throttle(conn)),
            refresh=lambda sec: self._refresh_shopify(conn.account, sec))  # type: ignore[return-value]

    def woocommerce(self, connection_id: int | None = None) -> WooCommerceClient:
        """The store of ``connection_id`` (a merchant may have several), else the merchant's only one."""
        conn = None
        if connection_id is not None:
            with self.hub.sessions() as s:
                conn = s.get(Connection, connection_id)
            if conn is None or conn.merchant_id != self.merchant_id or conn.status == "disconnected":
                raise NeedsReconnect(f"WooCommerce connection {connection_id} is gone", platform="woocommerce")
        conn = self.require("woocommerce", conn=conn)
        return _Refreshing(self, conn, lambda sec: WooCommerceClient(
            (conn.settings or {}).get("url") or conn.account, sec["consumer_key"], sec["consumer_secret"],
            timeout=self.hub.settings.http_timeout, throttle=self._throttle(conn)), refresh=None)  # type: ignore[return-value]

    def quickbooks(self) -> QuickBooksClient:
        conn = self.require("quickbooks")
        settings = self.hub.settings
        return _Refreshing(self, conn, lambda sec: QuickBooksClient(
            conn.account, sec["access_token"], api_url=settings.quickbooks_api_url,
            sandbox=settings.quickbooks_environment.lower().startswith("sand"),
            timeout=settings.http_timeout, throttle=self._throttle(conn),
            in_flight=lambda: self.hub.limiter.in_flight(conn.platform, conn.account)),
            refresh=self._refresh_quickbooks)  # type: ignore[return-value]

    def hubspot(self) -> HubSpotClient | None:
        conn = self.connection("hubspot")
        if conn is None:  # HubSpot is optional: no connection, no contact step
            return None
        self.require("hubspot", conn=conn)
        return _Refreshing(self, conn, lambda sec: HubSpotClient(
            sec["access_token"], api_url=self.hub.settings.hubspot_api_url,
            timeout=self.hub.settings.http_timeout, throttle=self._throttle(conn)), refresh=self._refresh_hubspot)  # type: ignore[return-value]

    def _throttle(self, conn: Connection) -> Callable[[], object]:
        limiter = self.hub.limiter
        return lambda: limiter.acquire(conn.platform, conn.account)

    # -- tokens ---------------------------------------------------------------------------------
    def secrets_of(self, connection_id: int) -> tuple[Connection, dict[str, Any]]:
        with self.hub.sessions() as s:
            conn = s.get(Connection, connection_id)
            assert conn is not None
            return conn, self.hub.secrets.decrypt(conn.secrets)

    def _refresh_quickbooks(self, secrets: dict[str, Any]) -> tuple[dict[str, Any], int]:
        st = self.hub.settings
        if not (st.quickbooks_client_id and st.quickbooks_client_secret and secrets.get("refresh_token")):
            raise AuthExpired("QuickBooks refused the access token and the hub cannot renew it (the hub's QuickBooks "
                              "app is not set up, or the connection holds no refresh token): reconnect QuickBooks",
                              platform="quickbooks", code="no_refresh")
        tokens = quickbooks_api.refresh_tokens(
            client_id=st.quickbooks_client_id, client_secret=st.quickbooks_client_secret,
            refresh_token=secrets["refresh_token"], oauth_url=st.quickbooks_oauth_url,
            environment=st.quickbooks_environment, timeout=st.http_timeout)
        return ({**secrets, "access_token": tokens.access_token, "refresh_token": tokens.refresh_token},
                tokens.expires_in)

    def _refresh_shopify(self, shop: str, secrets: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """An expiring offline token's refresh; a classic token (no refresh token) cannot be refreshed."""
        from connectors.shopify_oauth import refresh_token

        st = self.hub.settings
        if not (st.shopify_api_key and st.shopify_api_secret and secrets.get("refresh_token")):
            raise AuthExpired("Shopify refused the access token and the hub cannot renew it (a token that does not "
                              "renew, or the hub's Shopify app is not set up): reinstall the app in the shop",
                              platform="shopify",
                              code="no_refresh")
        tokens = refresh_token(shop, secrets["refresh_token"], api_url=st.shopify_api_url,
                               client_id=st.shopify_api_key, client_secret=st.shopify_api_secret,
                               timeout=st.http_timeout)
        return ({**secrets, "access_token": tokens.access_token, "refresh_token": tokens.refresh_token},
                tokens.expires_in or 3600)

    def _refresh_hubspot(self, secrets: dict[str, Any]) -> tuple[dict[str, Any], int]:
        st = self.hub.settings
        if not (st.hubspot_client_id and st.hubspot_client_secret and secrets.get("refresh_token")):
            raise AuthExpired("HubSpot refused the access token and the hub cannot renew it (the hub's HubSpot app "
                              "is not set up, or the connection holds no refresh token): reconnect HubSpot",
                              platform="hubspot", code="no_refresh")
        tokens = hubspot_api.refresh_tokens(
            client_id=st.hubspot_client_id, client_secret=st.hubspot_client_secret,
            refresh_token=secrets["refresh_token"], api_url=st.hubspot_api_url, timeout=st.http_timeout)
        return ({**secrets, "access_token": tokens.access_token, "refresh_token": tokens.refresh_token},
                tokens.expires_in)

    def refresh(self, conn: Connection, used_token: str,
                refresher: Callable[[dict[str, Any]], tuple[dict[str, Any], int]] | None) -> dict[str, Any]:
        """New secrets for ``conn`` after ``used_token`` was refused (refreshing at most once)."""
        with locks.held(self.hub.sessions, f"refresh:{conn.id}", ttl=60, wait=60):
            current, secrets = self.secrets_of(conn.id)
            if current.status == "needs_reconnect":
                raise NeedsReconnect(f"the {conn.platform} connection needs reconnecting",
                                     platform=conn.platform, detail=current.status_reason)
            if secrets.get("access_token") != used_token:
                return secrets  # another worker refreshed while we waited
            try:
                if refresher is None:
                    raise AuthExpired(f"{conn.platform} refused the access token", platform=conn.platform)
                new_secrets, expires_in = refresher(secrets)
            except AuthExpired as exc:
                self.mark_needs_reconnect(conn.id, str(exc))
                raise NeedsReconnect(f"the {conn.platform} connection needs reconnecting",
                                     platform=conn.platform, detail=str(exc)) from exc
            with self.hub.sessions() as s:  # persist the rotated refresh token before using it
                row = s.get(Connection, conn.id)
                assert row is not None
                row.secrets = self.hub.secrets.encrypt(new_secrets)
                row.token_expires_at = utcnow() + timedelta(seconds=expires_in)
                s.commit()
            log.info("refreshed the %s token of connection %s", conn.platform, conn.id)
            return new_secrets

    def mark_needs_reconnect(self, connection_id: int, reason: str) -> None:
        with self.hub.sessions() as s:
            row = s.get(Connection, connection_id)
            if row is not None:
                row.status = "needs_reconnect"
                row.status_reason = reason[:500]
                s.commit()
        log.warning("connection %s needs reconnecting: %s", connection_id, reason)
        alerts.needs_reconnect(self.hub, connection_id)  # never raises; nothing to do without alert targets


class _Refreshing:
    """Proxy over a client: a call refused with ``AuthExpired`` is retried once with fresh tokens."""

    def __init__(self, accounts: Accounts, conn: Connection, build: Callable[[dict[str, Any]], Any],
                 refresh: Callable[[dict[str, Any]], tuple[dict[str, Any], int]] | None) -> None:
        self._accounts = accounts
        self._conn = conn
        self._build = build
        self._refresh = refresh
        self._secrets = accounts.hub.secrets.decrypt(conn.secrets)
        expires = conn.token_expires_at
        if refresh is not None and expires is not None and expires <= utcnow() + REFRESH_AHEAD:
            try:  # about to expire: refresh now (once, under the lock) rather than on a 401
                self._secrets = accounts.refresh(conn, self._secrets.get("access_token"), refresh)
            except Retryable as exc:  # the token still works for a while: use it, refresh next time
                log.warning("could not refresh the %s token of connection %s ahead of expiry: %s", conn.platform,
                            conn.id, exc)
        self._client = build(self._secrets)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return getattr(self._client, name)(*args, **kwargs)
            except Retryable as exc:
                if exc.status == 429 or exc.code == "THROTTLED":  # the platform's word: everyone waits
                    self._accounts.hub.limiter.penalize(self._conn.platform, self._conn.account,
                                                        exc.retry_after or 1.0)
                raise
            except AuthExpired:
                self._secrets = self._accounts.refresh(self._conn, self._secrets.get("access_token"),
                                                       self._refresh)
                self._client = self._build(self._secrets)
            try:
                return getattr(self._client, name)(*args, **kwargs)
            except AuthExpired as exc:
                self._accounts.mark_needs_reconnect(self._conn.id, str(exc))
                raise NeedsReconnect(f"the {self._conn.platform} connection needs reconnecting",
                                     platform=self._conn.platform, detail=str(exc)) from exc

        return call
