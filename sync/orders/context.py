"""What the steps of one pass share: the entries (one per order run), the merchant's rules, clients, bindings
and QuickBooks references, and the per-entry error handling (an exception in one entry's work is that
entry's outcome; a failed call that served several entries is every one's, marked as shared: see
``sync.narrowing``). The preview swaps the write clients and the bindings for recorders
(``sync.preview.PreviewContext``); the steps cannot tell."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from connectors.errors import Retryable
from hub.mapping_rules import rules_for
from hub.models import SyncRun, SyncStep, utcnow
from mappings import quickbooks as qbmap
from mappings.model import MappingError, Order, store_label
from mappings.qb_common import order_label
from mappings.rules import MappingRules
from mappings.targets import exchange_rate_for, invoice_currency
from sync import locks, runs
from sync.accounts import Accounts
from sync.jobs import Outcome, StepRecorder
from sync.ledger import Source
from sync.narrowing import mark_shared
from sync.orders.bindings import Bindings
from sync.orders.qb_batch import QuickBooksBatch
from sync.qb_refs import QuickBooksRefs

if TYPE_CHECKING:
    from hub.runtime import Hub

QB = "quickbooks"
Loader = Callable[[], Order | None]


class BufferedRecorder(StepRecorder):
    """A ``StepRecorder`` whose steps are written together (``sync.orders.runner.flush``), not one
    transaction each."""

    def __init__(self, hub: Hub, run: SyncRun, buffer: list[SyncStep]) -> None:
        super().__init__(hub, run)
        self.buffer = buffer

    def record(self, step: str, outcome: str, *, target_platform: str | None = None,
               target_type: str | None = None, target_id: str | None = None,
               message: str | None = None) -> None:
        self.buffer.append(SyncStep(run_id=self.run.id, attempt=runs.attempt_number(self.run), step=step,
                                    outcome=outcome,
                                    target_platform=target_platform, target_type=target_type,
                                    target_id=target_id, message=message, at=utcnow()))


@dataclass
class Entry:
    """One order of the pass: its run, the order, and what the steps found for it."""

    run: SyncRun
    rec: Any                      # a StepRecorder (or the preview's recorder)
    load: Loader | None = None
    order: Order | None = None
    error: BaseException | None = None
    outcome: Outcome | None = None
    customer_id: str | None = None
    item_ids: dict[str, str] = field(default_factory=dict)
    invoice: dict[str, Any] | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.error is None and self.outcome is None and self.order is not None

    def fail(self, exc: BaseException) -> None:
        if self.error is None and self.outcome is None:
            self.error = exc


class OrderContext:
    def __init__(self, hub: Hub, merchant_id: int, entries: list[Entry], *, accounts: Any = None,
                 bindings: Bindings | None = None, rules: MappingRules | None = None) -> None:
        self.hub = hub
        self.merchant_id = merchant_id
        self.entries = entries
        self.accounts = accounts or Accounts(hub, merchant_id)
        self.ledger = bindings or Bindings(hub.sessions, merchant_id)
        if rules is None:
            with hub.sessions() as s:
                rules = rules_for(s, merchant_id)
        self.rules = rules
        self._qb: Any = None
        self._ops: QuickBooksBatch | None = None
        self._refs: QuickBooksRefs | None = None
        self._home: str | None = None

    # -- clients ------------------------------------------------------------------------------------
    @property
    def qb(self) -> Any:
        if self._qb is None:
            self._qb = self.accounts.quickbooks()
        return self._qb

    @property
    def ops(self) -> QuickBooksBatch:
        if self._ops is None:
            self._ops = QuickBooksBatch(self.qb, *self._batch_permits())
        return self._ops

    def _batch_permits(self) -> tuple[Callable[[], Any], Callable[[], bool]]:
        """(wait for a permit of the batch endpoint, take one if free now) for the merchant's company."""
        realm = self.accounts.require("quickbooks").account
        limiter = self.hub.limiter

        def free_now() -> bool:
            try:
                limiter.acquire("quickbooks-batch", realm, timeout=0)
                return True
            except Retryable:
                return False

        return (lambda: limiter.acquire("quickbooks-batch", realm, timeout=150.0)), free_now

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

    def exchange_rate(self, e: Entry) -> Decimal | None:
        """The rate of the order's invoice, payments and refunds (home currency per unit of the order's),
        None when the order is in the home currency. The rule ``currency.exchange_rate`` picks the store's
        rate (when the store gives one into the home currency) or QuickBooks' own rate for the order's day;
        a company without multi-currency, or without a rate for that day, is a failure that names the fix."""
        assert e.order is not None
        currency = invoice_currency(e.order, self.rules, self.home_currency)
        if currency is None:
            return None
        home = self.home_currency or ""
        if not self.refs.multicurrency():
            raise MappingError(
                f"{order_label(e.order)} is in {currency} but the QuickBooks company keeps its books in {home} "
                "only: turn on multi-currency in QuickBooks (Settings → Account and settings → Advanced → "
                "Currency), or set the rule currency.multi_currency to off to hold such orders",
                rule="currency.multi_currency")
        if self.rules.currency.exchange_rate == "store":
            with contextlib.suppress(MappingError):
                return exchange_rate_for(e.order, self.rules, self.home_currency)[0]
        day = e.order.created_at.date().isoformat()
        rate = self.refs.exchange_rate(currency, day)
        if rate is None or rate <= 0:
            raise MappingError(
                f"{order_label(e.order)} is in {currency}; the store gives no {currency}→{home} rate and "
                f"QuickBooks has none for {day}: enter that day's rate in QuickBooks (Settings → Currencies)",
                rule="currency.exchange_rate")
        return rate

    def hubspot(self) -> Any:
        """The HubSpot client, or None when the merchant has no HubSpot connection."""
        return self.accounts.hubspot()

    def rid(self, *parts: str) -> str:
        return qbmap.request_id(str(self.merchant_id), *parts)

    def order_rid(self, e: Entry, *parts: str) -> str:
        """The QuickBooks ``requestid`` of a document of this order (the store is part of it where the store
        numbers its own orders, so two stores' order 12 never share one)."""
        assert e.order is not None
        store = (e.order.store,) if e.order.store else ()
        return self.rid(e.order.platform, *store, e.order.source_id, *parts)

    def lock_key(self, what: str) -> str:
        """The key locked for one object across workers (``buyer:…``, ``item:…``)."""
        return f"{self.merchant_id}:{what}"

    def lock(self, what: str):  # noqa: ANN201
        return locks.held(self.hub.sessions, self.lock_key(what), ttl=120, wait=60)

    def lock_all(self, whats: Iterable[str]):  # noqa: ANN201
        return self.ledger.held([self.lock_key(w) for w in whats])

    def save_canonical(self, entries: list[Entry]) -> None:
        """Keep each pulled order (mapped) on its run, for the console and a later replay."""
        pulled = {e.run.id: e.order for e in entries if e.order is not None}
        ids = sorted(pulled)
        with self.hub.sessions() as s:
            for start in range(0, len(ids), 500):   # the runs read in one query per 500
                for run in s.scalars(select(SyncRun).where(SyncRun.id.in_(ids[start:start + 500]))):
                    order = pulled[run.id]
                    run.canonical = order.to_dict()
                    run.source_name = order.name or run.source_name
            s.commit()

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

    @staticmethod
    def begin(entries: Iterable[Entry], step: str) -> None:
        for e in entries:
            e.rec.begin(step)

    def order_source(self, e: Entry, type_: str = "order") -> Source:
        """The order's source, keyed per store where the store numbers its own orders (WooCommerce)."""
        assert e.order is not None
        return self.ledger.order_source(e.order.platform, e.order.source_id, e.run.connection_id, type_)

    def buyer_key(self, e: Entry) -> str:
        """The e-mail (or store id) of the buyer; a guest without e-mail is nobody we can recognise again:
        one customer per order (per store, where the store numbers its own orders)."""
        assert e.order is not None
        key = e.order.customer.key
        if key != "guest":
            return key
        return guest_key(e.order.platform, e.order.source_id, self.order_source(e).store)


def guest_key(platform: str, order_id: str, store: str = "") -> str:
    """The buyer key of a guest order: the order itself (``@store`` where the store numbers its orders)."""
    return f"order:{platform}:{order_id}" + (f"@{store}" if store else "")


def names_order(text: str | None, order_id: str, store: str = "") -> bool:
    """Whether a QuickBooks note (``PrivateNote``) names this order id as a word, and, for an order of a
    store that numbers its own orders, no other store (a note written before notes named the store is
    taken as this store's)."""
    if not re.search(rf"\b{re.escape(order_id)}\b", text or ""):
        return False
    named = re.search(r"\(id \S+\) at (\S+)", text or "")
    return not store or named is None or named.group(1) == store_label(store)
