"""The web app: webhook receivers, health, and a status page."""

from __future__ import annotations

import secrets as pysecrets

from flask import Flask, jsonify, render_template_string
from sqlalchemy import text

import webhooks
from hub.runtime import Hub
from sync.status import counts_by_status, list_runs

STATUS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>O2C Hub</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}td,th{padding:.2rem .6rem;text-align:left}</style>
</head><body><h1>O2C Hub</h1><p>Mode: {{ mode }}</p>
<h2>Sync runs</h2><p>{% for k, v in counts.items() %}{{ k }}: <b>{{ v }}</b> &nbsp; {% endfor %}</p>
<table><tr><th>id</th><th>merchant</th><th>order</th><th>status</th><th>attempts</th><th>reason</th></tr>
{% for r in runs %}<tr><td>{{ r.id }}</td><td>{{ r.merchant_name }}</td><td>{{ r.source.name or r.source.id }}</td>
<td>{{ r.status }}</td><td>{{ r.attempts }}</td><td>{{ r.reason or "" }}</td></tr>{% endfor %}</table>
</body></html>"""


def create_app(hub: Hub | None = None) -> Flask:
    hub = hub or Hub()
    app = Flask("hub")
    app.config.update(SECRET_KEY=hub.settings.secret_key or pysecrets.token_hex(32),
                      MAX_CONTENT_LENGTH=webhooks.MAX_BODY, JSON_SORT_KEYS=False)
    app.extensions["o2c"] = hub
    app.register_blueprint(webhooks.bp)

    @app.get("/healthz")
    def healthz():  # noqa: ANN202
        with hub.sessions() as s:
            s.execute(text("SELECT 1"))
        return jsonify(status="ok", mode="scale-out" if hub.settings.scale_out else "embedded")

    @app.get("/")
    def status_page():  # noqa: ANN202
        with hub.sessions() as s:
            counts = counts_by_status(s)
            recent = list_runs(s, limit=50)
        return render_template_string(STATUS_PAGE, counts=counts, runs=recent,
                                      mode="scale-out" if hub.settings.scale_out else "embedded")

    return app
