"""Shopify's side of the app install: the query-string HMAC, the authorize URL, the token endpoint
(authorization code → offline token, classic or expiring; refresh of an expiring one) and the webhook
subscriptions made through the GraphQL Admin API. HTTP and signatures only, no database.

The SDK's own OAuth helpers hard-code ``https://{shop}``; these honour ``O2C_SHOPIFY_API_URL``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from connectors import topics
from connectors.errors import AuthExpired, ConnectorError, Permanent, Retryable
from connectors.shopify import ShopifyClient

PLATFORM = "shopify"
SCOPES = ("read_orders", "write_orders")
# the order topics the receiver syncs, and the uninstall (``connectors.topics``); the compliance topics
# come from the app's configuration, not from a subscription
WEBHOOK_TOPICS = topics.SHOPIFY_SUBSCRIBED
COMPLIANCE_TOPICS = topics.SHOPIFY_COMPLIANCE_TOPICS

WEBHOOKS_QUERY = """
query HubWebhookSubscriptions($first: Int!, $callbackUrl: URL) {
  webhookSubscriptions(first: $first, callbackUrl: $callbackUrl) {
    nodes { id topic endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } } }
  }
}
"""
WEBHOOK_CREATE = """
mutation HubWebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id topic }
    userErrors { field message }
  }
}
"""
SHOP_QUERY = "query HubShopName { shop { name } }"


@dataclass
class ShopifyTokens:
    access_token: str
    scope: str
    refresh_token: str | None = None     # only for expiring offline tokens
    expires_in: int | None = None        # None: a classic token, valid until the app is uninstalled

    @property
    def kind(self) -> str:
        return "expiring" if self.refresh_token else "classic"

    def secrets(self) -> dict[str, str | None]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token}


def base_url(shop: str, api_url: str | None) -> str:
    """``https://{shop}``, or the configured base that replaces every shop's host."""
    return api_url.rstrip("/") if api_url else f"https://{shop}"


def query_hmac(params: list[tuple[str, str]], secret: str) -> str:
    """Hex HMAC-SHA256 of a callback's query string as Shopify signs it: without ``hmac`` and ``signature``,
    ``k=v`` pairs (``%``, ``&`` and ``=`` escaped as in Shopify's library) sorted and joined with ``&``."""
    pairs = []
    for key, value in params:
        if key in ("hmac", "signature"):
            continue
        k = key.replace("%", "%25").replace("=", "%3D").replace("&", "%26")
        v = value.replace("%", "%25").replace("&", "%26")
        pairs.append(f"{k}={v}")
    return hmac.new(secret.encode(), "&".join(sorted(pairs)).encode(), hashlib.sha256).hexdigest()


def hmac_matches(params: list[tuple[str, str]], given: str | None, secrets: list[str]) -> bool:
    """Constant-time check of a callback's ``hmac`` against every current app secret."""
    if not given or not secrets:
        return False
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(query_hmac(params, secret).encode(), given.strip().lower().encode())
    return ok


def authorize_url(shop: str, *, api_url: str | None, client_id: str, redirect_uri: str, state: str) -> str:
    """Where the merchant approves the app (no ``grant_options[]=per-user``: an offline token)."""
    query = {"client_id": client_id, "scope": ",".join(SCOPES), "redirect_uri": redirect_uri, "state": state}
    if api_url:  # one base for every shop (tests, proxies): it needs to be told which shop
        query["shop"] = shop
    return f"{base_url(shop, api_url)}/admin/oauth/authorize?{urlencode(query)}"


def missing_scopes(granted: str) -> list[str]:
    """The scopes the hub needs and the token lacks (``write_x`` implies ``read_x``)."""
    have = {s.strip() for s in granted.split(",") if s.strip()}
    return [s for s in SCOPES if s not in have and s.replace("read_", "write_", 1) not in have]


def _token_call(shop: str, api_url: str | None, form: dict[str, str], timeout: float) -> dict[str, Any]:
    url = f"{base_url(shop, api_url)}/admin/oauth/access_token"
    try:
        response = requests.post(url, data=form, headers={"Accept": "application/json"}, timeout=timeout)
    except requests.RequestException as exc:
        raise Retryable(f"cannot reach shop {shop}'s token endpoint", platform=PLATFORM) from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise Retryable(f"Shopify's token endpoint answered HTTP {response.status_code}", platform=PLATFORM,
                        status=response.status_code, code=response.status_code)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
        error = body.get("error") if isinstance(body, dict) else None
        raise Permanent(f"Shopify refused the token request (HTTP {response.status_code})", platform=PLATFORM,
                        status=response.status_code, code=str(error)[:40] if error else response.status_code)
    return body


def _tokens(body: dict[str, Any]) -> ShopifyTokens:
    expires = body.get("expires_in")
    return ShopifyTokens(access_token=str(body["access_token"]), scope=str(body.get("scope") or ""),
                         refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
                         expires_in=int(expires) if expires is not None and body.get("refresh_token") else None)


def exchange_code(shop: str, code: str, *, api_url: str | None, client_id: str, client_secret: str,
                  expiring: bool = True, timeout: float = 30.0) -> ShopifyTokens:
    """The authorization code → an offline token (``expiring=1`` asks for the expiring kind; a shop or app
    that only knows classic tokens answers with one, and both are kept)."""
    form = {"client_id": client_id, "client_secret": client_secret, "code": code}
    if expiring:
        form["expiring"] = "1"
    return _tokens(_token_call(shop, api_url, form, timeout))


def refresh_token(shop: str, refresh: str, *, api_url: str | None, client_id: str, client_secret: str,
                  timeout: float = 30.0) -> ShopifyTokens:
    """A new expiring access token (and refresh token) for an expiring one; ``AuthExpired`` when Shopify no
    longer accepts the refresh token (the app was uninstalled, or it expired)."""
    form = {"client_id": client_id, "client_secret": client_secret, "grant_type": "refresh_token",
            "refresh_token": refresh}
    try:
        tokens = _tokens(_token_call(shop, api_url, form, timeout))
    except Permanent as exc:
        raise AuthExpired("Shopify refused the refresh token: the shop needs reconnecting", platform=PLATFORM,
                          status=exc.status, code=exc.code) from exc
    if not tokens.refresh_token:  # the previous refresh token stays valid until the new one is first used
        tokens.refresh_token = refresh
    return tokens


def shop_name(client: ShopifyClient) -> str | None:
    try:
        return ((client.graphql(SHOP_QUERY).get("shop") or {}).get("name") or None)
    except ConnectorError:
        return None


def register_webhooks(client: ShopifyClient, callback_url: str) -> list[str]:
    """Subscribe ``callback_url`` to every topic of ``WEBHOOK_TOPICS`` it is not subscribed to yet; returns the
    topics subscribed now. ``Permanent`` with Shopify's words when a subscription is refused."""
    data = client.graphql(WEBHOOKS_QUERY, {"first": 100, "callbackUrl": callback_url})
    have = {n.get("topic") for n in (data.get("webhookSubscriptions") or {}).get("nodes") or []
            if ((n.get("endpoint") or {}).get("callbackUrl") or callback_url) == callback_url}
    made: list[str] = []
    for topic in WEBHOOK_TOPICS:
        if topic in have:
            continue
        result = client.graphql(WEBHOOK_CREATE, {"topic": topic, "sub": {
            "callbackUrl": callback_url, "format": "JSON"}}).get("webhookSubscriptionCreate") or {}
        errors = result.get("userErrors") or []
        if errors:
            text = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
            raise Permanent(f"Shopify refused the {topic} webhook: {text}", platform=PLATFORM, code="userErrors")
        made.append(topic)
    return made

