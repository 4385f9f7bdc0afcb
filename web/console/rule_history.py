"""A merchant's mapping-rule history: every saved version with its author and how it was saved, the diff
between two versions (``difflib``), and rollback to an earlier version, which saves it again as a new
version (checked like any save, audited as ``rules.rolled_back``)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from hub.mapping_rules import diff_lines, rule_set, version_of, versions
from mappings.inputs import parse_optional_id
from web.console.blueprint import bp
from web.console.books import merchant_or_404, save_rules
from web.console.security import hub


@bp.get("/mapping/<int:merchant_id>/versions")
def rule_versions(merchant_id: int) -> str:
    merchant = merchant_or_404(merchant_id)
    with hub().session() as s:
        rows = [{"version": v.version, "author": v.author, "source": v.source, "note": v.note, "at": v.created_at}
                for v in versions(s, merchant_id)]
        row = rule_set(s, merchant_id)
    return render_template("console/rule_versions.html", merchant=merchant, versions=rows,
                           current=row.version if row else 0)


@bp.get("/mapping/<int:merchant_id>/versions/<int:version>")
def rule_version(merchant_id: int, version: int) -> str:
    """What ``version`` changed: the diff from ``?against=`` (default: the version before it)."""
    merchant = merchant_or_404(merchant_id)
    against = parse_optional_id(request.args.get("against"), name="against")  # InvalidInput: a 400
    with hub().session() as s:
        new = version_of(s, merchant_id, version)
        if new is None:
            abort(404)
        base_number = against if against is not None else version - 1
        old = version_of(s, merchant_id, base_number) if base_number > 0 else None
        if against is not None and old is None:
            abort(404)
        lines = diff_lines(old, new)
        row = rule_set(s, merchant_id)
        numbers = [v.version for v in versions(s, merchant_id)]
        info = {"version": new.version, "author": new.author, "source": new.source, "note": new.note,
                "at": new.created_at}
    return render_template("console/rule_version.html", merchant=merchant, info=info,
                           against=old.version if old is not None else None, lines=lines, numbers=numbers,
                           current=row.version if row else 0)


@bp.post("/mapping/<int:merchant_id>/versions/<int:version>/rollback")
def rule_rollback(merchant_id: int, version: int) -> Response:
    """Make ``version``'s rules the merchant's rules again, as a new version."""
    merchant_or_404(merchant_id)
    with hub().session() as s:
        old = version_of(s, merchant_id, version)
        if old is None:
            abort(404)
        overrides = dict(old.overrides or {})
    errors = save_rules(merchant_id, overrides, source="rollback", note=f"rollback to version {version}",
                        action="rules.rolled_back", detail={"to_version": version})
    if errors:
        flash(f"Version {version} cannot be restored: " + "; ".join(f"{f}: {r}" for f, r in errors), "error")
        return redirect(url_for("console.rule_versions", merchant_id=merchant_id))
    return redirect(url_for("console.mapping_page", merchant_id=merchant_id))
