"""Test controls of the QuickBooks Online simulator for what people do in QuickBooks itself, outside
the app: a bookkeeper records a payment, voids, deletes, edits or merges, adds a tax code; an
exchange rate is published.

Each goes through the same write path as the API (the same validation, balances recomputed, webhook
notifications) and raises ``QBFault`` where the API would answer with a fault. They return copies.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from .quickbooks_query import TRANSACTIONS, Company, business, clean, not_found, now_text, ref_value
from .quickbooks_tax import add_tax_code

Amount = Decimal | int | str


class BookkeeperControls:
    """Mixed into ``QuickBooksSimulator`` (which provides ``lock``, ``app``, ``companies`` and the
    write path)."""

    def record_payment(self, realm_id: str, customer_id: str, amount: Amount,
                       invoice_ids_and_amounts: Mapping[str, Amount] | Iterable[tuple[str, Amount]], *,
                       txn_date: date | str | None = None, deposit_account: str | None = None,
                       exchange_rate: Amount | None = None, ref_number: str | None = None) -> dict:
        """A payment of ``amount`` from the customer, applied to invoices (``{invoice_id: amount}``),
        as a bookkeeper enters it: one payment over several invoices, partial, or partly unapplied.
        ``deposit_account``: an Account Id or Name (default: none, i.e. Undeposited Funds)."""
        pairs = (invoice_ids_and_amounts.items() if isinstance(invoice_ids_and_amounts, Mapping)
                 else invoice_ids_and_amounts)
        with self.lock:
            company = self.companies[str(realm_id)]
            customer = company.objects["Customer"].get(str(customer_id))
            body: dict[str, Any] = {
                "CustomerRef": {"value": str(customer_id)}, "TotalAmt": Decimal(str(amount)),
                "Line": [{"Amount": Decimal(str(a)), "LinkedTxn": [{"TxnId": str(i), "TxnType": "Invoice"}]}
                         for i, a in pairs]}
            if customer is not None:
                body["CurrencyRef"] = dict(customer["CurrencyRef"])
            if txn_date is not None:
                body["TxnDate"] = str(txn_date)
            if exchange_rate is not None:
                body["ExchangeRate"] = Decimal(str(exchange_rate))
            if ref_number is not None:
                body["PaymentRefNum"] = ref_number
            if deposit_account is not None:
                account = company.objects["Account"].get(str(deposit_account)) or next(
                    (a for a in company.objects["Account"].values() if a["Name"] == deposit_account), None)
                body["DepositToAccountRef"] = {"value": account["Id"] if account else str(deposit_account)}
            return self._control(company, "Payment", "create", body)

    def void(self, realm_id: str, entity: str, id_: str) -> dict:
        """Void an Invoice, Payment or SalesReceipt (amounts become 0, the object stays)."""
        return self._change(realm_id, entity, id_, "void", {})

    def delete(self, realm_id: str, entity: str, id_: str) -> dict:
        return self._change(realm_id, entity, id_, "delete", {})

    def edit(self, realm_id: str, entity: str, id_: str, changes: Mapping[str, Any]) -> dict:
        """A sparse update of the given fields (the object's current SyncToken is used)."""
        return self._change(realm_id, entity, id_, "update", {**changes, "sparse": True})

    def merge(self, realm_id: str, entity: str, source_id: str, target_id: str) -> dict:
        """Merge Customer or Item ``source_id`` into ``target_id``: references move to the target,
        the source is deleted, and the webhook gets a ``Merge`` event (``deletedId`` = source)."""
        if entity not in ("Customer", "Item"):
            raise ValueError("only Customers and Items can be merged")
        with self.lock:
            company = self.companies[str(realm_id)]
            source = company.objects[entity].get(str(source_id))
            target = company.objects[entity].get(str(target_id))
            if source is None or target is None or source is target:
                raise not_found(entity, source_id if source is None else target_id)
            if entity == "Customer" and source["CurrencyRef"] != target["CurrencyRef"]:
                raise business("Customers with different currencies cannot be merged")
            name_key = "DisplayName" if entity == "Customer" else "Name"
            new_ref = {"value": target["Id"], "name": target[name_key]}
            for txn in TRANSACTIONS:
                for obj in company.objects[txn].values():
                    if entity == "Customer" and ref_value(obj.get("CustomerRef")) == source["Id"]:
                        obj["CustomerRef"] = dict(new_ref)
                    for line in obj.get("Line", []) if entity == "Item" else ():
                        detail = line.get("SalesItemLineDetail") or {}
                        if ref_value(detail.get("ItemRef")) == source["Id"]:
                            detail["ItemRef"] = dict(new_ref)
            stamp = now_text()
            del company.objects[entity][source["Id"]]
            company.deleted[entity][source["Id"]] = {"Id": source["Id"], "status": "Deleted", "domain": "QBO",
                                                     "MetaData": {"LastUpdatedTime": stamp}}
            target.update(SyncToken=str(int(target["SyncToken"]) + 1),
                          MetaData={**target["MetaData"], "LastUpdatedTime": stamp})
            self._touched = []
            self._recompute(company)
            self._notify([self._event(company, entity, target["Id"], "Merge", deleted_id=source["Id"])])
            return copy.deepcopy(target)

    def add_tax_code(self, realm_id: str, name: str, rate_percent: Amount, *, taxable: bool = True,
                     active: bool = True) -> dict:
        """A TaxCode with one sales TaxRate of ``rate_percent`` % (non-US companies); returns the code."""
        with self.lock:
            company = self.companies[str(realm_id)]
            return copy.deepcopy(add_tax_code(company, name, Decimal(str(rate_percent)), taxable=taxable,
                                              active=active))

    def set_allow_shipping(self, realm_id: str, allowed: bool) -> None:
        """Turn shipping on sales forms on or off (QuickBooks: Account and settings → Sales → Shipping)."""
        with self.lock:
            self.companies[str(realm_id)].allow_shipping = allowed

    def set_exchange_rate(self, realm_id: str, currency: str, rate: Amount, as_of: str | None = None) -> None:
        """Units of home currency per unit of ``currency`` (from ``as_of``, a YYYY-MM-DD, on; without it: the
        standing rate), what ``GET /exchangerate`` answers and what a transaction without ``ExchangeRate``
        is booked at."""
        rate = Decimal(str(rate))
        if rate <= 0:
            raise ValueError("an exchange rate must be positive")
        with self.lock:
            company = self.companies[str(realm_id)]
            if as_of is None:
                company.exchange_rates[currency.upper()] = rate
            else:
                company.dated_rates[(currency.upper(), as_of)] = rate

    # -- helpers -------------------------------------------------------------------------------
    def _change(self, realm_id: str, entity: str, id_: str, operation: str, body: dict) -> dict:
        with self.lock:
            company = self.companies[str(realm_id)]
            current = company.objects[entity].get(str(id_))
            if current is None:
                raise not_found(entity, id_)
            return self._control(company, entity, operation,
                                 {**body, "Id": current["Id"], "SyncToken": current["SyncToken"]})

    def _control(self, company: Company, entity: str, operation: str, body: dict) -> dict:
        """Run one write outside an HTTP request (the rules read ``request.args``)."""
        with self.app.test_request_context("/"):
            return copy.deepcopy(self._write(company, entity, operation, clean(body)))
