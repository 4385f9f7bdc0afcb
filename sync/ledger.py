"""Bindings: which external object stands for which source object (the binder of the connector pattern).

A binding is unique per (merchant, source, target kind): looking one up before creating anything is
what makes every step idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection as DbConnection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.models import Binding, Connection, utcnow


@dataclass(frozen=True)
class Source:
    """A source object: e.g. ("shopify", "order", "4501") or ("hub", "buyer", "email:a@b.c").

    ``store`` names the store whose ids ``id`` is unique within (a WooCommerce store URL, see
    ``Ledger.order_source``); it is "" for ids that are unique across stores and for the hub's own sources."""

    platform: str
    type: str
    id: str
    store: str = ""


# WooCommerce numbers its orders per store; Shopify's ids are unique across every shop.
PER_STORE_PLATFORMS = frozenset({"woocommerce"})


def store_key(platform: str, store: str | None) -> str:
    """The ``Source.store`` of an order (or refund) of ``platform`` in ``store`` (a shop domain or URL)."""
    return (store or "") if platform in PER_STORE_PLATFORMS else ""


_accounts: dict[tuple[str, int], str] = {}   # (database, connection id) → account: it never changes


def connection_account(db: Session | DbConnection, connection_id: int | None) -> str:
    """The store (shop domain or store URL) behind a connection, "" when there is none."""
    if connection_id is None:
        return ""
    engine = db.get_bind().engine if isinstance(db, Session) else db.engine
    key = (str(engine.url), connection_id)
    if key not in _accounts:
        account = db.execute(select(Connection.account).where(Connection.id == connection_id)).scalar()
        if account is None:
            return ""
        _accounts[key] = account
    return _accounts[key]


class Ledger:
    def __init__(self, sessions: sessionmaker[Session], merchant_id: int) -> None:
        self._sessions = sessions
        self.merchant_id = merchant_id

    def store_of(self, platform: str, connection_id: int | None) -> str:
        """The ``Source.store`` of what the store behind ``connection_id`` numbers (see ``order_source``)."""
        if platform not in PER_STORE_PLATFORMS or connection_id is None:
            return ""
        with self._sessions() as s:
            return connection_account(s, connection_id)

    def order_source(self, platform: str, order_id: str, connection_id: int | None,
                     type_: str = "order") -> Source:
        """The source of order ``order_id`` (or of a refund, ``type_``) of the store behind ``connection_id``."""
        return Source(platform, type_, str(order_id), self.store_of(platform, connection_id))

    def find(self, source: Source, target_platform: str, target_type: str) -> Binding | None:
        with self._sessions() as s:
            return s.scalar(self._query(source, target_platform, target_type))

    def find_by_target(self, target_platform: str, target_type: str, target_id: str,
                       source_type: str | None = None) -> Binding | None:
        """The binding that points at an external object (e.g. which order a QuickBooks invoice is for)."""
        with self._sessions() as s:
            q = select(Binding).where(Binding.merchant_id == self.merchant_id,
                                      Binding.target_platform == target_platform,
                                      Binding.target_type == target_type, Binding.target_id == str(target_id))
            if source_type is not None:
                q = q.where(Binding.source_type == source_type)
            return s.scalar(q.order_by(Binding.id).limit(1))

    def target_id(self, source: Source, target_platform: str, target_type: str) -> str | None:
        b = self.find(source, target_platform, target_type)
        return b.target_id if b else None

    def bind(self, source: Source, target_platform: str, target_type: str, target_id: str, *,
             data: dict[str, Any] | None = None, run_id: int | None = None) -> None:
        """Record (or move) the binding, committed before this returns."""
        for _ in range(3):
            with self._sessions() as s:
                row = s.scalar(self._query(source, target_platform, target_type))
                if row is None:
                    s.add(Binding(merchant_id=self.merchant_id, source_platform=source.platform,
                                  source_type=source.type, source_id=source.id, source_store=source.store,
                                  target_platform=target_platform, target_type=target_type,
                                  target_id=target_id, data=data or {}, sync_run_id=run_id))
                else:
                    row.target_id = target_id
                    row.data = {**(row.data or {}), **(data or {})}
                    row.sync_run_id = run_id or row.sync_run_id
                    row.updated_at = utcnow()
                try:
                    s.commit()
                    return
                except IntegrityError:  # a concurrent insert of the same binding: update it instead
                    s.rollback()
        raise RuntimeError(f"could not record binding for {source}")

    def _query(self, source: Source, target_platform: str, target_type: str):  # noqa: ANN202
        return select(Binding).where(
            Binding.merchant_id == self.merchant_id, Binding.source_platform == source.platform,
            Binding.source_type == source.type, Binding.source_id == source.id,
            Binding.source_store == source.store, Binding.target_platform == target_platform,
            Binding.target_type == target_type)
