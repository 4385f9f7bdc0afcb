"""The webhook inbox: every receiver stores a verified delivery before acting on it, one row per delivery
(``WebhookEvent`` is unique on (platform, delivery id)), so the same delivery twice is acknowledged and
not processed again.

Two ways in. ``store_delivery`` adds the row in the caller's ORM session (the WooCommerce, QuickBooks and
compliance receivers, which act on the delivery in the same transaction). ``InboxWriter`` is the Shopify
order receiver's fast path: one statement that looks the shop's connection up and inserts the row
(``received``: a job turns it into its run, ``sync.routing``), committed before it returns:

* PostgreSQL: a small pool of psycopg connections per process, in autocommit, the statement prepared;
  a connection the server dropped is replaced once and the statement run again (an insert that did not
  commit left nothing; one that did is then a duplicate, and a duplicate is answered 200 all the same).
* SQLite: one committer thread per process with its own connection (WAL, ``synchronous=FULL``: a commit
  is on disk when it returns). Requests that arrive while a commit is under way wait for the next one,
  which takes all of them in one transaction: one fsync for the group, each answered after it.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.models import WebhookEvent, utcnow

RECEIVED = "received"       # stored, not yet turned into a run (``sync.routing``)
GROUP_MAX = 256             # SQLite: deliveries committed together at most
WAIT = 30.0                 # seconds a request waits for its commit before it fails (and Shopify retries)


def store_delivery(s: Session, *, platform: str, delivery_id: str, topic: str, payload: str,
                   account: str | None = None, merchant_id: int | None = None, connection_id: int | None = None,
                   status: str = "ignored") -> WebhookEvent | None:
    """Add the delivery's inbox row (flushed, not committed); ``None`` when this delivery is stored already,
    and then the session has been rolled back."""
    event = WebhookEvent(platform=platform, delivery_id=delivery_id[:255], topic=topic[:100],
                         account=account[:255] if account is not None else None, merchant_id=merchant_id,
                         connection_id=connection_id, payload=payload, status=status)
    s.add(event)
    try:
        s.flush()
    except IntegrityError:
        s.rollback()
        return None
    return event


@dataclass(frozen=True)
class Delivery:
    """A verified delivery for the fast path: the connection is the one of ``platform`` and ``account``."""

    platform: str
    delivery_id: str
    topic: str
    account: str
    payload: str

    def params(self, now: datetime) -> dict[str, Any]:
        return {"platform": self.platform, "delivery": self.delivery_id[:255], "topic": self.topic[:100],
                "account": self.account[:255], "payload": self.payload, "status": RECEIVED, "now": now}


# the connection's lookup and the insert in one statement; no row back: a duplicate or an unknown account
_INSERT = """INSERT INTO webhook_events (platform, delivery_id, topic, account, merchant_id, connection_id,
    status, payload, received_at)
SELECT CAST({platform} AS VARCHAR(20)), {delivery}, {topic}, CAST({account} AS VARCHAR(255)),
    c.merchant_id, c.id, {status}, {payload}, {now}
FROM connections c WHERE c.platform = {platform} AND c.account = {account} AND c.status <> 'disconnected'
ON CONFLICT (platform, delivery_id) DO NOTHING RETURNING id"""
_KNOWN = ("SELECT 1 FROM connections WHERE platform = {platform} AND account = {account} "
          "AND status <> 'disconnected'")


def _sql(template: str, style: str) -> str:
    names = ("platform", "delivery", "topic", "account", "payload", "status", "now")
    return template.format(**{n: style % n for n in names})


class InboxWriter:
    """Stores deliveries for this process (see the module); ``insert`` returns the new row's id, or
    ``None`` for a delivery stored already or an account no live connection has (``known`` tells which)."""

    def insert(self, delivery: Delivery) -> int | None:
        raise NotImplementedError

    def known(self, platform: str, account: str) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        return None


def make_writer(database_url: str) -> InboxWriter:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return SqliteInbox(url.database or "")
    return PostgresInbox(url.set(drivername="postgresql").render_as_string(hide_password=False))


class PostgresInbox(InboxWriter):
    def __init__(self, dsn: str, size: int = 8) -> None:
        self.dsn, self.size = dsn, size
        self._idle: list[Any] = []
        self._opened = 0
        self._closed = False   # after close(), a connection given back is closed, not kept
        self._cond = threading.Condition()
        self._insert = _sql(_INSERT, "%%(%s)s")
        self._known = _sql(_KNOWN, "%%(%s)s")

    def _take(self) -> Any:
        import psycopg

        with self._cond:
            while not self._idle and self._opened >= self.size:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._opened += 1
        try:
            return psycopg.connect(self.dsn, autocommit=True)
        except BaseException:
            self._give(None)
            raise

    def _give(self, conn: Any) -> None:
        with self._cond:
            if conn is not None and not conn.closed and self._closed:
                conn.close()   # in use while the writer was closed: not left open for the collector
            if conn is None or conn.closed:
                self._opened -= 1
            else:
                self._idle.append(conn)
            self._cond.notify()

    def _run(self, sql: str, params: dict[str, Any]) -> Any:
        import psycopg

        for attempt in (1, 2):
            conn = self._take()
            try:
                row = conn.execute(sql, params, prepare=True).fetchone()
            except psycopg.OperationalError:
                conn.close()
                self._give(None)
                if attempt == 2 or not conn.broken:
                    raise
                continue  # the server dropped an idle connection: once more on a new one
            except BaseException:
                conn.close()
                self._give(None)
                raise
            self._give(conn)
            return row
        return None  # pragma: no cover - the loop returns or raises

    def insert(self, delivery: Delivery) -> int | None:
        row = self._run(self._insert, delivery.params(utcnow()))
        return None if row is None else int(row[0])

    def known(self, platform: str, account: str) -> bool:
        return self._run(self._known, {"platform": platform, "account": account[:255]}) is not None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for conn in self._idle:
                conn.close()
                self._opened -= 1
            self._idle.clear()


class _Pending:
    __slots__ = ("params", "done", "row", "error")

    def __init__(self, params: dict[str, Any]) -> None:
        self.params, self.done, self.row, self.error = params, threading.Event(), None, None


def _busy(conn: sqlite3.Connection, statement: str) -> None:
    """Run ``statement``, retried while another process holds the write lock (for at most ``WAIT`` s)."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            conn.execute(statement)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.0005)


class SqliteInbox(InboxWriter):
    def __init__(self, path: str) -> None:
        self.path = path
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._insert = _sql(_INSERT, ":%s")
        self._known = _sql(_KNOWN, ":%s")

    def _connect(self) -> sqlite3.Connection:
        # no busy timeout: SQLite's own waits grow to 100 ms a try; ``_busy`` retries every half millisecond
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")   # a committed delivery is on disk: the 200 may be sent
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _submit(self, params: dict[str, Any]) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._commit_loop, name="o2c-inbox-commit", daemon=True)
                self._thread.start()
        pending = _Pending(params)
        self._queue.put(pending)
        if not pending.done.wait(WAIT):
            raise TimeoutError("the inbox commit did not finish in time")
        if pending.error is not None:
            raise pending.error
        return pending.row

    def _commit_loop(self) -> None:
        conn = self._connect()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                group = [first]
                while len(group) < GROUP_MAX:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._queue.put(None)   # stop after this group
                        break
                    group.append(more)
                self._commit(conn, group)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, group: list[_Pending]) -> None:
        try:
            _busy(conn, "BEGIN IMMEDIATE")   # the write lock, taken before the first insert
            for p in group:
                p.row = conn.execute(self._insert, p.params).fetchone()
            _busy(conn, "COMMIT")
        except Exception as exc:  # noqa: BLE001 - every request of the group hears of it
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for p in group:
                p.row, p.error = None, exc
        for p in group:
            p.done.set()

    def insert(self, delivery: Delivery) -> int | None:
        params = delivery.params(utcnow())
        params["now"] = params["now"].isoformat(sep=" ", timespec="microseconds")  # as SQLAlchemy stores it
        row = self._submit(params)
        return None if row is None else int(row[0])

    def known(self, platform: str, account: str) -> bool:
        conn = sqlite3.connect(self.path, timeout=WAIT)
        try:
            params = {"platform": platform, "account": account[:255]}
            return conn.execute(self._known, params).fetchone() is not None
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._queue.put(None)
                self._thread.join(timeout=WAIT)
