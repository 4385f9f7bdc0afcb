"""Failed runs grouped by cause: error kind, the platform and its code (``SyncRun.error_code`` when the
run has one: ``quickbooks:6000`` or the mapping rule at fault), and the reason with its ids, numbers and
amounts replaced by placeholders, so that fifty orders failing for one reason are one row with one
Re-run button (the console's and the JSON API's, and the alerts' cause)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from hub.models import SyncRun

_SOURCES = ("shopify", "woocommerce", "quickbooks", "hubspot", "mapping", "waiting", "internal error")
_CODE = re.compile(r"\(code ([^)]{1,40})\)")
_PREFIX = re.compile(r"^(?:gave up after \d+ attempts: )?([a-z ]+): ")
# kept as they are: the platform's code and the HTTP status say what went wrong, not which order it was
_KEEP = re.compile(r"\(code [^)]{1,40}\)|\b(?:status code|HTTP|status) '?\d{3}\b'?", re.I)
_PLACEHOLDERS = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"(?<![\w.])-?\d[\d,]*\.\d+"), "<amount>"),
    (re.compile(r"\d{5,}"), "<id>"),
    (re.compile(r"\d+"), "<n>"),
)


@dataclass
class FailureGroup:
    key: str
    error_kind: str | None
    source: str | None          # the platform (or "mapping") the reason starts with
    code: str | None            # the platform's own error code
    pattern: str
    count: int = 0
    newest_id: int = 0
    newest_reason: str | None = None
    # (error_kind, error_code, reason) of the runs in the group
    causes: list[tuple[str | None, str | None, str | None]] = field(default_factory=list)


def normalise(reason: str | None) -> str:
    """The reason with e-mails, ids, numbers and amounts replaced by placeholders (codes kept)."""
    text = re.sub("[\ue000-\ue0ff]", "", " ".join((reason or "").split()))
    kept: list[str] = []
    text = _KEEP.sub(lambda m: kept.append(m.group(0)) or chr(0xE000 + len(kept) - 1), text)  # private-use marks
    for pattern, placeholder in _PLACEHOLDERS:
        text = pattern.sub(placeholder, text)
    return re.sub("[\ue000-\ue0ff]", lambda m: kept[ord(m.group(0)) - 0xE000], text)


def cause_of(error_kind: str | None, reason: str | None,
             error_code: str | None = None) -> tuple[str, str | None, str | None, str]:
    """(group key, source, code, normalised reason) of one failure. ``error_code`` (the run's) is
    ``platform:code``, a bare platform, or the mapping rule at fault; without it the code is read from the
    reason's ``(code …)``."""
    prefix = _PREFIX.match(reason or "")
    source = prefix.group(1) if prefix and prefix.group(1) in _SOURCES else None
    found = _CODE.search(reason or "")
    code = found.group(1) if found else None
    if error_code:
        platform, sep, own = error_code.partition(":")
        if platform in _SOURCES and sep:
            source, code = platform, own or None
        elif error_code in _SOURCES:
            source = error_code
        else:   # a mapping rule, e.g. ``sku.when_missing``
            source, code = source or ("mapping" if error_kind == "mapping" else None), error_code
    pattern = normalise(reason)
    raw = "\x1f".join([error_kind or "", error_code or "", source or "", code or "", pattern])
    return hashlib.sha256(raw.encode()).hexdigest()[:16], source, code, pattern


def failure_groups(s: Session, merchant_id: int | None = None) -> list[FailureGroup]:
    """Groups of failed runs, biggest first."""
    q = (select(SyncRun.error_kind, SyncRun.error_code, SyncRun.reason, func.count(), func.max(SyncRun.id))
         .where(SyncRun.status == "failed").group_by(SyncRun.error_kind, SyncRun.error_code, SyncRun.reason))
    if merchant_id is not None:
        q = q.where(SyncRun.merchant_id == merchant_id)
    groups: dict[str, FailureGroup] = {}
    for error_kind, error_code, reason, count, newest in s.execute(q):
        key, source, code, pattern = cause_of(error_kind, reason, error_code)
        group = groups.setdefault(key, FailureGroup(key, error_kind, source, code, pattern))
        group.count += count
        group.causes.append((error_kind, error_code, reason))
        if newest > group.newest_id:
            group.newest_id, group.newest_reason = newest, reason
    return sorted(groups.values(), key=lambda gr: (-gr.count, -gr.newest_id))


def _same(column, value):  # noqa: ANN001, ANN202
    return column.is_(None) if value is None else column == value


def group_run_ids(s: Session, group: FailureGroup, merchant_id: int | None = None) -> list[int]:
    ids: list[int] = []
    for start in range(0, len(group.causes), 50):
        matches = [and_(_same(SyncRun.error_kind, kind), _same(SyncRun.error_code, code), _same(SyncRun.reason, reason))
                   for kind, code, reason in group.causes[start:start + 50]]
        q = select(SyncRun.id).where(SyncRun.status == "failed", or_(*matches))
        if merchant_id is not None:
            q = q.where(SyncRun.merchant_id == merchant_id)
        ids.extend(s.scalars(q.order_by(SyncRun.id)))
    return ids
