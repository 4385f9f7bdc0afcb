"""QuickBooks creates and look-ups for many objects at once (the steps of ``sync.orders``).

QuickBooks creates go through the batch endpoint (``POST /batch``, at most 30 operations a request, 40
requests a minute per company): each operation carries a short ``bId`` and its answer comes back under the
same ``bId``, so results are matched to their objects by ``bId``, never by position. The batch endpoint takes
no ``requestid``; idempotency comes from looking objects up before creating them (see ``sync.orders``). A
handful of creates (``SINGLE_MAX`` or fewer) go as single requests with a deterministic ``requestid``
instead: a batch request is worth 12 ordinary ones under the per-minute limits, and a lone webhook's order
should not spend one; up to ``SINGLES_WHEN_BUSY`` also do when the batch endpoint's budget is spent for
the moment, so that a trickle of webhooks does not wait a minute for the next batch permit.

Look-ups use ``WHERE field IN (…)`` (QuickBooks' query language has ``IN`` but no ``OR``); should a company
refuse ``IN`` on a field (a query fault, code 4000/4001), each value is asked for with ``=`` instead.

A request that serves several objects never fails one of them for another's sake: a batch request or an
``IN`` query QuickBooks refuses as a whole for good is narrowed to the object that caused it, within the same
call (``sync.narrowing``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from connectors.errors import Permanent, Retryable
from connectors.quickbooks import Fault, quote
from sync.narrowing import mark_shared, narrowable, settle

QB = "quickbooks"
BATCH_MAX = 30          # operations per batch request (QuickBooks' limit)
SINGLE_MAX = 2          # this few creates go as single requests with a requestid
SINGLES_WHEN_BUSY = 10  # this few also do when no batch permit is free right now (rather than wait a minute)
IN_MAX = 100            # values per ``IN (…)`` list
BATCH_PERMIT_TIMEOUT = 150.0  # a full minute of batch permits may be spent: wait for the next window


@dataclass
class OpFault(Fault):
    """A fault of an op sent as a single request: ``error`` is what the client raised (with its excerpt)."""

    error: Exception | None = None


@dataclass
class Op:
    """One create: ``key`` is the caller's (e.g. an order id); ``request_id`` is used when sent alone."""

    key: str
    payload: dict[str, Any]
    request_id: str


class QuickBooksBatch:
    """Batch creates and ``IN`` look-ups on one company. ``qb``: a ``QuickBooksClient`` (or its refreshing
    proxy); ``acquire_batch()`` takes a permit of the batch endpoint's own limit before each batch request."""

    def __init__(self, qb: Any, acquire_batch: Any, batch_free: Any = None) -> None:
        self.qb = qb
        self._acquire_batch = acquire_batch
        self._batch_free = batch_free    # takes a batch permit if one is free now, else returns False
        self._permit = False             # a batch permit taken and not used yet
        self.requests = 0

    def create_many(self, entity: str, ops: list[Op]) -> dict[str, dict[str, Any] | Fault | Exception]:
        """Create every op's object; returns each key's object, its own ``Fault``, or (for a failed request)
        the exception that request raised. A batch request QuickBooks refuses as a whole for good is narrowed
        to the op that caused it (``sync.narrowing.settle``: halves, down to single requests); a request that
        fails for a passing reason gives its ops the error marked as shared (``mark_shared``)."""
        permit = False
        if SINGLE_MAX < len(ops) <= SINGLES_WHEN_BUSY and self._batch_free is not None:
            permit = self._batch_free()
        if len(ops) <= SINGLE_MAX or (len(ops) <= SINGLES_WHEN_BUSY and self._batch_free is not None and not permit):
            return self._singles(entity, ops)
        self._permit = permit
        out: dict[str, dict[str, Any] | Fault | Exception] = {}
        for start in range(0, len(ops), BATCH_MAX):
            for part, answer in self._settled(entity, ops[start:start + BATCH_MAX]):
                if isinstance(answer, Exception):  # the whole request failed: every op in it did
                    mark_shared(answer, len(part))
                    out.update({op.key: answer for op in part})
                else:
                    out.update(answer)
        return out

    def _settled(self, entity: str, chunk: list[Op]) -> list[tuple[list[Op], Any]]:
        return settle(chunk, lambda part: self._send(entity, part, narrowed=len(part) < len(chunk)))

    def _send(self, entity: str, part: list[Op], *, narrowed: bool) -> dict[str, dict[str, Any] | Fault | Exception]:
        """One batch request for ``part`` (raises when it fails as a whole); a part narrowed down to
        ``SINGLE_MAX`` or fewer ops goes as single requests with their ``requestid`` instead."""
        if narrowed and len(part) <= SINGLE_MAX:
            return self._singles(entity, part)
        items = [{"bId": f"b{i}", "operation": "create", entity: op.payload} for i, op in enumerate(part)]
        if not self._permit:
            self._acquire_batch()
        self._permit = False
        self.requests += 1
        answers = self.qb.batch(items)
        return {op.key: answers.get(f"b{i}") or Fault(None, "QuickBooks did not answer this batch item", None)
                for i, op in enumerate(part)}

    def create_each(self, entity: str, ops: list[Op]) -> dict[str, dict[str, Any] | Fault | Exception]:
        """Create every op's object in a request of its own, with its ``requestid`` (what nothing would find
        again after a lost answer)."""
        return self._singles(entity, ops) if ops else {}

    def _singles(self, entity: str, ops: list[Op]) -> dict[str, dict[str, Any] | Fault | Exception]:
        """One request per op, each with its ``requestid``. After a throttle or an outage the ops not sent
        yet are not sent: they wait with a copy of that error, marked as shared."""
        out: dict[str, dict[str, Any] | Fault | Exception] = {}
        for n, op in enumerate(ops):
            try:
                self.requests += 1
                out[op.key] = self.qb.create(entity, op.payload, request_id=op.request_id)
            except Permanent as exc:
                out[op.key] = OpFault(exc.code, exc.message, exc.detail, error=exc)
            except Retryable as exc:
                out[op.key] = exc
                rest = ops[n + 1:]
                if rest:
                    waiting = Retryable(exc.message, retry_after=exc.retry_after, platform=exc.platform,
                                        code=exc.code, detail=exc.detail, status=exc.status, excerpt=exc.excerpt)
                    mark_shared(waiting, len(rest) + 1)
                    out.update({o.key: waiting for o in rest})
                break
            except Exception as exc:  # noqa: BLE001 - auth, say: that op's outcome
                out[op.key] = exc
        return out

    def find_in(self, entity: str, field: str, values: Iterable[str], *,
                refused: dict[str, Exception] | None = None) -> list[dict[str, Any]]:
        """Every ``entity`` whose ``field`` is one of ``values`` (a few ``IN`` queries). A query QuickBooks
        refuses for good is narrowed to the value that caused it; that value's error goes into ``refused``
        when given (the caller fails only the entries of that value), else it is raised."""
        wanted = list(dict.fromkeys(v for v in values if v))
        refused_here: dict[str, Exception] = {}
        rows: list[dict[str, Any]] = []
        for start in range(0, len(wanted), IN_MAX):
            for part, answer in settle(wanted[start:start + IN_MAX],
                                       lambda part: self._rows_in(entity, field, part, refused_here)):
                if isinstance(answer, Exception):
                    if not narrowable(answer):
                        raise answer
                    refused_here.update({value: answer for value in part})
                else:
                    rows.extend(answer)
        if refused_here:
            if refused is None:
                raise next(iter(refused_here.values()))
            refused.update(refused_here)
        return rows

    def _rows_in(self, entity: str, field: str, chunk: list[str],
                 refused: dict[str, Exception]) -> list[dict[str, Any]]:
        statement = (f"SELECT * FROM {entity} WHERE {field} IN ({', '.join(quote(v) for v in chunk)}) "
                     "MAXRESULTS 1000")
        try:
            self.requests += 1
            return self.qb.query(statement)
        except Permanent as exc:
            if exc.code not in ("4000", "4001"):
                raise
        rows: list[dict[str, Any]] = []
        for value in chunk:  # IN refused on this field: one query per value
            try:
                self.requests += 1
                rows.extend(self.qb.query(f"SELECT * FROM {entity} WHERE {field} = {quote(value)} MAXRESULTS 10"))
            except Permanent as exc:
                if not narrowable(exc):
                    raise
                refused[value] = exc
        return rows


def fault_error(fault: Fault, what: str) -> Permanent:
    """A batch item's fault as the hub's error kind, naming the object."""
    if isinstance(fault, OpFault) and fault.error is not None:
        return fault.error  # type: ignore[return-value]
    error = Permanent(f"QuickBooks refused {what}: {fault.message}", platform=QB, code=fault.code,
                      detail=fault.detail)
    error.excerpt = getattr(fault, "excerpt", None)  # that item's request and answer, redacted
    return error
