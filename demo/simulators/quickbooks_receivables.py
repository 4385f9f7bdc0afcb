"""Receivables in the QuickBooks Online simulator: payment terms (``Term``), invoice due dates from
``SalesTermRef``, and the ``AgedReceivables`` / ``AgedReceivableDetail`` reports
(``GET /v3/company/<realm>/reports/<Name>?report_date=YYYY-MM-DD&aging_period=30&num_periods=4``).

*Today* is the simulator's clock (``sim.clock``, a ``SimClock`` the tests move), in the company's time
zone: the default ``report_date`` and an invoice's default ``TxnDate``.

The reports age every open invoice dated on or before ``report_date`` by its days past due (``report_date
− DueDate``; ``aging_method=Current`` ages as of today instead): *Current* (not yet due), then ``num_periods
− 1`` ranges of ``aging_period`` days, then "N and over". An invoice's open balance is its total less its
deposit and the payments dated on or before ``report_date``; amounts are in the home currency (a
foreign-currency invoice at its exchange rate). Open credit memos and unapplied payments are not shown
(the hub issues neither on credit). Money comes back as text with two decimals, as the Report API sends it.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import request

from .quickbooks_query import CENT, COMPANY_TZ, Company, QBFault, money, ref_value, required

TERM_TYPES = ("STANDARD", "DATE_DRIVEN")
REPORTS = ("AgedReceivables", "AgedReceivableDetail")


def _invalid(name: str, value: Any) -> QBFault:
    return QBFault(2010, "Request has invalid or unsupported property",
                   f"Property Name:{name} specified is unsupported or invalid: {value}")


def _day(text: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        raise _invalid(name, text) from None


def _next_month(first: date) -> date:
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def _last_day(first: date) -> int:
    return (_next_month(first) - timedelta(days=1)).day


def _text(amount: Decimal) -> str:
    return format(amount.quantize(CENT), "f")


class ReceivablesRules:
    """Mixed into the simulator: needs ``self.clock`` (a ``SimClock``) and ``self._unique_name``."""

    # -- Term ----------------------------------------------------------------------------------
    def _term(self, company: Company, body: dict, current: dict | None) -> dict:
        obj = {k: v for k, v in body.items() if k not in ("Id", "SyncToken", "MetaData", "domain", "sparse")}
        name = str(obj.get("Name") or "").strip()
        if not name:
            raise required("Name")
        if len(name) > 31:
            raise QBFault(2050, "String length is either shorter or longer than supported by specification",
                          "Name must be at most 31 characters")
        self._unique_name(company, "Term", "Name", name, current)
        type_ = obj.get("Type", "STANDARD")
        if type_ not in TERM_TYPES:
            raise _invalid("Type", type_)
        obj.update(Name=name, Type=type_, Active=obj.get("Active", True) is not False)
        if type_ == "STANDARD":
            days = obj.get("DueDays", 0)
            if isinstance(days, bool) or not str(days).isdigit() or int(days) > 999:
                raise _invalid("DueDays", days)
            obj["DueDays"] = int(days)
        else:
            day = obj.get("DayOfMonthDue")
            if isinstance(day, bool) or not str(day).isdigit() or not 1 <= int(day) <= 31:
                raise _invalid("DayOfMonthDue", day)
            obj["DayOfMonthDue"] = int(day)
            obj["DueNextMonthDays"] = int(obj.get("DueNextMonthDays") or 0)
        return obj

    def _today(self) -> date:
        return self.clock.today(COMPANY_TZ)  # type: ignore[attr-defined]

    def _invoice_due_date(self, company: Company, obj: dict) -> str:
        """The invoice's ``DueDate``: as given, else from its ``SalesTermRef`` (STANDARD: TxnDate + DueDays;
        DATE_DRIVEN: the next DayOfMonthDue), else its ``TxnDate`` (due on receipt)."""
        txn = _day(obj["TxnDate"], "TxnDate")
        term = None
        if obj.get("SalesTermRef") is not None:
            term = company.objects["Term"].get(ref_value(obj["SalesTermRef"]) or "")
            if term is None or not term.get("Active", True):
                raise QBFault(2500, "Invalid Reference Id",
                              f"Invalid Reference Id : SalesTermRef {ref_value(obj['SalesTermRef'])}")
            obj["SalesTermRef"] = {"value": term["Id"], "name": term["Name"]}
        if obj.get("DueDate"):
            due = _day(obj["DueDate"], "DueDate")
            if due < txn:
                raise QBFault(6000, "A business validation error has occurred while processing your request",
                              "Business Validation Error: The due date cannot be earlier than the transaction date")
            return due.isoformat()
        if term is None:
            return txn.isoformat()
        if term["Type"] == "STANDARD":
            return (txn + timedelta(days=term["DueDays"])).isoformat()
        # DATE_DRIVEN: the next DayOfMonthDue on or after TxnDate, a month later when that is less than
        # DueNextMonthDays away
        day, soon = term["DayOfMonthDue"], timedelta(days=term.get("DueNextMonthDays", 0))
        month = txn.replace(day=1)
        for _ in range(3):
            due = month.replace(day=min(day, _last_day(month)))
            if due >= txn and due - txn >= soon:
                return due.isoformat()
            month = _next_month(month)
        return due.isoformat()

    # -- reports -------------------------------------------------------------------------------
    def _report(self, company: Company, name: str) -> dict:
        if name not in REPORTS:
            raise QBFault(2010, "Request has invalid or unsupported property", f"Unsupported report: {name}")
        args = request.args
        report_date = _day(args["report_date"], "report_date") if args.get("report_date") else self._today()
        period = args.get("aging_period", "30")
        periods = args.get("num_periods", "4")
        if not period.isdigit() or not 1 <= int(period) <= 999:
            raise _invalid("aging_period", period)
        if not periods.isdigit() or not 1 <= int(periods) <= 99:
            raise _invalid("num_periods", periods)
        method = args.get("aging_method", "Report_Date")
        if method not in ("Report_Date", "Current"):
            raise _invalid("aging_method", method)
        aged_on = report_date if method == "Report_Date" else self._today()
        customers = {c.strip() for c in args.get("customer", "").split(",") if c.strip()}
        titles = self._bucket_titles(int(period), int(periods))
        rows = self._open_invoices(company, report_date, customers)
        for row in rows:
            row["bucket"] = self._bucket((aged_on - date.fromisoformat(row["due"])).days, int(period), int(periods))
        header = {"Time": self.clock.now(COMPANY_TZ).isoformat(timespec="seconds"),  # type: ignore[attr-defined]
                  "ReportName": name, "DateMacro": "", "StartPeriod": report_date.isoformat(),
                  "EndPeriod": report_date.isoformat(), "Currency": company.currency,
                  "Option": [{"Name": "report_date", "Value": report_date.isoformat()},
                             {"Name": "NoReportData", "Value": "false" if rows else "true"}]}
        if name == "AgedReceivables":
            return {"Header": header, **self._summary(rows, titles)}
        return {"Header": header, **self._detail(rows, titles)}

    @staticmethod
    def _bucket_titles(period: int, periods: int) -> list[str]:
        titles = ["Current"]
        titles += [f"{i * period + 1} - {(i + 1) * period}" for i in range(periods - 1)]
        titles.append(f"{(periods - 1) * period + 1} and over")
        return titles

    @staticmethod
    def _bucket(days_past_due: int, period: int, periods: int) -> int:
        if days_past_due <= 0:
            return 0
        return min((days_past_due - 1) // period, periods - 1) + 1

    def _open_invoices(self, company: Company, report_date: date, customers: set[str]) -> list[dict]:
        paid: dict[str, Decimal] = {}
        for payment in company.objects["Payment"].values():
            if _day(payment.get("TxnDate", "0001-01-01"), "TxnDate") > report_date:
                continue
            for line in payment.get("Line", []):
                for link in line.get("LinkedTxn", []):
                    if link.get("TxnType") == "Invoice":
                        paid[link["TxnId"]] = paid.get(link["TxnId"], Decimal(0)) + money(line["Amount"])
        rows = []
        for inv in company.objects["Invoice"].values():
            cust = ref_value(inv.get("CustomerRef")) or ""
            if _day(inv["TxnDate"], "TxnDate") > report_date or (customers and cust not in customers):
                continue
            balance = inv["TotalAmt"] - inv.get("Deposit", Decimal(0)) - paid.get(inv["Id"], Decimal(0))
            rate = inv.get("ExchangeRate") or Decimal(1)
            home = (balance * rate).quantize(CENT, rounding=ROUND_HALF_UP)
            if home == 0:
                continue
            customer = company.objects["Customer"].get(cust) or {}
            rows.append({"id": inv["Id"], "customer_id": cust, "customer": customer.get("DisplayName", ""),
                         "date": str(inv["TxnDate"])[:10], "due": str(inv.get("DueDate") or inv["TxnDate"])[:10],
                         "doc": inv.get("DocNumber", ""), "amount": (inv["TotalAmt"] * rate).quantize(CENT),
                         "open": home})
        rows.sort(key=lambda r: (r["due"], r["date"], int(r["id"]) if r["id"].isdigit() else 0))
        return rows

    def _summary(self, rows: list[dict], titles: list[str]) -> dict:
        columns = [{"ColTitle": "", "ColType": "Customer"}]
        columns += [{"ColTitle": t, "ColType": "Money"} for t in titles] + [{"ColTitle": "Total", "ColType": "Money"}]
        by_customer: dict[str, list[Decimal]] = {}
        names: dict[str, str] = {}
        for r in rows:
            sums = by_customer.setdefault(r["customer_id"], [Decimal(0)] * len(titles))
            sums[r["bucket"]] += r["open"]
            names[r["customer_id"]] = r["customer"]
        out = []
        for cust in sorted(by_customer, key=lambda c: names[c].lower()):
            sums = by_customer[cust]
            out.append({"ColData": [{"value": names[cust], "id": cust},
                                    *({"value": _text(v) if v else ""} for v in sums),
                                    {"value": _text(sum(sums, Decimal(0)))}]})
        totals = [sum((s[i] for s in by_customer.values()), Decimal(0)) for i in range(len(titles))]
        out.append({"Summary": {"ColData": [{"value": "TOTAL"}, *({"value": _text(v)} for v in totals),
                                            {"value": _text(sum(totals, Decimal(0)))}]},
                    "type": "Section", "group": "GrandTotal"})
        return {"Columns": {"Column": columns}, "Rows": {"Row": out}}

    def _detail(self, rows: list[dict], titles: list[str]) -> dict:
        names = (("Date", "Date", "tx_date"), ("Transaction Type", "String", "txn_type"), ("Num", "String", "doc_num"),
                 ("Customer", "String", "cust_name"), ("Due Date", "Date", "due_date"),
                 ("Amount", "Money", "subt_amount"), ("Open Balance", "Money", "subt_open_bal"))
        columns = [{"ColTitle": t, "ColType": k, "MetaData": [{"Name": "ColKey", "Value": key}]} for t, k, key in names]
        sections, grand = [], Decimal(0)
        for index in range(len(titles) - 1, -1, -1):      # oldest first, as QuickBooks lists them
            mine = [r for r in rows if r["bucket"] == index]
            if not mine:
                continue
            total = sum((r["open"] for r in mine), Decimal(0))
            grand += total
            data = [{"ColData": [{"value": r["date"]}, {"value": "Invoice", "id": r["id"]}, {"value": r["doc"]},
                                 {"value": r["customer"], "id": r["customer_id"]}, {"value": r["due"]},
                                 {"value": _text(r["amount"])}, {"value": _text(r["open"])}], "type": "Data"}
                    for r in mine]
            sections.append({"Header": {"ColData": [{"value": titles[index]}] + [{"value": ""}] * 6},
                             "Rows": {"Row": data},
                             "Summary": {"ColData": [{"value": f"Total for {titles[index]}"}] + [{"value": ""}] * 4
                                         + [{"value": _text(sum((r["amount"] for r in mine), Decimal(0)))},
                                            {"value": _text(total)}]},
                             "type": "Section"})
        sections.append({"Summary": {"ColData": [{"value": "TOTAL"}] + [{"value": ""}] * 5 + [{"value": _text(grand)}]},
                         "type": "Section", "group": "GrandTotal"})
        return {"Columns": {"Column": columns}, "Rows": {"Row": sections}}
