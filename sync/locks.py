"""Leased locks in the database, so events for the same order (or buyer, or SKU) are worked on by one
worker at a time, across processes and hosts, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta

from sqlalchemy import and_, delete, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.models import SourceLock, utcnow


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class LockBusy(Exception):
    """Someone else holds the lock (not an error: the work is deferred)."""


def try_acquire(sessions: sessionmaker[Session], key: str, holder: str, ttl: float) -> bool:
    expires = utcnow() + timedelta(seconds=ttl)
    with sessions() as s:
        try:   # a plain INSERT (no unit of work to flush): taken, or the key is held
            s.execute(insert(SourceLock).values(key=key, holder=holder, expires_at=expires))
            s.commit()
            return True
        except IntegrityError:
            s.rollback()
        taken = s.execute(update(SourceLock)
                          .where(SourceLock.key == key,
                                 (SourceLock.expires_at < utcnow()) | (SourceLock.holder == holder))
                          .values(holder=holder, expires_at=expires))
        s.commit()
        return taken.rowcount == 1


def extend(sessions: sessionmaker[Session], key: str, holder: str, ttl: float) -> None:
    with sessions() as s:
        s.execute(update(SourceLock).where(SourceLock.key == key, SourceLock.holder == holder)
                  .values(expires_at=utcnow() + timedelta(seconds=ttl)))
        s.commit()


def release(sessions: sessionmaker[Session], key: str, holder: str) -> None:
    with sessions() as s:
        s.execute(delete(SourceLock).where(SourceLock.key == key, SourceLock.holder == holder))
        s.commit()


@contextlib.contextmanager
def held(sessions: sessionmaker[Session], key: str, *, ttl: float = 60.0, wait: float = 30.0) -> Iterator[None]:
    """Hold ``key`` for the block, waiting up to ``wait`` seconds for it; ``LockBusy`` after that."""
    holder = holder_id() + ":" + key
    deadline = time.monotonic() + wait
    pause = 0.02
    while not try_acquire(sessions, key, holder, ttl):
        if time.monotonic() >= deadline:
            raise LockBusy(key)
        time.sleep(pause)
        pause = min(pause * 2, 0.5)
    try:
        yield
    finally:
        release(sessions, key, holder)


def try_acquire_all(sessions: sessionmaker[Session], holders: dict[str, str], ttl: float) -> bool:
    """Take every lock of ``holders`` (key → holder) in one INSERT when none of them is held at all; False,
    with none taken, when any key has a row (held, or lapsed: the caller then takes them one by one, with
    ``try_acquire``'s takeover of lapsed locks)."""
    if not holders:
        return True
    expires = utcnow() + timedelta(seconds=ttl)
    with sessions() as s:
        try:
            s.execute(insert(SourceLock), [{"key": k, "holder": h, "expires_at": expires} for k, h in holders.items()])
            s.commit()
            return True
        except IntegrityError:
            s.rollback()
            return False


def release_all(sessions: sessionmaker[Session], holders: dict[str, str]) -> None:
    """``release`` of every lock of ``holders`` (key → holder), in one transaction."""
    items = sorted(holders.items())
    with sessions() as s:
        for start in range(0, len(items), 200):
            s.execute(delete(SourceLock).where(or_(*(and_(SourceLock.key == k, SourceLock.holder == h)
                                                     for k, h in items[start:start + 200]))))
        s.commit()


@contextlib.contextmanager
def held_all(sessions: sessionmaker[Session], keys: Iterable[str], *, ttl: float = 60.0,
             wait: float = 30.0) -> Iterator[None]:
    """``held`` for every key of ``keys`` together: taken in one statement when none is held, else one by
    one in sorted order (so two holders of several keys never wait on each other in a circle)."""
    ordered = sorted(set(keys))
    holders = {key: holder_id() + ":" + key for key in ordered}
    if try_acquire_all(sessions, holders, ttl):
        try:
            yield
        finally:
            release_all(sessions, holders)
        return
    with contextlib.ExitStack() as stack:
        for key in ordered:
            stack.enter_context(held(sessions, key, ttl=ttl, wait=wait))
        yield
