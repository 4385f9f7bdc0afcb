"""The web app: webhook receivers, health, and the support console."""

from __future__ import annotations

import secrets as pysecrets

from flask import Flask, jsonify, redirect, url_for
from sqlalchemy import text

import webhooks
from hub import api, console, oauth, woocommerce_auth
from hub.runtime import Hub


def create_app(hub: Hub | None = None) -> Flask:
    hub = hub or Hub()
    app = Flask("hub")
    app.config.update(SECRET_KEY=hub.settings.secret_key or pysecrets.token_hex(32),
                      MAX_CONTENT_LENGTH=webhooks.MAX_BODY, JSON_SORT_KEYS=False)
    app.extensions["o2c"] = hub
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(woocommerce_auth.bp)  # /connect/woocommerce/…: the key exchange
    app.register_blueprint(oauth.bp)  # /connect/shopify|quickbooks|hubspot: OAuth
    console.init_app(app, hub)
    api.init_app(app)  # /api/v1: bearer tokens, no session

    @app.get("/healthz")
    def healthz():  # noqa: ANN202
        with hub.sessions() as s:
            s.execute(text("SELECT 1"))
        return jsonify(status="ok", mode="scale-out" if hub.settings.scale_out else "embedded")

    @app.get("/")
    def home():  # noqa: ANN202 - the console (which asks for sign-in)
        return redirect(url_for("console.runs"))

    return app
