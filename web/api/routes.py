"""The API's routes: sync runs (list, one, re-run, skip, re-run by filter), failures by cause (list,
re-run a group) and resuming a reconnected connection. Every action is audited as the token's user."""

from __future__ import annotations

import json
from typing import Any

from flask import jsonify, request
from werkzeug.wrappers import Response

from hub.models import Connection, SyncRun
from hub.redaction import connection_secrets, scrub
from mappings.inputs import ROW_ID_MAX, InvalidInput, clean_json, parse_optional_id
from sync.failures import FailureGroup, failure_groups, group_run_ids
from sync.status import run_summary
from web.api.blueprint import ApiError, bp, hub, user
from web.api.service import (
    DEFAULT_PAGE,
    MAX_PAGE,
    BadFilter,
    OutOfScope,
    RunQuery,
    failed_run_ids,
    find_runs,
    retry_runs,
    run_view,
    status_counts,
    visible_run,
)
from web.console.actions import ActionRefused, resume_connection, skip_run

VIA = {"via": "api"}


def _query(args: Any) -> RunQuery:
    try:
        return RunQuery.parse(args).scoped(user().scope)
    except BadFilter as exc:
        raise ApiError(400, str(exc)) from exc
    except OutOfScope as exc:
        raise ApiError(403, str(exc)) from exc


def _int_arg(name: str, default: int | None, low: int, high: int = ROW_ID_MAX) -> int | None:
    try:
        value = parse_optional_id(request.args.get(name), name=name, low=low, high=high)
    except InvalidInput as exc:
        raise ApiError(400, str(exc)) from None
    return default if value is None else value


def _body() -> dict[str, Any]:
    data = request.get_data()
    if not data:
        return {}
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return clean_json(body)


def _summary(run_id: int) -> dict[str, Any]:
    with hub().session() as s:
        run = s.get(SyncRun, run_id)
        assert run is not None
        return run_summary(run, run.merchant.name)


def _visible(run_id: int) -> None:
    with hub().session() as s:
        if visible_run(s, run_id, user().scope) is None:
            raise ApiError(404, f"no sync run {run_id}")


@bp.get("/runs")
def list_runs() -> Response:
    query = _query(request.args)
    limit = _int_arg("limit", DEFAULT_PAGE, 1, MAX_PAGE)
    before = _int_arg("before", None, 1)
    with hub().session() as s:
        page, cursor = find_runs(s, query, before=before, limit=limit)
        counts = status_counts(s, query)
    return jsonify(runs=page, next=cursor, counts=counts)


@bp.get("/runs/<int:run_id>")
def get_run(run_id: int) -> Response:
    with hub().session() as s:
        detail = run_view(s, run_id, user().scope, box=hub().secrets)
    if detail is None:
        raise ApiError(404, f"no sync run {run_id}")
    return jsonify(detail)


@bp.post("/runs/<int:run_id>/retry")
def retry_run(run_id: int) -> tuple[Response, int]:
    _visible(run_id)
    changed = retry_runs(hub(), [run_id], user().email, detail=VIA)
    if not changed:
        raise ApiError(409, f"sync run {run_id} is being worked on right now; it was not re-queued")
    return jsonify(requeued=changed, run=_summary(run_id)), 202


@bp.post("/runs/<int:run_id>/skip")
def skip(run_id: int) -> Response:
    _visible(run_id)
    reason = _body().get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ApiError(400, "say why the run is skipped: {\"reason\": \"...\"}")
    try:
        skip_run(hub(), run_id, user().email, reason[:1000])
    except ActionRefused as exc:
        raise ApiError(409, str(exc)) from exc
    return jsonify(run=_summary(run_id))


@bp.post("/runs/retry")
def retry_matching() -> tuple[Response, int]:
    body = _body()
    if body.get("status") not in (None, "", "failed"):
        raise ApiError(400, "only failed runs are re-run by filter: leave status out (or say \"failed\")")
    query = _query(body)
    with hub().session() as s:
        ids = failed_run_ids(s, query)
    changed = retry_runs(hub(), ids, user().email, action="runs.rerun_matching", target_type="runs",
                         detail={**VIA, "filter": {k: str(v) for k, v in vars(query).items() if v is not None}})
    return jsonify(requeued=changed, count=len(changed)), 202


def _group_json(group: FailureGroup) -> dict[str, Any]:
    return {"key": group.key, "error_kind": group.error_kind, "source": group.source, "code": group.code,
            "pattern": group.pattern, "count": group.count, "newest_run": group.newest_id,
            "newest_reason": group.newest_reason, "merchant": group.merchant_id, "kind": group.kind,
            "cause": group.cause, "fix": group.fix.action if group.fix else None,
            "first_seen": group.first_seen.isoformat() if group.first_seen else None,
            "last_seen": group.last_seen.isoformat() if group.last_seen else None,
            "orders": [{"platform": o.platform, "id": o.order_id, "name": o.name, "run": o.run_id, "reason": o.reason}
                       for o in group.orders]}


@bp.get("/failures")
def failures() -> Response:
    with hub().session() as s:
        groups = failure_groups(s, user().scope)
    return jsonify(groups=[_group_json(gr) for gr in groups], total=sum(gr.count for gr in groups))


@bp.post("/failures/<key>/retry")
def retry_failure_group(key: str) -> tuple[Response, int]:
    scope = user().scope
    with hub().session() as s:
        group = next((gr for gr in failure_groups(s, scope) if gr.key == key), None)
        ids = group_run_ids(s, group, scope) if group is not None else []
    if group is None or not ids:
        raise ApiError(404, f"no failure group {key} (or it has no failed runs any more)")
    changed = retry_runs(hub(), ids, user().email, action="failures.rerun_group", target_type="failure_group",
                         target_id=key, detail={**VIA, "cause": group.pattern, "error_kind": group.error_kind,
                                                "code": group.code})
    return jsonify(requeued=changed, count=len(changed), group=_group_json(group)), 202


@bp.post("/connections/<int:connection_id>/resume")
def resume(connection_id: int) -> Response:
    """Make the runs waiting for this (reconnected) connection due now; 409 while it is not active."""
    with hub().session() as s:
        conn = s.get(Connection, connection_id)
        if conn is None or not user().may_see(conn.merchant_id):
            raise ApiError(404, f"no connection {connection_id}")
        platform, merchant_id = conn.platform, conn.merchant_id
        secrets = connection_secrets(s, hub().secrets, merchant_id)
    try:
        changed = resume_connection(hub(), connection_id, user().email)
    except ActionRefused as exc:
        raise ApiError(409, scrub(str(exc), secrets)) from exc
    return jsonify(connection={"id": connection_id, "platform": platform, "merchant": merchant_id,
                               "status": "active"}, requeued=changed)
