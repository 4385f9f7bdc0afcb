"""The webhook inbox: every receiver stores a verified delivery with ``store_delivery`` before acting on
it, one row per delivery (``WebhookEvent`` is unique on (platform, delivery id)), so the same delivery
twice is acknowledged and not processed again."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.models import WebhookEvent


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
