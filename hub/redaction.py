"""Keep secrets out of what the hub shows or sends: API answers (attempt excerpts) and alerts.

The second fence (the first is ``hub.scrubbing``, which scrubs every outside text as it is stored): the
merchant's own connection secrets (decrypted only to be searched for and replaced), the secrets the hub
holds, and patterns that look like credentials whoever they belong to (``connectors.redact``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from connectors.redact import REDACTED
from hub.models import Connection
from hub.scrubbing import scrub_text, scrub_value

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.crypto import SecretBox

__all__ = ["REDACTED", "connection_secrets", "redact", "scrub"]
_MIN_SECRET = 6


def connection_secrets(s: Session, box: SecretBox, merchant_id: int | None) -> set[str]:
    """The plain secret values of the merchant's connections (to search for, never to show)."""
    if merchant_id is None:
        return set()
    found: set[str] = set()
    for blob in s.scalars(select(Connection.secrets).where(Connection.merchant_id == merchant_id)):
        if not blob:
            continue
        found.add(blob)
        try:
            values = box.decrypt(blob)
        except Exception:  # noqa: BLE001 - an undecryptable row has nothing we could leak
            continue
        found.update(str(v) for v in values.values() if isinstance(v, str | int) and len(str(v)) >= _MIN_SECRET)
    return found


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every credential-looking pattern replaced."""
    return scrub_text(text, secrets)


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like value with secret-named fields and secret strings replaced."""
    return scrub_value(value, secrets)
