"""The audit log page: who did what, to which object and when, newest first."""

from __future__ import annotations

import json

from flask import g, render_template, request

from hub import audit
from mappings.inputs import parse_optional_id
from web.console.blueprint import bp
from web.console.security import hub

PAGE = 50


@bp.get("/audit")
def audit_log() -> str:
    before = parse_optional_id(request.args.get("before"), name="before")  # InvalidInput: a 400
    with hub().session() as s:
        rows = audit.entries(s, merchant_id=g.user.scope, before=before, limit=PAGE + 1)
    entries = [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "target_type": e.target_type,
                "target_id": e.target_id, "merchant_id": e.merchant_id,
                "detail": json.dumps(e.detail, ensure_ascii=False, sort_keys=True) if e.detail else ""}
               for e in rows[:PAGE]]
    cursor = entries[-1]["id"] if len(rows) > PAGE else None
    return render_template("console/audit.html", entries=entries, cursor=cursor, before=before)
