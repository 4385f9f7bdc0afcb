"""What the steps of one batch share: the merchant's rules, clients, ledger and QuickBooks references, and
the per-entry error handling (an exception in one entry's work is that entry's outcome; a failed call that
served several entries is every one's, marked as shared: see ``sync.narrowing``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from connectors.errors import Retryable
from hub.mapping_rules import rules_for
from mappings import quickbooks as qbmap
from sync import locks
from sync.accounts import Accounts
from sync.batch_ops import QuickBooksBatch
from sync.jobs import Outcome
from sync.ledger import Ledger, Source
from sync.narrowing import mark_shared
from sync.qb_refs import QuickBooksRefs

if TYPE_CHECKING:
    from hub.runtime import Hub
    from sync.batch import Entry
    from sync.orders import OrderPipeline

QB = "quickbooks"


class BatchContext:
    def __init__(self, hub: Hub, merchant_id: int, entries: list[Entry]) -> None:
        self.hub = hub
        self.merchant_id = merchant_id
        self.entries = entries
        self.accounts = Accounts(hub, merchant_id)
        self.ledger = Ledger(hub.sessions, merchant_id)
        with hub.sessions() as s:
            self.rules = rules_for(s, merchant_id)
        self._qb: Any = None
        self._ops: QuickBooksBatch | None = None
        self._refs: QuickBooksRefs | None = None
        self._home: str | None = None
        self._pipelines: dict[int, OrderPipeline] = {}

    # -- clients ------------------------------------------------------------------------------------
    @property
    def qb(self) -> Any:
        if self._qb is None:
            self._qb = self.accounts.quickbooks()
        return self._qb

    @property
    def ops(self) -> QuickBooksBatch:
        if self._ops is None:
            realm = self.accounts.require("quickbooks").account
            limiter = self.hub.limiter
            def free_now() -> bool:
                try:
                    limiter.acquire("quickbooks-batch", realm, timeout=0)
                    return True
                except Retryable:
                    return False

            self._ops = QuickBooksBatch(self.qb, lambda: limiter.acquire("quickbooks-batch", realm, timeout=150.0),
                                        free_now)
        return self._ops

    @property
    def refs(self) -> QuickBooksRefs:
        if self._refs is None:
            self._refs = QuickBooksRefs(self.qb, self.ledger, self.rules, lock=self.lock, rid=self.rid, run_id=None)
        return self._refs

    @property
    def home_currency(self) -> str | None:
        if self._home is None:
            self._home = self.refs.home_currency() or ""
        return self._home or None

    def rid(self, *parts: str) -> str:
        return qbmap.request_id(str(self.merchant_id), *parts)

    def lock_key(self, what: str) -> str:
        """The key ``sync.orders`` locks for the same object (``buyer:…``, ``item:…``)."""
        return f"{self.merchant_id}:{what}"

    def lock(self, what: str):  # noqa: ANN201
        return locks.held(self.hub.sessions, self.lock_key(what), ttl=120, wait=60)

    # -- entries ------------------------------------------------------------------------------------
    def live(self) -> list[Entry]:
        return [e for e in self.entries if e.live]

    def each(self, entries: Iterable[Entry], fn: Callable[[Entry], Any]) -> None:
        """``fn(entry)`` for each entry; what it raises becomes that entry's outcome."""
        for e in entries:
            try:
                fn(e)
            except Outcome as out:
                e.outcome = out
            except Exception as exc:  # noqa: BLE001 - that order's failure, classified when its run ends
                e.fail(exc)

    @staticmethod
    def fail_all(entries: Iterable[Entry], exc: BaseException) -> None:
        """One failure for every open entry of ``entries`` (a call that served them all failed): marked as
        shared when they are more than one run, so a retryable fault defers them (``sync.narrowing``)."""
        open_ = [e for e in entries if e.error is None and e.outcome is None]
        mark_shared(exc, len({e.run.id for e in open_}))
        for e in open_:
            e.fail(exc)

    def begin(self, entries: Iterable[Entry], step: str) -> None:
        for e in entries:
            e.rec.begin(step)

    def pipeline(self, e: Entry) -> OrderPipeline:
        """The single-order pipeline for an entry (the steps the batch leaves to it)."""
        from sync.orders import OrderPipeline

        p = self._pipelines.get(e.run.id)
        if p is None:
            assert e.order is not None
            p = OrderPipeline(self.hub, e.run, e.rec, self.accounts, e.order, self.rules)
            p._qb = self.qb  # one client (and one token refresh) for the whole batch
            self._pipelines[e.run.id] = p
        return p

    @staticmethod
    def order_source(e: Entry) -> Source:
        assert e.order is not None
        return Source(e.order.platform, "order", e.order.source_id)

    @staticmethod
    def buyer_key(e: Entry) -> str:
        """As ``OrderPipeline._buyer_key``: the e-mail (or store id); a guest is one customer per order."""
        assert e.order is not None
        key = e.order.customer.key
        return key if key != "guest" else f"order:{e.order.platform}:{e.order.source_id}"


def names_order(text: str | None, order_id: str) -> bool:
    """Whether a QuickBooks note (``PrivateNote``) names this order id as a word."""
    return bool(re.search(rf"\b{re.escape(order_id)}\b", text or ""))
