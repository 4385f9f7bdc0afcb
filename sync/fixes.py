"""What to do about a failure, keyed by its error code: a small pure table (no I/O) the failures page,
the run page and the order page read to suggest the fix and where it is made.

``where`` names the place, never a URL (the console turns it into a link): ``mapping`` (the merchant's
mapping rules), ``connections`` (reconnect), or None (the fix is outside the hub: in the store or in
QuickBooks itself)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fix:
    cause: str        # the failure in a support agent's words (a group's title)
    action: str       # what to do, then re-run
    where: str | None  # "mapping", "connections" or None

    def with_platform(self, platform: str | None) -> Fix:
        name = PLATFORM_NAMES.get(platform or "", "the platform")
        return Fix(self.cause.format(platform=name), self.action.format(platform=name), self.where)


PLATFORM_NAMES = {"shopify": "Shopify", "woocommerce": "WooCommerce", "quickbooks": "QuickBooks",
                  "hubspot": "HubSpot"}

_SKU = Fix("A SKU on the order has no QuickBooks item",
           "Map the SKU to a QuickBooks item in the mapping rules (items), or create the item in QuickBooks, "
           "then re-run", "mapping")
_TAX = Fix("A tax rate on the order has no QuickBooks tax code",
           "Add the rate to the mapping rule tax.codes (or set tax.exempt_code), then re-run", "mapping")
_RECONNECT = Fix("{platform} no longer accepts the hub's access",
                 "Ask the merchant to reconnect {platform} on the connections page, then resume", "connections")

# by the run's error code: a mapping rule, or ``platform:code`` (looked up as ``*:code`` for any platform)
FIXES: dict[str, Fix] = {
    "items": _SKU,
    "items.when_missing": _SKU,
    "items.fallback_item": Fix("The fallback item named in the mapping rules does not exist in QuickBooks",
                               "Create that item in QuickBooks or name an existing one in items.fallback_item, "
                               "then re-run", "mapping"),
    "tax.codes": _TAX,
    "tax.exempt_code": _TAX,
    "shipping.item": Fix("The mapping rules name no QuickBooks item for shipping",
                         "Set shipping.item in the mapping rules to a QuickBooks item, then re-run", "mapping"),
    "gift_cards.item": Fix("The mapping rules name no QuickBooks item for gift cards",
                           "Set gift_cards.item in the mapping rules, then re-run", "mapping"),
    "refunds.item": Fix("The mapping rules name no QuickBooks item for refunds",
                        "Set refunds.item in the mapping rules, then re-run", "mapping"),
    "currency.multi_currency": Fix(
        "The order is in a currency other than the QuickBooks home currency",
        "Enable multi-currency in QuickBooks (Settings → Account and settings → Advanced → Currency), or set "
        "the mapping rule currency.multi_currency to hold such orders, then re-run", "mapping"),
    "currency.exchange_rate": Fix("The order has no usable exchange rate",
                                  "Check the mapping rule currency.exchange_rate, then re-run", "mapping"),
    "discounts.mode": Fix("The order's discounts cannot be written as the mapping rules say",
                          "Change discounts.mode in the mapping rules, then re-run", "mapping"),
    "invoice.doc_number": Fix("The invoice number the mapping rules make is not accepted by QuickBooks",
                              "Shorten the template invoice.doc_number in the mapping rules, then re-run",
                              "mapping"),
    "invoice.total": Fix("The invoice would not equal the order to the cent",
                         "Check the discount and tax rules against the order, then re-run", "mapping"),
    "*:total_mismatch": Fix("The invoice would not equal the order to the cent",
                            "Check the discount and tax rules against the order, then re-run", "mapping"),
    "*:no_refresh": _RECONNECT,
    "*:invalid_grant": _RECONNECT,
    "*:no_connection": Fix("The merchant has no {platform} connection",
                           "Connect {platform} on the connections page, then re-run", "connections"),
    "*:deleted": Fix("The order was deleted from the store after it was invoiced",
                     "Void or keep the QuickBooks invoice by hand, then skip the order with the reason", None),
    "*:paid_invoice": Fix("QuickBooks refuses to change an invoice that is already paid",
                          "Correct the invoice in QuickBooks by hand, then skip the order with the reason", None),
}


def fix_for(error_kind: str | None, error_code: str | None) -> Fix | None:
    """The known fix of a failure, or None. A failure of kind ``auth`` always asks for a reconnect; a
    mapping failure on a rule not in the table points to the mapping rules."""
    platform, sep, own = (error_code or "").partition(":")
    if error_code in FIXES:
        return FIXES[error_code]
    if sep and f"*:{own}" in FIXES:
        return FIXES[f"*:{own}"].with_platform(platform)
    if error_kind == "auth":
        return _RECONNECT.with_platform(platform or None)
    if error_kind == "internal":
        return Fix("The hub failed unexpectedly", "Ask a developer to look at the worker's log for this run; "
                   "re-run once it is fixed", None)
    if error_kind == "mapping" and error_code and not sep and not error_code.startswith(("order", "webhook")):
        section = error_code.split(".")[0]
        if section in ("items", "tax", "shipping", "gift_cards", "refunds", "currency", "discounts", "invoice",
                       "tips", "fees", "payments", "payouts", "customers"):
            return Fix(f"The mapping rule {error_code} does not fit this order",
                       f"Check {error_code} in the mapping rules, then re-run", "mapping")
    if error_kind == "mapping" and error_code and error_code.startswith("order"):
        return Fix("The store sent order data the hub cannot read",
                   "Correct the order in the store (the reason names the field), then re-run", None)
    return None
