"""Payments recorded in QuickBooks flow back to the store.

A ``payment`` run is opened for every QuickBooks notification (or catch-up find) about a Payment. The
worker fetches the payment, follows each invoice it pays to the store order through the bindings, and
when an invoice is fully paid marks that order paid in its store (Shopify ``orderMarkAsPaid``;
WooCommerce: the status the merchant's rule names, with an order note naming the payment) and the
buyer's HubSpot contact is written again from the order as it now stands; the payer's credit holds are
released when the payment brings their exposure back within their limit (``sync.credit``). A partial
payment is recorded on the run and the order is left unpaid. A payment that pays nothing the hub
invoiced ends *skipped* with the reason, so it shows in ``syncs list`` and the reconcile report.
Every step reads the store's current state first, so repeats and duplicate notifications change nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from connectors.errors import Permanent
from connectors.quickbooks import OBJECT_NOT_FOUND, amount
from hub.models import Binding, Connection, SyncRun
from mappings.hubspot import contact_properties
from mappings.model import Order
from mappings.shopify import order_from_graphql
from mappings.woocommerce import order_from_rest
from sync.accounts import Accounts
from sync.ledger import Ledger, Source

if TYPE_CHECKING:
    from hub.runtime import Hub
    from sync.jobs import StepRecorder

QB = "quickbooks"
WOOCOMMERCE_PAID_STATUSES = ("processing", "completed")


def sync_payment(hub: Hub, run: SyncRun, rec: StepRecorder) -> None:
    from sync.jobs import Outcome

    accounts = Accounts(hub, run.merchant_id)
    ledger = Ledger(hub.sessions, run.merchant_id)
    payment_id = run.source_id
    own = ledger.find_by_target(QB, "payment", payment_id)   # bound to an order or to one of its captures
    if own is not None:
        raise Outcome("skipped", f"payment {payment_id} was recorded by the hub itself for "
                                 f"{own.source_platform} order {own.source_id.split(':', 1)[0]}")
    rec.begin("fetch")
    qb = accounts.quickbooks()
    try:
        payment = qb.get("Payment", payment_id)
    except Permanent as exc:
        if exc.code == OBJECT_NOT_FOUND or "not found" in str(exc).lower():
            raise Outcome("skipped", f"payment {payment_id} no longer exists in QuickBooks (deleted)") from exc
        raise
    total = amount(payment.get("TotalAmt"))
    if total == 0 and str(payment.get("PrivateNote") or "").startswith("Voided"):
        raise Outcome("skipped", f"payment {payment_id} was voided in QuickBooks")
    applied = _applied_invoices(payment)
    if not applied:
        raise Outcome("skipped", f"unmatched: payment {payment_id} ({total}) is not applied to any invoice")
    matched: list[tuple[Binding, str, Decimal]] = []
    unmatched: list[str] = []
    for invoice_id, paid in applied:
        binding = ledger.find_by_target(QB, "invoice", invoice_id, source_type="order")
        if binding is None:
            unmatched.append(invoice_id)
        else:
            matched.append((binding, invoice_id, paid))
    if not matched:
        raise Outcome("skipped", f"unmatched: payment {payment_id} ({total}) pays QuickBooks invoice(s) "
                                 f"{', '.join(unmatched)}, which no store order of this merchant is bound to")
    if unmatched:
        rec.record("fetch", "unmatched", message=f"invoice(s) {', '.join(unmatched)} are not from a store order")
    for binding, invoice_id, paid in matched:
        rec.begin("invoice")
        invoice = qb.get("Invoice", invoice_id)
        balance, invoice_total = amount(invoice.get("Balance")), amount(invoice.get("TotalAmt"))
        label = f"invoice {invoice.get('DocNumber') or invoice_id}"
        ledger.bind(Source(QB, "payment", payment_id), binding.source_platform, f"order:{binding.source_id}",
                    binding.source_id, run_id=run.id,
                    data={"invoice_id": invoice_id, "applied": str(paid), "balance": str(balance),
                          "store": binding.source_store})
        if balance > 0:
            rec.record("invoice", "partial", target_platform=binding.source_platform, target_type="order",
                       target_id=binding.source_id,
                       message=f"{label}: {paid} applied by payment {payment_id}; {balance} of {invoice_total} "
                               "still open, the order stays unpaid")
            continue
        rec.record("invoice", "paid", target_platform=QB, target_type="invoice", target_id=invoice_id,
                   message=f"{label} fully paid ({invoice_total})")
        rec.begin("store")
        outcome, message, order = _mark_store_order_paid(hub, accounts, binding, payment_id, paid)
        rec.record("store", outcome, target_platform=binding.source_platform, target_type="order",
                   target_id=binding.source_id, message=message)
        if order is not None:
            _update_contact(hub, accounts, run, rec, order)
    _stop_the_chase(hub, run, rec, [i for b, i, _ in matched])
    _review_credit(hub, run, rec, str((payment.get("CustomerRef") or {}).get("value") or ""))


def _review_credit(hub: Hub, run: SyncRun, rec: StepRecorder, customer_id: str) -> None:
    """The payer's credit holds released when the payment brings their exposure back within the limit
    (``sync.credit``)."""
    from sync.credit import after_payment

    try:
        result = after_payment(hub, run.merchant_id, customer_id or None)
    except Exception as exc:  # noqa: BLE001 - the payment is carried; the next payment or review releases them
        rec.begin("credit")
        rec.record("credit", "deferred", message=f"credit holds not reviewed now ({exc})")
        return
    if result.released:
        rec.begin("credit")
        rec.record("credit", "released", target_platform="quickbooks", target_type="customer", target_id=customer_id,
                   message=f"credit hold released on {', '.join(result.released)}: exposure back within the limit")


def _stop_the_chase(hub: Hub, run: SyncRun, rec: StepRecorder, invoice_ids: list[str]) -> None:
    """The dunning figures of the payer's HubSpot contact, brought up to date now (``sync.dunning``)."""
    from sync.dunning import after_payment

    rec.begin("dunning")
    try:
        written = after_payment(hub, run.merchant_id, invoice_ids)
    except Exception as exc:  # noqa: BLE001 - the payment is carried; the next dunning pass writes them
        rec.record("dunning", "deferred", message=f"dunning figures not written now ({exc}); the next pass will")
        return
    if written:
        rec.record("dunning", "updated", target_platform="hubspot", target_type="contact",
                   message="o2c_ receivables properties brought up to date after the payment")


def _applied_invoices(payment: dict[str, Any]) -> list[tuple[str, Decimal]]:
    out: dict[str, Decimal] = {}
    for line in payment.get("Line") or []:
        for txn in line.get("LinkedTxn") or []:
            if txn.get("TxnType") == "Invoice" and txn.get("TxnId"):
                key = str(txn["TxnId"])
                out[key] = out.get(key, Decimal("0")) + amount(line.get("Amount"))
    return list(out.items())


def _store_connection(hub: Hub, binding: Binding, platform: str) -> Connection | None:
    """The connection of the store the order is from: the binding's own store when it names one, else the
    store of the run that bound it, else the merchant's first connected store of the platform."""
    from sqlalchemy import select

    with hub.sessions() as s:
        if binding.source_store:
            return s.scalar(select(Connection).where(Connection.merchant_id == binding.merchant_id,
                                                     Connection.platform == platform,
                                                     Connection.account == binding.source_store)
                            .order_by((Connection.status == "disconnected"), Connection.id.desc()))
        if binding.sync_run_id:
            run = s.get(SyncRun, binding.sync_run_id)
            if run is not None and run.connection_id:
                conn = s.get(Connection, run.connection_id)
                if conn is not None and conn.platform == platform:
                    return conn
        return s.scalar(select(Connection).where(Connection.merchant_id == binding.merchant_id,
                                                 Connection.platform == platform,
                                                 Connection.status != "disconnected").order_by(Connection.id))


def _update_contact(hub: Hub, accounts: Accounts, run: SyncRun, rec: StepRecorder, order: Order) -> None:
    """The buyer's HubSpot contact, written again from the order as the store has it now (lifecycle stage
    and the merchant's custom figures such as total spent)."""
    from hub.mapping_rules import rules_for

    client = accounts.hubspot()
    if client is None or not order.customer.email:
        return
    rec.begin("contact")
    with hub.sessions() as s:
        rules = rules_for(s, run.merchant_id)
    [result] = client.upsert_contacts([contact_properties(order.customer, order, rules)])
    rec.record("contact", "updated", target_platform="hubspot", target_type="contact", target_id=result.id)


def _mark_store_order_paid(hub: Hub, accounts: Accounts, binding: Binding, payment_id: str,
                           paid: Decimal) -> tuple[str, str, Order | None]:
    platform, order_id = binding.source_platform, binding.source_id
    conn = _store_connection(hub, binding, platform)
    if conn is None:
        raise Permanent(f"the merchant has no {platform} connection to mark order {order_id} paid in",
                        platform=platform, code="no_connection")
    if platform == "shopify":
        client = accounts.shopify(conn.account)
        fetched = client.fetch_order(order_id)
        if fetched is None:
            return "missing", f"order {order_id} no longer exists in the store", None
        order = order_from_graphql(*fetched)
        if order.is_paid or order.total_outstanding <= 0:
            return "unchanged", f"order {order.name} is already {order.financial_status} in Shopify", order
        client.mark_paid(order_id)
        return "marked-paid", f"order {order.name} marked paid in Shopify (QuickBooks payment {payment_id})", order
    if platform == "woocommerce":
        return _woocommerce_paid(hub, accounts, conn, order_id, payment_id, paid)
    raise Permanent(f"cannot mark {platform} orders paid", platform=platform)


def _woocommerce_paid(hub: Hub, accounts: Accounts, conn: Connection, order_id: str, payment_id: str,
                      paid: Decimal) -> tuple[str, str, Order | None]:
    from hub.mapping_rules import rules_for

    with hub.sessions() as s:
        rules = rules_for(s, conn.merchant_id)
    target = getattr(getattr(rules, "payments", None), "woocommerce_paid_status", None) or "processing"
    client = accounts.woocommerce(conn.id)
    data = client.fetch_order(order_id)
    if data is None:
        return "missing", f"order {order_id} no longer exists in the store", None
    name = f"#{data.get('number') or order_id}"
    status = str(data.get("status") or "")
    outcome = "unchanged"
    if status in ("pending", "failed"):
        # WooCommerce's payment_complete (set_paid) only acts on orders that still need payment
        client.update_order(order_id, {"set_paid": True})
        if target != "processing":
            client.update_order(order_id, {"status": target})
        outcome = "marked-paid"
    elif status not in WOOCOMMERCE_PAID_STATUSES and status not in ("refunded", "cancelled", "trash"):
        client.update_order(order_id, {"status": target})  # on-hold etc.: the status change sets date_paid
        outcome = "marked-paid"
    elif status == "processing" and target == "completed":
        client.update_order(order_id, {"status": target})
        outcome = "marked-paid"
    marker = f"QuickBooks payment {payment_id}"
    if not any(marker in str(n.get("note") or "") for n in client.order_notes(order_id)):
        client.add_order_note(order_id, f"Paid in QuickBooks: {marker} ({paid} {data.get('currency') or ''})."
                              .replace(" )", ")"))
    order = order_from_rest(data)
    if outcome == "unchanged":
        return outcome, f"order {name} was already {status} in WooCommerce", order
    return outcome, f"order {name} moved to {target} in WooCommerce ({marker})", order
