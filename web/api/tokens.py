"""API tokens: made for a user, shown once, stored only as their sha256, revoked for good.

A token acts with its user's role and merchant scope; a disabled user's tokens stop working.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import ApiToken, User, utcnow
from hub.users import find_user

PREFIX = "o2c_"
_TOUCH_EVERY = timedelta(minutes=1)


class TokenError(ValueError):
    """The token cannot be made or revoked as asked; the message says why."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(s: Session, email: str, name: str) -> tuple[ApiToken, str]:
    """A new token for the user with ``email`` (the caller commits); returns the row and the plain token."""
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise TokenError("give the token a name of 1 to 100 characters")
    user = find_user(s, email)
    if user is None:
        raise TokenError(f"no user {email.strip().lower()}")
    if user.disabled:
        raise TokenError(f"the user {user.email} is disabled")
    plain = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=digest(plain), user_id=user.id)
    s.add(row)
    s.flush()
    return row, plain


def revoke_token(s: Session, token_id: int) -> ApiToken:
    """Revoke a token (the caller commits); revoking twice is refused."""
    row = s.get(ApiToken, token_id)
    if row is None:
        raise TokenError(f"no API token {token_id}")
    if row.revoked_at is not None:
        raise TokenError(f"API token {token_id} was revoked already")
    row.revoked_at = utcnow()
    return row


def list_tokens(s: Session) -> list[tuple[ApiToken, str]]:
    """Every token (newest first) with its user's e-mail; never the token itself."""
    q = select(ApiToken, User.email).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id.desc())
    return [(row, email) for row, email in s.execute(q)]


def authenticate(s: Session, plain: str) -> tuple[ApiToken, User] | None:
    """The live token and its enabled user, else None. Notes when it was last used (at most once a minute)."""
    if not plain.startswith(PREFIX) or len(plain) > 200:
        return None
    row = s.scalar(select(ApiToken).where(ApiToken.token_hash == digest(plain)))
    if row is None or row.revoked_at is not None:
        return None
    user = s.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
        row.last_used_at = now
        s.commit()
    return row, user
