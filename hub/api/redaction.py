"""Keep secrets out of what the hub shows or sends: API answers (attempt excerpts) and alerts.

Two nets: the merchant's own connection secrets (decrypted only to be searched for and replaced), and
patterns that look like credentials whoever they belong to (bearer tokens, ``access_token=…`` and
``Authorization`` or ``*secret*`` fields).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from hub.models import Connection

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.crypto import SecretBox

REDACTED = "[redacted]"
_SECRET_KEY = re.compile(r"authori[sz]ation|token|secret|password|passwd|api[_-]?key|consumer[_-]?key|cookie"
                         r"|signature|credential", re.I)
_NOT_SECRET_KEY = re.compile(r"^sync_?token$", re.I)     # QuickBooks' object version, not a credential
_PATTERNS = (
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.I), r"\1 " + REDACTED),
    (re.compile(r"(?i)\b((?:access|refresh|id)_token|token|consumer_(?:key|secret)|client_secret|password"
                r"|api_key|oauth_signature|code)=([^&\s\"']+)"), r"\1=" + REDACTED),
    (re.compile(r"(?i)(\"(?:access|refresh)_token\"\s*:\s*\")[^\"]+"), r"\1" + REDACTED),
)
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
    for value in sorted(secrets, key=len, reverse=True):
        if value and len(value) >= _MIN_SECRET:
            text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _secret_key(key: Any) -> bool:
    return isinstance(key, str) and bool(_SECRET_KEY.search(key)) and not _NOT_SECRET_KEY.match(key)


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like value with secret-named fields and secret strings replaced."""
    secrets = tuple(secrets)
    if isinstance(value, dict):
        return {k: REDACTED if _secret_key(k) and v not in (None, "") else redact(v, secrets)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        return scrub(value, secrets)
    return value
