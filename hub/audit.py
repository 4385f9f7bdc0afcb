"""The audit log: every console action, sign-in and user created, with who did it and to what.

Entries never hold a secret: callers pass ids, names and reasons only, and ``detail`` is scrubbed of any
secret the hub holds (or that looks like a credential) as it is written (``hub.scrubbing.ScrubbedJSON``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import AuditEntry

LOGIN_FAILED = "login.failed"
LOGIN_SUCCEEDED = "login.succeeded"


def record(s: Session, actor: str, action: str, *, target_type: str | None = None,
           target_id: str | int | None = None, merchant_id: int | None = None,
           detail: dict[str, Any] | None = None) -> AuditEntry:
    """Add an entry (the caller commits)."""
    entry = AuditEntry(actor=actor[:254], action=action, target_type=target_type,
                       target_id=None if target_id is None else str(target_id)[:255],
                       merchant_id=merchant_id, detail=detail or {})
    s.add(entry)
    return entry


def entries(s: Session, *, merchant_id: int | None = None, before: int | None = None, limit: int = 50,
            actor: str | None = None, action: str | None = None, since: datetime | None = None,
            until: datetime | None = None) -> list[AuditEntry]:
    """Newest first; ``before`` is the id of the last entry of the previous page (keyset pages). ``actor``
    matches exactly (case-insensitive); an ``action`` ending with a dot matches every action it begins;
    ``since`` and ``until`` bound ``at`` (``until`` excluded)."""
    q = select(AuditEntry)
    if merchant_id is not None:
        q = q.where(AuditEntry.merchant_id == merchant_id)
    if actor:
        q = q.where(AuditEntry.actor.in_({actor.strip(), actor.strip().lower()}))
    if action:
        q = q.where(AuditEntry.action.startswith(action, autoescape=True) if action.endswith(".")
                    else AuditEntry.action == action)
    if since is not None:
        q = q.where(AuditEntry.at >= since)
    if until is not None:
        q = q.where(AuditEntry.at < until)
    if before is not None:
        q = q.where(AuditEntry.id < before)
    return list(s.scalars(q.order_by(AuditEntry.id.desc()).limit(limit)))


def failed_logins(s: Session, email: str, ip: str, since: datetime) -> int:
    """Failed sign-ins for ``email`` from ``ip`` since ``since`` and after its last successful one."""
    last_ok = s.scalar(select(func.max(AuditEntry.at)).where(
        AuditEntry.action == LOGIN_SUCCEEDED, AuditEntry.actor == email, AuditEntry.target_id == ip,
        AuditEntry.at >= since))
    q = select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == LOGIN_FAILED, AuditEntry.actor == email, AuditEntry.target_id == ip,
        AuditEntry.at >= since)
    if last_ok is not None:
        q = q.where(AuditEntry.at > last_ok)
    return s.scalar(q) or 0
