"""The web app: webhook receivers, health, and the support console.

What every route gets from outside passes one strict reader (``mappings.inputs``): ``<int:…>`` in a path
takes ASCII digits within the range of the hub's INTEGER row ids (anything else is a 404, never an
overflow in the database), query-string and form text arrives without NUL characters, and an
``InvalidInput`` raised anywhere is a 400 with its one-line message.
"""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Iterable
from typing import Any

from flask import Flask, Request, jsonify, redirect, url_for
from sqlalchemy import text
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter, ValidationError
from werkzeug.wrappers import Response

import webhooks
from hub.runtime import Hub
from mappings.inputs import ROW_ID_MAX, InvalidInput, clean_text, parse_id
from web import api, console, oauth, woocommerce_auth
from web.api.blueprint import http_error as api_http_error
from web.console import errors


class RowIdConverter(IntegerConverter):
    """``<int:…>``: ASCII digits (werkzeug's ``\\d+`` also matches "١٢٣") from 0 to the largest row id; a
    path outside that range matches no route (404)."""

    regex = r"[0-9]+"

    def to_python(self, value: str) -> int:
        try:
            return parse_id(value, name="path id", low=0, high=ROW_ID_MAX)
        except InvalidInput:
            raise ValidationError() from None


def _clean(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


class CleanArgs(ImmutableMultiDict):
    """Query-string and form arguments whose text is storable (no NUL, no lone surrogate)."""

    def __init__(self, mapping: Iterable[tuple[Any, Any]] | MultiDict | None = None) -> None:
        pairs = MultiDict(mapping).items(multi=True) if mapping is not None else ()
        super().__init__([(_clean(k), _clean(v)) for k, v in pairs])


class HubRequest(Request):
    parameter_storage_class = CleanArgs


def create_app(hub: Hub | None = None) -> Flask:
    hub = hub or Hub()
    app = Flask("web")
    app.request_class = HubRequest
    app.url_map.converters["int"] = RowIdConverter  # before any route is added
    app.config.update(SECRET_KEY=hub.settings.secret_key or pysecrets.token_hex(32),
                      MAX_CONTENT_LENGTH=webhooks.MAX_BODY, JSON_SORT_KEYS=False)
    app.extensions["o2c"] = hub
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(woocommerce_auth.bp)  # /connect/woocommerce/…: the key exchange
    app.register_blueprint(oauth.bp)  # /connect/shopify|quickbooks|hubspot: OAuth
    console.init_app(app, hub)
    api.init_app(app)  # /api/v1: bearer tokens, no session
    errors.install(app, api_http_error)  # JSON under /api/, bare for the receivers, pages elsewhere

    @app.errorhandler(InvalidInput)
    def invalid_input(exc: InvalidInput) -> Response:
        """Answered as the 400 of the area it came from (JSON under /api/, a page in the console)."""
        return app.handle_http_exception(BadRequest(str(exc)))  # type: ignore[return-value]

    @app.get("/healthz")
    def healthz():  # noqa: ANN202
        with hub.sessions() as s:
            s.execute(text("SELECT 1"))
        return jsonify(status="ok", mode="scale-out" if hub.settings.scale_out else "embedded")

    @app.get("/")
    def home():  # noqa: ANN202 - the console (which asks for sign-in)
        return redirect(url_for("console.orders"))

    return app
