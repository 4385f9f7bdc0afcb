"""The audit log page: who did what, to which object and when, newest first, in plain sentences
(``web.console.audit_text``), filtered by merchant, actor, action and dates, each entry linked to the run,
order, rules, user or connection it concerns; keyset pages (``before`` = the last id shown)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from flask import g, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import audit
from hub.models import AuditEntry, SyncRun
from hub.order_models import StoreOrder
from mappings.inputs import InvalidInput, parse_date, parse_optional_id
from web.console.audit_text import action_choices, sentence
from web.console.blueprint import bp
from web.console.run_list import merchant_choices
from web.console.security import hub

PAGE = 50
MAX_RUN_LINKS = 5


@bp.get("/audit")
def audit_log() -> str:
    args = request.args
    before = parse_optional_id(args.get("before"), name="before")  # InvalidInput: a 400
    scope = g.user.scope
    merchant = scope if scope is not None else parse_optional_id(args.get("merchant"), name="merchant")
    actor = (args.get("actor") or "").strip()[:254] or None
    actions = dict(action_choices())
    action = args.get("action") or None
    if action is not None and action not in actions:
        raise InvalidInput("action", "is not one of the actions listed")
    since, until = _day("from"), _day("to")
    with hub().session() as s:
        rows = audit.entries(s, merchant_id=merchant, before=before, limit=PAGE + 1, actor=actor, action=action,
                             since=since, until=until + timedelta(days=1) if until else None)
        shown = rows[:PAGE]
        links = _links(s, shown)
        merchants = merchant_choices(s, scope)
    names = dict(merchants)
    entries = [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "text": sentence(e.action, e.detail),
                "merchant_id": e.merchant_id, "merchant": names.get(e.merchant_id) if e.merchant_id else None,
                "links": links.get(e.id, []), "detail": [(k, _shown(v)) for k, v in sorted((e.detail or {}).items())]}
               for e in shown]
    cursor = entries[-1]["id"] if len(rows) > PAGE else None
    filters = {k: v for k, v in {"merchant": args.get("merchant") if scope is None else None, "actor": actor,
                                 "action": action, "from": args.get("from"), "to": args.get("to")}.items() if v}
    return render_template("console/audit.html", entries=entries, cursor=cursor, before=before, filters=filters,
                           merchants=merchants, actions=sorted(actions.items(), key=lambda kv: kv[1]),
                           merchant=merchant, actor=actor or "", action=action or "",
                           since=args.get("from", "") if since else "", until=args.get("to", "") if until else "")


def _day(name: str) -> datetime | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    day = parse_date(raw, name=name)    # InvalidInput: a 400 naming the field
    return datetime(day.year, day.month, day.day)


def _links(s: Session, entries: list[AuditEntry]) -> dict[int, list[tuple[str, str]]]:
    """Entry id → (label, URL) of what it concerns: its run (and that run's order), its order, the
    mapping rules and the version it saved, a user, a connection, a failure group, the runs it re-ran."""
    run_ids: set[int] = set()
    order_ids: set[int] = set()
    for e in entries:
        if e.target_type == "run" and (e.target_id or "").isdigit():
            run_ids.add(int(e.target_id))
        if e.target_type == "store_order" and (e.target_id or "").isdigit():
            order_ids.add(int(e.target_id))
        run_ids.update(r for r in _runs_of(e)[:MAX_RUN_LINKS])
    runs = {r.id: r for r in s.scalars(select(SyncRun).where(SyncRun.id.in_(run_ids)))} if run_ids else {}
    orders = {o.id: o for o in s.scalars(select(StoreOrder).where(StoreOrder.id.in_(order_ids)))} if order_ids else {}
    out: dict[int, list[tuple[str, str]]] = {}
    for e in entries:
        found: list[tuple[str, str]] = []
        target = e.target_id or ""
        if e.target_type == "run" and target.isdigit():
            found.append((f"run {target}", url_for("console.run_page", run_id=int(target))))
            run = runs.get(int(target))
            if run is not None and run.kind in ("order", "refund"):
                found.append(_order_link(run.merchant_id, run.source_platform, run.source_id, run.source_name))
        elif e.target_type == "store_order" and target.isdigit() and int(target) in orders:
            o = orders[int(target)]
            found.append(_order_link(o.merchant_id, o.platform, o.order_id, o.name))
        elif e.target_type == "mapping_rules" and target.isdigit():
            found.append(("mapping rules", url_for("console.mapping_page", merchant_id=int(target))))
            version = (e.detail or {}).get("version")
            if isinstance(version, int) and e.action in ("rules.saved", "rules.rolled_back"):
                found.append((f"version {version}", url_for("console.rule_version", merchant_id=int(target),
                                                            version=version)))
        elif e.target_type == "user" and g.user.role == "admin":
            found.append(((e.detail or {}).get("email") or f"user {target}", url_for("console.staff")))
        elif e.target_type == "connection":
            found.append((f"connection {target}", url_for("console.connections")))
        elif e.target_type == "failure_group":
            found.append(("failures", url_for("console.failures")))
        for run_id in _runs_of(e)[:MAX_RUN_LINKS]:
            if run_id in runs and (e.target_type != "run" or str(run_id) != target):
                found.append((f"run {run_id}", url_for("console.run_page", run_id=run_id)))
        if not found and e.target_type:   # nothing to link to: name it (an address, a QuickBooks company …)
            found.append((f"{e.target_type.replace('_', ' ')} {target}".strip(), ""))
        out[e.id] = found
    return out


def _shown(value: Any) -> str:
    """A detail's value as text: scalars as they are, lists and mappings as JSON (never a Python repr)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _runs_of(entry: AuditEntry) -> list[int]:
    runs: Any = (entry.detail or {}).get("runs")
    return [r for r in runs if isinstance(r, int)] if isinstance(runs, list) else []


def _order_link(merchant_id: int, platform: str, order_id: str, name: str | None) -> tuple[str, str]:
    return (f"order {name or order_id}", url_for("console.order_page", merchant_id=merchant_id, platform=platform,
                                                 order_id=order_id))
