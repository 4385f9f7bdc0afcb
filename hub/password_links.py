"""One-time links that set a console user's password: an admin's invitation of a new user, or an admin's
reset of an existing one. The link carries a random token; only its sha256 is stored. A link works once,
for ``LIFETIME`` (72 hours), and a newer link for the same user revokes the older ones. Setting the
password through it ends every session of the user."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.auth_models import PasswordLink
from hub.models import User, utcnow
from hub.users import set_password

LIFETIME = timedelta(hours=72)
PURPOSES = ("invite", "reset")


class LinkError(ValueError):
    """The link cannot set a password (unknown, used, expired or replaced); the message says so."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def issue(s: Session, user: User, purpose: str, *, by: str) -> str:
    """A new link for ``user`` (older open ones are revoked); returns its token, shown or sent once
    (the caller commits)."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}")
    now = utcnow()
    s.execute(update(PasswordLink).where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None),
                                         PasswordLink.revoked_at.is_(None))
              .values(revoked_at=now).execution_options(synchronize_session=False))
    token = secrets.token_urlsafe(32)
    s.add(PasswordLink(user_id=user.id, purpose=purpose, token_hash=_hash(token), created_by=by[:254],
                       created_at=now, expires_at=now + LIFETIME))
    s.flush()
    return token


def open_link(s: Session, token: str) -> PasswordLink | None:
    """The link of ``token`` while it can still set a password (its user enabled), else None."""
    if not token or len(token) > 200:
        return None
    link = s.scalar(select(PasswordLink).where(PasswordLink.token_hash == _hash(token)))
    if link is None or link.used_at is not None or link.revoked_at is not None or link.expires_at <= utcnow():
        return None
    user = s.get(User, link.user_id)
    return link if user is not None and not user.disabled else None


def redeem(s: Session, token: str, password: str) -> tuple[User, PasswordLink]:
    """Set the password of the link's user and spend the link (at most once, whoever races); raises
    ``UserError`` for a password too short and ``LinkError`` for a link that no longer works (the caller
    commits)."""
    link = open_link(s, token)
    if link is None:
        raise LinkError("this link has expired or was already used: ask an administrator for a new one")
    user = s.get(User, link.user_id)
    assert user is not None
    set_password(s, user, password)
    spent = s.execute(update(PasswordLink).where(PasswordLink.id == link.id, PasswordLink.used_at.is_(None))
                      .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if spent.rowcount != 1:
        raise LinkError("this link was used a moment ago: ask an administrator for a new one")
    return user, link


def pending(s: Session, user_ids: list[int]) -> dict[int, PasswordLink]:
    """The open link (not used, revoked or expired) of each of these users that has one."""
    if not user_ids:
        return {}
    rows = s.scalars(select(PasswordLink).where(PasswordLink.user_id.in_(user_ids), PasswordLink.used_at.is_(None),
                                                PasswordLink.revoked_at.is_(None), PasswordLink.expires_at > utcnow()))
    return {link.user_id: link for link in rows}
