"""What reaches the books: the preview of an order (what a sync would send, sending nothing) and a
merchant's mapping rules (shown as YAML, checked, and saved only when valid)."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from connectors.errors import ConnectorError
from hub import audit
from hub.mapping_rules import export_yaml, parse_yaml, rule_set, save_overrides
from hub.models import Connection, Merchant
from mappings.inputs import parse_optional_id
from mappings.model import MappingError
from mappings.rules import RulesError, load_rules
from sync.preview import PreviewError, preview_order
from sync.rules_check import check_rules, record_check
from web.console.blueprint import bp
from web.console.formatting import pretty_json
from web.console.run_list import merchant_choices
from web.console.security import hub, require_merchant


def _merchant_or_404(merchant_id: int) -> Merchant:
    require_merchant(merchant_id)
    with hub().session() as s:
        merchant = s.get(Merchant, merchant_id)
    if merchant is None:
        abort(404)
    return merchant


@bp.get("/preview")
def preview() -> str:
    scope = g.user.scope
    named = parse_optional_id(request.args.get("merchant"), name="merchant")  # InvalidInput: a 400
    order_ref = (request.args.get("order") or "").strip()[:100]
    with hub().session() as s:
        merchants = merchant_choices(s, scope)
    merchant_id = scope if named is None else named
    if merchant_id is not None:
        _merchant_or_404(merchant_id)
    data, error = None, None
    if merchant_id is not None and order_ref:
        try:
            data = preview_order(hub(), merchant_id, order_ref).as_dict()
        except (PreviewError, ConnectorError, MappingError) as exc:
            error = f"Cannot preview {order_ref}: {exc}"
    if data:
        for req in data["requests"]:
            req["payload_json"] = pretty_json(req["payload"])
    return render_template("console/preview.html", merchants=merchants, merchant_id=merchant_id,
                           order_ref=order_ref, data=data, error=error)


@bp.get("/mapping")
def mapping_index() -> Response | str:
    if g.user.scope is not None:
        return redirect(url_for("console.mapping_page", merchant_id=g.user.scope))
    with hub().session() as s:
        merchants = merchant_choices(s, None)
    return render_template("console/mapping_index.html", merchants=merchants)


@bp.route("/mapping/<int:merchant_id>", methods=["GET", "POST"])
def mapping_page(merchant_id: int) -> Response | str | tuple[str, int]:
    merchant = _merchant_or_404(merchant_id)
    text, errors = None, []
    if request.method == "POST":
        text = request.form.get("rules", "")
        errors = _save_rules(merchant_id, text)
        if not errors:
            return redirect(url_for("console.mapping_page", merchant_id=merchant_id))
    with hub().session() as s:
        current = export_yaml(s, merchant_id)
        row = rule_set(s, merchant_id)
        problems, checked_at = (row.problems, row.checked_at) if row else (None, None)
        version = row.version if row else 0
    page = render_template("console/mapping.html", merchant=merchant, text=current if text is None else text,
                           errors=errors, problems=problems, checked_at=checked_at, version=version)
    return (page, 400) if errors else page


def _save_rules(merchant_id: int, text: str) -> list[tuple[str, str]]:
    """Validate, check against QuickBooks and save; returns the problems as (field, reason), nothing saved
    when there is any."""
    try:
        overrides = parse_yaml(text)
        rules = load_rules(overrides)
    except RulesError as exc:
        return [(exc.field, exc.reason)]
    with hub().session() as s:
        has_books = s.scalar(select(Connection.id).where(Connection.merchant_id == merchant_id,
                                                         Connection.platform == "quickbooks").limit(1))
    report = check_rules(hub(), merchant_id, rules) if has_books else None
    if report is not None and report.missing:
        return [_field_and_reason(m) for m in report.missing]
    with hub().session() as s:
        try:
            save_overrides(s, merchant_id, overrides, by=g.user.email)
        except RulesError as exc:
            s.rollback()
            return [(exc.field, exc.reason)]
        version = rule_set(s, merchant_id).version  # type: ignore[union-attr] - just saved
        audit.record(s, g.user.email, "rules.saved", target_type="mapping_rules", target_id=merchant_id,
                     merchant_id=merchant_id, detail={"version": version, "notes": report.notes if report else []})
    if report is not None:
        record_check(hub(), merchant_id, report)
        for note in report.notes:
            flash(note, "note")
    flash(f"Mapping rules saved (version {version}).", "ok")
    return []


def _field_and_reason(message: str) -> tuple[str, str]:
    """``"tax.codes.20: QuickBooks has no …"`` → (field, reason)."""
    field, sep, reason = message.partition(": ")
    return (field, reason) if sep else ("QuickBooks", message)
