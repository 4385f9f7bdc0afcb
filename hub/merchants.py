"""Merchants and their connections: the service functions behind ``o2c merchant`` and ``o2c connect``."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.crypto import SecretBox
from hub.models import Connection, Merchant, SyncRun, utcnow

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")


class NotFound(LookupError):
    pass


def create_merchant(s: Session, name: str) -> Merchant:
    name = name.strip()
    if not name:
        raise ValueError("a merchant needs a name")
    merchant = Merchant(name=name[:200])
    s.add(merchant)
    s.flush()
    return merchant


def find_merchant(s: Session, ref: str) -> Merchant:
    """A merchant by id, or by exact name when that is unambiguous."""
    if ref.isdigit():
        merchant = s.get(Merchant, int(ref))
        if merchant is not None:
            return merchant
    found = s.scalars(select(Merchant).where(Merchant.name == ref)).all()
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise NotFound(f"several merchants are named {ref!r}: use the id")
    raise NotFound(f"no merchant {ref!r}")


def normalise_shop(shop: str) -> str:
    shop = shop.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    if not SHOP_DOMAIN.match(shop):
        raise ValueError(f"{shop!r} is not a shop domain like example.myshopify.com")
    return shop


def connect(s: Session, box: SecretBox, merchant: Merchant, platform: str, account: str,
            secrets: dict[str, Any], settings: dict[str, Any] | None = None) -> Connection:
    """Add the connection, or reconnect it with new credentials (waiting syncs resume)."""
    conn = s.scalar(select(Connection).where(Connection.platform == platform, Connection.account == account))
    if conn is not None and conn.merchant_id != merchant.id:
        raise ValueError(f"{platform} account {account} is connected to another merchant")
    if conn is None:
        conn = Connection(merchant_id=merchant.id, platform=platform, account=account)
        s.add(conn)
    conn.secrets = box.encrypt(secrets)
    conn.settings = {**(conn.settings or {}), **(settings or {})}
    conn.status = "active"
    conn.status_reason = None
    conn.token_expires_at = None
    s.flush()
    # runs that were waiting for this connection are due again now
    s.execute(update(SyncRun).where(SyncRun.merchant_id == merchant.id, SyncRun.status == "retrying",
                                    SyncRun.error_kind == "auth").values(next_attempt_at=utcnow()))
    return conn
