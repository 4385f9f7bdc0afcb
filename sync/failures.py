"""What is failing now, grouped by cause: *orders* whose latest run failed and has not succeeded since
(the order ledger's ``failing`` state), and the failed runs that stand for no order (a webhook naming no
usable order, a QuickBooks payment). A group is one cause — the merchant, the run's kind, its error kind,
the platform and its code (``SyncRun.error_code``: ``quickbooks:6000`` or the mapping rule at fault) and
the reason with its ids, numbers and amounts taken out — so fifty orders failing for one reason are one row
with one Re-run button (the console's and the JSON API's, and the alerts' cause). A group disappears when
its orders succeed: their ledger rows leave the ``failing`` state.

The group's title is the cause in words (``sync.fixes`` for a known code, else the one reason all its
orders share, else the reason with plain words where its ids and numbers were): never a placeholder. Each
order keeps its own reason, so no order is shown another order's SKU."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import Merchant, SyncRun
from hub.order_models import StoreOrder
from sync.fixes import Fix, fix_for
from sync.order_ledger import FOLLOWED_KINDS, NOT_AN_ORDER

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
_WORDS = {"<email>": "an e-mail address", "<id>": "an id", "<amount>": "an amount", "<n>": "a number"}
_QUOTED_PLACEHOLDER = re.compile(r"([\"'])[^\"']*<(?:email|id|amount|n)>[^\"']*\1")
GROUP_ORDERS_SHOWN = 200   # orders listed in a group (its count and re-run cover all of them)


@dataclass
class FailingOrder:
    """One order (or run standing for none) in a group, with its own reason."""

    merchant_id: int
    platform: str
    order_id: str | None        # None: a run that stands for no order
    name: str | None
    run_id: int
    reason: str | None
    failed_at: datetime | None


@dataclass
class FailureGroup:
    key: str
    error_kind: str | None
    source: str | None          # the platform (or "mapping") the reason starts with
    code: str | None            # the platform's own error code
    pattern: str                # the normalised reason (placeholders for ids and numbers): the grouping key
    merchant_id: int | None = None
    merchant_name: str | None = None
    kind: str | None = None     # the runs' kind: order, refund, payment …
    error_code: str | None = None
    count: int = 0
    newest_id: int = 0
    newest_reason: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    orders: list[FailingOrder] = field(default_factory=list)
    run_ids: list[int] = field(default_factory=list)
    reasons: set[str] = field(default_factory=set)

    @property
    def fix(self) -> Fix | None:
        return fix_for(self.error_kind, self.error_code)

    @property
    def cause(self) -> str:
        """The cause in words, with no placeholder in it."""
        fix = self.fix
        if fix is not None:
            return fix.cause
        if len(self.reasons) == 1:
            return next(iter(self.reasons))
        return readable(self.pattern)


def normalise(reason: str | None) -> str:
    """The reason with e-mails, ids, numbers and amounts replaced by placeholders (codes kept)."""
    text = re.sub("[\ue000-\ue0ff]", "", " ".join((reason or "").split()))
    kept: list[str] = []
    text = _KEEP.sub(lambda m: kept.append(m.group(0)) or chr(0xE000 + len(kept) - 1), text)  # private-use marks
    for pattern, placeholder in _PLACEHOLDERS:
        text = pattern.sub(placeholder, text)
    return re.sub("[\ue000-\ue0ff]", lambda m: kept[ord(m.group(0)) - 0xE000], text)


def readable(pattern: str) -> str:
    """A normalised reason for people: a quoted value with a placeholder in it becomes "a value", and a
    bare placeholder a plain word ("a number", "an amount", …)."""
    text = _QUOTED_PLACEHOLDER.sub("a value", pattern)
    return re.sub(r"<(?:email|id|amount|n)>", lambda m: _WORDS[m.group(0)], text)


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


def _add(groups: dict[str, FailureGroup], names: dict[int, str], row: tuple, platform: str,
         order_id: str | None, name: str | None) -> None:
    merchant_id, kind, run_id, error_kind, error_code, reason, failed_at = row
    fix = fix_for(error_kind, error_code)   # a known cause is one group whatever the values (each SKU …)
    if fix is not None:
        raw = "\x1f".join([str(merchant_id), kind, error_kind or "", error_code or "", fix.cause])
    else:
        _key, source, code, pattern = cause_of(error_kind, reason, error_code)
        raw = "\x1f".join([str(merchant_id), kind, error_kind or "", error_code or "", source or "", code or "",
                           pattern])
    key = hashlib.sha256(raw.encode()).hexdigest()[:16]
    group = groups.get(key)
    if group is None:
        if fix is not None:   # the reason is normalised once a group, for the API's ``pattern``
            _key, source, code, pattern = cause_of(error_kind, reason, error_code)
        group = groups[key] = FailureGroup(key, error_kind, source, code, pattern, merchant_id,
                                           names.get(merchant_id), kind, error_code)
    group.count += 1
    group.run_ids.append(run_id)
    if reason and len(group.reasons) < 2:
        group.reasons.add(reason)
    if len(group.orders) < GROUP_ORDERS_SHOWN:
        group.orders.append(FailingOrder(merchant_id, platform, order_id, name, run_id, reason, failed_at))
    if run_id > group.newest_id:
        group.newest_id, group.newest_reason = run_id, reason
    if failed_at is not None:
        group.first_seen = min(group.first_seen or failed_at, failed_at)
        group.last_seen = max(group.last_seen or failed_at, failed_at)


_RUN_COLUMNS = (SyncRun.merchant_id, SyncRun.kind, SyncRun.id, SyncRun.error_kind, SyncRun.error_code, SyncRun.reason,
                func.coalesce(SyncRun.finished_at, SyncRun.updated_at))


def failure_groups(s: Session, merchant_id: int | None = None) -> list[FailureGroup]:
    """What is failing now, by cause, biggest first: the orders in the ledger's ``failing`` state (by their
    latest run) and the failed runs that stand for no order.

    The failing orders come from the ledger's state index, then their runs by primary key, a thousand at a
    time (two index look-ups rather than a join the planner may turn into a scan of every run)."""
    groups: dict[str, FailureGroup] = {}
    names = dict(s.execute(select(Merchant.id, Merchant.name)).all())
    failing = (select(StoreOrder.last_run_id, StoreOrder.platform, StoreOrder.order_id, StoreOrder.name)
               .where(StoreOrder.state == "failing", StoreOrder.last_run_id.is_not(None)).order_by(StoreOrder.id))
    others = (select(*_RUN_COLUMNS, SyncRun.source_platform, SyncRun.source_id, SyncRun.source_name)
              .where(SyncRun.status == "failed", (SyncRun.kind.not_in(FOLLOWED_KINDS))
                     | SyncRun.source_id.startswith(NOT_AN_ORDER)).order_by(SyncRun.id))
    if merchant_id is not None:
        failing = failing.where(StoreOrder.merchant_id == merchant_id)
        others = others.where(SyncRun.merchant_id == merchant_id)
    orders = s.execute(failing).all()
    for start in range(0, len(orders), 1000):
        chunk = orders[start:start + 1000]
        runs = {row[2]: tuple(row) for row in s.execute(
            select(*_RUN_COLUMNS).where(SyncRun.id.in_([o[0] for o in chunk]), SyncRun.status == "failed"))}
        for run_id, platform, order_id, name in chunk:
            if run_id in runs:
                _add(groups, names, runs[run_id], platform, order_id, name)
    for row in s.execute(others):
        is_order = row[1] in FOLLOWED_KINDS and not row[8].startswith(NOT_AN_ORDER)
        _add(groups, names, tuple(row[:7]), row[7], row[8] if is_order else None, row[9])
    return sorted(groups.values(), key=lambda gr: (-gr.count, -gr.newest_id))


def group_run_ids(s: Session, group: FailureGroup, merchant_id: int | None = None) -> list[int]:
    """The runs to re-run (or skip) for a group: the failing run of each of its orders."""
    return list(group.run_ids)
