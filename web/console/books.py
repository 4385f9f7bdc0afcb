"""What reaches the books: the preview of an order (what a sync would send, sending nothing) and a
merchant's mapping rules: shown as YAML with the defaults' comments, with a SKU → QuickBooks item table
whose picker lists the company's items; checked and saved (a new version, audited) only when valid; then
the orders failing on a mapping rule can be re-run in one go. History, diffs and rollback:
``web.console.rule_history``."""

from __future__ import annotations

import copy
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

import config
from connectors.errors import ConnectorError
from hub import audit
from hub.mapping_rules import export_yaml, parse_yaml, rule_set, save_overrides, versions
from hub.models import Connection, MappingRuleSet, Merchant
from mappings.inputs import parse_optional_id
from mappings.model import MappingError
from mappings.rules import RulesError, load_rules
from sync.preview import PreviewError, preview_order
from sync.qb_items import item_choices
from sync.rule_failures import failing_counts, runs_failing_on_rules
from sync.rules_check import check_rules, record_check
from web.console.actions import rerun
from web.console.blueprint import bp
from web.console.formatting import pretty_json
from web.console.run_list import merchant_choices
from web.console.security import hub, require_merchant


def merchant_or_404(merchant_id: int) -> Merchant:
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
        merchant_or_404(merchant_id)
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
        ids = [mid for mid, _ in merchants]
        saved = {r.merchant_id: r for r in s.scalars(select(MappingRuleSet).where(MappingRuleSet.merchant_id.in_(ids)))}
        failing = failing_counts(s, ids)
        rows = [{"id": mid, "name": name, "version": saved[mid].version if mid in saved else 0,
                 "by": saved[mid].updated_by if mid in saved else None,
                 "at": saved[mid].updated_at if mid in saved else None, "failing": failing.get(mid, 0)}
                for mid, name in merchants]
    return render_template("console/mapping_index.html", merchants=rows)


BLANK_ROWS = 3
MAX_ROWS = 2000


@bp.route("/mapping/<int:merchant_id>", methods=["GET", "POST"])
def mapping_page(merchant_id: int) -> Response | str | tuple[str, int]:
    merchant = merchant_or_404(merchant_id)
    if request.method == "GET":
        return _page(merchant)
    text = request.form.get("rules", "")
    try:
        errors = save_rules(merchant_id, parse_yaml(text))
    except RulesError as exc:
        errors = [(exc.field, exc.reason)]
    if not errors:
        return redirect(url_for("console.mapping_page", merchant_id=merchant_id))
    return _page(merchant, text=text, errors=errors), 400


@bp.post("/mapping/<int:merchant_id>/items")
def mapping_items(merchant_id: int) -> Response | tuple[str, int]:
    """Save the SKU → QuickBooks item table as ``items.map`` (rows left blank or ticked *remove* drop out)."""
    merchant = merchant_or_404(merchant_id)
    skus, items = request.form.getlist("sku")[:MAX_ROWS], request.form.getlist("item")[:MAX_ROWS]
    removed = set(request.form.getlist("remove"))
    item_map: dict[str, str] = {}
    for index, (sku, item) in enumerate(zip(skus, items, strict=False)):
        sku, item = sku.strip(), item.strip()
        if sku and item and str(index) not in removed:
            item_map[sku] = item
    with hub().session() as s:
        row = rule_set(s, merchant_id)
        overrides: dict[str, Any] = copy.deepcopy(row.overrides) if row is not None else {}
    items_section = overrides.get("items") if isinstance(overrides.get("items"), dict) else {}
    overrides["items"] = {**items_section, "map": item_map}
    errors = save_rules(merchant_id, overrides)
    if not errors:
        return redirect(url_for("console.mapping_page", merchant_id=merchant_id) + "#sku-items")
    return _page(merchant, errors=errors, rows=list(zip(skus, items, strict=False))), 400


@bp.post("/mapping/<int:merchant_id>/rerun")
def mapping_rerun(merchant_id: int) -> Response:
    """Re-run every order of the merchant whose latest run failed on a mapping rule."""
    merchant_or_404(merchant_id)
    with hub().session() as s:
        ids = runs_failing_on_rules(s, merchant_id)
        row = rule_set(s, merchant_id)
        version = row.version if row else 0
    if not ids:
        flash("No order is failing on a mapping rule any more.", "note")
        return redirect(url_for("console.mapping_page", merchant_id=merchant_id))
    changed = rerun(hub(), ids, g.user.email, action="rules.rerun_failed", target_type="mapping_rules",
                    target_id=str(merchant_id), detail={"version": version})
    flash(f"Re-running {len(changed)} order{'s' if len(changed) != 1 else ''} that failed on a mapping rule.", "ok")
    if changed.entry_id is not None:   # follow them to the end
        return redirect(url_for("console.progress_page", entry_id=changed.entry_id))
    return redirect(url_for("console.mapping_page", merchant_id=merchant_id))


def _page(merchant: Merchant, *, text: str | None = None, errors: list[tuple[str, str]] | None = None,
          rows: list[tuple[str, str]] | None = None) -> str:
    with hub().session() as s:
        current = export_yaml(s, merchant.id)
        row = rule_set(s, merchant.id)
        problems, checked_at = (row.problems, row.checked_at) if row else (None, None)
        version = row.version if row else 0
        history = [{"version": v.version, "author": v.author, "source": v.source, "note": v.note,
                    "at": v.created_at} for v in versions(s, merchant.id)[:5]]
        failing = len(runs_failing_on_rules(s, merchant.id))
        effective = load_rules(row.overrides if row else None)
    if rows is None:
        rows = sorted(effective.items.map.items(), key=lambda kv: kv[0].casefold())
    rows = list(rows) + [("", "")] * BLANK_ROWS
    comments = config.default_rule_comments()
    return render_template("console/mapping.html", merchant=merchant, text=current if text is None else text,
                           errors=errors or [], problems=problems, checked_at=checked_at, version=version,
                           rows=rows, items=item_choices(hub(), merchant.id), history=history, failing=failing,
                           comments=comments, settings=_settings(effective.to_dict(), comments))


def _settings(rules: dict[str, Any], comments: dict[str, str]) -> list[dict[str, str]]:
    """Every setting with its value now and the defaults' comment on it, for the help table."""
    out = []
    for section, values in rules.items():
        for key, value in (values.items() if isinstance(values, dict) else [("", values)]):
            path = f"{section}.{key}" if key else section
            out.append({"path": path, "value": _short(value), "help": comments.get(path, "")})
    return out


def _short(value: Any) -> str:
    """A setting's value as the YAML writes it (``true``, ``null`` → "none"), a list or mapping by its size."""
    if isinstance(value, dict | list | tuple):
        text = f"{len(value)} entr{'y' if len(value) == 1 else 'ies'}" if value else "empty"
    else:
        text = "none" if value is None else "true" if value is True else "false" if value is False else str(value)
    return text if len(text) <= 60 else text[:57] + "…"


def save_rules(merchant_id: int, overrides: dict[str, Any], *, source: str = "console", note: str | None = None,
               action: str = "rules.saved", detail: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Validate, check against QuickBooks and save as a new version (audited); returns the problems as
    (field, reason), nothing saved when there is any."""
    try:
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
            save_overrides(s, merchant_id, overrides, by=g.user.email, source=source, note=note)
        except RulesError as exc:
            s.rollback()
            return [(exc.field, exc.reason)]
        version = rule_set(s, merchant_id).version  # type: ignore[union-attr] - just saved
        failing = len(runs_failing_on_rules(s, merchant_id))
        audit.record(s, g.user.email, action, target_type="mapping_rules", target_id=merchant_id,
                     merchant_id=merchant_id, detail={**(detail or {}), "version": version,
                                                      "notes": report.notes if report else []})
        s.commit()
    if report is not None:
        record_check(hub(), merchant_id, report)
        for note_text in report.notes:
            flash(note_text, "note")
    flash(f"Mapping rules saved (version {version})." + (
        f" {failing} order{'s are' if failing != 1 else ' is'} failing on a mapping rule: re-run "
        f"{'them' if failing != 1 else 'it'} below." if failing else ""), "ok")
    return []


def _field_and_reason(message: str) -> tuple[str, str]:
    """``"tax.codes.20: QuickBooks has no …"`` → (field, reason)."""
    field, sep, reason = message.partition(": ")
    return (field, reason) if sep else ("QuickBooks", message)
