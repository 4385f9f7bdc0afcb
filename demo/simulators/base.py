"""What every simulated platform shares: a real HTTP server on 127.0.0.1, injected faults, latency,
a log of the calls it received (with the bodies of writes) and a registry of the access tokens it issued.

The simulators back ``o2c demo`` and the test suite. They check what the real APIs check, so a
connector that passes against them talks to the real platform the same way.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, Response, request
from werkzeug.serving import BaseWSGIServer, make_server


@dataclass
class Fault:
    """An injected failure: answer ``status`` (with ``Retry-After`` if given) to the next ``count``
    requests whose path contains ``path_contains``."""

    status: int
    count: int = 1
    retry_after: int | None = None
    path_contains: str = ""
    body: str = '{"error": "injected fault"}'


BODY_LOG_MAX = 1 << 20


@dataclass
class Call:
    method: str
    path: str
    query: str
    status: int = 0
    at: float = field(default_factory=time.monotonic)
    body: bytes = b""    # what a POST/PUT/PATCH sent (up to BODY_LOG_MAX bytes), for tests comparing payloads


@dataclass
class Token:
    access_token: str
    account: str              # shop domain, realm id, hub id
    expires_at: float | None  # monotonic seconds; None = never expires


class SimulatedPlatform:
    """Base class: subclasses add their routes to ``self.app`` in ``register_routes``."""

    name = "platform"

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.faults: list[Fault] = []
        self.holds: list[Fault] = []
        self.calls: list[Call] = []
        self.tokens: dict[str, Token] = {}
        self.lock = threading.RLock()
        self.app = Flask(f"sim-{self.name}")
        self.app.before_request(self._before)
        self.app.after_request(self._after)
        self.register_routes()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def register_routes(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def start(self, port: int = 0) -> SimulatedPlatform:
        self._server = make_server("127.0.0.1", port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sim-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "simulator not started"
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> SimulatedPlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls -------------------------------------------------------------------------
    def fail_next(self, status: int, count: int = 1, *, retry_after: int | None = None,
                  path_contains: str = "", body: str | None = None) -> None:
        fault = Fault(status=status, count=count, retry_after=retry_after, path_contains=path_contains)
        if body is not None:
            fault.body = body
        with self.lock:
            self.faults.append(fault)

    def hold_response_next(self, seconds: float, count: int = 1, *, path_contains: str = "") -> None:
        """Act on the next matching request, then wait ``seconds`` before answering: the window in
        which a test can kill the caller after the platform did the work but before it heard back."""
        with self.lock:
            self.holds.append(Fault(status=0, count=count, retry_after=seconds, path_contains=path_contains))

    def issue_token(self, account: str, expires_in: float | None = None) -> str:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = Token(token, account,
                                       None if expires_in is None else time.monotonic() + expires_in)
        return token

    def add_token(self, token: str, account: str, expires_in: float | None = None) -> None:
        with self.lock:
            self.tokens[token] = Token(token, account,
                                       None if expires_in is None else time.monotonic() + expires_in)

    def expire_tokens(self) -> None:
        with self.lock:
            for t in self.tokens.values():
                t.expires_at = time.monotonic() - 1

    def token_account(self, token: str | None) -> str | None:
        """The account a live token belongs to, or None when unknown or expired."""
        if not token:
            return None
        with self.lock:
            t = self.tokens.get(token)
        if t is None or (t.expires_at is not None and t.expires_at <= time.monotonic()):
            return None
        return t.account

    def count_calls(self, predicate: Callable[[Call], bool] | None = None) -> int:
        with self.lock:
            return sum(1 for c in self.calls if predicate is None or predicate(c))

    # -- request hooks -------------------------------------------------------------------------
    def _before(self) -> Response | None:
        if self.latency:
            time.sleep(self.latency)
        with self.lock:
            for fault in self.faults:
                if fault.count > 0 and fault.path_contains in request.path:
                    fault.count -= 1
                    headers = {"Content-Type": "application/json"}
                    if fault.retry_after is not None:
                        headers["Retry-After"] = str(fault.retry_after)
                    return Response(fault.body, status=fault.status, headers=headers)
        return None

    def _after(self, response: Response) -> Response:
        hold = 0.0
        with self.lock:
            body = request.get_data(cache=True)[:BODY_LOG_MAX] if request.method in ("POST", "PUT", "PATCH") else b""
            self.calls.append(Call(request.method, request.path, request.query_string.decode(),
                                   response.status_code, body=body))
            for h in self.holds:
                if h.count > 0 and h.path_contains in request.path and request.method == "POST":
                    h.count -= 1
                    hold = float(h.retry_after or 0)
                    break
        if hold:
            time.sleep(hold)
        return response
