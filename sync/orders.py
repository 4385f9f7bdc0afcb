"""The order pipeline: a store order becomes a HubSpot contact, a QuickBooks customer, invoice and
(when paid) payment. Each step looks up its binding first, creates with a deterministic idempotency
key, and records its binding the moment the platform answers."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from connectors import jsonmoney
from connectors.errors import Permanent
from connectors.quickbooks import QuickBooksClient, amount
from hub.mapping_rules import rules_for
from hub.models import SyncRun
from mappings import qb_refund as qbrefund
from mappings import quickbooks as qbmap
from mappings.hubspot import contact_properties
from mappings.model import Order
from mappings.rules import MappingRules
from mappings.shopify import order_from_graphql
from mappings.targets import ItemTarget, deposit_account_for, invoice_currency, required_items, required_tax_codes
from mappings.woocommerce import order_from_rest
from sync import locks, runs
from sync.accounts import Accounts
from sync.ledger import Ledger, Source
from sync.qb_refs import QuickBooksRefs

if TYPE_CHECKING:
    from hub.runtime import Hub
    from sync.jobs import StepRecorder

QB = "quickbooks"
DUPLICATE_NAME = "6240"
DUPLICATE_DOC_NUMBER = "6140"
REFUND_ITEM = "Refunds"   # refunded amounts without line detail (a sum typed by hand, WooCommerce totals)


def sync_order(hub: Hub, run: SyncRun, rec: StepRecorder) -> None:
    from sync.jobs import Outcome

    accounts = Accounts(hub, run.merchant_id)
    rec.begin("pull")
    order = pull_order(accounts, run)
    if order is None:
        invoiced = Ledger(hub.sessions, run.merchant_id).find(Source(run.source_platform, "order", run.source_id),
                                                             QB, "invoice")
        if invoiced is None:
            raise Outcome("skipped", f"order {run.source_name or run.source_id} was deleted from the store "
                                     "before it was invoiced")
        raise Permanent(f"order {run.source_name or run.source_id} was deleted from the store after it was "
                        f"invoiced (QuickBooks invoice {invoiced.target_id}): void or keep the invoice by hand",
                        platform=run.source_platform, code="deleted")
    runs.save_canonical(hub.sessions, run.id, order.to_dict(), order.name)
    with hub.sessions() as s:
        rules = rules_for(s, run.merchant_id)
    pipeline = OrderPipeline(hub, run, rec, accounts, order, rules)
    if order.cancelled_at and not order.is_paid:
        binding = pipeline.invoice_binding()
        if binding is None:
            raise Outcome("skipped", f"order {order.name} was cancelled before it was invoiced")
        pipeline.void_invoice(binding.target_id)
        return
    pipeline.execute()


def pull_order(accounts: Accounts, run: SyncRun) -> Order | None:
    """The order as the store has it now (mapped), or None when the store no longer has it."""
    if run.source_platform == "woocommerce":
        data = accounts.woocommerce(run.connection_id).fetch_order(run.source_id)
        return None if data is None else order_from_rest(data)
    if run.source_platform != "shopify":
        raise Permanent(f"orders from {run.source_platform} are not supported")
    shop = None
    if run.connection_id:
        conn, _ = accounts.secrets_of(run.connection_id)
        shop = conn.account
    fetched = accounts.shopify(shop).fetch_order(run.source_id)
    if fetched is None:
        return None
    node, extra_lines = fetched
    return order_from_graphql(node, extra_lines)


class OrderPipeline:
    def __init__(self, hub: Hub, run: SyncRun, rec: StepRecorder, accounts: Accounts, order: Order,
                 rules: MappingRules) -> None:
        self.hub = hub
        self.run = run
        self.rec = rec
        self.accounts = accounts
        self.order = order
        self.rules = rules
        self.ledger = Ledger(hub.sessions, run.merchant_id)
        self.order_source = Source(order.platform, "order", order.source_id)
        self.buyer_source = Source("hub", "buyer", self._buyer_key())
        self._qb: QuickBooksClient | None = None
        self._refs: QuickBooksRefs | None = None
        self._home_currency: str | None = None
        self.last_invoice_inputs: dict[str, Any] = {}
        self.currency: str | None = None   # the invoice's foreign currency (None: the home currency)

    @property
    def qb(self) -> QuickBooksClient:
        if self._qb is None:
            self._qb = self.accounts.quickbooks()
        return self._qb

    @property
    def refs(self) -> QuickBooksRefs:
        if self._refs is None:
            self._refs = QuickBooksRefs(self.qb, self.ledger, self.rules, lock=self._lock, rid=self._rid,
                                        run_id=self.run.id)
        return self._refs

    @property
    def home_currency(self) -> str | None:
        if self._home_currency is None:
            self._home_currency = self.refs.home_currency() or ""
        return self._home_currency or None

    def execute(self) -> None:
        self.contact()
        customer_id = self.customer()
        ids = self.items()
        invoice = self.invoice(customer_id, ids)
        self.payment(customer_id, invoice)
        if self.order.refunds:
            self.refunds(customer_id, invoice, ids)

    # -- helpers --------------------------------------------------------------------------------
    def _buyer_key(self) -> str:
        key = self.order.customer.key
        # a guest without e-mail is nobody we can recognise again: one customer per order
        return key if key != "guest" else f"order:{self.order.platform}:{self.order.source_id}"

    def _rid(self, *parts: str) -> str:
        return qbmap.request_id(str(self.run.merchant_id), *parts)

    def _lock(self, what: str):  # noqa: ANN202
        return locks.held(self.hub.sessions, f"{self.run.merchant_id}:{what}", ttl=120, wait=60)

    def invoice_binding(self):  # noqa: ANN201
        return self.ledger.find(self.order_source, QB, "invoice")

    # -- steps ----------------------------------------------------------------------------------
    def contact(self) -> None:
        self.rec.begin("contact")
        client = self.accounts.hubspot()
        if client is None:
            self.rec.record("contact", "skipped", message="no HubSpot connection")
            return
        if not self.order.customer.email:
            self.rec.record("contact", "skipped", message="the order has no e-mail address")
            return
        props = contact_properties(self.order.customer, self.order, self.rules)
        [result] = client.upsert_contacts([props])
        self.ledger.bind(self.buyer_source, "hubspot", "contact", result.id,
                         data={"email": result.email}, run_id=self.run.id)
        self.rec.record("contact", "created" if result.created else "updated", target_platform="hubspot",
                        target_type="contact", target_id=result.id)

    def customer(self) -> str:
        self.rec.begin("customer")
        # QuickBooks fixes a customer's currency: a buyer paying in a foreign currency is another customer
        self.currency = invoice_currency(self.order, self.rules, self.home_currency)
        source = self.buyer_source if self.currency is None else \
            Source("hub", "buyer", f"{self.buyer_source.id}|{self.currency}")
        bound = self.ledger.target_id(source, QB, "customer")
        if bound:
            self.rec.record("customer", "found", target_platform=QB, target_type="customer",
                            target_id=bound, message="bound earlier")
            return bound
        with self._lock(f"buyer:{source.id}"):
            bound = self.ledger.target_id(source, QB, "customer")
            if bound:
                return bound
            outcome, customer = self._find_or_create_customer()
        self.ledger.bind(source, QB, "customer", customer["Id"],
                         data={"display_name": customer.get("DisplayName")}, run_id=self.run.id)
        self.rec.record("customer", outcome, target_platform=QB, target_type="customer",
                        target_id=customer["Id"], message=customer.get("DisplayName"))
        return customer["Id"]

    def _same_currency(self, customer: dict[str, Any]) -> bool:
        theirs = ((customer.get("CurrencyRef") or {}).get("value") or self.home_currency or "").upper()
        return theirs == (self.currency or self.home_currency or theirs).upper()

    def _find_or_create_customer(self) -> tuple[str, dict[str, Any]]:
        buyer = self.order.customer
        email = (buyer.email or "").strip()
        if email:
            found = self.qb.find_one("Customer", "PrimaryEmailAddr", email)
            if found and self._same_currency(found):
                return "found", found
        name = qbmap.customer_payload(buyer)["DisplayName"]
        if self.currency:
            name = f"{name} ({self.currency})"
        same_name = self.qb.find_one("Customer", "DisplayName", name)
        if same_name is not None:
            their = ((same_name.get("PrimaryEmailAddr") or {}).get("Address") or "").lower()
            if email and their == email.lower() and self._same_currency(same_name):
                return "found", same_name
            name = self._distinct_name(name)  # a stranger with the same name: never merge
        try:
            return "created", self._create_customer(name)
        except Permanent as exc:
            if exc.code != DUPLICATE_NAME:
                raise
            return "created", self._create_customer(self._distinct_name(name, force_order=True))

    def _distinct_name(self, name: str, force_order: bool = False) -> str:
        email = self.order.customer.email
        suffix = f" ({self.order.name})" if force_order or not email else f" ({email})"
        return (name[: 500 - len(suffix)] + suffix).replace(":", "-")

    def _create_customer(self, display_name: str) -> dict[str, Any]:
        payload = qbmap.customer_payload(self.order.customer, display_name=display_name, currency=self.currency)
        return self.qb.create("Customer", payload,
                              request_id=self._rid("buyer", self.buyer_source.id, "customer", display_name))

    def items(self) -> dict[str, str]:
        """QuickBooks item ids for every line the invoice needs (``mappings.targets.required_items``)."""
        self.rec.begin("items")
        ids: dict[str, str] = {}
        created = 0
        for key, target in required_items(self.order, self.rules).items():
            ids[key], was_created = self.refs.item(target)
            created += was_created
        self.rec.record("items", "created" if created else "found", target_platform=QB, target_type="item",
                        message=f"{len(ids)} item(s), {created} created")
        return ids

    def invoice_inputs(self, customer_id: str, ids: dict[str, str]) -> dict[str, Any]:
        """What ``invoice_payload`` needs besides the order and the rules, resolved to QuickBooks ids."""
        special = {"shipping", "tip", "fee"}
        return {"customer_id": customer_id, "item_ids": {k: v for k, v in ids.items() if k not in special},
                "shipping_item_id": ids.get("shipping"), "tip_item_id": ids.get("tip"),
                "fee_item_id": ids.get("fee"),
                "tax_code_ids": self.refs.tax_codes(required_tax_codes(self.order, self.rules)) or None,
                "home_currency": self.home_currency}

    def invoice(self, customer_id: str, ids: dict[str, str]) -> dict[str, Any]:
        self.rec.begin("invoice")
        self.last_invoice_inputs = self.invoice_inputs(customer_id, ids)
        payload = qbmap.invoice_payload(self.order, rules=self.rules, **self.last_invoice_inputs)
        qbmap.check_invoice_total(self.order, payload)
        fingerprint = hashlib.sha256(jsonmoney.dumps(payload).encode()).hexdigest()[:20]
        binding = self.invoice_binding()
        if binding is not None:
            data = binding.data or {}
            if data.get("fingerprint") == fingerprint:
                self.rec.record("invoice", "unchanged", target_platform=QB, target_type="invoice",
                                target_id=binding.target_id)
                return {"Id": binding.target_id, "TotalAmt": data.get("total"), "Balance": data.get("balance")}
            synced = data.get("order_updated_at")
            if synced and self.order.updated_at.isoformat() < synced:
                self.rec.record("invoice", "unchanged", target_platform=QB, target_type="invoice",
                                target_id=binding.target_id, message="event older than what was synced")
                return {"Id": binding.target_id, "TotalAmt": data.get("total"), "Balance": data.get("balance")}
            current = self.qb.get("Invoice", binding.target_id)
            invoice = self.qb.update("Invoice", {**payload, "Id": binding.target_id,
                                                 "SyncToken": current["SyncToken"], "sparse": False})
            outcome = "updated"
        else:
            invoice = self._find_invoice(payload["DocNumber"]) if self.run.attempts > 1 else None
            outcome = "found"
            if invoice is None:
                invoice = {**self._create_invoice(payload), "_created": True}
                outcome = "created"
        self.ledger.bind(self.order_source, QB, "invoice", invoice["Id"], run_id=self.run.id, data={
            "doc_number": invoice.get("DocNumber"), "total": str(amount(invoice.get("TotalAmt"))),
            "balance": str(amount(invoice.get("Balance"))), "fingerprint": fingerprint,
            "order_updated_at": self.order.updated_at.isoformat()})
        self.rec.record("invoice", outcome, target_platform=QB, target_type="invoice", target_id=invoice["Id"],
                        message=f"DocNumber {invoice.get('DocNumber')}, total {amount(invoice.get('TotalAmt'))}")
        if amount(invoice.get("TotalAmt")) != self.order.total:
            raise Permanent(f"QuickBooks computed invoice {invoice['Id']} total {amount(invoice.get('TotalAmt'))} "
                            f"but the order total is {self.order.total} {self.order.currency}",
                            platform=QB, code="total_mismatch")
        return invoice

    def refunds(self, customer_id: str, invoice: dict[str, Any], ids: dict[str, str]) -> None:
        """Each refund once: a RefundReceipt when the invoice is paid in QuickBooks, else a CreditMemo."""
        self.rec.begin("refunds")
        balance: Decimal | None = None
        doc = invoice.get("DocNumber") or qbmap.doc_number(self.order, self.rules)
        for index, refund in enumerate(self.order.refunds, start=1):
            source = Source(self.order.platform, "refund", f"{self.order.source_id}:{refund.source_id}")
            bound = self.ledger.find(source, QB, "refund")
            if bound is not None:
                continue
            if balance is None:  # as QuickBooks has it now (the payment step may just have paid it)
                balance = amount(self.qb.get("Invoice", invoice["Id"]).get("Balance"))
            kind = qbrefund.CREDIT_MEMO if balance > 0 else qbrefund.REFUND_RECEIPT
            adjustment, _ = self.refs.item(ItemTarget("refund", REFUND_ITEM, "refund", True,
                                                      (("Name", REFUND_ITEM),), type="Service"))
            payload = qbrefund.refund_payload(
                self.order, refund, kind=kind, customer_id=customer_id, item_ids=ids,
                shipping_item_id=ids.get("shipping"), adjustment_item_id=adjustment,
                deposit_account_id=self.refs.account(deposit_account_for(self.order, self.rules))
                if kind == qbrefund.REFUND_RECEIPT else None, doc_number=f"{doc}-R{index}"[:21])
            created = self.qb.create(kind, payload, request_id=self._rid(self.order.platform, self.order.source_id,
                                                                          "refund", refund.source_id))
            self.ledger.bind(source, QB, "refund", created["Id"], run_id=self.run.id, data={
                "order_id": self.order.source_id, "amount": str(refund.amount), "kind": kind})
            self.rec.record("refunds", "created", target_platform=QB, target_type=kind, target_id=created["Id"],
                            message=f"refund {refund.source_id}: {kind} for {refund.amount}")

    def void_invoice(self, invoice_id: str) -> None:
        """A cancelled, unpaid order: void its invoice (once; a voided invoice stays voided)."""
        self.rec.begin("void")
        current = self.qb.get("Invoice", invoice_id)
        total, balance = amount(current.get("TotalAmt")), amount(current.get("Balance"))
        if total == 0 and str(current.get("PrivateNote") or "").startswith("Voided"):
            self.rec.record("void", "unchanged", target_platform=QB, target_type="invoice", target_id=invoice_id,
                            message="already voided")
            return
        if balance < total:
            raise Permanent(f"order {self.order.name} was cancelled but QuickBooks invoice {invoice_id} already has "
                            f"{total - balance} paid against it: refund or unapply the payment first, then re-run",
                            platform=QB, code="paid_invoice")
        self.qb.void("Invoice", invoice_id, current["SyncToken"])
        self.ledger.bind(self.order_source, QB, "invoice", invoice_id, run_id=self.run.id,
                         data={"voided": True, "balance": "0", "fingerprint": None})
        self.rec.record("void", "voided", target_platform=QB, target_type="invoice", target_id=invoice_id,
                        message=f"order {self.order.name} was cancelled; invoice {current.get('DocNumber')} voided")

    def _find_invoice(self, doc_number: str) -> dict[str, Any] | None:
        found = self.qb.find_one("Invoice", "DocNumber", doc_number)
        if found is None:
            return None
        if re.search(rf"\b{re.escape(self.order.source_id)}\b", found.get("PrivateNote") or ""):
            return found
        raise Permanent(f"QuickBooks already has an invoice numbered {doc_number} (Id {found['Id']}) for "
                        f"another order; set an invoice number prefix in the mapping rules",
                        platform=QB, code=DUPLICATE_DOC_NUMBER)

    def _create_invoice(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.qb.create("Invoice", payload,
                                  request_id=self._rid(self.order.platform, self.order.source_id, "invoice"))
        except Permanent as exc:
            if exc.code != DUPLICATE_DOC_NUMBER and "duplicate document" not in str(exc).lower():
                raise
            found = self._find_invoice(payload["DocNumber"])
            if found is None:
                raise
            return found

    def payment(self, customer_id: str, invoice: dict[str, Any]) -> None:
        self.rec.begin("payment")
        if not self.order.is_paid:
            self.rec.record("payment", "skipped", message=f"order is {self.order.financial_status}")
            return
        bound = self.ledger.target_id(self.order_source, QB, "payment")
        if bound:
            self.rec.record("payment", "found", target_platform=QB, target_type="payment", target_id=bound,
                            message="bound earlier")
            return
        paid = self.order.total
        if paid <= Decimal("0"):
            self.rec.record("payment", "skipped", message="nothing to pay on a zero-total order")
            return
        payment = self._find_payment(customer_id, invoice["Id"]) if self.run.attempts > 1 else None
        outcome = "found"
        if payment is None and not invoice.get("_created"):
            # the invoice may have been paid (in part) in QuickBooks meanwhile: never pay it twice
            balance = amount(self.qb.get("Invoice", invoice["Id"]).get("Balance"))
            if balance <= 0:
                self.rec.record("payment", "skipped", target_platform=QB, target_type="invoice",
                                target_id=invoice["Id"], message="the invoice is already paid in QuickBooks")
                return
            paid = min(paid, balance)
        if payment is None:
            payload = qbmap.payment_payload(
                self.order, customer_id=customer_id, invoice_id=invoice["Id"], amount=paid, rules=self.rules,
                deposit_account_id=self.refs.account(deposit_account_for(self.order, self.rules)),
                home_currency=self.home_currency)
            payment = self.qb.create("Payment", payload,
                                     request_id=self._rid(self.order.platform, self.order.source_id, "payment"))
            outcome = "created"
        self.ledger.bind(self.order_source, QB, "payment", payment["Id"], run_id=self.run.id,
                         data={"amount": str(amount(payment.get("TotalAmt"))), "invoice_id": invoice["Id"]})
        self.rec.record("payment", outcome, target_platform=QB, target_type="payment", target_id=payment["Id"],
                        message=f"amount {amount(payment.get('TotalAmt'))}")

    def _find_payment(self, customer_id: str, invoice_id: str) -> dict[str, Any] | None:
        from connectors.quickbooks import quote

        for p in self.qb.query(f"SELECT * FROM Payment WHERE CustomerRef = {quote(customer_id)} MAXRESULTS 1000"):
            for line in p.get("Line") or []:
                if any(t.get("TxnId") == invoice_id and t.get("TxnType") == "Invoice"
                       for t in line.get("LinkedTxn") or []):
                    return p
        return None

