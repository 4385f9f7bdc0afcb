"""Sales tax in the QuickBooks Online simulator outside the US: ``TaxCode`` and ``TaxRate`` objects
seeded per country, and the tax of a sales form computed from the ``TaxCodeRef`` of each line.

The global model as the simulator applies it (companies whose country is not ``US``):

- every ``SalesItemLineDetail`` carries ``TaxCodeRef`` = the Id of an active TaxCode (unless
  ``GlobalTaxCalculation`` is ``NotApplicable``); ``TAX``/``NON`` exist only in US companies;
- a line's tax is computed per rate of its code, rounded half-up to the cent on each line, after
  the line's share of the discount lines (discounts are prorated over the sales lines by amount);
  with ``TaxInclusive`` the line amounts include the tax (tax = amount × rate / (100 + rate));
- ``TxnTaxDetail.TaxLine`` holds one ``TaxLineDetail`` per tax rate (``TaxRateRef``, ``PercentBased``,
  ``TaxPercent``, ``NetAmountTaxable``); a ``TxnTaxDetail.TotalTax`` sent with the form overrides the
  computed total (as QuickBooks allows) and is spread over the tax lines in proportion.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .quickbooks_query import CENT, Company, QBFault, business, invalid_ref, money, now_text, ref_value

# (code name, rate percent, taxable) per country; the rate's name is the code's name.
TAX_SEEDS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "GB": (("20.0% S", "20", True), ("5.0% R", "5", True), ("0.0% Z", "0", True), ("Exempt", "0", False)),
    "CA": (("GST", "5", True), ("HST ON", "13", True), ("Zero-rated", "0", True), ("Exempt", "0", False)),
    "AU": (("GST", "10", True), ("GST free", "0", True)),
}
AGENCY = {"GB": "HM Revenue & Customs", "CA": "Canada Revenue Agency", "AU": "Australian Taxation Office"}
US_CODES = ("TAX", "NON")
_STAMP = "2011-01-01T00:00:00-08:00"


def _meta(stamp: str) -> dict:
    return {"CreateTime": stamp, "LastUpdatedTime": stamp}


def seed_tax_codes(company: Company) -> None:
    """The TaxCodes a new company starts with: ``TAX``/``NON`` in the US, the country's rates elsewhere."""
    if company.country == "US":
        for code in US_CODES:
            company.objects["TaxCode"][code] = {
                "Id": code, "SyncToken": "0", "domain": "QBO", "sparse": False, "Name": code,
                "Description": "Taxable" if code == "TAX" else "Non-taxable", "Active": True,
                "Hidden": False, "Taxable": code == "TAX", "TaxGroup": False, "MetaData": _meta(_STAMP)}
        return
    for name, rate, taxable in TAX_SEEDS.get(company.country, ()):
        add_tax_code(company, name, Decimal(rate), taxable=taxable, stamp=_STAMP)


def add_tax_code(company: Company, name: str, rate_percent: Decimal, *, taxable: bool = True,
                 active: bool = True, stamp: str | None = None) -> dict:
    """Store a TaxRate of ``rate_percent`` and a TaxCode ``name`` using it; returns the TaxCode."""
    if company.country == "US":
        raise ValueError("US companies use TAX/NON and Automated Sales Tax, not tax codes")
    if any(c["Name"].lower() == name.lower() for c in company.objects["TaxCode"].values()):
        raise ValueError(f"a tax code named {name!r} exists already")
    stamp = stamp or now_text()
    rate_percent = Decimal(str(rate_percent))
    rate = {"Id": company.new_id(), "SyncToken": "0", "domain": "QBO", "sparse": False, "Name": name,
            "Description": name, "Active": active, "RateValue": rate_percent,
            "AgencyRef": {"value": "1", "name": AGENCY.get(company.country, "Tax agency")},
            "SpecialTaxType": "ZERO_RATE" if rate_percent == 0 and taxable else "NONE",
            "DisplayType": "ReadOnly",
            "EffectiveTaxRate": [{"RateValue": rate_percent, "EffectiveDate": stamp}],
            "MetaData": _meta(stamp)}
    company.objects["TaxRate"][rate["Id"]] = rate
    code = {"Id": company.new_id(), "SyncToken": "0", "domain": "QBO", "sparse": False, "Name": name,
            "Description": name, "Active": active, "Hidden": False, "Taxable": taxable, "TaxGroup": False,
            "SalesTaxRateList": {"TaxRateDetail": [{
                "TaxRateRef": {"value": rate["Id"], "name": name}, "TaxTypeApplicable": "TaxOnAmount",
                "TaxOrder": 0}]},
            "PurchaseTaxRateList": {"TaxRateDetail": []}, "MetaData": _meta(stamp)}
    company.objects["TaxCode"][code["Id"]] = code
    return code


def _tax_word(company: Company) -> str:
    return {"GB": "VAT", "AU": "GST", "CA": "sales tax"}.get(company.country, "tax")


def line_tax_code(company: Company, detail: dict, calc: str) -> None:
    """Check (and normalise) the ``TaxCodeRef`` of one sales line of a non-US company."""
    value = ref_value(detail.get("TaxCodeRef"))
    if value is None:
        if calc == "NotApplicable":
            detail.pop("TaxCodeRef", None)
            return
        raise business(f"Make sure all your transactions have a {_tax_word(company)} rate before you save.")
    code = company.objects["TaxCode"].get(value)
    if code is None or not code.get("Active", True):
        if value.upper() in US_CODES:
            raise QBFault(2500, "Invalid Reference Id",
                          f"Invalid Reference Id : TaxCodeRef {value} is only valid in US companies; "
                          f"this company ({company.country}) needs the Id of one of its TaxCodes")
        raise invalid_ref("TaxCodeRef", value)
    detail["TaxCodeRef"] = {"value": code["Id"]}


def _spread(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """``total`` split in proportion to ``weights`` to the cent; the last share takes the rest."""
    whole = sum(weights, Decimal(0))
    if not weights:
        return []
    if whole == 0:
        return [total] + [Decimal("0.00")] * (len(weights) - 1)
    shares = [(total * w / whole).quantize(CENT, rounding=ROUND_HALF_UP) for w in weights[:-1]]
    return [*shares, total - sum(shares, Decimal(0))]


def global_tax(company: Company, lines: list[dict], discount: Decimal, calc: str,
               given: dict) -> dict[str, Any]:
    """``TxnTaxDetail`` for the sales lines ``lines`` of a non-US company (see the module docstring);
    ``given`` is the TxnTaxDetail the request sent."""
    detail: dict[str, Any] = {k: v for k, v in given.items() if k not in ("TotalTax", "TaxLine")}
    override = money(given["TotalTax"], "TotalTax") if "TotalTax" in given else None
    if calc == "NotApplicable":
        if override:
            raise business("TotalTax must be 0 when GlobalTaxCalculation is NotApplicable")
        return {**detail, "TotalTax": Decimal("0.00"), "TaxLine": []}
    sales = [ln for ln in lines if ln.get("DetailType") == "SalesItemLineDetail"]
    shares = _spread(discount, [ln["Amount"] for ln in sales]) if discount else [Decimal(0)] * len(sales)
    by_rate: dict[str, dict[str, Decimal]] = {}
    for line, share in zip(sales, shares, strict=True):
        net = line["Amount"] - share
        code = company.objects["TaxCode"][line["SalesItemLineDetail"]["TaxCodeRef"]["value"]]
        rates = [company.objects["TaxRate"][d["TaxRateRef"]["value"]]
                 for d in (code.get("SalesTaxRateList") or {}).get("TaxRateDetail", [])]
        combined = sum((r["RateValue"] for r in rates), Decimal(0))
        taxes = []
        for rate in rates:
            base = net / (100 + combined) if calc == "TaxInclusive" else net / 100
            taxes.append((base * rate["RateValue"]).quantize(CENT, rounding=ROUND_HALF_UP))
        taxable = net - sum(taxes, Decimal(0)) if calc == "TaxInclusive" else net
        for rate, tax in zip(rates, taxes, strict=True):
            group = by_rate.setdefault(rate["Id"], {"tax": Decimal("0.00"), "net": Decimal("0.00"),
                                                    "percent": rate["RateValue"]})
            group["tax"] += tax
            group["net"] += taxable
    ids = sorted(by_rate, key=int)
    amounts = [by_rate[i]["tax"] for i in ids]
    total = sum(amounts, Decimal("0.00"))
    if override is not None and override != total:
        positive = [by_rate[i]["percent"] if total == 0 else by_rate[i]["tax"] for i in ids]
        if total == 0 and ids and not any(positive):
            positive = [Decimal(1)] + [Decimal(0)] * (len(ids) - 1)
        amounts = _spread(override, positive)
        total = override
    tax_lines = [{"Amount": amount.quantize(CENT), "DetailType": "TaxLineDetail", "TaxLineDetail": {
        "TaxRateRef": {"value": i}, "PercentBased": True, "TaxPercent": by_rate[i]["percent"],
        "NetAmountTaxable": by_rate[i]["net"].quantize(CENT)}} for i, amount in zip(ids, amounts, strict=True)]
    if override is not None and not ids and override:
        raise business("TotalTax cannot be charged on a transaction without taxable lines")
    return {**detail, "TotalTax": total.quantize(CENT), "TaxLine": tax_lines}
