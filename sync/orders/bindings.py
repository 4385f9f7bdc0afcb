"""Bindings read and written for many sources at once (one query per kind, one transaction per step), and
the locks of many objects held together. ``Bindings`` is the ledger every step of ``sync.orders`` reads
before it calls out: what is bound is never sent again."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.models import Binding, CreateAttempt, utcnow
from sync import locks
from sync.ledger import Ledger, Source


# -- bindings for many sources ---------------------------------------------------------------------
def bound(sessions: sessionmaker[Session], merchant_id: int, sources: Iterable[Source], target_platform: str,
          target_type: str) -> dict[Source, Binding]:
    """The existing bindings of ``sources`` to ``target_type`` (one query per source kind and 500 ids)."""
    by_kind: dict[tuple[str, str, str], set[str]] = {}
    for src in sources:
        by_kind.setdefault((src.platform, src.type, src.store), set()).add(src.id)
    out: dict[Source, Binding] = {}
    with sessions() as s:
        for (platform, type_, store), ids in by_kind.items():
            id_list = sorted(ids)
            for start in range(0, len(id_list), 500):
                for b in s.scalars(select(Binding).where(
                        Binding.merchant_id == merchant_id, Binding.source_platform == platform,
                        Binding.source_type == type_, Binding.source_store == store,
                        Binding.source_id.in_(id_list[start:start + 500]),
                        Binding.target_platform == target_platform, Binding.target_type == target_type)):
                    out[Source(b.source_platform, b.source_type, b.source_id, b.source_store)] = b
    return out


@dataclass
class NewBinding:
    source: Source
    target_platform: str
    target_type: str
    target_id: str
    data: dict[str, Any]
    run_id: int | None


def bind_many(sessions: sessionmaker[Session], merchant_id: int, rows: list[NewBinding]) -> None:
    """Record (or move) many bindings in one transaction, committed before this returns (a concurrent insert
    of one of them makes it fall back to one transaction per binding)."""
    if not rows:
        return
    unique = {(r.source, r.target_platform, r.target_type): r for r in rows}  # one row per binding: the last
    rows = list(unique.values())
    existing = {(b.source_platform, b.source_type, b.source_id, b.source_store, b.target_platform,
                 b.target_type): b
                for kind in {(r.target_platform, r.target_type) for r in rows}
                for b in bound(sessions, merchant_id, [r.source for r in rows if (r.target_platform, r.target_type)
                                                       == kind], *kind).values()}
    try:
        with sessions() as s:
            now = utcnow()
            for r in rows:
                key = (r.source.platform, r.source.type, r.source.id, r.source.store, r.target_platform,
                       r.target_type)
                row = existing.get(key)
                if row is None:
                    s.add(Binding(merchant_id=merchant_id, source_platform=r.source.platform,
                                  source_type=r.source.type, source_id=r.source.id, source_store=r.source.store,
                                  target_platform=r.target_platform,
                                  target_type=r.target_type, target_id=r.target_id, data=r.data, sync_run_id=r.run_id))
                else:
                    row = s.merge(row)
                    row.target_id = r.target_id
                    row.data = {**(row.data or {}), **r.data}
                    row.sync_run_id = r.run_id or row.sync_run_id
                    row.updated_at = now
            s.commit()
            return
    except IntegrityError:  # a concurrent insert of one of them: one transaction per binding instead
        pass
    ledger = Ledger(sessions, merchant_id)
    for r in rows:
        ledger.bind(r.source, r.target_platform, r.target_type, r.target_id, data=r.data, run_id=r.run_id)


# -- create attempts: what may exist on a platform without a binding ----------------------------------
def attempted(sessions: sessionmaker[Session], merchant_id: int, sources: Iterable[Source], target_platform: str,
              target_type: str) -> dict[Source, int]:
    """Those of ``sources`` the hub has asked ``target_platform`` to create a ``target_type`` for before, each
    with the number of times the platform refused it outright."""
    wanted = list(dict.fromkeys(sources))
    out: dict[Source, int] = {}
    with sessions() as s:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            keys = [(src.platform, src.type, src.id, src.store) for src in chunk]
            for *key, refusals in s.execute(select(
                    CreateAttempt.source_platform, CreateAttempt.source_type, CreateAttempt.source_id,
                    CreateAttempt.source_store, CreateAttempt.refusals).where(
                    CreateAttempt.merchant_id == merchant_id, CreateAttempt.target_platform == target_platform,
                    CreateAttempt.target_type == target_type,
                    tuple_(CreateAttempt.source_platform, CreateAttempt.source_type, CreateAttempt.source_id,
                           CreateAttempt.source_store).in_(keys))):
                out[Source(*key)] = refusals or 0
    return out


def note_refusals(sessions: sessionmaker[Session], merchant_id: int, sources: Iterable[Source],
                  target_platform: str, target_type: str) -> None:
    """The platform refused these creates outright (nothing was made): their next request gets a new id."""
    wanted = list(dict.fromkeys(sources))
    if not wanted:
        return
    with sessions() as s:
        for start in range(0, len(wanted), 500):
            keys = [(src.platform, src.type, src.id, src.store) for src in wanted[start:start + 500]]
            s.execute(update(CreateAttempt).where(
                CreateAttempt.merchant_id == merchant_id, CreateAttempt.target_platform == target_platform,
                CreateAttempt.target_type == target_type,
                tuple_(CreateAttempt.source_platform, CreateAttempt.source_type, CreateAttempt.source_id,
                       CreateAttempt.source_store).in_(keys))
                .values(refusals=CreateAttempt.refusals + 1).execution_options(synchronize_session=False))
        s.commit()


def note_attempts(sessions: sessionmaker[Session], merchant_id: int, sources: dict[Source, int | None],
                  target_platform: str, target_type: str, *, known: Collection[Source] | None = None) -> None:
    """Note (and commit) that a ``target_type`` is about to be asked for each of ``sources`` (source → run);
    a note made before stays. ``known``: the sources already noted, when the caller has just read them
    (``attempted``); else they are read here."""
    if not sources:
        return
    if known is None:
        known = attempted(sessions, merchant_id, sources, target_platform, target_type)
    new = [(src, run_id) for src, run_id in sources.items() if src not in known]
    try:
        with sessions() as s:
            s.add_all(_attempt(merchant_id, src, run_id, target_platform, target_type) for src, run_id in new)
            s.commit()
            return
    except IntegrityError:   # a concurrent note of one of them: note each on its own
        pass
    for src, run_id in new:
        try:
            with sessions() as s:
                s.add(_attempt(merchant_id, src, run_id, target_platform, target_type))
                s.commit()
        except IntegrityError:
            continue


def _attempt(merchant_id: int, src: Source, run_id: int | None, target_platform: str,
             target_type: str) -> CreateAttempt:
    return CreateAttempt(merchant_id=merchant_id, source_platform=src.platform, source_type=src.type,
                         source_id=src.id, source_store=src.store, target_platform=target_platform,
                         target_type=target_type, sync_run_id=run_id)


@contextlib.contextmanager
def held_all(sessions: sessionmaker[Session], keys: Iterable[str], *, ttl: float = 300.0,
             wait: float = 60.0) -> Iterator[None]:
    """Hold every lock of ``keys`` (in one statement when none is held, else taken in sorted order, so two
    batches never wait on each other in a circle)."""
    with locks.held_all(sessions, keys, ttl=ttl, wait=wait):
        yield


class Bindings(Ledger):
    """The merchant's ledger with the many-at-once reads and writes the list-shaped steps use."""

    def bound(self, sources: Iterable[Source], target_platform: str, target_type: str) -> dict[Source, Any]:
        return bound(self._sessions, self.merchant_id, sources, target_platform, target_type)

    def bind_many(self, rows: list[NewBinding]) -> None:
        bind_many(self._sessions, self.merchant_id, rows)

    def attempted(self, sources: Iterable[Source], target_platform: str, target_type: str) -> dict[Source, int]:
        return attempted(self._sessions, self.merchant_id, sources, target_platform, target_type)

    def note_refusals(self, sources: Iterable[Source], target_platform: str, target_type: str) -> None:
        note_refusals(self._sessions, self.merchant_id, sources, target_platform, target_type)

    def note_attempts(self, sources: dict[Source, int | None], target_platform: str, target_type: str, *,
                      known: Collection[Source] | None = None) -> None:
        note_attempts(self._sessions, self.merchant_id, sources, target_platform, target_type, known=known)

    def held(self, keys: Iterable[str]) -> contextlib.AbstractContextManager[None]:
        """Every lock of ``keys`` (``merchant:what`` keys) held together."""
        return held_all(self._sessions, keys)
