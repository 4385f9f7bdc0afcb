"""The ``state`` of every OAuth flow: random, single-use, short-lived and bound to the browser.

``issue`` keeps the state in the browser's signed session cookie and its sha256 in ``oauth_states``;
``claim`` accepts a callback's state only when both agree (constant-time), the row is of the same
platform, unexpired and unused, and uses it up atomically, so a replayed or forged callback is refused
before any code is exchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from flask import session
from sqlalchemy import select, update

from hub.models import utcnow
from hub.oauth_models import OAuthState

if TYPE_CHECKING:
    from hub.runtime import Hub

STATE_TTL = timedelta(minutes=20)
SESSION_KEY = "oauth_states"


class Refused(Exception):
    """A step of a connect flow is refused: ``status`` is the HTTP answer, the message says why (and never
    holds a secret)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Claim:
    """What the flow's start recorded, handed to its callback once the state checks out."""

    id: int
    platform: str
    merchant_id: int | None
    user_id: int | None
    actor: str
    account: str | None
    reconnect_id: int | None


def digest(value: str) -> str:
    """The stored form of a state: sha256, hex."""
    return hashlib.sha256(value.encode()).hexdigest()


def issue(hub: Hub, platform: str, *, actor: str, merchant_id: int | None = None, user_id: int | None = None,
          account: str | None = None, reconnect_id: int | None = None) -> str:
    """A fresh state for ``platform``, remembered by this browser's session and (hashed) by the hub."""
    state = secrets.token_urlsafe(32)
    with hub.session() as s:
        s.add(OAuthState(platform=platform, state_hash=digest(state), merchant_id=merchant_id, user_id=user_id,
                         actor=actor[:254], account=account, reconnect_id=reconnect_id, status="issued",
                         expires_at=utcnow() + STATE_TTL))
    states = dict(session.get(SESSION_KEY) or {})
    states[platform] = state
    session[SESSION_KEY] = states
    return state


def claim(hub: Hub, platform: str, state: str | None) -> Claim:
    """Use up the state of a callback; ``Refused(400)`` unless this browser started this very flow."""
    states = dict(session.get(SESSION_KEY) or {})
    expected = states.pop(platform, None)
    session[SESSION_KEY] = states            # a browser's state works once, whatever happens next
    if not state:
        raise Refused(400, "The answer has no state, so it cannot be matched to a connect request.")
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), state.encode()):
        raise Refused(400, "This answer does not belong to a connect request started in this browser "
                           "(state mismatch). Nothing was connected: start again.")
    hashed, now = digest(state), utcnow()
    with hub.session() as s:
        row = s.scalar(select(OAuthState).where(OAuthState.state_hash == hashed))
        if row is None or not hmac.compare_digest(row.state_hash, hashed) or row.platform != platform:
            raise Refused(400, "Unknown connect request. Nothing was connected: start again.")
        if row.used_at is not None:
            raise Refused(400, "This connect request was already used. Nothing more was connected.")
        if row.expires_at <= now:
            raise Refused(400, f"This connect request expired after {int(STATE_TTL.total_seconds() // 60)} "
                               "minutes. Nothing was connected: start again.")
        used = s.execute(update(OAuthState).where(OAuthState.id == row.id, OAuthState.used_at.is_(None))
                         .values(used_at=now, status="used").execution_options(synchronize_session=False))
        if used.rowcount != 1:  # two callbacks at the same moment: only one wins
            raise Refused(400, "This connect request was already used. Nothing more was connected.")
        return Claim(row.id, row.platform, row.merchant_id, row.user_id, row.actor, row.account, row.reconnect_id)


def finish(hub: Hub, claim_id: int, *, reason: str | None = None, connection_id: int | None = None) -> None:
    """Record how the flow ended: ``completed`` with its connection, or ``failed`` with the reason."""
    with hub.session() as s:
        row = s.get(OAuthState, claim_id)
        if row is not None:
            row.status = "failed" if reason else "completed"
            row.reason = reason[:2000] if reason else None
            row.connection_id = connection_id
