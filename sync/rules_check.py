"""Check that the QuickBooks objects a merchant's rules name (items, accounts, tax codes) exist in the
company: when rules are saved, and once a day (``check_due_rules``). The result is stored with the rules
so support and the merchant see it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from connectors.errors import ConnectorError
from hub.models import Connection, MappingRuleSet, utcnow
from mappings.payout_rules import PROCESSOR_LABELS
from mappings.rules import MappingRules, referenced_objects
from sync.accounts import Accounts

if TYPE_CHECKING:
    from collections.abc import Callable

    from hub.runtime import Hub

log = logging.getLogger("o2c.rules_check")
CHECK_EVERY = timedelta(days=1)


@dataclass
class RulesReport:
    missing: list[str] = field(default_factory=list)   # "tax.codes.20: QuickBooks has no TaxCode named '20.0% S'"
    notes: list[str] = field(default_factory=list)     # what will be created, or why nothing was checked
    checked: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"missing": self.missing, "notes": self.notes, "checked": self.checked}


def check_rules(hub: Hub, merchant_id: int, rules: MappingRules) -> RulesReport:
    """Look up every object the rules name in the merchant's QuickBooks company (read-only)."""
    report = RulesReport()
    accounts = Accounts(hub, merchant_id)
    if accounts.connection("quickbooks") is None:
        report.notes.append("QuickBooks objects not checked: the merchant has no QuickBooks connection yet")
        return report
    try:
        qb = accounts.quickbooks()
        seen: dict[tuple[str, str], bool] = {}
        for ref in referenced_objects(rules):
            key = (ref.kind, ref.name)
            if key not in seen:
                seen[key] = qb.find_one(ref.kind, "Name", ref.name) is not None
            if seen[key]:
                continue
            if getattr(ref, "creatable", False):
                report.notes.append(f"{ref.field}: {ref.kind} {ref.name!r} does not exist yet; the hub creates it "
                                    "on first use")
            else:
                report.missing.append(f"{ref.field}: QuickBooks has no {ref.kind} named {ref.name!r}")
        report.notes += payout_account_warnings(rules, lambda n: qb.find_one("Account", "Name", n))
        prefs = qb.preferences() or {}
        if not (prefs.get("SalesFormsPrefs") or {}).get("AllowShipping", True):
            report.notes.append("shipping.methods: shipping is turned off on this company's sales forms, so "
                                "invoices carry no ship date, tracking number or ship method; turn it on in "
                                "QuickBooks (Account and settings → Sales → Shipping) to have them")
        report.checked = True
    except ConnectorError as exc:
        report.notes.append(f"QuickBooks objects not checked: {exc}")
    _check_deal_pipeline(accounts, rules, report)
    return report


def payout_account_warnings(rules: MappingRules, find: Callable[[str], dict[str, Any] | None]) -> list[str]:
    """What keeps a payout processor's payouts from posting as linked deposits: a payment rule that sends the
    processor's payments to an account other than Undeposited Funds (a deposit can link only those), and a
    payouts bank account that is not a bank account in QuickBooks. ``find`` looks an account up by name."""
    out: list[str] = []
    seen: dict[str, dict[str, Any] | None] = {}

    def account(name: str) -> dict[str, Any] | None:
        if name not in seen:
            seen[name] = find(name)
        return seen[name]

    for processor, label in PROCESSOR_LABELS.items():
        name = rules.payments.account_for(processor)
        found = account(name)
        if found is not None and found.get("AccountSubType") != "UndepositedFunds":
            rule = (f"payments.deposit_accounts.{processor}" if processor in rules.payments.deposit_accounts
                    else "payments.default_account")
            out.append(f"{rule}: {label} payments go to {name!r}, not to Undeposited Funds, so their payouts "
                       "cannot link them: those payouts are held until the rule sends them to Undeposited Funds")
    names = {rules.payouts.deposit_account_for(p): p for p in PROCESSOR_LABELS}
    for name, processor in names.items():
        found = account(name)
        rule = (f"payouts.deposit_accounts.{processor}" if processor in rules.payouts.deposit_accounts
                else "payouts.default_deposit_account")
        if found is None:
            out.append(f"{rule}: QuickBooks has no account named {name!r}; payouts deposited there are held "
                       "until it exists (as a bank account)")
        elif found.get("AccountType") != "Bank":
            out.append(f"{rule}: {name!r} is {found.get('AccountType')}, not a bank account; payouts deposited "
                       "there are held until the rule names the bank account the payouts reach")
    return out


def _check_deal_pipeline(accounts: Accounts, rules: MappingRules, report: RulesReport) -> None:
    """The deal pipeline and stages the rules name exist in the merchant's HubSpot account."""
    if not rules.hubspot.deals or accounts.connection("hubspot") is None:
        return
    try:
        pipelines = {p.get("id"): p for p in accounts.hubspot().deal_pipelines()}
    except ConnectorError as exc:
        report.notes.append(f"HubSpot deal pipelines not checked: {exc}")
        return
    pipeline = pipelines.get(rules.hubspot.deal_pipeline)
    if pipeline is None:
        report.missing.append(f"hubspot.deal_pipeline: HubSpot has no deal pipeline {rules.hubspot.deal_pipeline!r} "
                              f"(it has {', '.join(sorted(str(p) for p in pipelines)) or 'none'})")
        return
    stages = {s.get("id") for s in pipeline.get("stages") or []}
    for state, stage in rules.hubspot.deal_stages.items():
        if stage not in stages:
            report.missing.append(f"hubspot.deal_stages.{state}: the pipeline {pipeline.get('id')!r} has no stage "
                                  f"{stage!r}")


def record_check(hub: Hub, merchant_id: int, report: RulesReport) -> None:
    with hub.session() as s:
        row = s.get(MappingRuleSet, merchant_id)
        if row is None:
            row = MappingRuleSet(merchant_id=merchant_id, overrides={}, version=0)
            s.add(row)
        row.problems = report.as_dict()
        row.checked_at = utcnow()
        s.commit()


def check_due_rules(hub: Hub, *, limit: int = 20) -> int:
    """The daily check: merchants with QuickBooks whose rules were not checked in the last day."""
    from hub.mapping_rules import rules_for

    horizon = utcnow() - CHECK_EVERY
    with hub.session() as s:
        merchant_ids = list(s.scalars(
            select(Connection.merchant_id).outerjoin(MappingRuleSet,
                                                     MappingRuleSet.merchant_id == Connection.merchant_id)
            .where(Connection.platform == "quickbooks", Connection.status == "active",
                   or_(MappingRuleSet.checked_at.is_(None), MappingRuleSet.checked_at < horizon))
            .distinct().limit(limit)))
    for merchant_id in merchant_ids:
        with hub.session() as s:
            rules = rules_for(s, merchant_id)
        report = check_rules(hub, merchant_id, rules)
        record_check(hub, merchant_id, report)
        if report.missing:
            log.warning("merchant %s: mapping rules name missing QuickBooks objects: %s", merchant_id,
                        "; ".join(report.missing))
    return len(merchant_ids)
