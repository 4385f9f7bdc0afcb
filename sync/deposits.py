"""A paid store payout becomes one QuickBooks Deposit, posted only when it equals the payout's net to the cent
(a payout of more than ``payouts.max_lines`` lines: several deposits that add up to it; a withdrawal: a deposit
of 0.00 and a transfer from the bank, see ``mappings.deposit_parts``).

For each paid payout not yet posted, under a lock per payout:

1. its bindings (``sync.payout_bindings``: each deposit part, the transfer) are read first: all bound means
   posted, nothing is sent (a retry, a second worker, a re-run of ``o2c payouts sync``);
2. the hub's payment for each charge is found from the payment bindings (per capture
   ``(platform, "capture", "<order id>:<capture id>")``, else the older per order ``(platform, "order", id)``)
   and read from QuickBooks in ``IN`` queries (it must still exist and sit in Undeposited Funds);
3. the rule-named accounts are resolved (created when missing, then remembered as bindings);
4. ``mappings.deposits.plan_deposit`` builds the lines; unless they tie out to the payout's net with nothing
   unexplained, the payout is **held** with the difference and the transactions that explain nothing;
5. for each deposit part not bound yet: a deposit already in QuickBooks for it (its memo names the payout and
   the part; a crash after the create) is taken as its own, else it is created with a deterministic
   ``requestid``; its binding is written at once. A withdrawal's transfer likewise (found by its note, else
   created, then bound). Then the payout is marked posted and its orders get the ``deposit_id`` of their part
   and ``deposited_at`` in the order ledger.

QuickBooks calls for a payout that posts: one ``IN`` query per 100 payments, one for the Undeposited Funds
account and one per new rule account (both only the first time), one look-up of the day's deposits and one
create per part; a withdrawal adds the day's transfers and the transfer's create. A posted payout costs none.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from connectors.errors import ConnectorError
from connectors.quickbooks import amount, quote
from hub.mapping_rules import rules_for
from hub.models import Binding, Merchant, utcnow
from hub.order_models import StoreOrder
from hub.payout_models import PayoutTransaction, StorePayout
from mappings import quickbooks as qbmap
from mappings.deposit_parts import split_plan, transfer_memo, transfer_payload
from mappings.deposits import (
    LinkablePayment,
    Txn,
    account_names,
    deposit_memo,
    deposit_payload,
    fee_accounts,
    plan_deposit,
)
from mappings.inputs import shown
from mappings.model import MappingError
from mappings.rules import MappingRules
from sync import alerts, locks, runs
from sync.accounts import Accounts
from sync.ledger import Ledger, Source, store_key
from sync.orders.bindings import bound
from sync.payout_bindings import QB, TRANSFER, Posting, part_kind, postings

if TYPE_CHECKING:
    from hub.runtime import Hub
    from sync.payouts import SyncReport

log = logging.getLogger("o2c.deposits")
IN_MAX = 100
UNDEPOSITED = Source("hub", "account", "undeposited_funds")
PAYOUT_HELD = "payout.held"


def payout_source(row: StorePayout) -> Source:
    return Source(row.platform, "payout", row.payout_id, store_key(row.platform, row.store))


def post_paid_payouts(hub: Hub, merchant_id: int, report: SyncReport) -> None:
    with hub.sessions() as s:
        ids = list(s.scalars(select(StorePayout.id).where(
            StorePayout.merchant_id == merchant_id, StorePayout.status == "paid",
            (StorePayout.deposit_state.is_(None)) | (StorePayout.deposit_state != "posted"))
            .order_by(StorePayout.issued_at, StorePayout.id)))
    for row_id in ids:
        outcome = post_one(hub, row_id)
        if outcome is None:
            continue
        with hub.sessions() as s:
            payout_id = s.get(StorePayout, row_id).payout_id
        (report.posted if outcome == "posted" else report.held).append(payout_id)


def post_one(hub: Hub, row_id: int, *, wait: float = 60.0) -> str | None:
    """Post one paid payout under its lock: ``posted``, ``held`` (QuickBooks' refusal too, as the reason), or
    None when another worker is at it right now. The console's Re-try calls this."""
    try:
        with locks.held(hub.sessions, f"payout:{row_id}", ttl=300, wait=wait):
            return post_payout(hub, row_id)
    except locks.LockBusy:   # another worker is posting it right now
        return None
    except (ConnectorError, MappingError) as exc:
        _hold(hub, row_id, None, None, f"QuickBooks: {exc}")
        return "held"


def post_payout(hub: Hub, row_id: int) -> str:
    """Post one paid payout (or find it posted); returns ``posted`` or ``held``."""
    with hub.sessions() as s:
        row = s.get(StorePayout, row_id)
        assert row is not None
        s.expunge(row)
        txns = [Txn(t.transaction_id, t.kind, t.type, Decimal(t.amount), Decimal(t.fee), Decimal(t.net), t.order_id,
                    t.order_name, t.capture_id, t.occurred_at.date().isoformat() if t.occurred_at else None)
                for t in s.scalars(select(PayoutTransaction).where(PayoutTransaction.payout_row_id == row_id)
                                   .order_by(PayoutTransaction.id))]
        rules = rules_for(s, row.merchant_id)
    ledger = Ledger(hub.sessions, row.merchant_id)
    source = payout_source(row)
    with hub.sessions() as s:
        posting = postings(s, [row])[row.id]
    if posting.complete:   # posted before (a retry, another worker): never a second deposit
        _posted(hub, row, posting)
        return "posted"
    net = Decimal(row.net)
    if not txns:
        _hold(hub, row_id, net, [], "the payout's transactions have not been read yet: run `o2c payouts sync`")
        return "held"
    qb = Accounts(hub, row.merchant_id).quickbooks()
    refs = _Accounts(hub, qb, ledger, rules, row.merchant_id)
    payments = _payments_of(hub, qb, row, txns, refs.undeposited_id())
    refunds_default = rules.payments.account_for(row.processor)
    wanted = {a for a in account_names(txns, rules.payouts, refunds_default).values() if a}
    if rules.payouts.mode == "summary":
        wanted.add(refunds_default)
    accounts = {name: refs.account(name) for name in sorted(wanted | set(fee_accounts(rules.payouts)))}
    plan = plan_deposit(txns, payments, accounts, rules.payouts, refunds_default)
    if not plan.balances(net):
        causes = "; ".join(sorted({u["cause"] for u in plan.unexplained})) or "the lines do not add up"
        _hold(hub, row_id, plan.difference(net), plan.unexplained,
              f"deposit would be {plan.total}, payout is {net}: {causes}")
        _sync_unknown_orders(hub, row, [u for u in plan.unexplained if u["kind"] == "charge" and u["order_id"]])
        return "held"
    max_lines = rules.payouts.max_lines
    clearing = rules.payouts.clearing_account_for(row.processor)
    clearing_id = refs.account(clearing) if net < 0 or len(plan.lines) > max_lines else ""
    parts = split_plan(plan, net, max_lines=max_lines, clearing_account_id=clearing_id,
                       payout_label=f"payout {row.payout_id}")
    if posting.deposits and posting.parts != len(parts.parts):
        _hold(hub, row_id, None, None, f"payout {row.payout_id} was partly posted as {posting.parts} deposits "
                                       f"({', '.join(posting.deposit_ids)}) and would now take {len(parts.parts)}: "
                                       "payouts.max_lines changed meanwhile; set it back to finish the payout")
        return "held"
    issued = (row.issued_at or utcnow()).date().isoformat()
    bank_id = refs.account(rules.payouts.deposit_account_for(row.processor), bank=True)
    found: dict[tuple[int, int], dict[str, Any]] | None = None   # the day's deposits, looked up once
    for part in parts.parts:
        kind = part_kind(part.number)
        if part.number in posting.deposits:   # created and bound before a crash: resumed after it
            continue
        if found is None:
            found = _existing_deposits(qb, issued, row.payout_id)
        deposit = found.get((part.number, part.parts))
        if deposit is None:
            memo = deposit_memo(row.processor, row.payout_id, issued, part.number, part.parts)
            payload = deposit_payload(part, bank_account_id=bank_id, txn_date=issued, memo=memo)
            which = ("deposit",) if part.parts == 1 else ("deposit", f"{part.number}/{part.parts}")
            rid = qbmap.request_id(str(row.merchant_id), row.platform, row.store, row.payout_id, *which)
            deposit = qb.create("Deposit", payload, request_id=rid)
        ledger.bind(source, QB, kind, str(deposit["Id"]),
                    data={"total": str(amount(deposit.get("TotalAmt"))), "payout_net": row.net,
                          "order_ids": part.order_ids, "store": row.store, "part": part.number,
                          "parts": part.parts, "transfer": str(parts.transfer) if parts.transfer else None})
    if parts.transfer > 0 and posting.transfer is None:
        transfer = _existing_transfer(qb, issued, row.payout_id)
        if transfer is None:
            payload = transfer_payload(parts.transfer, bank_account_id=bank_id, clearing_account_id=clearing_id,
                                       txn_date=issued, memo=transfer_memo(row.processor, row.payout_id, issued))
            rid = qbmap.request_id(str(row.merchant_id), row.platform, row.store, row.payout_id, "transfer")
            transfer = qb.create("Transfer", payload, request_id=rid)
        ledger.bind(source, QB, TRANSFER, str(transfer["Id"]),
                    data={"amount": str(amount(transfer.get("Amount"))), "payout_net": row.net, "store": row.store})
    with hub.sessions() as s:
        posting = postings(s, [row])[row.id]
    _posted(hub, row, posting)
    return "posted"


_PART = re.compile(r" part (\d+) of (\d+),")


def _existing_deposits(qb: Any, day: str, payout_id: str) -> dict[tuple[int, int], dict[str, Any]]:
    """The deposits of that day whose memo names the payout (created before a crash lost the answer), by
    (part, parts): ``(1, 1)`` for a payout posted as one deposit."""
    marker = f" payout {payout_id} "
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for dep in qb.query(f"SELECT * FROM Deposit WHERE TxnDate = {quote(day)} MAXRESULTS 1000"):
        note = f" {dep.get('PrivateNote') or ''} "
        if marker in note:
            part = _PART.search(note)
            out.setdefault((int(part[1]), int(part[2])) if part else (1, 1), dep)
    return out


def _existing_transfer(qb: Any, day: str, payout_id: str) -> dict[str, Any] | None:
    """A transfer of that day whose note names the payout (created before a crash lost the answer)."""
    marker = f" payout {payout_id} "
    for transfer in qb.query(f"SELECT * FROM Transfer WHERE TxnDate = {quote(day)} MAXRESULTS 1000"):
        if marker in f" {transfer.get('PrivateNote') or ''} ":
            return transfer
    return None


def _payments_of(hub: Hub, qb: Any, row: StorePayout, txns: list[Txn],
                 undeposited_id: str | None) -> dict[str, LinkablePayment | str]:
    """Charge id → the hub's QuickBooks payment for it as QuickBooks shows it now (or why there is none)."""
    store = store_key(row.platform, row.store)
    charges = [t for t in txns if t.kind == "charge" and t.order_id]
    per_capture = {t.id: Source(row.platform, "capture", f"{t.order_id}:{t.capture_id}", store)
                   for t in charges if t.capture_id}
    per_order = {t.id: Source(row.platform, "order", str(t.order_id), store) for t in charges}
    found = bound(hub.sessions, row.merchant_id, [*per_capture.values(), *per_order.values()], QB, "payment")
    chosen: dict[str, str] = {}
    for t in charges:
        b = found.get(per_capture.get(t.id)) or found.get(per_order[t.id])   # type: ignore[arg-type]
        if b is not None and not (b.data or {}).get("voided"):
            chosen[t.id] = b.target_id
    for t in charges:   # a capture the store names otherwise (WooCommerce: one payment per order): the order's only one
        if t.id not in chosen and (only := _only_capture_payment(hub, row, store, str(t.order_id))) is not None:
            chosen[t.id] = only
    ids = sorted(set(chosen.values()))
    current: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), IN_MAX):
        part = ", ".join(quote(i) for i in ids[start:start + IN_MAX])
        rows = qb.query(f"SELECT * FROM Payment WHERE Id IN ({part}) MAXRESULTS 1000")
        current.update({str(p["Id"]): p for p in rows})
    out: dict[str, LinkablePayment | str] = {}
    for t in charges:
        pid = chosen.get(t.id)
        if pid is None:
            out[t.id] = f"order {t.order_name or t.order_id} has no QuickBooks payment yet (not synced, or unpaid)"
        elif pid not in current or amount(current[pid].get("TotalAmt")) <= 0:
            out[t.id] = f"QuickBooks payment {pid} of order {t.order_name} is gone or voided"
        else:
            account = (current[pid].get("DepositToAccountRef") or {}).get("value")
            out[t.id] = LinkablePayment(pid, amount(current[pid].get("TotalAmt")),
                                        account is None or str(account) == undeposited_id)
    return out


def _only_capture_payment(hub: Hub, row: StorePayout, store: str, order_id: str) -> str | None:
    with hub.sessions() as s:
        found = [b for b in s.scalars(select(Binding).where(
            Binding.merchant_id == row.merchant_id, Binding.source_platform == row.platform,
            Binding.source_type == "capture", Binding.source_store == store,
            Binding.source_id.like(f"{order_id}:%"), Binding.target_platform == QB, Binding.target_type == "payment"))
            if not (b.data or {}).get("voided")]
    return found[0].target_id if len(found) == 1 else None


class _Accounts:
    """Rule-named accounts by name: bound once, looked up, created when missing (``rules.payouts`` says the type)."""

    def __init__(self, hub: Hub, qb: Any, ledger: Ledger, rules: MappingRules, merchant_id: int) -> None:
        self.hub, self.qb, self.ledger, self.rules, self.merchant_id = hub, qb, ledger, rules, merchant_id

    def undeposited_id(self) -> str | None:
        bound_id = self.ledger.target_id(UNDEPOSITED, QB, "account")
        if bound_id:
            return bound_id
        found = self.qb.query("SELECT * FROM Account WHERE AccountSubType = 'UndepositedFunds' MAXRESULTS 1")
        if not found:
            return None
        self.ledger.bind(UNDEPOSITED, QB, "account", str(found[0]["Id"]), data={"name": found[0].get("Name")})
        return str(found[0]["Id"])

    def account(self, name: str, *, bank: bool = False) -> str:
        """The account's id; a bank account (``bank``) must exist and be of type Bank, any other is created."""
        source = Source("hub", "account", name)
        bound_id = self.ledger.target_id(source, QB, "account")
        if bound_id:
            return bound_id
        found = self.qb.find_one("Account", "Name", name)
        if bank and (not found or found.get("AccountType") != "Bank"):
            what = f"is {found.get('AccountType')}, not a bank account" if found else "does not exist in QuickBooks"
            raise MappingError(f"account {shown(name)} {what}: a deposit goes to the bank account the payout reaches",
                               rule="payouts.deposit_accounts")
        if not found:
            with locks.held(self.hub.sessions, f"account:{self.merchant_id}:{name}", ttl=60, wait=30):
                found = self.qb.find_one("Account", "Name", name) or self.qb.create(
                    "Account", {"Name": name, "AccountType": self.rules.payouts.account_type(name)},
                    request_id=qbmap.request_id(str(self.merchant_id), "account", name))
        self.ledger.bind(source, QB, "account", str(found["Id"]), data={"name": name})
        return str(found["Id"])


def _sync_unknown_orders(hub: Hub, row: StorePayout, charges: list[dict[str, Any]]) -> None:
    """A charge of an order the hub never saw (its webhooks lost): the order gets its sync run now, through the
    normal pipeline (invoice, then payment), so the next pass finds its payment. An order the hub knows is left
    to its own runs (the order ledger says why it has no payment)."""
    wanted = {str(u["order_id"]): u.get("order") for u in charges}
    if not wanted:
        return
    with hub.sessions() as s:
        known = set(s.scalars(select(StoreOrder.order_id).where(
            StoreOrder.merchant_id == row.merchant_id, StoreOrder.platform == row.platform,
            StoreOrder.store == row.store, StoreOrder.order_id.in_(list(wanted)))))
        opened = []
        for order_id, name in wanted.items():
            if order_id not in known:
                run, new = runs.open_run(s, merchant_id=row.merchant_id, kind="order", platform=row.platform,
                                         source_id=order_id, source_name=name, trigger="payout",
                                         connection_id=row.connection_id)
                if new:
                    opened.append(run.id)
        s.commit()
    for run_id in opened:
        hub.dispatcher.dispatch(run_id)


def _hold(hub: Hub, row_id: int, difference: Decimal | None, unexplained: list[dict[str, Any]] | None,
          reason: str) -> None:
    with hub.sessions() as s:
        row = s.get(StorePayout, row_id)
        if row is None or row.deposit_state == "posted":
            return
        row.deposit_state = "held"
        if difference is not None:
            row.difference = str(difference)
        if unexplained is not None:
            row.unexplained = unexplained
        row.reason = reason[:2000]
        row.updated_at = utcnow()
        s.commit()
        event = {"event": PAYOUT_HELD, "cause": f"{PAYOUT_HELD}:{row.platform}:{row.payout_id}",
                 "merchant": {"id": row.merchant_id, "name": getattr(s.get(Merchant, row.merchant_id), "name", None)},
                 "message": f"Payout {row.payout_id} ({row.net} {row.currency}) of {row.store} is held, not posted to "
                            f"QuickBooks: {reason}",
                 "payout": {"platform": row.platform, "payout_id": row.payout_id, "net": row.net,
                            "difference": row.difference, "unexplained": list(row.unexplained or [])},
                 "at": utcnow().isoformat(timespec="seconds") + "Z",
                 "api_url": f"{hub.settings.public_url}/api/v1/payouts?merchant={row.merchant_id}"}
        merchant_id = row.merchant_id
    log.warning("payout %s held: %s", row_id, reason)
    alerts.notify(hub, event["cause"], event, merchant_id)   # at most once an hour per payout and channel


def _posted(hub: Hub, row: StorePayout, posting: Posting) -> None:
    """The payout is posted; its orders show the deposit (the part) that carries them in the order ledger (one
    transaction). ``deposit_total`` is what the deposits and the transfer move in the bank together."""
    now = utcnow()
    total = sum((Decimal((b.data or {}).get("total") or "0") for b in posting.deposits.values()), Decimal("0.00"))
    if posting.transfer is not None:
        total -= Decimal((posting.transfer.data or {}).get("amount") or "0")
    with hub.sessions() as s:
        s.execute(update(StorePayout).where(StorePayout.id == row.id).values(
            deposit_state="posted", deposit_id=posting.deposit_ids[0], deposit_total=str(total),
            difference=str(Decimal(row.net) - total), reason=None, unexplained=[], posted_at=row.posted_at or now,
            updated_at=now))
        for binding in posting.deposits.values():
            order_ids = list((binding.data or {}).get("order_ids") or [])
            for start in range(0, len(order_ids), 500):
                s.execute(update(StoreOrder).where(
                    StoreOrder.merchant_id == row.merchant_id, StoreOrder.platform == row.platform,
                    StoreOrder.store == row.store, StoreOrder.order_id.in_(order_ids[start:start + 500]))
                    .values(deposit_id=binding.target_id, deposited_at=now, updated_at=now))
        s.commit()
