"""The merchants' connections (platform, account, status and why; never a secret), connecting without
dead ends, disconnecting, and the Resume action for runs that waited while a connection needed reconnecting.

Per merchant and platform the page offers exactly one next step: **Connect** when nothing is connected and
the hub's app for that platform is configured (WooCommerce needs none: its key exchange), **Reconnect** when
it is connected, and a plain sentence when the app is not configured (support also reads which settings the
operator must set). **Resume** appears only once a reconnected connection is active with runs still waiting.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from hub import audit
from hub.models import Connection, Merchant
from hub.storefronts import ConnectError, disconnect
from mappings.inputs import InvalidInput, parse_optional_id
from web.console.actions import ActionRefused, resume_connection, waiting_for_reconnect
from web.console.blueprint import bp
from web.console.run_list import merchant_choices
from web.console.security import hub
from web.console.tasks import TITLES as TASK_TITLES
from web.console.tasks import recent_tasks
from web.woocommerce_auth import LinkError, create_link

LINK_LIFETIME = 24 * 3600   # a WooCommerce connect link from the console: one day, once


def connection_rows(s: Session, scope: int | None, *, merchant_id: int | None = None,
                    platform: str | None = None) -> list[dict[str, Any]]:
    """The connections the user may see, as plain dicts (only columns that hold no secret are read)."""
    q = (select(Connection.id, Connection.merchant_id, Merchant.name, Connection.platform, Connection.account,
                Connection.status, Connection.status_reason, Connection.updated_at)
         .join(Merchant, Merchant.id == Connection.merchant_id).order_by(Connection.merchant_id, Connection.id))
    if scope is not None:
        q = q.where(Connection.merchant_id == scope)
    if merchant_id is not None:
        q = q.where(Connection.merchant_id == merchant_id)
    if platform:
        q = q.where(Connection.platform == platform)
    rows = []
    for cid, mid, name, plat, account, status, reason, updated in s.execute(q):
        waiting = len(waiting_for_reconnect(s, mid, plat)) if status != "disconnected" else 0
        rows.append({"id": cid, "merchant": mid, "merchant_name": name, "platform": plat, "account": account,
                     "status": status, "reason": reason, "updated_at": updated, "waiting": waiting,
                     "resumable": status == "active" and waiting > 0})
    return rows


# what a platform's connect flow needs the operator to configure (hub.settings reads these variables)
APP_SETTINGS = {
    "shopify": (("shopify_api_key", "shopify_api_secret"), "SHOPIFY_API_KEY and SHOPIFY_API_SECRET"),
    "quickbooks": (("quickbooks_client_id", "quickbooks_client_secret"),
                   "QUICKBOOKS_CLIENT_ID and QUICKBOOKS_CLIENT_SECRET"),
    "hubspot": (("hubspot_client_id", "hubspot_client_secret"), "HUBSPOT_CLIENT_ID and HUBSPOT_CLIENT_SECRET"),
    "woocommerce": ((), ""),
}
PLATFORM_NAMES = {"shopify": "Shopify", "woocommerce": "WooCommerce", "quickbooks": "QuickBooks Online",
                  "hubspot": "HubSpot"}
STORES = ("shopify", "woocommerce")   # a merchant may connect several stores; one books and one CRM account


def configured(platform: str) -> bool:
    settings = hub().settings
    names, _ = APP_SETTINGS[platform]
    return all(getattr(settings, n, None) for n in names) and (platform == "woocommerce"
                                                                or "oauth" in current_app.blueprints)


def platform_panels(rows: list[dict[str, Any]], merchant_id: int) -> list[dict[str, Any]]:
    """One panel per platform for the merchant: what is connected, and the one next step."""
    panels = []
    for platform in ("shopify", "woocommerce", "quickbooks", "hubspot"):
        mine = [r for r in rows if r["merchant"] == merchant_id and r["platform"] == platform
                and r["status"] != "disconnected"]
        panels.append({"platform": platform, "name": PLATFORM_NAMES[platform], "connected": mine,
                       "configured": configured(platform), "settings": APP_SETTINGS[platform][1],
                       "can_connect": configured(platform) and (platform in STORES or not mine)})
    return panels


@bp.get("/connections")
def connections() -> str:
    scope = g.user.scope
    with hub().session() as s:
        rows = connection_rows(s, scope)
        merchants = merchant_choices(s, scope)
    chosen = scope if scope is not None else parse_optional_id(request.args.get("merchant"), name="merchant")
    if chosen is None and len(merchants) == 1:
        chosen = merchants[0][0]
    if chosen is not None and chosen not in dict(merchants):
        abort(404)
    panels = platform_panels(rows, chosen) if chosen is not None else []
    tasks = recent_tasks(chosen) if chosen is not None and g.user.role == "admin" else []
    return render_template("console/connections.html", connections=rows, panels=panels, merchants=merchants,
                           chosen=chosen, chosen_name=dict(merchants).get(chosen), tasks=tasks,
                           task_titles=TASK_TITLES)


@bp.post("/connections/woocommerce")
def connection_woocommerce() -> Response | str:
    """Start WooCommerce's key exchange for a store: the merchant is sent to its store to approve; support
    gets the one-time link to send to the store's owner."""
    scope = g.user.scope
    try:
        merchant_id = scope if scope is not None else parse_optional_id(request.form.get("merchant"),
                                                                        name="merchant")
    except InvalidInput as exc:
        abort(400, str(exc))
    if merchant_id is None or not g.user.may_see(merchant_id):
        abort(404 if merchant_id is not None else 400, "say which merchant the store is for")
    try:
        link = create_link(hub(), str(merchant_id), request.form.get("url") or "", expires_in=LINK_LIFETIME)
    except LinkError as exc:
        flash(f"Not connected: {exc}", "error")
        return redirect(url_for("console.connections", merchant=merchant_id))
    with hub().session() as s:
        audit.record(s, g.user.email, "connection.woocommerce_link", target_type="merchant",
                     target_id=merchant_id, merchant_id=merchant_id,
                     detail={"store_url": (request.form.get("url") or "")[:255]})
    if scope is not None:
        return redirect(link)
    return render_template("console/connect_link.html", link=link, minutes=LINK_LIFETIME // 60,
                           merchant_id=merchant_id)


@bp.route("/connections/<int:connection_id>/disconnect", methods=["GET", "POST"])
def connection_disconnect(connection_id: int) -> Response | str:
    """Asks first (GET: the confirmation page), then disconnects (POST): the store's webhooks are removed and
    QuickBooks/HubSpot grants revoked; history and bindings stay, so reconnecting creates no duplicates."""
    with hub().session() as s:
        row = next((r for r in connection_rows(s, g.user.scope) if r["id"] == connection_id), None)
    if row is None:
        abort(404)
    if request.method == "GET":
        return render_template("console/disconnect.html", c=row, name=PLATFORM_NAMES.get(row["platform"]))
    try:
        disconnect(hub(), connection_id)
    except ConnectError as exc:
        flash(f"Not disconnected: {exc}", "error")
    else:
        with hub().session() as s:
            audit.record(s, g.user.email, "connection.disconnect", target_type="connection",
                         target_id=connection_id, merchant_id=row["merchant"],
                         detail={"platform": row["platform"], "account": row["account"]})
        flash(f"Disconnected {PLATFORM_NAMES.get(row['platform'])} {row['account']}. Its history stays; "
              "connect it again at any time.", "ok")
    return redirect(url_for("console.connections", merchant=row["merchant"]))


@bp.post("/connections/<int:connection_id>/resume")
def connection_resume(connection_id: int) -> Response:
    with hub().session() as s:
        merchant_id = s.scalar(select(Connection.merchant_id).where(Connection.id == connection_id))
    if merchant_id is None or not g.user.may_see(merchant_id):
        abort(404)
    try:
        changed = resume_connection(hub(), connection_id, g.user.email)
    except ActionRefused as exc:
        flash(f"Not resumed: {exc}.", "error")
    else:
        flash(f"Resumed {len(changed)} run(s) that were waiting for the reconnect." if changed else
              "The connection is active; no run was waiting for it.", "ok")
        if changed and changed.entry_id is not None and not request.form.get("run"):
            return redirect(url_for("console.progress_page", entry_id=changed.entry_id))
    try:  # resumed from a run's page: go back to it
        back_to_run = parse_optional_id(request.form.get("run"), name="run")
    except InvalidInput:
        back_to_run = None
    return redirect(url_for("console.run_page", run_id=back_to_run) if back_to_run
                    else url_for("console.connections"))
