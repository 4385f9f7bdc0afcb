"""Bindings read and written for many sources at once (one query per kind, one transaction per step), and
the locks of many objects held together. ``Bindings`` is the ledger every step of ``sync.orders`` reads
before it calls out: what is bound is never sent again."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.models import Binding, utcnow
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

    def held(self, keys: Iterable[str]) -> contextlib.AbstractContextManager[None]:
        """Every lock of ``keys`` (``merchant:what`` keys) held together."""
        return held_all(self._sessions, keys)
