"""The validation rules of the QuickBooks Online simulator: what the API checks when an object is
created or updated (names, references, line arithmetic, payments against open balances), sales tax
in the US and the global (VAT/GST) model, and currencies.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import request

from .quickbooks_query import (
    ACCOUNT_CLASSIFICATION,
    CENT,
    TRANSACTIONS,
    Company,
    QBFault,
    as_number,
    business,
    invalid_ref,
    money,
    ref_value,
    required,
)
from .quickbooks_tax import global_tax, line_tax_code


class EntityRules:
    """What the API checks when an object is created or updated, one method per entity; each returns
    the object to store (without Id, SyncToken and MetaData) or raises ``QBFault``."""

    # -- validation per entity -----------------------------------------------------------------
    def _validate(self, company: Company, entity: str, body: dict, current: dict | None) -> dict:
        if entity == "Customer":
            return self._customer(company, body, current)
        if entity == "Item":
            return self._item(company, body, current)
        if entity == "Account":
            return self._account(company, body, current)
        if entity == "Payment":
            return self._payment(company, body, current)
        if entity == "Deposit":   # demo.simulators.quickbooks_deposits
            return self._deposit(company, body, current)  # type: ignore[attr-defined]
        if entity == "Transfer":  # demo.simulators.quickbooks_deposits
            return self._transfer(company, body, current)  # type: ignore[attr-defined]
        if entity == "Term":
            return self._term(company, body, current)  # type: ignore[attr-defined] - quickbooks_receivables
        return self._sales_form(company, entity, body, current)

    def _strip(self, body: dict) -> dict:
        return {k: v for k, v in body.items()
                if k not in ("Id", "SyncToken", "MetaData", "domain", "sparse", "status")}

    def _unique_name(self, company: Company, entity: str, key: str, name: str,
                     current: dict | None) -> None:
        for other in company.objects[entity].values():
            if other[key].strip().lower() == name.strip().lower() and (
                    current is None or other["Id"] != current["Id"]):
                raise QBFault(6240, "Duplicate Name Exists Error",
                              f"The name supplied already exists. : Id={other['Id']}")

    def _currency(self, company: Company, body: dict, current: dict | None = None) -> dict:
        """The object's currency: its ``CurrencyRef``, else the one it had, else the home currency."""
        code = ref_value(body.get("CurrencyRef")) or ref_value((current or {}).get("CurrencyRef"))
        code = code or company.currency
        if code != company.currency:
            if not company.multicurrency:
                raise business(f"Multicurrency is not enabled for this company; CurrencyRef {code} "
                               f"is not allowed (home currency {company.currency})")
            if not re.fullmatch(r"[A-Z]{3}", code):
                raise QBFault(2010, "Request has invalid or unsupported property",
                              f"Property Name:CurrencyRef specified is unsupported or invalid: {code}")
        return {"value": code}

    def _customer_currency(self, company: Company, obj: dict, currency: dict) -> None:
        customer = company.objects["Customer"][obj["CustomerRef"]["value"]]
        if customer["CurrencyRef"]["value"] != currency["value"]:
            raise business(f"The currency of the transaction is different from the customer's currency "
                           f"(transaction {currency['value']}, customer {customer['CurrencyRef']['value']})")

    def _exchange_rate(self, company: Company, obj: dict, currency: dict) -> Decimal:
        """Home-currency units per unit of ``currency``: the one sent, else the company's table."""
        if currency["value"] == company.currency:
            return Decimal(1)
        if "ExchangeRate" in obj:
            rate = as_number(obj["ExchangeRate"], "ExchangeRate")
            if rate <= 0:
                raise QBFault(2010, "Request has invalid or unsupported property",
                              f"Property Name:ExchangeRate specified is unsupported or invalid: {rate}")
            return rate
        rate = company.rate_on(currency["value"], str(obj.get("TxnDate") or date.today().isoformat()))
        if rate is None:
            raise business(f"No exchange rate is available for {currency['value']}: send ExchangeRate "
                           f"(units of {company.currency} per {currency['value']})")
        return rate

    def _has_transactions(self, company: Company, customer_id: str) -> bool:
        return any(ref_value(o.get("CustomerRef")) == customer_id
                   for entity in TRANSACTIONS for o in company.objects[entity].values())

    def _ref(self, company: Company, entity: str, ref: Any, name_key: str, what: str) -> dict:
        value = ref_value(ref)
        obj = company.objects[entity].get(value or "")
        if obj is None or not obj.get("Active", True):
            raise invalid_ref(what, value)
        return {"value": obj["Id"], "name": obj[name_key]}

    def _customer(self, company: Company, body: dict, current: dict | None) -> dict:
        obj = self._strip(body)
        parts = [str(obj.get(k, "")).strip() for k in ("Title", "GivenName", "MiddleName", "FamilyName",
                                                  "Suffix")]
        display = str(obj.get("DisplayName", "")).strip()
        if not display:
            display = " ".join(p for p in parts if p) or str(obj.get("CompanyName", "")).strip()
        if not display:
            raise QBFault(6080, "No Name Provided", "Title, GivenName, MiddleName, FamilyName, "
                          "DisplayName, Suffix - one of these must be non-empty")
        if ":" in display or len(display) > 500:
            raise QBFault(2050, "String length is either shorter or longer than supported by "
                          "specification", "DisplayName must have at most 500 characters and no ':'")
        self._unique_name(company, "Customer", "DisplayName", display, current)
        currency = self._currency(company, obj, current)
        if current is not None and currency != current["CurrencyRef"] and self._has_transactions(
                company, current["Id"]):
            raise business("The currency of a customer cannot be changed once it has transactions "
                           f"(customer {current['Id']} is in {current['CurrencyRef']['value']})")
        obj.update(DisplayName=display, FullyQualifiedName=display, PrintOnCheckName=obj.get(
            "PrintOnCheckName", display), Active=obj.get("Active", True) is not False,
            CurrencyRef=currency, Taxable=obj.get("Taxable", True),
            Balance=current["Balance"] if current else Decimal("0.00"))
        obj["BalanceWithJobs"] = obj["Balance"]
        if "PrimaryEmailAddr" in obj and not isinstance(obj["PrimaryEmailAddr"], dict):
            raise QBFault(2010, "Request has invalid or unsupported property",
                          "PrimaryEmailAddr must be an object with Address")
        return obj

    def _item(self, company: Company, body: dict, current: dict | None = None) -> dict:
        obj = self._strip(body)
        name = str(obj.get("Name", "")).strip()
        if not name:
            raise required("Name")
        if len(name) > 100 or ":" in name:
            raise QBFault(2050, "String length is either shorter or longer than supported by "
                          "specification", "Item Name must have at most 100 characters and no ':'")
        self._unique_name(company, "Item", "Name", name, current)
        type_ = obj.get("Type", "NonInventory")
        if type_ not in ("Service", "NonInventory", "Inventory", "Category", "Group"):
            raise QBFault(2010, "Request has invalid or unsupported property",
                          f"Property Name:Type specified is unsupported or invalid: {type_}")
        if type_ in ("Service", "NonInventory", "Inventory"):
            if "IncomeAccountRef" not in obj:
                raise required("IncomeAccountRef")
            obj["IncomeAccountRef"] = self._ref(company, "Account", obj["IncomeAccountRef"], "Name",
                                                "IncomeAccountRef")
        if type_ == "Inventory":
            for key in ("AssetAccountRef", "ExpenseAccountRef"):
                if key not in obj:
                    raise required(key)
                obj[key] = self._ref(company, "Account", obj[key], "Name", key)
        obj.update(Name=name, FullyQualifiedName=name, Type=type_,
                   Active=obj.get("Active", True) is not False,
                   UnitPrice=as_number(obj.get("UnitPrice", 0), "UnitPrice"))
        return obj

    def _account(self, company: Company, body: dict, current: dict | None = None) -> dict:
        obj = self._strip(body)
        name = str(obj.get("Name", "")).strip()
        if not name:
            raise required("Name")
        self._unique_name(company, "Account", "Name", name, current)
        type_ = obj.get("AccountType")
        if type_ not in ACCOUNT_CLASSIFICATION:
            raise QBFault(6010, "Invalid Account.AccountType && Account.SubType",
                          "Either an Account.AccountType or an Account.AccountSubType must be specified")
        obj.update(Name=name, FullyQualifiedName=name, Active=obj.get("Active", True) is not False,
                   Classification=ACCOUNT_CLASSIFICATION[type_], SubAccount=False,
                   CurrentBalance=current["CurrentBalance"] if current else Decimal("0.00"),
                   CurrencyRef={"value": company.currency})
        obj.setdefault("AccountSubType", type_.replace(" ", ""))
        return obj

    def _doc_number(self, company: Company, entity: str, obj: dict, current: dict | None) -> None:
        doc = obj.get("DocNumber")
        if doc is None:
            if current is not None and current.get("DocNumber"):
                return
            used = {o.get("DocNumber") for o in company.objects[entity].values()}
            n = company.doc_numbers.get(entity, 1001)
            while str(n) in used:
                n += 1
            company.doc_numbers[entity] = n + 1
            obj["DocNumber"] = str(n)
            return
        doc = str(doc)
        if len(doc) > 21:
            raise QBFault(2050, "String length is either shorter or longer than supported by "
                          "specification", f"String length specified does not match the supported "
                          f"length. Min:0 Max:21 supplied:{len(doc)}", element="DocNumber")
        allow = "allowduplicatedocnum" in request.args.get("include", "").lower().split(",")
        if not allow:
            for other in company.objects[entity].values():
                if other.get("DocNumber") == doc and (current is None or other["Id"] != current["Id"]):
                    raise QBFault(6140, "Duplicate Document Number Error",
                                  f"Duplicate Document Number Error : You must specify a different "
                                  f"number. This number has already been used. DocNumber={doc} is "
                                  f"assigned to TxnType={entity} with TxnId={other['Id']}")
        obj["DocNumber"] = doc

    def _sales_form(self, company: Company, entity: str, body: dict, current: dict | None) -> dict:
        obj = self._strip(body)
        if entity in ("Invoice", "CreditMemo") or "CustomerRef" in obj:
            if "CustomerRef" not in obj:
                raise required("CustomerRef")
            obj["CustomerRef"] = self._ref(company, "Customer", obj["CustomerRef"], "DisplayName",
                                           "CustomerRef")
        if entity == "RefundReceipt" or "DepositToAccountRef" in obj:
            if "DepositToAccountRef" not in obj:
                raise required("DepositToAccountRef")
            obj["DepositToAccountRef"] = self._ref(company, "Account", obj["DepositToAccountRef"],
                                                   "Name", "DepositToAccountRef")
        currency = self._currency(company, obj, current)
        if "CustomerRef" in obj:
            self._customer_currency(company, obj, currency)
        rate = self._exchange_rate(company, obj, currency)
        calc = obj.get("GlobalTaxCalculation", "TaxExcluded")
        if calc not in ("TaxExcluded", "TaxInclusive", "NotApplicable"):
            raise QBFault(2010, "Request has invalid or unsupported property",
                          f"Property Name:GlobalTaxCalculation specified is unsupported or invalid: {calc}")
        self._doc_number(company, entity, obj, current)
        lines = obj.get("Line")
        if not isinstance(lines, list) or not [ln for ln in lines if isinstance(ln, dict) and
                                               ln.get("DetailType") != "SubTotalLineDetail"]:
            raise required("Line")
        sales, discount, out = Decimal("0.00"), Decimal("0.00"), []
        discounts = []
        for line in lines:
            if not isinstance(line, dict):
                raise QBFault(2010, "Request has invalid or unsupported property", "Line must be an object")
            kind = line.get("DetailType")
            line = {k: v for k, v in line.items() if k not in ("LineNum", "Id")}
            if kind == "SalesItemLineDetail":
                sales += self._sales_line(company, line)
                if company.country != "US":
                    line_tax_code(company, line["SalesItemLineDetail"], calc)
            elif kind == "DiscountLineDetail":
                discounts.append(line)
            elif kind == "DescriptionOnly":
                line["Amount"] = money(line.get("Amount", 0))
            elif kind == "SubTotalLineDetail":
                continue
            else:
                raise QBFault(2010, "Request has invalid or unsupported property",
                              f"Property Name:DetailType specified is unsupported or invalid: {kind}")
            out.append(line)
        for line in discounts:
            detail = line.get("DiscountLineDetail") or {}
            if detail.get("PercentBased") is True and "DiscountPercent" in detail:
                percent = as_number(detail["DiscountPercent"], "DiscountPercent")
                line["Amount"] = (sales * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
            elif "Amount" in line:
                line["Amount"] = money(line["Amount"])
                detail["PercentBased"] = False
            else:
                raise QBFault(6090, "Discount Line missing required info.",
                              "Discount amount or percent should be provided.")
            if line["Amount"] < 0:
                raise business("A discount cannot be negative")
            line["DiscountLineDetail"] = detail
            discount += line["Amount"]
        if discount > sales:
            raise business("The discount cannot be larger than the subtotal of the sales lines")
        out.append({"Amount": sales, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        for number, line in enumerate(out, start=1):
            line["Id"], line["LineNum"] = str(number), number
        out[-1].pop("Id")
        out[-1].pop("LineNum")
        tax_detail = obj.get("TxnTaxDetail") or {}
        if not isinstance(tax_detail, dict):
            raise QBFault(2010, "Request has invalid or unsupported property", "TxnTaxDetail must be an object")
        if company.country == "US":
            tax = money(tax_detail.get("TotalTax", 0), "TotalTax")
            tax_detail["TotalTax"] = tax
        else:
            tax_detail = global_tax(company, out, discount, calc, tax_detail)
            tax = tax_detail["TotalTax"]
        total = sales - discount + (tax if calc != "TaxInclusive" else Decimal(0))
        deposit = money(obj.get("Deposit", 0), "Deposit")
        today = self._today().isoformat()  # type: ignore[attr-defined] - the simulator's clock
        obj.update(Line=out, TxnTaxDetail=tax_detail, GlobalTaxCalculation=calc, TotalAmt=total,
                   CurrencyRef=currency, ExchangeRate=rate, TxnDate=obj.get("TxnDate", today),
                   HomeTotalAmt=(total * rate).quantize(CENT, rounding=ROUND_HALF_UP))
        if entity == "Invoice":
            _check_shipping(company, obj)
            obj["Deposit"] = deposit
            obj["Balance"] = current["Balance"] if current else total - deposit
            obj["DueDate"] = self._invoice_due_date(company, obj)  # type: ignore[attr-defined]
            obj.setdefault("LinkedTxn", [])
        elif entity == "CreditMemo":
            obj["Balance"] = obj["RemainingCredit"] = total
        else:
            obj["Balance"] = Decimal("0.00")
        return obj

    def _sales_line(self, company: Company, line: dict) -> Decimal:
        detail = line.get("SalesItemLineDetail")
        if not isinstance(detail, dict):
            raise required("SalesItemLineDetail")
        if "ItemRef" not in detail:
            raise required("ItemRef")
        detail["ItemRef"] = self._ref(company, "Item", detail["ItemRef"], "Name", "ItemRef")
        if "Amount" not in line:
            raise required("Line.Amount")
        amount = money(line["Amount"])
        qty = as_number(detail["Qty"], "Qty") if "Qty" in detail else None
        price = as_number(detail["UnitPrice"], "UnitPrice") if "UnitPrice" in detail else None
        if qty is not None and price is not None:
            expected = (qty * price).quantize(CENT, rounding=ROUND_HALF_UP)
            if expected != amount:
                raise QBFault(6070, "Amount calculation incorrect in the request",
                              f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
                              element="Line.Amount")
        elif qty is not None and qty != 0:
            detail["UnitPrice"] = (amount / qty).quantize(Decimal("0.0000001")).normalize()
        elif price is not None and price != 0:
            detail["Qty"] = (amount / price).normalize()
        line["Amount"] = amount
        return amount

    def _payment(self, company: Company, body: dict, current: dict | None) -> dict:
        obj = self._strip(body)
        if "CustomerRef" not in obj:
            raise required("CustomerRef")
        obj["CustomerRef"] = self._ref(company, "Customer", obj["CustomerRef"], "DisplayName",
                                       "CustomerRef")
        if "TotalAmt" not in obj:
            raise required("TotalAmt")
        total = money(obj["TotalAmt"], "TotalAmt")
        if total < 0:
            raise business("A payment amount cannot be negative")
        currency = self._currency(company, obj, current)
        self._customer_currency(company, obj, currency)
        rate = self._exchange_rate(company, obj, currency)
        if "DepositToAccountRef" in obj:
            obj["DepositToAccountRef"] = self._ref(company, "Account", obj["DepositToAccountRef"], "Name",
                                                   "DepositToAccountRef")
        previously: dict[str, Decimal] = {}
        for line in (current or {}).get("Line", []):
            for link in line.get("LinkedTxn", []):
                previously[link["TxnId"]] = previously.get(link["TxnId"], Decimal(0)) + line["Amount"]
        applied = Decimal("0.00")
        lines = obj.get("Line", [])
        if not isinstance(lines, list):
            raise QBFault(2010, "Request has invalid or unsupported property", "Line must be a list")
        for line in lines:
            line.pop("LineNum", None)
            amount = money(line.get("Amount", 0))
            links = line.get("LinkedTxn") or []
            if not links:
                raise required("Line.LinkedTxn")
            for link in links:
                if link.get("TxnType") != "Invoice":
                    raise QBFault(2010, "Request has invalid or unsupported property",
                                  f"LinkedTxn.TxnType {link.get('TxnType')} is not supported here")
                inv = company.objects["Invoice"].get(str(link.get("TxnId", "")))
                if inv is None:
                    raise invalid_ref("LinkedTxn.TxnId (Invoice)", link.get("TxnId"))
                link["TxnId"] = inv["Id"]
                if inv["CustomerRef"]["value"] != obj["CustomerRef"]["value"]:
                    raise business(f"Invoice {inv['Id']} belongs to another customer")
                if inv.get("CurrencyRef", {}).get("value") != currency["value"]:
                    raise business(f"Invoice {inv['Id']} is in another currency")
                open_balance = inv["Balance"] + previously.get(inv["Id"], Decimal(0))
                if amount > open_balance:
                    raise business(f"The amount applied to invoice {inv['Id']} ({amount}) exceeds "
                                   f"its open balance ({open_balance})")
            line["Amount"] = amount
            applied += amount
        if applied > total:
            raise business(f"The applied amounts ({applied}) exceed the payment total ({total})")
        obj.update(Line=lines, TotalAmt=total, UnappliedAmt=total - applied, CurrencyRef=currency,
                   ExchangeRate=rate, HomeTotalAmt=(total * rate).quantize(CENT, rounding=ROUND_HALF_UP),
                   ProcessPayment=False, TxnDate=obj.get("TxnDate", self._today()  # type: ignore[attr-defined]
                                                         .isoformat()))
        return obj



SHIPPING_FIELDS = ("ShipDate", "TrackingNum", "ShipMethodRef")


def _check_shipping(company: Company, obj: dict) -> None:
    """An invoice's shipping fields: refused when the company has shipping turned off on sales forms
    (``SalesFormsPrefs.AllowShipping``); ``TrackingNum`` at most 31 characters; ``ShipDate`` a date."""
    sent = [f for f in SHIPPING_FIELDS if obj.get(f) not in (None, "")]
    if sent and not company.allow_shipping:
        raise QBFault(2010, "Request has invalid or unsupported property",
                      f"Property Name:{sent[0]} specified is unsupported or invalid: shipping is turned off "
                      "for sales forms in this company")
    tracking = obj.get("TrackingNum")
    if tracking is not None and (not isinstance(tracking, str) or len(tracking) > 31):
        raise QBFault(2050, "String length is either shorter or longer than supported by specification",
                      "TrackingNum: the maximum length is 31")
    if obj.get("ShipDate") is not None:
        try:
            date.fromisoformat(str(obj["ShipDate"]))
        except ValueError:
            raise QBFault(2010, "Request has invalid or unsupported property",
                          f"Property Name:ShipDate specified is unsupported or invalid: {obj['ShipDate']}") from None
