"""Pending store authorisations: the one-time links an operator hands a merchant, and the key exchange
each starts. Only hashes of the link token and of the exchange's ``state`` are stored, never the keys.
Also the console's sign-in counters (see ``hub.signin_limits``) and the one-time links that let a user set
a password (an invitation or an admin's reset; ``hub.password_links``), stored as hashes too."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models import Base, utcnow
from hub.scrubbing import ScrubbedText


class PendingAuthorization(Base):
    """One link → at most one key exchange. ``status``: ``issued`` (link not opened yet), ``started``
    (sent to the store), ``connecting`` (the store's callback is being handled), ``completed``,
    ``failed`` or ``denied`` (with ``reason``)."""

    __tablename__ = "pending_authorizations"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_pending_auth_token"),
                      UniqueConstraint("state_hash", name="uq_pending_auth_state"))
    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    platform: Mapped[str] = mapped_column(String(20), default="woocommerce")
    store_url: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64))         # sha256 hex of the link token
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    state_hash: Mapped[str | None] = mapped_column(String(64))   # sha256 hex of ``user_id``
    state_expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="issued")
    reason: Mapped[str | None] = mapped_column(ScrubbedText)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SignInCounter(Base):
    """Failed (or in-flight) console sign-ins counted against one key since ``window_start``: an e-mail
    from an address, or an address across e-mails. ``key`` is a sha256 hex, so no e-mail is kept here.
    Counted with one conditional ``UPDATE … SET failures = failures + 1``, so concurrent attempts cannot
    both pass the limit."""

    __tablename__ = "signin_counters"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(index=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)


class PasswordLink(Base):
    """A one-time link that sets ``user_id``'s password: ``invite`` (a new user) or ``reset`` (an admin's
    reset). Only the sha256 of the link's token is kept; the link works once (``used_at``), until
    ``expires_at``, and not after a newer link for the same user (``revoked_at``)."""

    __tablename__ = "password_links"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_password_link_token"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))                 # invite|reset
    token_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
