"""WooPayments for the WooCommerce simulator: deposits and their transactions (PLATFORMS.md, "Added 2026-12").

Served per store: ``GET wc/v3/payments/deposits`` (``status_is``, ``page``, ``pagesize``), ``GET
wc/v3/payments/deposits/{id}`` and ``GET wc/v3/payments/transactions?deposit_id=…`` (``page``, ``pagesize``),
answered as the WooPayments plugin relays them from its server ⚠ (shapes from the plugin's client code, not
confirmed): lists as ``{"data": [...], "total_count": N}``, amounts in **cents** (integers), deposit dates in
milliseconds since the epoch, transaction dates ``YYYY-MM-DD HH:MM:SS`` (UTC).

``record_wcpay_order`` puts an order paid with WooPayments (``payment_method`` ``woocommerce_payments``) in the
balance: its charge (fee 2.9 % + 0.30 unless set otherwise, the charge id being the order's ``transaction_id``)
and its refunds (no fee); ``add_wcpay_adjustment`` adds any other type; ``schedule_wcpay_deposit`` gathers every
transaction not yet deposited (a ``deposit``, or a ``withdrawal`` when they net negative) and
``pay_wcpay_deposit`` marks it paid. ``net = amount − fees``; a deposit's amount is the sum of its nets.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

GATEWAY = "woocommerce_payments"
DEPOSIT_STATUSES = ("estimated", "pending", "in_transit", "paid", "failed", "canceled")
_ids = itertools.count(1)


def cents(value: Decimal) -> int:
    return int((value * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


@dataclass
class WcpayTransaction:
    id: str
    type: str
    amount: Decimal
    fees: Decimal
    at: datetime
    order_id: int | None = None
    charge_id: str | None = None
    deposit_id: str | None = None

    @property
    def net(self) -> Decimal:
        return self.amount - self.fees


@dataclass
class WcpayDeposit:
    id: str
    at: datetime
    status: str = "pending"
    transactions: list[WcpayTransaction] = field(default_factory=list)

    @property
    def amount(self) -> Decimal:
        return sum((t.net for t in self.transactions), Decimal("0"))


@dataclass
class WcpayAccount:
    rate: Decimal = Decimal("0.029")
    flat: Decimal = Decimal("0.30")
    transactions: list[WcpayTransaction] = field(default_factory=list)
    deposits: list[WcpayDeposit] = field(default_factory=list)
    recorded: set[str] = field(default_factory=set)


class WooPaymentsControls:
    """Mixed into ``WooCommerceSimulator``; ``PAYMENTS_ROUTES`` join its REST routes."""

    PAYMENTS_ROUTES = [(r"/wc/v3/payments/deposits", ("GET",), "_r_wcpay_deposits"),
                       (r"/wc/v3/payments/deposits/(?P<id>po_\w+)", ("GET",), "_r_wcpay_deposit"),
                       (r"/wc/v3/payments/transactions", ("GET",), "_r_wcpay_transactions")]
    lock: Any
    stores: dict[str, Any]

    def _wcpay(self, store: str) -> WcpayAccount:
        st = self.stores[store]
        if not hasattr(st, "wcpay"):
            st.wcpay = WcpayAccount()
        return st.wcpay

    # -- test controls -------------------------------------------------------------------------
    def record_wcpay_order(self, store: str, order_id: int) -> list[WcpayTransaction]:
        with self.lock:
            account, order = self._wcpay(store), self.stores[store].orders[int(order_id)]
            if order.payment_method != GATEWAY or order.date_paid is None:
                return []
            added = []
            key = f"charge:{order.id}"
            if key not in account.recorded:
                account.recorded.add(key)
                fee = (order.total * account.rate + account.flat).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
                added.append(WcpayTransaction(f"txn_{next(_ids):06d}", "charge", order.total, fee, order.date_paid,
                                              order.id, order.transaction_id or None))
            for r in order.refunds:
                key = f"refund:{r.id}"
                if key not in account.recorded:
                    account.recorded.add(key)
                    added.append(WcpayTransaction(f"txn_{next(_ids):06d}", "refund", -r.amount, Decimal("0.00"),
                                                  datetime.now(UTC), order.id, order.transaction_id or None))
            account.transactions += added
            return added

    def add_wcpay_adjustment(self, store: str, amount: str | Decimal, *, type: str = "adjustment",  # noqa: A002
                             fees: str | Decimal = "0") -> WcpayTransaction:
        with self.lock:
            txn = WcpayTransaction(f"txn_{next(_ids):06d}", type, Decimal(str(amount)), Decimal(str(fees)),
                                   datetime.now(UTC))
            self._wcpay(store).transactions.append(txn)
            return txn

    def schedule_wcpay_deposit(self, store: str, *, at: datetime | None = None) -> WcpayDeposit:
        with self.lock:
            account = self._wcpay(store)
            deposit = WcpayDeposit(f"po_{next(_ids):010d}", at or datetime.now(UTC))
            for t in account.transactions:
                if t.deposit_id is None:
                    t.deposit_id = deposit.id
                    deposit.transactions.append(t)
            if not deposit.transactions:
                raise ValueError("no transaction is waiting for a deposit")
            account.deposits.append(deposit)
            return deposit

    def pay_wcpay_deposit(self, store: str, deposit_id: str, status: str = "paid") -> WcpayDeposit:
        if status not in DEPOSIT_STATUSES:
            raise ValueError(f"status must be one of {DEPOSIT_STATUSES}")
        with self.lock:
            deposit = next(d for d in self._wcpay(store).deposits if d.id == deposit_id)
            deposit.status = status
            return deposit

    # -- REST (lock held) ------------------------------------------------------------------------
    def _deposit_json(self, st: Any, d: WcpayDeposit) -> dict[str, Any]:
        return {"id": d.id, "date": int(d.at.timestamp() * 1000), "type": "deposit" if d.amount >= 0 else "withdrawal",
                "amount": cents(d.amount), "status": d.status, "bankAccount": "STRIPE TEST BANK •••• 6789 (USD)",
                "currency": st.currency.lower(), "automatic": True, "fee": 0, "fee_percentage": 0,
                "created": int(d.at.timestamp())}

    def _r_wcpay_deposits(self, st: Any, key: Any, method: str, p: Any) -> tuple:
        page, size = p.int("page", 1, 1), p.int("pagesize", 25, 1, 100)
        status = p.raw.get("status_is") or None
        p.check()
        self._need(key, "view", "Sorry, you cannot list resources.")  # type: ignore[attr-defined]
        rows = [d for d in sorted(self._wcpay(st.name).deposits, key=lambda d: d.at, reverse=True)
                if status is None or d.status == status]
        return 200, {"data": [self._deposit_json(st, d) for d in rows[(page - 1) * size:page * size]],
                     "total_count": len(rows)}, {}, []

    def _r_wcpay_deposit(self, st: Any, key: Any, method: str, p: Any, id: str) -> tuple:  # noqa: A002
        from demo.simulators.woocommerce import WPError

        self._need(key, "view", "Sorry, you cannot view this resource.")  # type: ignore[attr-defined]
        found = next((d for d in self._wcpay(st.name).deposits if d.id == id), None)
        if found is None:
            raise WPError("wcpay_deposit_not_found", "Deposit not found.", 404)
        return 200, self._deposit_json(st, found), {}, []

    def _r_wcpay_transactions(self, st: Any, key: Any, method: str, p: Any) -> tuple:
        page, size = p.int("page", 1, 1), p.int("pagesize", 25, 1, 100)
        deposit = p.raw.get("deposit_id") or None
        p.check()
        self._need(key, "view", "Sorry, you cannot list resources.")  # type: ignore[attr-defined]
        rows = [t for t in self._wcpay(st.name).transactions if deposit is None or t.deposit_id == deposit]
        currency = st.currency.lower()
        data = [{"transaction_id": t.id, "type": t.type, "charge_id": t.charge_id, "amount": cents(t.amount),
                 "fees": cents(t.fees), "net": cents(t.net), "currency": currency,
                 "date": t.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), "deposit_id": t.deposit_id,
                 "order": ({"number": str(st.orders[t.order_id].number or t.order_id),
                            "url": f"{st.url}/wp-admin/post.php?post={t.order_id}&action=edit"}
                           if t.order_id is not None else None)}
                for t in rows[(page - 1) * size:page * size]]
        return 200, {"data": data, "total_count": len(rows)}, {}, []
