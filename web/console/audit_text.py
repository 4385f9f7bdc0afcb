"""The audit log in plain sentences: one per action key (``user.role_changed`` → "Changed the role of
ada@example.com from support to admin"), filled from the entry's detail; an action without a sentence
reads as its key with the dots and underscores made words."""

from __future__ import annotations

import string
from typing import Any

# action key → (its name in the action filter, the sentence)
ACTIONS: dict[str, tuple[str, str]] = {
    "login.succeeded": ("Sign-ins", "Signed in"),
    "login.failed": ("Failed sign-ins", "Failed to sign in"),
    "run.rerun": ("Run re-run", "Re-ran a sync run"),
    "run.skip": ("Run skipped", "Skipped a sync run: {reason}"),
    "runs.rerun_matching": ("Runs re-run by filter", "Re-ran {requeued} sync runs matching a filter"),
    "failures.rerun_group": ("Failure group re-run", "Re-ran {requeued} runs failing with: {cause}"),
    "connection.connected": ("Connection connected", "Connected the {platform} account {account}"),
    "connection.resume": ("Connection resumed", "Resumed {requeued} runs waiting for the {platform} connection"),
    "connection.resume_refused": ("Connection resume refused",
                                  "Could not resume the {platform} connection: it is {status}"),
    "merchant.created": ("Merchant created", "Created a merchant ({via})"),
    "payout.retry": ("Payout retried", "Retried posting a payout ({outcome})"),
    "rules.saved": ("Mapping rules saved", "Saved version {version} of the mapping rules"),
    "rules.rolled_back": ("Mapping rules restored",
                          "Restored version {to_version} of the mapping rules (saved as version {version})"),
    "rules.rerun_failed": ("Orders failing on a rule re-run", "Re-ran {requeued} orders that failed on a mapping rule"),
    "user.created": ("User created", "Created the {role} user {email}"),
    "user.invited": ("User invited", "Invited {email} as {role}"),
    "user.disabled": ("User disabled", "Disabled the user {email}"),
    "user.enabled": ("User enabled", "Enabled the user {email}"),
    "user.role_changed": ("Role changed", "Changed the role of {email} from {from} to {to}"),
    "user.password_changed": ("Own password changed", "Changed their own password"),
    "user.password_reset": ("Password reset", "Reset the password of {email} (a one-time link sets a new one)"),
    "user.password_set": ("Password set with a link", "Set a password with a one-time link"),
    "token.created": ("API token created", "Created the API token {name}"),
    "token.revoked": ("API token revoked", "Revoked the API token {name}"),
    "keys.rotated": ("Encryption key rotated", "Re-encrypted {rotated} secrets with the current key"),
    "webhook.unknown_realm": ("Notification for an unknown company",
                              "Received a QuickBooks notification for a company no merchant connected"),
    "shopify.app_uninstalled": ("App uninstalled", "The app was uninstalled from the shop {shop}"),
    "shopify.customer_data_request": ("Customer data requested", "Shopify asked for a customer's data ({shop})"),
    "shopify.customer_redacted": ("Customer erased", "Erased a customer's data at Shopify's request ({shop})"),
    "shopify.shop_redacted": ("Shop erased", "Erased the shop's data at Shopify's request ({shop})"),
}
# actions named by a prefix and a part of their own (``dunning.<stage>``)
PREFIXES: dict[str, tuple[str, str]] = {
    "dunning.": ("Dunning stage reached",
                 "Dunning stage {stage} for invoice {doc_number} ({days_past_due} days past due)"),
}


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "…"


def sentence(action: str, detail: dict[str, Any] | None) -> str:
    """The plain sentence for an audit entry."""
    named = ACTIONS.get(action) or next((n for p, n in PREFIXES.items() if action.startswith(p)), None)
    if named is None:
        return action.replace(".", ": ", 1).replace("_", " ").capitalize()
    values = _Blank({k: _text(v) for k, v in (detail or {}).items()})
    return string.Formatter().vformat(named[1], (), values)


def action_choices() -> list[tuple[str, str]]:
    """(key, name) of every action for the action filter, by name; a prefix's key ends with a dot."""
    every = [(key, label) for key, (label, _) in ACTIONS.items()] + [(p, label) for p, (label, _) in PREFIXES.items()]
    return sorted(every, key=lambda kv: kv[1])


def _text(value: Any) -> str:
    if value is None:
        return "…"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value[:5])) + ("…" if len(value) > 5 else "")
    return str(value)[:200]
