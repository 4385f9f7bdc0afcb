"""Bank deposits in the QuickBooks simulator (``POST /deposit``), checked as QuickBooks checks them.

* ``DepositToAccountRef`` is required and must be an active account of type ``Bank``;
* every line has an ``Amount`` and either links one transaction (``LinkedTxn [{TxnId, TxnType: "Payment",
  TxnLineId: "0"}]``) or posts to an account (``DepositLineDetail {AccountRef}``); a direct line may be
  negative (fees, refunds, reserves), a linked one is the payment's whole amount;
* only a payment sitting in **Undeposited Funds** can be linked (PLATFORMS.md ⚠, the UI's rule), and a payment
  is linked by one deposit only;
* ``TotalAmt`` is the sum of the lines (whatever the request says): 0.00 is accepted, below zero is refused;
* at most ``max_deposit_lines`` lines (default ``MAX_DEPOSIT_LINES``, the hub's assumption of QuickBooks'
  per-transaction line limit, ⚠ not documented by Intuit; tests lower it), more is a ValidationFault;
* a deposited payment is locked: updating, voiding or deleting it is refused until its deposit line is removed
  (``check_not_deposited``, called by the simulator before it writes a Payment).

Transfers (``POST /transfer``, ``_transfer``) move money between two balance-sheet accounts: ``FromAccountRef``,
``ToAccountRef`` and ``Amount`` are required, both accounts must exist, be active, be asset accounts
(``Classification`` Asset, as Intuit's Transfer reference says) and differ, and ``Amount`` must be above zero.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from .quickbooks_query import CENT, COMPANY_TZ, Company, QBFault, business, invalid_ref, money, ref_value, required

UNDEPOSITED_SUBTYPE = "UndepositedFunds"
MAX_DEPOSIT_LINES = 1000


class DepositRules:
    """Mixed into the simulator's entity rules: ``_deposit`` validates a Deposit write."""

    def _deposit(self, company: Company, body: dict, current: dict | None) -> dict:
        obj = {k: v for k, v in body.items() if k not in ("Id", "SyncToken", "MetaData", "domain", "sparse")}
        if "DepositToAccountRef" not in obj:
            raise required("DepositToAccountRef")
        bank = company.objects["Account"].get(ref_value(obj["DepositToAccountRef"]) or "")
        if bank is None or not bank.get("Active", True):
            raise invalid_ref("DepositToAccountRef", ref_value(obj["DepositToAccountRef"]))
        if bank.get("AccountType") != "Bank":
            raise business(f"A deposit must go to a bank account; {bank['Name']} is {bank.get('AccountType')}")
        obj["DepositToAccountRef"] = {"value": bank["Id"], "name": bank["Name"]}
        lines = obj.get("Line")
        if not isinstance(lines, list) or not lines:
            raise required("Line")
        cap = getattr(self, "max_deposit_lines", MAX_DEPOSIT_LINES)
        if len(lines) > cap:
            raise QBFault(2010, "Request has invalid or unsupported property",
                          f"A deposit can have at most {cap} lines; this one has {len(lines)}")
        linked_elsewhere = _linked_payments(company, exclude=(current or {}).get("Id"))
        undeposited = {a["Id"] for a in company.objects["Account"].values()
                       if a.get("AccountSubType") == UNDEPOSITED_SUBTYPE}
        total = Decimal("0.00")
        seen: set[str] = set()
        for n, line in enumerate(lines, 1):
            if not isinstance(line, dict):
                raise QBFault(2010, "Request has invalid or unsupported property", "Line must be a list of objects")
            if "Amount" not in line:
                raise required("Line.Amount")
            amount = money(line["Amount"], "Line.Amount")
            links = line.get("LinkedTxn") or []
            detail = line.get("DepositLineDetail")
            if links and detail:
                raise QBFault(2010, "Request has invalid or unsupported property",
                              f"Line {n}: a deposit line links a transaction or posts to an account, not both")
            if links:
                if len(links) != 1 or links[0].get("TxnType") != "Payment":
                    raise QBFault(2010, "Request has invalid or unsupported property",
                                  f"Line {n}: LinkedTxn must be one Payment")
                payment = company.objects["Payment"].get(str(links[0].get("TxnId", "")))
                if payment is None:
                    raise invalid_ref("LinkedTxn.TxnId (Payment)", links[0].get("TxnId"))
                pid = payment["Id"]
                if ref_value(payment.get("DepositToAccountRef")) not in (None, *undeposited):
                    raise business(f"Payment {pid} was deposited to another account; only payments in "
                                   "Undeposited Funds can be added to a deposit")
                if pid in seen or pid in linked_elsewhere:
                    raise business(f"Payment {pid} is already in a deposit "
                                   f"({linked_elsewhere.get(pid, 'this one')})")
                if amount != payment["TotalAmt"] or amount <= 0:
                    raise business(f"Line {n}: the amount of payment {pid} is {payment['TotalAmt']}, not {amount}")
                seen.add(pid)
                line["LinkedTxn"] = [{"TxnId": pid, "TxnType": "Payment", "TxnLineId": "0"}]
                line.pop("DepositLineDetail", None)
            else:
                if not isinstance(detail, dict) or "AccountRef" not in detail:
                    raise required("Line.DepositLineDetail.AccountRef")
                account = company.objects["Account"].get(ref_value(detail["AccountRef"]) or "")
                if account is None or not account.get("Active", True):
                    raise invalid_ref("DepositLineDetail.AccountRef", ref_value(detail["AccountRef"]))
                line["DepositLineDetail"] = {**detail, "AccountRef": {"value": account["Id"], "name": account["Name"]}}
            line["Amount"] = amount
            line["DetailType"] = "DepositLineDetail"
            line.setdefault("Id", str(n))
            total += amount
        if total < 0:
            raise business(f"The total of a deposit cannot be negative ({total}); record a withdrawal instead")
        obj.update(Line=lines, TotalAmt=total.quantize(CENT), CurrencyRef={"value": company.currency},
                   TxnDate=obj.get("TxnDate") or datetime.now(COMPANY_TZ).date().isoformat())
        return obj

    def _transfer(self, company: Company, body: dict, current: dict | None) -> dict:
        obj = {k: v for k, v in body.items() if k not in ("Id", "SyncToken", "MetaData", "domain", "sparse")}
        refs = {}
        for key in ("FromAccountRef", "ToAccountRef"):
            if key not in obj:
                raise required(key)
            account = company.objects["Account"].get(ref_value(obj[key]) or "")
            if account is None or not account.get("Active", True):
                raise invalid_ref(key, ref_value(obj[key]))
            if account.get("Classification") != "Asset":
                raise business(f"{key}: a transfer moves money between asset accounts; {account['Name']} is "
                               f"{account.get('AccountType')}")
            refs[key] = account
        if refs["FromAccountRef"]["Id"] == refs["ToAccountRef"]["Id"]:
            raise business("A transfer needs two different accounts")
        if "Amount" not in obj:
            raise required("Amount")
        amount = money(obj["Amount"], "Amount")
        if amount <= 0:
            raise business(f"The amount of a transfer must be more than zero, not {amount}")
        obj.update({key: {"value": a["Id"], "name": a["Name"]} for key, a in refs.items()})
        obj.update(Amount=amount, CurrencyRef={"value": company.currency},
                   TxnDate=obj.get("TxnDate") or datetime.now(COMPANY_TZ).date().isoformat())
        return obj


def _linked_payments(company: Company, exclude: str | None = None) -> dict[str, str]:
    """payment id → the deposit that links it."""
    out: dict[str, str] = {}
    for dep in company.objects.get("Deposit", {}).values():
        if dep["Id"] == exclude:
            continue
        for line in dep.get("Line", []):
            for link in line.get("LinkedTxn") or []:
                out[str(link.get("TxnId"))] = dep["Id"]
    return out


def check_not_deposited(company: Company, entity: str, current: dict[str, Any], operation: str) -> None:
    """A deposited payment cannot be changed, voided or deleted while a deposit line links it."""
    if entity != "Payment":
        return
    deposit = _linked_payments(company).get(current["Id"])
    if deposit is not None:
        raise business(f"Payment {current['Id']} is in deposit {deposit}: remove it from the deposit before you "
                       f"{operation or 'update'} it")
