"""The bounds on a request from outside: ``MAX_BODY`` bytes, ``BODY_DEADLINE`` seconds in total; where one
HTTP/1.1 request ends, found as its bytes arrive (``RequestFraming``), and a total deadline on reading a
body from a socket (``ReadDeadline``).

``o2c serve``'s worker (``web.gunicorn_worker``) feeds each connection's bytes here as they come and hands
the request to a thread only when this says it is complete, so a thread never waits on a client. This is
not a second HTTP parser: it only finds the end of the head and of the body (``Content-Length`` or
``chunked``), bounds both, and refuses what could not be framed safely; gunicorn's parser reads the
request itself afterwards, from the buffer, and applies its own stricter checks.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from dataclasses import dataclass

MAX_BODY = 1024 * 1024          # every request body the hub takes (webhooks, console, API): larger is 413
BODY_DEADLINE = 5.0             # seconds from a request's first byte to its last, however it drips: later is 408
HEAD_LIMIT = 64 * 1024          # request line and headers (gunicorn's own limits are far below this in practice)
CHUNK_LINE_LIMIT = 8190         # one chunk-size line, as gunicorn bounds it
CHUNK_OVERHEAD = 256 * 1024     # chunk framing allowed on top of the body bound before the raw bytes count as too many
HEX = frozenset(b"0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Refusal:
    """The answer to a request that cannot be taken: its status and a one-line reason."""

    status: int
    message: str


class RequestFraming:
    """Feed a connection's bytes with :meth:`feed`; it answers ``None`` while more bytes are needed, ``True``
    once the request (head and body) is all in :attr:`buffer`, or a :class:`Refusal`.

    ``max_body`` bounds the body (decoded, for chunked ones): a larger announced ``Content-Length`` is refused
    as soon as the head is in, a chunked body as soon as its chunks add up to more."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.buffer = bytearray()
        self.expects_continue = False   # the client waits for "100 Continue" before it sends the body
        self._state = "head"
        self._pos = 0                   # where the next thing to look at starts in the buffer
        self._end = 0                   # Content-Length: where the body ends
        self._left = 0                  # chunked: data bytes left in the current chunk
        self._decoded = 0               # chunked: body bytes so far

    @property
    def head_done(self) -> bool:
        return self._state != "head"

    def feed(self, data: bytes) -> bool | Refusal | None:
        self.buffer += data
        if len(self.buffer) > HEAD_LIMIT + self.max_body + CHUNK_OVERHEAD and self._state != "done":
            return Refusal(413, f"body larger than {self.max_body} bytes")
        while True:
            step = getattr(self, f"_{self._state}")()
            if step is not False:       # False: the state moved on, look again
                return step

    # -- states: each returns None (more bytes needed), True (complete), a Refusal, or False (moved on) --
    def _head(self) -> bool | Refusal | None:
        start = 0
        while self.buffer.startswith(b"\r\n", start):   # empty lines before a request line are ignored
            start += 2
        end = self.buffer.find(b"\r\n\r\n", max(start, self._pos - 3))
        if end < 0:
            self._pos = len(self.buffer)
            return Refusal(431, "request headers too large") if len(self.buffer) > HEAD_LIMIT else None
        return self._framing(bytes(self.buffer[start:end]), end + 4)

    def _framing(self, head: bytes, body_start: int) -> bool | Refusal:
        request_line, *lines = head.split(b"\r\n")
        lengths, codings, expect = [], [], b""
        for line in lines:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip(b" \t")
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings += [c.strip(b" \t").lower() for c in value.split(b",")]
            elif name == b"expect":
                expect = value.lower()
        http11 = request_line.endswith(b"HTTP/1.1")
        if codings:
            # gunicorn refuses a body it cannot frame (a coding other than a final chunked, or chunked with a
            # Content-Length too) before reading any of it; refused here as well, so nothing waits for it
            if codings[-1] != b"chunked" or lengths or not http11:
                return Refusal(400, "unsupported Transfer-Encoding")
            self._state, self._pos = "chunk_size", body_start
        elif lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit() or not lengths[0].isascii() or len(lengths[0]) > 18:
                return Refusal(400, "invalid Content-Length")
            length = int(lengths[0])
            if length > self.max_body:
                return Refusal(413, f"body larger than {self.max_body} bytes")
            self._state, self._end = "length", body_start + length
        else:
            self._state = "done"        # no body
            return True
        self.expects_continue = http11 and expect == b"100-continue"
        return False

    def _length(self) -> bool | None:
        if len(self.buffer) >= self._end:
            self._state = "done"
            return True
        return None

    def _chunk_size(self) -> bool | Refusal | None:
        eol = self.buffer.find(b"\r\n", self._pos)
        if eol < 0:
            return Refusal(400, "chunk size line too long") if len(self.buffer) - self._pos > CHUNK_LINE_LIMIT else None
        size = bytes(self.buffer[self._pos:eol]).split(b";", 1)[0].rstrip(b" \t")
        if not size or any(c not in HEX for c in size):
            return Refusal(400, "invalid chunk size")
        length = int(size, 16)
        if self._decoded + length > self.max_body:
            return Refusal(413, f"body larger than {self.max_body} bytes")
        self._pos, self._left = eol + 2, length
        self._state = "chunk_data" if length else "trailers"
        return False

    def _chunk_data(self) -> bool | Refusal | None:
        if len(self.buffer) - self._pos < self._left + 2:
            return None
        self._pos += self._left
        if self.buffer[self._pos:self._pos + 2] != b"\r\n":
            return Refusal(400, "chunk not terminated by CRLF")
        self._decoded += self._left
        self._pos += 2
        self._state = "chunk_size"
        return False

    def _trailers(self) -> bool | Refusal | None:
        if len(self.buffer) - self._pos < 2:
            return None
        if self.buffer.startswith(b"\r\n", self._pos) or self.buffer.find(b"\r\n\r\n", self._pos) >= 0:
            self._state = "done"
            return True
        return Refusal(431, "trailers too large") if len(self.buffer) - self._pos > HEAD_LIMIT else None

    def _done(self) -> bool:
        return True


class ReadDeadline:
    """A total deadline on reading a request body from ``sock`` (``with ReadDeadline(sock, 5) as d:``, then
    ``d.passed``): a socket timeout bounds each silent wait, and at the deadline the socket's read side is
    shut, so a read that a dripping client kept going returns at once (a timeout alone restarts with every
    byte). The write side stays open for the answer. Used where the server hands the application a socket
    that may still be waiting for the body (werkzeug); under ``web.gunicorn_worker`` it never has to act.
    One watcher thread per process keeps every deadline (no thread is started per request)."""

    def __init__(self, sock: socket.socket | None, seconds: float) -> None:
        self.sock, self.seconds, self.passed = sock, seconds, False
        self.at = 0.0
        self.open = False
        self._prior: float | None = None

    def expire(self) -> None:
        self.passed = True
        try:
            self.sock.shutdown(socket.SHUT_RD)  # type: ignore[union-attr]
        except OSError:
            pass

    def __enter__(self) -> ReadDeadline:
        if self.sock is not None:
            self._prior = self.sock.gettimeout()
            self.sock.settimeout(self.seconds)
            self.at = time.monotonic() + self.seconds
            _WATCHER.add(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.sock is not None:
            _WATCHER.remove(self)
            try:
                self.sock.settimeout(self._prior)
            except OSError:
                pass


class _Watcher:
    """The deadlines of the open ``ReadDeadline`` blocks, earliest first, and the thread that keeps them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, ReadDeadline]] = []
        self._thread: threading.Thread | None = None
        self._count = itertools.count()

    def add(self, deadline: ReadDeadline) -> None:
        with self._cond:
            deadline.open = True
            heapq.heappush(self._heap, (deadline.at, next(self._count), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._keep, name="o2c-read-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._cond.notify()

    def remove(self, deadline: ReadDeadline) -> None:
        with self._cond:
            deadline.open = False       # its heap entry is dropped when it comes up

    def _keep(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][0] <= now or not self._heap[0][2].open):
                    _at, _n, deadline = heapq.heappop(self._heap)
                    if deadline.open:
                        deadline.open = False
                        deadline.expire()
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


_WATCHER = _Watcher()
