"""Slow or huge clients cannot starve the receiver: a request's headers and body must arrive within a few
seconds in total and within the size bound, else it is answered 408 (or 413) and nothing is stored; while
dozens of connections stall, valid webhooks are still answered at once. Under ``o2c serve`` (gunicorn, a
real subprocess) and under werkzeug (``o2c serve --dev``'s server)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

import webhooks
from demo.simulators.shopify import webhook_headers
from tests.conftest import SHOPIFY_SECRET
from tests.demo.test_demo_and_serve import _free_port, _healthy
from tests.helpers import an_order, count_events, served, wait_until, webhook
from web.app import create_app

O2C = str(Path(sys.executable).parent / "o2c")
STALLED = 64


def _stalled_request(host: str, port: int, path: str = "/webhooks/shopify", length: int = 1000) -> socket.socket:
    """A connection that announces a body of ``length`` bytes and sends only its headers."""
    sock = socket.create_connection((host, port), timeout=30)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"X-Shopify-Topic: orders/create\r\nContent-Length: {length}\r\n\r\n".encode())
    return sock


def _answer(sock: socket.socket, timeout: float) -> bytes:
    """What the server sent on ``sock`` until it closed it (b"" if it closed without a word)."""
    sock.settimeout(timeout)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out


def _chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


def _too_big_signed(shop: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"id": 1, "note": "x" * (webhooks.MAX_BODY + 10_000)}).encode()
    return body, webhook_headers(shop, "orders/create", body, SHOPIFY_SECRET)


def _assert_bounded_reads(base: str, shop: str, hub) -> None:  # noqa: ANN001
    """What holds under either server: chunked bodies are bounded (413, before the signature is looked at)
    and read whole when small; a dripping client is answered 408 within the deadline."""
    events = count_events(hub)
    body, headers = _too_big_signed(shop)
    r = requests.post(f"{base}/webhooks/shopify", data=_chunks(body), headers=headers, timeout=30)
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    r = requests.post(f"{base}/webhooks/shopify", data=_chunks(b"x" * (webhooks.MAX_BODY + 1)),
                      headers={"X-Shopify-Hmac-Sha256": "forged"}, timeout=30)
    assert r.status_code == 413                                     # the size is checked before the signature
    order = an_order(470_900, 3900)
    small, headers = webhook(order, shop)
    r = requests.post(f"{base}/webhooks/shopify", data=_chunks(small, 100), headers=headers, timeout=30)
    assert r.status_code == 200, r.text                              # a chunked body within the bound is read whole
    assert count_events(hub) == events + 1

    host, port = base.removeprefix("http://").split(":")
    drip = _stalled_request(host, int(port))
    started = time.monotonic()
    drip.settimeout(0.2)
    answer = b""
    for _ in range(int(webhooks.BODY_DEADLINE * 5) + 30):            # one byte every 0.2 s: never complete
        try:
            drip.sendall(b"{")
            answer = drip.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        if answer:
            break
    waited = time.monotonic() - started
    answer += _answer(drip, 5)
    drip.close()
    assert waited < webhooks.BODY_DEADLINE + 2.5, waited
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert count_events(hub) == events + 1                            # nothing stored for a rejected request


def test_werkzeug_bounds_chunked_and_slow_bodies(make_hub, shop_factory, platforms, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(webhooks, "BODY_DEADLINE", 1.5)      # in-process: a shorter deadline keeps the test quick
    hub = make_hub()
    shop = shop_factory(hub)
    platforms.shopify.add_order(shop.domain, an_order(470_900, 3900))
    with served(create_app(hub)) as base:
        _assert_bounded_reads(base, shop.domain, hub)
        host, port = base.removeprefix("http://").split(":")
        with _stalled_request(host, int(port)) as stalled:
            started = time.monotonic()
            answer = _answer(stalled, webhooks.BODY_DEADLINE + 5)
        assert time.monotonic() - started < webhooks.BODY_DEADLINE + 2
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


@pytest.mark.slow
def test_stalled_connections_do_not_delay_webhooks_under_gunicorn(make_hub, shop_factory, platforms,  # noqa: ANN001
                                                                   tmp_path) -> None:
    hub = make_hub()
    shop = shop_factory(hub)
    port = _free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([O2C, "serve", "--port", str(port), "--workers", "2"], env=dict(os.environ),
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stalled: list[socket.socket] = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(base), timeout=30)
        orders = [an_order(470_001 + i, 3701 + i) for i in range(6)]
        for order in orders:
            platforms.shopify.add_order(shop.domain, order)
        stalled = [_stalled_request("127.0.0.1", port) for _ in range(STALLED)]
        time.sleep(0.3)                                             # every one of them reached a worker

        def send(order) -> tuple[int, float]:  # noqa: ANN001
            body, headers = webhook(order, shop.domain)
            started = time.monotonic()
            r = requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=30)
            return r.status_code, time.monotonic() - started

        answered = [send(order) for order in orders[:3]]
        with ThreadPoolExecutor(3) as pool:
            answered += list(pool.map(send, orders[3:]))
        assert [status for status, _ in answered] == [200] * len(orders)
        assert max(seconds for _, seconds in answered) < 1.0, answered
        assert count_events(hub) == len(orders)

        started = time.monotonic()
        answers = [_answer(sock, webhooks.BODY_DEADLINE + 5) for sock in stalled]
        assert time.monotonic() - started < webhooks.BODY_DEADLINE + 3
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), {a[:40] for a in answers}
        assert count_events(hub) == len(orders)                      # nothing stored for them
        _assert_bounded_reads(base, shop.domain, hub)
    finally:
        for sock in stalled:
            sock.close()
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()
    assert "Traceback" not in (tmp_path / "serve.log").read_text(errors="replace")
