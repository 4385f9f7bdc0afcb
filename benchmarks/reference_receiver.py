"""The reference webhook receiver of the ingest figure: the least a correct receiver does, served by gunicorn
beside ``o2c serve`` on the same PostgreSQL and Redis. It checks the Shopify HMAC over the raw body (constant
time), inserts the delivery into an inbox table unique per delivery id (one transaction, committed before it
answers), and pushes one job id to a Redis list; a duplicate delivery is answered 200 and pushes nothing.

Run by the harness as ``gunicorn benchmarks.reference_receiver:app`` with ``REF_DATABASE_URL`` (a psycopg
URL), ``REF_REDIS_URL`` and ``REF_SECRET`` in the environment; ``create_inbox`` makes its table first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable, Iterable
from typing import Any

INBOX = """CREATE TABLE IF NOT EXISTS reference_inbox (
    id BIGSERIAL PRIMARY KEY, delivery_id TEXT NOT NULL UNIQUE, topic TEXT NOT NULL, shop TEXT NOT NULL,
    body BYTEA NOT NULL, received_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
BODY_MAX = 1 << 20

_state: dict[str, Any] = {}


def create_inbox(database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(INBOX)
        conn.execute("TRUNCATE reference_inbox")


def stored(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return int(conn.execute("SELECT count(*) FROM reference_inbox").fetchone()[0])


def _clients() -> tuple[Any, Any, bytes]:
    if not _state:   # one connection of each per worker process
        import psycopg
        import redis

        _state["db"] = psycopg.connect(os.environ["REF_DATABASE_URL"])
        _state["redis"] = redis.Redis.from_url(os.environ["REF_REDIS_URL"])
        _state["secret"] = os.environ["REF_SECRET"].encode()
    return _state["db"], _state["redis"], _state["secret"]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    def answer(status: str, text: bytes = b"") -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))])
        return [text]

    if environ.get("REQUEST_METHOD") != "POST":
        return answer("405 Method Not Allowed")
    try:
        length = int(environ.get("CONTENT_LENGTH") or "0")
    except ValueError:
        return answer("400 Bad Request")
    if length <= 0 or length > BODY_MAX:
        return answer("413 Payload Too Large" if length > BODY_MAX else "400 Bad Request")
    body = environ["wsgi.input"].read(length)
    db, queue, secret = _clients()
    expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(environ.get("HTTP_X_SHOPIFY_HMAC_SHA256", ""), expected):
        return answer("401 Unauthorized")
    delivery = environ.get("HTTP_X_SHOPIFY_WEBHOOK_ID") or hashlib.sha256(body).hexdigest()
    row = db.execute("INSERT INTO reference_inbox (delivery_id, topic, shop, body) VALUES (%s, %s, %s, %s) "
                     "ON CONFLICT (delivery_id) DO NOTHING RETURNING id",
                     (delivery, environ.get("HTTP_X_SHOPIFY_TOPIC", ""),
                      environ.get("HTTP_X_SHOPIFY_SHOP_DOMAIN", ""), body)).fetchone()
    db.commit()
    if row is not None:
        queue.rpush("reference:jobs", row[0])
    return answer("200 OK", b"ok")
