"""OAuth flows in progress: one row per ``state`` the hub handed to a platform's consent page.

Only the sha256 of the state is stored (the browser keeps the state itself in its signed session
cookie); a state works once, for one platform, until ``expires_at``. Never holds a token.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models import Base, utcnow
from hub.scrubbing import ScrubbedText


class OAuthState(Base):
    """``status``: ``issued`` (sent to the platform), ``used`` (its callback is being handled),
    ``completed`` (``connection_id`` is what it connected) or ``failed`` (``reason``)."""

    __tablename__ = "oauth_states"
    __table_args__ = (UniqueConstraint("state_hash", name="uq_oauth_state_hash"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))                 # shopify|quickbooks|hubspot
    state_hash: Mapped[str] = mapped_column(String(64))               # sha256 hex of the state
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(254))                   # who started it (e-mail or "shopify")
    account: Mapped[str | None] = mapped_column(String(255))          # the shop domain (Shopify)
    reconnect_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))  # the connection to renew
    status: Mapped[str] = mapped_column(String(20), default="issued")
    reason: Mapped[str | None] = mapped_column(ScrubbedText)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
