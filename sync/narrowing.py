"""One order never fails another: what a shared call's failure does to the entries it served.

A *shared call* serves several entries at once: a Shopify query that pulls several orders, a QuickBooks
batch request or ``IN (…)`` look-up, a HubSpot batch upsert. When it fails, the failure is either

* **permanent** (the platform refused the request for good, not for want of access): some entry in it
  caused it, the others did not. ``settle`` narrows it within the same pass: the entries the error names
  (``suspects``) are called again apart from the others, or else each half is; and so on down to the
  culprit alone. Every entry thus ends with the answer of a call that succeeded, or with the error of a
  call over itself alone (the culprit's own reason), at a cost of about two calls per level of halving;
* **retryable** (a timeout, a 5xx, a 429, ``THROTTLED``) or about access (401/403): not narrowed, since no
  entry caused it. ``mark_shared`` records on the error how many runs the call served, and a run that
  was not alone in it is *deferred* (``sync.outcomes``): it retries after the platform's wait without
  using up one of its attempts, so faults that were not its own never fail it for good.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from connectors.errors import ConnectorError, Permanent

T = TypeVar("T")
R = TypeVar("R")


def narrowable(exc: BaseException) -> bool:
    """Whether a failure of a call over several entries may be one entry's doing (then it is narrowed)."""
    return isinstance(exc, Permanent) and exc.status not in (401, 403)


def settle(items: Sequence[T], call: Callable[[list[T]], R], *,
           suspects: Callable[[list[T], Exception], list[T]] | None = None) -> list[tuple[list[T], R | Exception]]:
    """``call(items)``, narrowed on a permanent failure: returns ``(part, answer or error)`` pairs that
    cover ``items`` once each, in their order. A part longer than one carries an error only when that
    error is not narrowable (retryable, or about access)."""
    items = list(items)
    try:
        return [(items, call(items))]
    except Exception as exc:  # noqa: BLE001 - every failure is some part's outcome
        if len(items) < 2 or not narrowable(exc):
            return [(items, exc)]
        named = {id(i) for i in (suspects(items, exc) if suspects else [])}
        first = [i for i in items if id(i) in named]
        if not first or len(first) == len(items):
            first = items[: len(items) // 2]
        taken = {id(i) for i in first}
        out: list[tuple[list[T], R | Exception]] = []
        for part in (first, [i for i in items if id(i) not in taken]):
            out.extend(settle(part, call, suspects=suspects))
        return out


def error_text(exc: BaseException) -> str:
    """What an error says (message and detail, not cut short), for finding the entries it names."""
    if isinstance(exc, ConnectorError):
        return f"{exc.message} {exc.detail or ''}"
    return str(exc)


def named_variables(prefix: str) -> Callable[[list[T], Exception], list[T]]:
    """Suspects for a GraphQL document whose variables are ``$<prefix>0``, ``$<prefix>1``…, one per entry
    in order: the entries whose variable the error names (Shopify: "Variable $id3 of type ID! was provided
    invalid value")."""
    pattern = re.compile(rf"\${re.escape(prefix)}(\d+)\b")

    def suspects(items: list[T], exc: Exception) -> list[T]:
        picked = {int(n) for n in pattern.findall(error_text(exc))}
        return [item for i, item in enumerate(items) if i in picked]

    return suspects


def named_values(value: Callable[[T], str]) -> Callable[[list[T], Exception], list[T]]:
    """Suspects whose ``value`` (e.g. an e-mail address) the error quotes (HubSpot: "Email address x is
    invalid"). Only a hint: every suspect is still called on its own before it is failed."""
    def suspects(items: list[T], exc: Exception) -> list[T]:
        text = error_text(exc).casefold()
        return [item for item in items if value(item) and value(item).casefold() in text]

    return suspects


def mark_shared(exc: BaseException, runs: int) -> BaseException:
    """Record that ``exc`` ended a call serving ``runs`` runs (kept at the largest count); returns it."""
    if runs > 1:
        try:
            exc.o2c_shared_by = max(runs, shared_by(exc))  # type: ignore[attr-defined]
        except AttributeError:  # an exception type without a __dict__: counted as the run's own
            pass
    return exc


def shared_by(exc: BaseException) -> int:
    """How many runs the call that raised ``exc`` served (1: the run was alone in it)."""
    return int(getattr(exc, "o2c_shared_by", 1) or 1)
