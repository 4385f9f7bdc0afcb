"""Links from the console to the objects a run touched, in each platform's own web app."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Connection
from sync.fixes import Fix

QBO = "https://app.qbo.intuit.com/app"
QBO_SANDBOX = "https://app.sandbox.qbo.intuit.com/app"   # a sandbox company's pages
_QBO_PAGES = {"invoice": "invoice?txnId=", "payment": "recvpayment?txnId=", "customer": "customerdetail?nameId=",
              "refund": "refundreceipt?txnId=", "creditmemo": "creditmemo?txnId=", "deposit": "deposit?txnId="}
_HUBSPOT_RECORDS = {"contact": "0-1", "deal": "0-3"}


def accounts_of(s: Session, merchant_id: int) -> dict[str, str]:
    """The merchant's account per platform (shop domain, store URL, HubSpot portal); never its secrets."""
    rows = s.execute(select(Connection.platform, Connection.account)
                     .where(Connection.merchant_id == merchant_id).order_by(Connection.id))
    return {platform: account for platform, account in rows}


def object_link(platform: str | None, kind: str | None, object_id: str | None,
                accounts: dict[str, str], *, sandbox: bool = False) -> str | None:
    """The address of the object in its platform's app, or None when there is no page for it
    (``sandbox``: the QuickBooks app is the sandbox's)."""
    if not (platform and kind and object_id):
        return None
    oid = quote(str(object_id), safe="")
    if platform == "quickbooks" and kind in _QBO_PAGES:
        return f"{QBO_SANDBOX if sandbox else QBO}/{_QBO_PAGES[kind]}{oid}"
    if platform == "shopify" and kind in ("order", "customer") and accounts.get("shopify"):
        shop = accounts["shopify"].removesuffix(".myshopify.com")
        return f"https://admin.shopify.com/store/{quote(shop, safe='')}/{kind}s/{oid}"
    if platform == "woocommerce" and kind == "order" and accounts.get("woocommerce", "").startswith("http"):
        return f"{accounts['woocommerce'].rstrip('/')}/wp-admin/post.php?post={oid}&action=edit"
    portal = accounts.get("hubspot", "")
    if platform == "hubspot" and kind in _HUBSPOT_RECORDS and portal and not portal.startswith("merchant-"):
        return f"https://app.hubspot.com/contacts/{quote(portal, safe='')}/record/{_HUBSPOT_RECORDS[kind]}/{oid}"
    return None


def fix_view(fix: Fix | None, merchant_id: int | None) -> dict[str, str | None] | None:
    """A known fix ready for a page: the cause, what to do and the link to where it is done."""
    if fix is None:
        return None
    from flask import url_for

    href = None
    if fix.where == "mapping" and merchant_id is not None:
        href = url_for("console.mapping_page", merchant_id=merchant_id)
    elif fix.where == "connections":
        href = url_for("console.connections")
    label = {"mapping": "Open the mapping rules", "connections": "Open the connections"}.get(fix.where or "")
    return {"cause": fix.cause, "action": fix.action, "href": href, "label": label if href else None}
