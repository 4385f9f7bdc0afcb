"""The Shopify fake's app side: the OAuth authorization-code grant, webhook subscriptions and uninstalls.

- ``GET /admin/oauth/authorize?client_id&scope&redirect_uri&state`` (the shop comes from ``shop``, or
  the only shop): the approval control ``approval`` decides what the merchant does — ``"auto"`` approves
  at once (302 to ``redirect_uri`` with ``code``, ``hmac``, ``host``, ``shop``, ``state``, ``timestamp``,
  signed like Shopify: hex HMAC-SHA256 of the sorted query with the app secret), ``"page"`` shows an
  Install/Cancel page (``POST`` the same path), ``"deny"`` refuses (403).
- ``POST /admin/oauth/access_token`` (form or JSON): ``client_id`` + ``client_secret`` checked; a
  ``code`` works once, for its app; ``expiring=1`` gives an expiring offline token (``expires_in``
  3600, ``refresh_token``, ``refresh_token_expires_in``), otherwise a classic one; ``token_kind``
  forces either. ``grant_type=refresh_token`` rotates: the previous refresh token stays valid until the
  new one is first used; ``expire_refresh_tokens()`` makes every refresh token invalid.
- GraphQL ``webhookSubscriptionCreate`` and ``webhookSubscriptions``; ``uninstall(shop)`` revokes the
  shop's tokens, drops its subscriptions and delivers ``app/uninstalled`` to the subscribed URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Response, request

ACCESS_TTL = 3600
REFRESH_TTL = 90 * 24 * 3600
CODE_TTL = 600
APPROVAL_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Install app</title></head><body>
<h1>Install {app} on {shop}?</h1><p>It asks for: {scope}</p>
<form method="post"><input type="hidden" name="query" value="{query}">
<button name="decision" value="install" id="install">Install app</button>
<button name="decision" value="cancel" id="cancel">Cancel</button></form></body></html>"""


def sign_query(params: dict[str, str], secret: str) -> str:
    """Shopify's OAuth ``hmac``: hex HMAC-SHA256 of the sorted ``k=v`` pairs (without ``hmac``)."""
    message = "&".join(sorted(f"{k}={v}" for k, v in params.items() if k not in ("hmac", "signature")))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


@dataclass
class _Code:
    shop: str
    client_id: str
    scope: str
    expires_at: float


@dataclass
class _Refresh:
    shop: str
    client_id: str
    scope: str
    expires_at: float
    used: bool = False
    successor: str | None = None


@dataclass
class AppState:
    apps: dict[str, str] = field(default_factory=dict)                  # client id → secret
    redirect_urls: dict[str, tuple[str, ...]] = field(default_factory=dict)
    codes: dict[str, _Code] = field(default_factory=dict)
    refresh: dict[str, _Refresh] = field(default_factory=dict)
    subscriptions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)   # shop → subscriptions
    exchanges: int = 0
    refreshes: int = 0


class ShopifyAppControls:
    """Mixed into ``ShopifySimulator`` (which provides ``app``, ``lock``, ``shops``, tokens)."""

    approval: str = "auto"
    token_kind: str | None = None     # None: as asked (``expiring=1``); "classic" or "expiring": always

    def _reset_app(self) -> None:
        self.app_state = AppState()
        self.approval = "auto"
        self.token_kind = None

    # -- test controls ---------------------------------------------------------------------------
    def register_app(self, client_id: str, secret: str, redirect_urls: tuple[str, ...] = ()) -> None:
        """An app (client id and secret); ``redirect_urls``: allowed callback prefixes (empty: any)."""
        with self.lock:
            self.app_state.apps[client_id] = secret
            self.app_state.redirect_urls[client_id] = tuple(redirect_urls)

    def issue_code(self, shop: str, client_id: str, scope: str = "read_orders,write_orders") -> str:
        code = secrets.token_hex(16)
        with self.lock:
            self.app_state.codes[code] = _Code(shop, client_id, scope, time.monotonic() + CODE_TTL)
        return code

    def expire_refresh_tokens(self) -> None:
        with self.lock:
            for entry in self.app_state.refresh.values():
                entry.expires_at = time.monotonic() - 1

    def subscriptions(self, shop: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(s) for s in self.app_state.subscriptions.get(shop, [])]

    def uninstall(self, shop: str, client_id: str, *, deliver: bool = True) -> list[int]:
        """The merchant uninstalls the app: its tokens stop working, its subscriptions go, and
        ``app/uninstalled`` is POSTed (signed) to the URL subscribed to it; returns the delivery statuses."""
        with self.lock:
            for token in [t for t, v in self.tokens.items() if v.account == shop]:
                del self.tokens[token]
            for entry in self.app_state.refresh.values():
                if entry.shop == shop:
                    entry.expires_at = time.monotonic() - 1
            subs = self.app_state.subscriptions.pop(shop, [])
            secret = self.app_state.apps[client_id]
        body = json.dumps({"id": 1, "name": self.shops.get(shop, {}).get("name"), "domain": shop,
                           "myshopify_domain": shop}).encode()
        statuses = []
        for sub in subs:
            if sub["topic"] == "APP_UNINSTALLED" and deliver:
                statuses.append(self.deliver(sub["callbackUrl"], shop, "app/uninstalled", body, secret))
        return statuses

    def deliver(self, url: str, shop: str, topic: str, body: bytes, secret: str) -> int:
        """POST one signed webhook to ``url``; returns the HTTP status."""
        from demo.simulators.shopify import webhook_headers

        req = urllib.request.Request(url, body, webhook_headers(shop, topic, body, secret), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 - a local test server
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    # -- routes ----------------------------------------------------------------------------------
    def register_app_routes(self) -> None:
        self.app.add_url_rule("/admin/oauth/authorize", "authorize", self._authorize, methods=["GET", "POST"])
        self.app.add_url_rule("/admin/oauth/access_token", "access_token", self._access_token, methods=["POST"])

    def _authorize(self) -> Response:
        if request.method == "POST":
            args = dict(parse_qsl(request.form.get("query", "")))
            if request.form.get("decision") != "install":
                return Response("The app was not installed.", 200, mimetype="text/plain")
            return self._approve(args)
        args = request.args.to_dict()
        problem = self._check_authorize(args)
        if problem:
            return Response(problem, 400, mimetype="text/plain")
        if self.approval == "deny":
            return Response("The merchant did not install the app.", 403, mimetype="text/plain")
        if self.approval == "page":
            return Response(APPROVAL_PAGE.format(app=escape(args["client_id"]), shop=escape(self._shop_of(args)),
                                                 scope=escape(args["scope"]), query=escape(urlencode(args))),
                            200, mimetype="text/html")
        return self._approve(args)

    def _shop_of(self, args: dict[str, str]) -> str:
        return args.get("shop") or (next(iter(self.shops)) if len(self.shops) == 1 else "")

    def _check_authorize(self, args: dict[str, str]) -> str | None:
        client_id, redirect_uri = args.get("client_id", ""), args.get("redirect_uri", "")
        if client_id not in self.app_state.apps:
            return "Oauth error invalid_request: The client_id is not valid"
        if not redirect_uri:
            return "Oauth error invalid_request: redirect_uri is missing"
        allowed = self.app_state.redirect_urls.get(client_id) or ()
        if allowed and not any(redirect_uri.startswith(a) for a in allowed):
            return "Oauth error invalid_request: The redirect_uri is not whitelisted"
        if not args.get("scope"):
            return "Oauth error invalid_scope"
        if self._shop_of(args) not in self.shops:
            return "There is no shop here"
        return None

    def _approve(self, args: dict[str, str]) -> Response:
        problem = self._check_authorize(args)
        if problem:
            return Response(problem, 400, mimetype="text/plain")
        shop = self._shop_of(args)
        code = self.issue_code(shop, args["client_id"], args["scope"])
        params = {"code": code, "host": base64.b64encode(f"{shop}/admin".encode()).decode().rstrip("="),
                  "shop": shop, "state": args.get("state", ""), "timestamp": str(int(time.time()))}
        params["hmac"] = sign_query(params, self.app_state.apps[args["client_id"]])
        return Response(status=302, headers={"Location": f"{args['redirect_uri']}?{urlencode(params)}"})

    def _oauth_error(self, error: str, description: str, status: int = 400) -> Response:
        return Response(json.dumps({"error": error, "error_description": description}), status,
                        mimetype="application/json")

    def _access_token(self) -> Response:
        form = request.get_json(silent=True) if request.is_json else request.form.to_dict()
        if not isinstance(form, dict):
            return self._oauth_error("invalid_request", "the body must be a form or JSON")
        client_id, secret = str(form.get("client_id") or ""), str(form.get("client_secret") or "")
        with self.lock:
            expected = self.app_state.apps.get(client_id)
            if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
                return self._oauth_error("invalid_client", "client_id or client_secret is wrong", 401)
            if form.get("grant_type") == "refresh_token":
                return self._refresh(client_id, str(form.get("refresh_token") or ""))
            entry = self.app_state.codes.pop(str(form.get("code") or ""), None)
            if entry is None or entry.client_id != client_id or entry.expires_at <= time.monotonic():
                return self._oauth_error("invalid_request",
                                         "The authorization code was not found or was already used")
            self.app_state.exchanges += 1
            kind = self.token_kind or ("expiring" if str(form.get("expiring")) in ("1", "true") else "classic")
            return self._grant(entry.shop, client_id, entry.scope, expiring=kind == "expiring")

    def _grant(self, shop: str, client_id: str, scope: str, *, expiring: bool,
               refresh_token: str | None = None) -> Response:
        access = "shpat_" + secrets.token_hex(16)
        if not expiring:
            self.add_token(access, shop)
            return Response(json.dumps({"access_token": access, "scope": scope}), 200, mimetype="application/json")
        self.add_token(access, shop, ACCESS_TTL)
        refresh = refresh_token or "shprt_" + secrets.token_hex(16)
        self.app_state.refresh.setdefault(refresh, _Refresh(shop, client_id, scope,
                                                            time.monotonic() + REFRESH_TTL))
        return Response(json.dumps({"access_token": access, "expires_in": ACCESS_TTL, "refresh_token": refresh,
                                    "refresh_token_expires_in": REFRESH_TTL, "scope": scope}),
                        200, mimetype="application/json")

    def _refresh(self, client_id: str, token: str) -> Response:
        entry = self.app_state.refresh.get(token)
        if entry is None or entry.client_id != client_id or entry.expires_at <= time.monotonic():
            return self._oauth_error("invalid_grant", "The refresh token is invalid or has expired")
        successor = self.app_state.refresh.get(entry.successor) if entry.successor else None
        if successor is not None and successor.used:
            return self._oauth_error("invalid_grant", "The refresh token was superseded")
        entry.used = True
        for other in self.app_state.refresh.values():   # using a new token retires the one it replaced
            if other.successor == token:
                other.expires_at = time.monotonic() - 1
        self.app_state.refreshes += 1
        if entry.successor is None:
            entry.successor = "shprt_" + secrets.token_hex(16)
        return self._grant(entry.shop, client_id, entry.scope, expiring=True, refresh_token=entry.successor)

    # -- GraphQL resolvers -----------------------------------------------------------------------
    def app_query_fields(self, domain: str) -> dict[str, Any]:
        return {"webhookSubscriptions": lambda info, **args: self._subscriptions(domain, **args)}

    def app_mutation_fields(self, domain: str) -> dict[str, Any]:
        return {"webhookSubscriptionCreate": lambda info, topic, webhookSubscription:
                self._subscribe(domain, topic, webhookSubscription)}

    def _subscriptions(self, domain: str, *, first: int | None = None, callbackUrl: str | None = None,  # noqa: N803
                       topics: list[str] | None = None, **_: Any) -> dict[str, Any]:
        with self.lock:
            subs = [s for s in self.app_state.subscriptions.get(domain, [])
                    if callbackUrl in (None, s["callbackUrl"]) and (not topics or s["topic"] in topics)]
        nodes = [dict(s) for s in subs[: first or 50]]
        return {"nodes": nodes, "edges": [{"node": n, "cursor": n["id"]} for n in nodes],
                "pageInfo": {"hasNextPage": len(subs) > len(nodes), "hasPreviousPage": False,
                             "startCursor": nodes[0]["id"] if nodes else None,
                             "endCursor": nodes[-1]["id"] if nodes else None}}

    def _subscribe(self, domain: str, topic: str, sub: dict[str, Any]) -> dict[str, Any]:
        url = str(sub.get("callbackUrl") or "")
        with self.lock:
            subs = self.app_state.subscriptions.setdefault(domain, [])
            if not url.startswith(("https://", "http://")):
                return {"webhookSubscription": None,
                        "userErrors": [{"field": ["webhookSubscription", "callbackUrl"],
                                        "message": "Address is invalid"}]}
            if any(s["topic"] == topic and s["callbackUrl"] == url for s in subs):
                return {"webhookSubscription": None,
                        "userErrors": [{"field": ["webhookSubscription", "callbackUrl"],
                                        "message": "Address for this topic has already been taken"}]}
            number = sum(len(v) for v in self.app_state.subscriptions.values()) + 1
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            created = {"id": f"gid://shopify/WebhookSubscription/{number}", "legacyResourceId": str(number),
                       "topic": topic, "callbackUrl": url, "format": sub.get("format") or "JSON",
                       "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": url},
                       "includeFields": [], "metafieldNamespaces": [], "createdAt": now, "updatedAt": now}
            subs.append(created)
            return {"webhookSubscription": dict(created), "userErrors": []}
