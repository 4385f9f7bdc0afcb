"""``o2c serve``'s gunicorn worker: gthread's ``ThreadWorker``, except that a request is read whole (head
and body) in the worker's event loop before a thread is given to it.

Why this and not a setting: gthread hands a connection to a thread as soon as it is readable, and the
thread then blocks on the socket for the rest of the request. A client that sends its headers and not its
body (or drips a byte a second) holds that thread for as long as it likes; ``--threads`` of them stop every
webhook, however many threads there are, and a socket timeout only bounds each ``recv``, not the request.
gunicorn's ``timeout`` does not help either: the event loop keeps notifying the arbiter. Here the event loop
(non-blocking, one selector) collects each connection's bytes until :class:`~web.request_framing.RequestFraming`
says the request is complete, and only then queues it for a thread, so threads only ever run requests that
are all there. A request not complete within ``BODY_DEADLINE`` seconds (in total, however it drips; counted
from the connection's accept, or for a kept-alive one from its next request's first byte) is answered 408;
a body over ``MAX_BODY`` (announced, or chunked and counted as it arrives) is answered 413 before the
application, hence before any signature check. Either way the connection is closed after a short linger,
so the client reads the answer instead of a reset, and the application never sees the request: nothing is
stored. A connection that sent nothing at all is closed
silently at the deadline, as gthread does with idle connections.

As a second fence the socket a thread works on carries a timeout of ``BODY_DEADLINE``, so a request this
framing misjudged as complete cannot hold a thread for ever. TLS and HTTP/2 connections (the hub configures
neither; a proxy in front terminates TLS) keep gthread's own handling.
"""

from __future__ import annotations

import errno
import json
import selectors
import socket
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker

from web.request_framing import BODY_DEADLINE, MAX_BODY, Refusal, RequestFraming

LINGER = 2.0                    # seconds a refused connection is drained before it is closed
LINGER_BYTES = 8 * 1024 * 1024  # at most this much of a refused body is drained
RECV = 256 * 1024
REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large",
           431: "Request Header Fields Too Large"}


def refusal_response(refusal: Refusal) -> bytes:
    """The whole HTTP answer to a refused request: JSON like the app's errors, and the connection closed."""
    body = json.dumps({"error": refusal.message}).encode()
    head = (f"HTTP/1.1 {refusal.status} {REASONS.get(refusal.status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


class BoundedConn(TConn):
    """gthread's connection; the socket a thread reads and writes carries a timeout (the second fence)."""

    read_timeout = BODY_DEADLINE

    def init(self) -> None:
        super().init()
        self.sock.settimeout(self.read_timeout)


@dataclass
class _Reading:
    framing: RequestFraming
    deadline: float
    started: bool = False           # a byte arrived (else the deadline closes it silently)
    continued: bool = False         # "100 Continue" was sent


@dataclass
class _Lingering:
    deadline: float
    drained: int = 0


class BoundedThreadWorker(ThreadWorker):
    """See the module: requests are read whole, within a deadline and a size bound, before a thread runs them."""

    max_body = MAX_BODY
    body_deadline = BODY_DEADLINE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: dict[TConn, _Reading] = {}       # insertion order is deadline order
        self.lingering: dict[TConn, _Lingering] = {}

    # -- gthread's hooks ------------------------------------------------------------------------
    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = BoundedConn(self.cfg, client_sock, client_addr, listener.getsockname())
        conn.read_timeout = self.body_deadline
        self.enqueue_req(conn)

    def enqueue_req(self, conn: TConn) -> None:
        """Every way a connection reaches a thread (new, kept alive, pipelined) goes through here first."""
        if not self._frames(conn):
            super().enqueue_req(conn)
            return
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        reading = _Reading(RequestFraming(self.max_body), time.monotonic() + self.body_deadline)
        conn.sock.setblocking(False)
        if leftover and self._take(conn, reading, leftover):
            return
        self.reading[conn] = reading
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn, reading in list(self.reading.items()):
            if reading.deadline > now:
                break
            self._stop_reading(conn)
            if reading.started:
                self._refuse(conn, Refusal(408, f"request not received whole within {self.body_deadline:g} s"))
            else:
                self._close(conn)
        for conn, linger in list(self.lingering.items()):
            if linger.deadline <= now:
                self._close(conn, lingering=True)

    # -- reading in the event loop ----------------------------------------------------------------
    def _frames(self, conn: TConn) -> bool:
        return not (self.cfg.is_ssl or conn.is_http2 or negotiation.prior_knowledge_allowed(self.cfg, conn.client)
                    or negotiation.upgrade_allowed(self.cfg, conn.client))

    def _readable(self, conn: TConn, _sock: Any) -> None:
        reading = self.reading.get(conn)
        if reading is None:
            return
        data = _recv(conn)
        if data is None:
            return
        if not data:                    # the client went away
            self._stop_reading(conn)
            self._close(conn)
            return
        self._take(conn, reading, data)

    def _take(self, conn: TConn, reading: _Reading, data: bytes) -> bool:
        """Add ``data``; hand the request to a thread or refuse it once that is decided. True if it was."""
        reading.started = True
        verdict = reading.framing.feed(data)
        if verdict is None:
            if reading.framing.expects_continue and not reading.continued:
                reading.continued = True
                self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            return False
        self._stop_reading(conn)
        if isinstance(verdict, Refusal):
            self._refuse(conn, verdict)
        else:
            self._hand_over(conn, bytes(reading.framing.buffer))
        return True

    def _hand_over(self, conn: TConn, request: bytes) -> None:
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(request)
        conn.data_ready = True
        super().enqueue_req(conn)

    def _stop_reading(self, conn: TConn) -> None:
        if self.reading.pop(conn, None) is not None:
            self._unregister(conn)

    # -- refusing ------------------------------------------------------------------------------------
    def _refuse(self, conn: TConn, refusal: Refusal) -> None:
        """Answer, half-close, and drain what the client still sends for a while (so it reads the answer)."""
        self._send(conn, refusal_response(refusal))
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        self.lingering[conn] = _Lingering(time.monotonic() + LINGER)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._drain, conn))

    def _drain(self, conn: TConn, _sock: Any) -> None:
        linger = self.lingering.get(conn)
        if linger is None:
            return
        data = _recv(conn)
        if data is None:
            return
        linger.drained += len(data)
        if not data or linger.drained > LINGER_BYTES:
            self._close(conn, lingering=True)

    @staticmethod
    def _send(conn: TConn, data: bytes) -> None:
        try:
            conn.sock.send(data)        # a few hundred bytes: the socket's buffer takes them at once
        except OSError:
            pass

    def _close(self, conn: TConn, *, lingering: bool = False) -> None:
        if lingering:
            if self.lingering.pop(conn, None) is None:
                return              # closed already
            self._unregister(conn)
        self.nr_conns -= 1
        conn.close()

    def _unregister(self, conn: TConn) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass


def _recv(conn: TConn) -> bytes | None:
    """What the client sent, ``b""`` when it went away (or the socket failed), ``None`` when nothing is there yet."""
    try:
        return conn.sock.recv(RECV)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""
