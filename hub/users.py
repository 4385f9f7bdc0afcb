"""Console users: create them, check their password, and say which merchants each may see.

Roles: ``support`` and ``admin`` see every merchant; a ``merchant`` user sees only its own merchant.
Passwords are hashed with werkzeug's default (scrypt); the plain password is never stored or logged.
Signing out, disabling a user, or changing its password or role ends every console session of that user:
each session carries the ``session_version`` it began with, and these bump it.
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from hub.models import Merchant, User, utcnow

ROLES = ("support", "admin", "merchant")
MIN_PASSWORD = 8
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Role(Protocol):
    """Anything with a role and a merchant: a ``User`` row or the console's signed-in user."""

    role: str
    merchant_id: int | None


class UserError(ValueError):
    """The user cannot be created as asked; the message says why."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(s: Session, email: str, password: str | None, role: str, merchant_id: int | None = None) -> User:
    """Add a user (the caller commits). A ``merchant`` user needs its merchant; staff have none. Without a
    password (an invitation) the account has none that anyone knows until a one-time link sets it."""
    email = normalise_email(email)
    if not _EMAIL.match(email) or len(email) > 254:
        raise UserError(f"{email} is not an e-mail address" if email else "give the user's e-mail address")
    _check_role(s, role, merchant_id)
    if password is None:
        password = secrets.token_urlsafe(32)   # known to nobody: the invitation's link sets the real one
    else:
        _check_password(password)
    if find_user(s, email) is not None:
        raise UserError(f"a user {email} exists already")
    user = User(email=email, password_hash=generate_password_hash(password), role=role,
                merchant_id=merchant_id, disabled=False)
    s.add(user)
    try:
        s.flush()
    except IntegrityError as exc:  # created by someone else in the meantime
        raise UserError(f"a user {email} exists already") from exc
    return user


def set_password(s: Session, user: User, password: str) -> None:
    """Give ``user`` a new password and end its sessions (the caller commits)."""
    _check_password(password)
    user.password_hash = generate_password_hash(password)
    end_sessions(s, user)


def forget_password(s: Session, user: User) -> None:
    """An admin's reset: the password stops working and every session ends, until a one-time link sets a
    new one (the caller commits)."""
    user.password_hash = generate_password_hash(secrets.token_urlsafe(32))
    end_sessions(s, user)


def set_role(s: Session, user: User, role: str, merchant_id: int | None = None) -> bool:
    """Give ``user`` another role (and merchant); ends its sessions when that changes anything (the caller
    commits). Returns whether it changed."""
    _check_role(s, role, merchant_id)
    if (user.role, user.merchant_id) == (role, merchant_id):
        return False
    user.role, user.merchant_id = role, merchant_id
    end_sessions(s, user)
    return True


def set_disabled(s: Session, user: User, disabled: bool) -> bool:
    """Disable or enable ``user``; disabling ends its sessions, so enabling it again revives none (the
    caller commits). Returns whether it changed."""
    if user.disabled == disabled:
        return False
    user.disabled = disabled
    if disabled:
        end_sessions(s, user)
    return True


def end_sessions(s: Session, user: User) -> None:
    """End every console session of ``user`` (the caller commits); its API tokens are not touched."""
    s.execute(update(User).where(User.id == user.id).values(session_version=User.session_version + 1)
              .execution_options(synchronize_session=False))
    s.expire(user, ["session_version"])


def find_user(s: Session, email: str) -> User | None:
    return s.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def authenticate(s: Session, email: str, password: str) -> User | None:
    """The enabled user with this e-mail and password, else None (same work whether or not it exists)."""
    user = find_user(s, email)
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password) or user.disabled:
        return None
    user.last_login_at = utcnow()
    return user


def merchant_scope(user: Role) -> int | None:
    """The only merchant ``user`` may see, or None when it may see all of them."""
    if user.role == "merchant":
        # a merchant user without a merchant sees nothing: -1 matches no row
        return user.merchant_id if user.merchant_id is not None else -1
    return None


def may_see(user: Role, merchant_id: int | None) -> bool:
    scope = merchant_scope(user)
    return scope is None or scope == merchant_id


def _check_role(s: Session, role: str, merchant_id: int | None) -> None:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    if role == "merchant" and merchant_id is None:
        raise UserError("a merchant user needs its merchant")
    if role != "merchant" and merchant_id is not None:
        raise UserError(f"a {role} user sees every merchant: give no merchant")
    if merchant_id is not None and s.get(Merchant, merchant_id) is None:
        raise UserError(f"no merchant {merchant_id}")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return generate_password_hash("not-a-password-of-anyone")
