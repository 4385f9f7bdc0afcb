"""QuickBooks ids for the names the mapping rules give: accounts, tax codes and the company's home
currency (items are the order pipeline's items step, ``sync.orders.items``). Each is looked up once,
created where the rules allow, and remembered as a binding, so later orders ask QuickBooks nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from mappings.inputs import shown
from mappings.model import MappingError
from mappings.rules import MappingRules, load_rules
from sync.ledger import Ledger, Source

QB = "quickbooks"
LIABILITY = "Other Current Liability"


class QuickBooksRefs:
    """``qb`` is a QuickBooks client; ``lock(name)`` a context manager serialising creates across workers;
    ``rid(*parts)`` a deterministic requestid; ``run_id`` is written on new bindings."""

    def __init__(self, qb: Any, ledger: Ledger, rules: MappingRules, *, lock: Callable[[str], Any],
                 rid: Callable[..., str], run_id: int | None) -> None:
        self.qb = qb
        self.ledger = ledger
        self.rules = rules
        self._lock = lock
        self._rid = rid
        self._run_id = run_id
        self._rates: dict[tuple[str, str], Decimal | None] = {}
        self._multicurrency: bool | None = None
        self._preferences: dict[str, Any] | None = None
        self._accounts: dict[str, str] = {}   # account name → id, looked up once per batch

    # -- accounts -------------------------------------------------------------------------------
    def account(self, name: str | None) -> str:
        """The id of an account by name (None: ``items.income_account``). The default income account
        falls back to the company's first income account; the gift-card liability account is created."""
        name = name or self.rules.items.income_account
        if name not in self._accounts:
            self._accounts[name] = self._account(name)
        return self._accounts[name]

    def _account(self, name: str) -> str:
        source = Source("hub", "account", name)
        bound = self.ledger.target_id(source, QB, "account")
        if bound:
            return bound
        found = self.qb.find_one("Account", "Name", name)
        if not found and name == load_rules().items.income_account:
            found = next(iter(self.qb.query("SELECT * FROM Account WHERE AccountType = 'Income' MAXRESULTS 1")),
                         None)
        if not found and name == self.rules.gift_cards.account:
            with self._lock(f"account:{name}"):
                found = self.qb.find_one("Account", "Name", name) or self.qb.create(
                    "Account", {"Name": name, "AccountType": LIABILITY}, request_id=self._rid("account", name))
        if not found:
            raise MappingError(f"account {shown(name)} does not exist in QuickBooks", rule=self._account_rule(name))
        self.ledger.bind(source, QB, "account", found["Id"], data={"name": name}, run_id=self._run_id)
        return found["Id"]

    def _account_rule(self, name: str) -> str:
        if name in self.rules.payments.deposit_accounts.values() or name == self.rules.payments.default_account:
            return "payments.deposit_accounts"
        return "items.income_account"

    # -- tax codes and currency -----------------------------------------------------------------
    def tax_codes(self, names: list[str]) -> dict[str, str]:
        out = {}
        for name in names:
            source = Source("hub", "tax_code", name)
            bound = self.ledger.target_id(source, QB, "tax_code")
            if not bound:
                found = self.qb.find_one("TaxCode", "Name", name)
                if not found:
                    raise MappingError(f"tax code {shown(name)} does not exist in QuickBooks", rule="tax.codes")
                bound = found["Id"]
                self.ledger.bind(source, QB, "tax_code", bound, data={"name": name}, run_id=self._run_id)
            out[name] = bound
        return out

    def home_currency(self) -> str | None:
        """The company's home currency (asked once, then remembered)."""
        source = Source("hub", "company", "home_currency")
        bound = self.ledger.target_id(source, QB, "currency")
        if bound:
            return bound
        currency = None
        with contextlib.suppress(KeyError, TypeError):
            currency = self.qb.preferences()["CurrencyPrefs"]["HomeCurrency"]["value"]
        if currency:
            self.ledger.bind(source, QB, "currency", str(currency).upper(), run_id=self._run_id)
        return str(currency).upper() if currency else None


    def multicurrency(self) -> bool:
        """Whether the company has multi-currency turned on (once on, QuickBooks never turns it off: an
        answer of yes is remembered, a no is asked again by the next pass)."""
        if self._multicurrency is None:
            source = Source("hub", "company", "multicurrency")
            if self.ledger.target_id(source, QB, "preference") == "on":
                self._multicurrency = True
            else:
                prefs = self.preferences().get("CurrencyPrefs") or {}
                self._multicurrency = bool(prefs.get("MultiCurrencyEnabled"))
                if self._multicurrency:
                    self.ledger.bind(source, QB, "preference", "on", run_id=self._run_id)
        return self._multicurrency

    def exchange_rate(self, currency: str, day: str) -> Decimal | None:
        """QuickBooks' own rate for ``currency`` on ``day`` (YYYY-MM-DD), asked once per pass and day."""
        key = (currency.upper(), day)
        if key not in self._rates:
            self._rates[key] = self.qb.exchange_rate(currency, day)
        return self._rates[key]

    def preferences(self) -> dict[str, Any]:
        """The company's preferences, read once per pass."""
        if self._preferences is None:
            self._preferences = self.qb.preferences() or {}
        return self._preferences

    def allow_shipping(self) -> bool:
        """Whether sales forms show shipping (ship date, tracking, ship method) in this company."""
        return bool((self.preferences().get("SalesFormsPrefs") or {}).get("AllowShipping", True))
