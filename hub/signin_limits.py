"""The console's sign-in limiter: at most 5 failed sign-ins per e-mail from one address and 20 per address
across e-mails, each in a 15-minute window that starts at the first failure.

Every attempt is counted *before* its password is checked, by one conditional statement
(``UPDATE … SET failures = failures + 1 WHERE failures < limit``, or a new window once the old one is
over), committed at once: two concurrent attempts can never both take the last place, on SQLite and
PostgreSQL alike, across every worker and host. A sign-in that turns out right gives its place back and
clears its e-mail's counter; a wrong one keeps it. Keys are sha256 hex digests, so no e-mail or address is
kept here (the audit log keeps the failed sign-ins support reads).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.auth_models import SignInCounter
from hub.models import utcnow

_T = SignInCounter.__table__


@dataclass(frozen=True)
class Limit:
    name: str
    max_failures: int
    window: timedelta


PER_ACCOUNT = Limit("account", 5, timedelta(minutes=15))    # one e-mail from one address
PER_ADDRESS = Limit("address", 20, timedelta(minutes=15))   # one address, whatever the e-mails
_PURGE_BATCH = 500


@dataclass(frozen=True)
class Lockout:
    """Why an attempt was refused and until when."""

    limit: Limit
    until: datetime
    now: datetime

    @property
    def minutes(self) -> int:
        """Whole minutes to wait (at least 1)."""
        return max(1, math.ceil((self.until - self.now).total_seconds() / 60))


def admit(s: Session, email: str, address: str) -> Lockout | None:
    """Count one sign-in attempt of ``email`` from ``address`` (and commit); None when its password may be
    checked, else the lock-out that refuses it (and nothing is counted)."""
    now = utcnow()
    by_address = _key(PER_ADDRESS, address)
    until = _take(s, PER_ADDRESS, by_address, now)
    if until is not None:
        return Lockout(PER_ADDRESS, until, now)
    until = _take(s, PER_ACCOUNT, _key(PER_ACCOUNT, email, address), now)
    if until is not None:
        _give_back(s, by_address)
        s.commit()
        return Lockout(PER_ACCOUNT, until, now)
    return None


def succeeded(s: Session, email: str, address: str) -> None:
    """The attempt ``admit`` counted had the right password: clear the e-mail's counter and give the
    address its place back (the caller commits)."""
    s.execute(delete(_T).where(_T.c.key == _key(PER_ACCOUNT, email, address)))
    _give_back(s, _key(PER_ADDRESS, address))


def _key(limit: Limit, *parts: str) -> str:
    return hashlib.sha256("\0".join((limit.name, *parts)).encode("utf-8", "replace")).hexdigest()


def _take(s: Session, limit: Limit, key: str, now: datetime) -> datetime | None:
    """Take one place under ``limit`` for ``key`` and commit; None when taken, else when the window ends."""
    since = now - limit.window
    over = _T.c.window_start < since
    take = (update(_T)
            .where(_T.c.key == key, or_(over, _T.c.failures < limit.max_failures))
            .values(failures=case((over, 1), else_=_T.c.failures + 1),
                    window_start=case((over, now), else_=_T.c.window_start)))
    for _ in range(3):
        if s.execute(take).rowcount:
            s.commit()
            return None
        row = s.execute(select(_T.c.window_start, _T.c.failures).where(_T.c.key == key)).first()
        if row is None:
            if s.execute(_insert_new(s, key, now)).scalar() is not None:
                _purge(s, now - max(PER_ACCOUNT.window, PER_ADDRESS.window))
                s.commit()
                return None
            continue   # a concurrent attempt made the counter first: count on it
        started, failures = row
        if started >= since and failures >= limit.max_failures:   # full, and its window still runs
            s.commit()
            return started + limit.window
        # made, emptied or ended by a concurrent attempt between the two statements: look again
    s.commit()
    return now + limit.window   # never seen: three races in a row


def _insert_new(s: Session, key: str, now: datetime):  # noqa: ANN202 - a dialect's INSERT … RETURNING
    """A new counter holding one attempt, unless ``key`` has one already (then it returns no row)."""
    dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
    return (dialect.insert(_T).values(key=key, window_start=now, failures=1)
            .on_conflict_do_nothing(index_elements=[_T.c.key]).returning(_T.c.key))


def _give_back(s: Session, key: str) -> None:
    s.execute(update(_T).where(_T.c.key == key, _T.c.failures > 0).values(failures=_T.c.failures - 1))


def _purge(s: Session, before: datetime) -> None:
    """Drop counters whose window ended (a bounded batch; rows another attempt holds are left alone)."""
    stale = (select(_T.c.key).where(_T.c.window_start < before).limit(_PURGE_BATCH)
             .with_for_update(skip_locked=True))
    s.execute(delete(_T).where(_T.c.key.in_(stale)))
