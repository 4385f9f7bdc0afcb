"""The hub's shared services for one process: settings, database, secrets and job dispatch.

The web app, the CLI and the worker each build one ``Hub``; job functions find it with ``current_hub()``.
The hub is handed how to dispatch jobs (``dispatcher_factory``, else the one ``sync`` provides with
``provide_dispatcher`` when it is imported): state never imports the orchestration above it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connectors.ratelimit import MemoryBackend, RateLimiter, RedisBackend
from hub import db
from hub.crypto import SecretBox
from hub.inbox import InboxWriter, make_writer
from hub.settings import Settings

log = logging.getLogger("o2c")


class Dispatcher(Protocol):
    """What runs the jobs (``sync.dispatch``: the embedded runner or rq)."""

    def dispatch(self, run_id: int) -> None: ...
    def sweep(self) -> int: ...
    def stop(self) -> None: ...


@runtime_checkable
class EventRouter(Protocol):
    """A dispatcher that also turns stored inbox events into runs itself, later (``sync.routing``): the
    receiver then only stores and hands the event over. Without it, the receiver routes at once."""

    def route_event(self, event_id: int) -> None: ...


DispatcherFactory = Callable[["Hub"], Dispatcher]
_provided: DispatcherFactory | None = None


def provide_dispatcher(factory: DispatcherFactory) -> None:
    """Set the dispatcher factory of every hub built without its own (``sync`` calls it on import)."""
    global _provided
    _provided = factory


class Hub:
    def __init__(self, settings: Settings | None = None, *, migrate: bool = True,
                 dispatcher_factory: DispatcherFactory | None = None) -> None:
        self.settings = settings or Settings.from_env()
        db.private_folder(self.settings.instance_path)   # the key file and the SQLite file: owner only
        self.secrets = SecretBox.from_settings(self.settings.encryption_key, self.settings.instance_path)
        self.engine: Engine = db.make_engine(self.settings.database_url)
        try:
            if migrate:
                db.upgrade(self.engine, box=self.secrets)
        except BaseException:
            self.engine.dispose()
            raise
        self.sessions: sessionmaker[Session] = db.make_session_factory(self.engine)
        self._dispatcher: Dispatcher | None = None
        self._dispatcher_factory = dispatcher_factory
        self._limiter: RateLimiter | None = None
        self._inbox: InboxWriter | None = None
        self._lock = threading.Lock()

    @property
    def inbox(self) -> InboxWriter:
        """The Shopify receiver's inbox writer (``hub.inbox``): its own connections, made on first use."""
        with self._lock:
            if self._inbox is None:
                self._inbox = make_writer(self.settings.database_url)
            return self._inbox

    @property
    def limiter(self) -> RateLimiter:
        """Calls per (platform, account) under the published limits: in memory, or in Redis so that
        every worker on every host shares one budget."""
        with self._lock:
            if self._limiter is None:
                if self.settings.redis_url:
                    from redis import Redis

                    backend: MemoryBackend | RedisBackend = RedisBackend(Redis.from_url(self.settings.redis_url))
                else:
                    backend = MemoryBackend()
                self._limiter = RateLimiter(backend)
            return self._limiter

    @property
    def dispatcher(self) -> Dispatcher:
        with self._lock:
            if self._dispatcher is None:
                factory = self._dispatcher_factory or _provided
                if factory is None:
                    raise RuntimeError("no job dispatcher: import sync (or pass dispatcher_factory) first")
                self._dispatcher = factory(self)
            return self._dispatcher

    def queue_depth(self) -> int | None:
        """Jobs waiting (or, embedded, in flight) now, without starting a runner: the rq queue's length in
        scale-out mode, the in-process pool's runs in embedded mode (0 before any was started here); None
        when the dispatcher cannot tell."""
        with self._lock:
            started = self._dispatcher
        if started is None and not self.settings.redis_url:
            return 0
        depth = getattr(started or self.dispatcher, "depth", None)
        return depth() if depth is not None else None

    def session(self):  # noqa: ANN201 - a context manager yielding a Session
        return db.session_scope(self.sessions)

    def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.stop()
        if self._inbox is not None:
            self._inbox.close()
        self.engine.dispose()


_current: Hub | None = None
_current_lock = threading.Lock()


def current_hub() -> Hub:
    """The process's hub, built from the environment on first use (rq job functions use this)."""
    global _current
    with _current_lock:
        if _current is None:
            _current = Hub()
        return _current


def set_current_hub(hub: Hub | None) -> None:
    global _current
    with _current_lock:
        _current = hub
