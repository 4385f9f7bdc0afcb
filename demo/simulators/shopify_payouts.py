"""Shopify Payments for the simulator: balance transactions, payouts and the ``shopifyPaymentsAccount`` field.

Every Shopify Payments capture (a SALE or CAPTURE with gateway ``shopify_payments``) and refund of an order
becomes a balance transaction (``record_order``) with the account's fee model (``FeeModel``: a rate plus a
flat fee on charges, none on refunds, as Shopify charges); adjustments are added by hand (``add_adjustment``,
any ``ShopifyPaymentsTransactionType``). ``schedule_payout`` gathers every transaction not yet paid out into
one payout (SCHEDULED; a DEPOSIT, or a WITHDRAWAL when the transactions net negative) and ``pay_payout``
moves it to PAID, as Shopify does days later. Money rules: a transaction's ``net = amount − fee``; a payout's
``net`` is the sum of its transactions' nets; ``summary`` splits it by kind (gross and fee).

Served (PLATFORMS.md, "Added 2026-12"; field names from the 2025-01 schema): ``shopifyPaymentsAccount {
payouts(first, after, query, sortKey, reverse, transactionType) balanceTransactions(first, after, query) }``.
``payouts(query:)`` filters ``status:`` and ``issued_at:`` (``>= > <= < =``); ``balanceTransactions(query:)``
filters ``payments_transfer_id:<payout legacyResourceId>`` ⚠ (what public code sends) and
``payout_status:``. A transaction not yet in a payout has ``associatedPayout { id: …/0, status: PENDING }``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import graphql

from demo.simulators.shopify_orders import ShopifyOrder, connection, gql_money, gql_time

CENT = Decimal("0.01")
PAYMENTS_GATEWAY = "shopify_payments"
PAYOUT_STATUSES = ("SCHEDULED", "IN_TRANSIT", "PAID", "FAILED", "CANCELED")
_FILTER = re.compile(r"(\w+):(>=|<=|>|<|=)?(\S+)")
#: the summary field pair (gross, fee) each source type adds to
_SUMMARY = {"CHARGE": ("chargesGross", "chargesFee"), "REFUND": ("refundsFeeGross", "refundsFee"),
            "ADJUSTMENT": ("adjustmentsGross", "adjustmentsFee"), "DISPUTE": ("adjustmentsGross", "adjustmentsFee"),
            "SYSTEM_ADJUSTMENT": ("adjustmentsGross", "adjustmentsFee"),
            "ADJUSTMENT_REVERSAL": ("adjustmentsGross", "adjustmentsFee")}
_RESERVE_TYPES = ("RESERVED_FUNDS", "RESERVED_FUNDS_WITHDRAWAL", "RESERVED_FUNDS_REVERSAL")


@dataclass(frozen=True)
class FeeModel:
    """What Shopify Payments keeps of a charge: ``rate`` × amount + ``flat``, to the cent; refunds keep none."""

    rate: Decimal = Decimal("0.029")
    flat: Decimal = Decimal("0.30")

    def charge_fee(self, amount: Decimal) -> Decimal:
        return (amount * self.rate + self.flat).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class BalanceTransaction:
    id: int
    type: str                 # ShopifyPaymentsTransactionType: CHARGE, REFUND, ADJUSTMENT, DISPUTE_WITHDRAWAL, …
    source_type: str          # ShopifyPaymentsSourceType: CHARGE, REFUND, ADJUSTMENT, DISPUTE, …
    amount: Decimal
    fee: Decimal
    at: datetime
    order_id: int | None = None
    order_name: str | None = None
    order_transaction_id: int | None = None
    adjustment_reason: str | None = None
    payout_id: int | None = None

    @property
    def net(self) -> Decimal:
        return self.amount - self.fee


@dataclass
class Payout:
    id: int
    issued_at: datetime
    status: str = "SCHEDULED"
    transactions: list[BalanceTransaction] = field(default_factory=list)

    @property
    def net(self) -> Decimal:
        return sum((t.net for t in self.transactions), Decimal("0"))


@dataclass
class PaymentsAccount:
    currency: str
    fees: FeeModel = field(default_factory=FeeModel)
    transactions: list[BalanceTransaction] = field(default_factory=list)
    payouts: list[Payout] = field(default_factory=list)
    recorded: set[int] = field(default_factory=set)      # order transaction ids already in the balance


_ids = itertools.count(7_000_001)


class ShopifyPaymentsControls:
    """Mixed into ``ShopifySimulator``: the shops' Shopify Payments accounts and their GraphQL field."""

    lock: Any
    shops: dict[str, dict[str, Any]]
    orders: dict[str, dict[int, ShopifyOrder]]
    payments_accounts: dict[str, PaymentsAccount]

    def _reset_payments(self) -> None:
        self.payments_accounts = {}

    def _payments(self, domain: str) -> PaymentsAccount:
        account = self.payments_accounts.get(domain)
        if account is None:
            currency = self.shops.get(domain, {}).get("currencyCode", "USD")
            account = self.payments_accounts[domain] = PaymentsAccount(currency)
        return account

    # -- test controls -------------------------------------------------------------------------
    def set_fee_model(self, domain: str, *, rate: str | Decimal, flat: str | Decimal) -> None:
        with self.lock:
            self._payments(domain).fees = FeeModel(Decimal(str(rate)), Decimal(str(flat)))

    def record_order(self, domain: str, order_id: int) -> list[BalanceTransaction]:
        """Put the order's Shopify Payments captures (a charge each, less the fee) and refunds (no fee) in the
        balance, once each; returns the transactions added."""
        with self.lock:
            account = self._payments(domain)
            order = self.orders[domain][int(order_id)]
            voided = {t.parent_id for t in order.transactions if t.kind == "VOID" and t.status == "SUCCESS"}
            added = []
            for t in order.transactions:
                if t.gateway != PAYMENTS_GATEWAY or t.status != "SUCCESS" or t.id in account.recorded:
                    continue
                if t.kind in ("SALE", "CAPTURE") and t.id not in voided:
                    kind, amount, fee = "CHARGE", t.amount, account.fees.charge_fee(t.amount)
                elif t.kind == "REFUND":
                    kind, amount, fee = "REFUND", -t.amount, Decimal("0.00")
                else:
                    continue
                account.recorded.add(t.id)
                txn = BalanceTransaction(next(_ids), kind, kind, amount, fee, t.processed_at, order.order_id,
                                         order.name, t.id)
                account.transactions.append(txn)
                added.append(txn)
            return added

    def add_adjustment(self, domain: str, amount: str | Decimal, *, type: str = "ADJUSTMENT",  # noqa: A002
                       reason: str | None = None, fee: str | Decimal = "0", order: ShopifyOrder | None = None,
                       source_type: str | None = None, at: datetime | None = None) -> BalanceTransaction:
        """A transaction Shopify adds by itself (a correction, a shipping label, a dispute, a reserve, …)."""
        src = source_type or ("DISPUTE" if type.startswith(("DISPUTE", "CHARGEBACK")) else "ADJUSTMENT")
        with self.lock:
            txn = BalanceTransaction(next(_ids), type, src, Decimal(str(amount)), Decimal(str(fee)),
                                     at or datetime.now(UTC), order.order_id if order else None,
                                     order.name if order else None, None, reason)
            self._payments(domain).transactions.append(txn)
            return txn

    def schedule_payout(self, domain: str, *, issued_at: datetime | None = None) -> Payout:
        """Every transaction not yet paid out, as one SCHEDULED payout."""
        with self.lock:
            account = self._payments(domain)
            payout = Payout(next(_ids), issued_at or datetime.now(UTC))
            for t in account.transactions:
                if t.payout_id is None:
                    t.payout_id = payout.id
                    payout.transactions.append(t)
            if not payout.transactions:
                raise ValueError("no transaction is waiting for a payout")
            account.payouts.append(payout)
            return payout

    def pay_payout(self, domain: str, payout_id: int, status: str = "PAID") -> Payout:
        """The payout reaches the bank (PAID), or FAILED / CANCELED."""
        if status not in PAYOUT_STATUSES:
            raise ValueError(f"status must be one of {PAYOUT_STATUSES}")
        with self.lock:
            payout = next(p for p in self._payments(domain).payouts if p.id == int(payout_id))
            payout.status = status
            return payout

    # -- GraphQL -------------------------------------------------------------------------------
    def payments_query_fields(self, domain: str) -> dict[str, Any]:
        return {"shopifyPaymentsAccount": lambda info: self._account_node(domain)}

    def _account_node(self, domain: str) -> dict[str, Any]:
        with self.lock:
            account = self._payments(domain)
            balance = sum((t.net for t in account.transactions if t.payout_id is None), Decimal("0"))
            return {"id": f"gid://shopify/ShopifyPaymentsAccount/{abs(hash(domain)) % 10**8}", "activated": True,
                    "country": "US", "defaultCurrency": account.currency, "onboardable": False,
                    "balance": [self._money(balance, account.currency)],
                    "payouts": lambda info, **args: self._payouts(domain, **args),
                    "balanceTransactions": lambda info, **args: self._transactions(domain, **args)}

    @staticmethod
    def _money(value: Decimal, currency: str) -> dict[str, str]:
        return {"amount": gql_money(value), "currencyCode": currency}

    def _payout_node(self, p: Payout, currency: str) -> dict[str, Any]:
        summary = {k: Decimal("0") for pair in _SUMMARY.values() for k in pair}
        summary.update({k: Decimal("0") for k in ("reservedFundsGross", "reservedFundsFee", "retriedPayoutsGross",
                                                  "retriedPayoutsFee", "advanceGross", "advanceFees")})
        for t in p.transactions:
            gross, fee = (("reservedFundsGross", "reservedFundsFee") if t.type in _RESERVE_TYPES
                          else _SUMMARY.get(t.source_type, ("adjustmentsGross", "adjustmentsFee")))
            summary[gross] += t.amount
            summary[fee] += t.fee
        return {"id": f"gid://shopify/ShopifyPaymentsPayout/{p.id}", "legacyResourceId": str(p.id),
                "issuedAt": gql_time(p.issued_at), "status": p.status,
                "transactionType": "DEPOSIT" if p.net >= 0 else "WITHDRAWAL",
                "net": self._money(p.net, currency),
                "gross": self._money(sum((t.amount for t in p.transactions), Decimal("0")), currency),
                "summary": {k: self._money(v, currency) for k, v in summary.items()}}

    def _payouts(self, domain: str, *, first: int | None = None, after: str | None = None,
                 last: int | None = None, before: str | None = None, reverse: bool = False,
                 query: str | None = None, sortKey: str | None = None,  # noqa: N803
                 transactionType: str | None = None, **_: Any) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            account = self._payments(domain)
            chosen = [p for p in account.payouts if _payout_matches(p, query)]
            if transactionType:
                chosen = [p for p in chosen if ("DEPOSIT" if p.net >= 0 else "WITHDRAWAL") == transactionType]
            if sortKey == "ISSUED_AT":
                chosen.sort(key=lambda p: (p.issued_at, p.id))
            nodes = [self._payout_node(p, account.currency) for p in chosen]
            ids = [p.id for p in chosen]
        return _page(nodes, ids, first=first, after=after, last=last, before=before, reverse=reverse)

    def _transaction_node(self, t: BalanceTransaction, account: PaymentsAccount) -> dict[str, Any]:
        payout = next((p for p in account.payouts if p.id == t.payout_id), None)
        return {
            "id": f"gid://shopify/ShopifyPaymentsBalanceTransaction/{t.id}", "type": t.type,
            "sourceType": t.source_type, "test": False, "transactionDate": gql_time(t.at),
            "amount": self._money(t.amount, account.currency), "fee": self._money(t.fee, account.currency),
            "net": self._money(t.net, account.currency), "sourceId": t.id,
            "sourceOrderTransactionId": t.order_transaction_id, "adjustmentReason": t.adjustment_reason,
            "adjustmentsOrders": [],
            "associatedOrder": ({"id": f"gid://shopify/Order/{t.order_id}", "name": t.order_name}
                                if t.order_id is not None else None),
            "associatedPayout": ({"id": f"gid://shopify/ShopifyPaymentsPayout/{payout.id}", "status": payout.status}
                                 if payout is not None else
                                 {"id": "gid://shopify/ShopifyPaymentsPayout/0", "status": "PENDING"})}

    def _transactions(self, domain: str, *, first: int | None = None, after: str | None = None,
                      last: int | None = None, before: str | None = None, reverse: bool = False,
                      query: str | None = None, **_: Any) -> dict[str, Any]:
        with self.lock:
            account = self._payments(domain)
            chosen = list(account.transactions)
            for name, _op, raw in _FILTER.findall(query or ""):
                if name.lower() == "payments_transfer_id":
                    chosen = [t for t in chosen if str(t.payout_id) == raw.strip("'\"")]
                elif name.lower() == "payout_status":
                    status = {p.id: p.status for p in account.payouts}
                    chosen = [t for t in chosen if status.get(t.payout_id or 0, "PENDING") == raw.upper()]
            nodes = [self._transaction_node(t, account) for t in chosen]
            ids = [t.id for t in chosen]
        return _page(nodes, ids, first=first, after=after, last=last, before=before, reverse=reverse)


def _page(nodes: list[Any], ids: list[int], **args: Any) -> dict[str, Any]:
    try:
        return connection(nodes, ids, **args)
    except ValueError as exc:
        raise graphql.GraphQLError(str(exc)) from None


def _payout_matches(p: Payout, query: str | None) -> bool:
    for name, op, raw in _FILTER.findall(query or ""):
        name, op, raw = name.lower(), op or "=", raw.strip("'\"")
        if name == "status" and p.status != raw.upper():
            return False
        if name == "issued_at":
            try:
                target = datetime.fromisoformat(raw if "T" in raw else raw + "T00:00:00").replace(tzinfo=UTC)
            except ValueError:
                continue   # Shopify ignores a filter it cannot parse
            value = p.issued_at.astimezone(UTC)
            if not {">=": value >= target, "<=": value <= target, ">": value > target, "<": value < target,
                    "=": value.date() == target.date()}[op]:
                return False
    return True
