"""The JSON API against a real hub and the simulated platforms: tokens made and revoked by the CLI, 401s,
the runs list (filters, keyset pages), a run in full, re-run until it succeeds, skip, failures by cause
and their re-run, re-run by filter, resuming a reconnected connection, merchant tokens kept to their own
merchant, the OpenAPI document against the routes, and no secret in any answer (excerpts redacted)."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import operator
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from cli.main import main as o2c
from demo.simulators.shopify import webhook_headers
from hub.merchants import create_merchant
from hub.models import ApiToken, AuditEntry, Connection, SyncAttempt, SyncRun, User, utcnow
from hub.redaction import REDACTED
from hub.runtime import Hub
from hub.users import create_user
from tests.conftest import SHOPIFY_SECRET
from tests.helpers import an_order, settled, wait_until, webhook
from tests.web.test_console import login
from web.api.openapi import document
from web.app import create_app

PASSWORD = "correct horse battery"
SUPPORT = "support@example.com"


@dataclass
class Api:
    hub: Hub
    app: Flask
    shop: Any
    platforms: Any
    token: str

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token or self.token}"} if token != "" else {}
        response = self.app.test_client().open(f"/api/v1{path}", method=method, headers=headers, **kw)
        assert response.is_json, (response.status_code, response.get_data(as_text=True)[:300])
        assert "Set-Cookie" not in response.headers
        return response

    def get(self, path: str, token: str | None = None) -> Any:
        response = self.call("GET", path, token)
        assert response.status_code == 200, (path, response.json)
        return response.json

    def send(self, order: Any) -> None:
        self.platforms.shopify.add_order(self.shop.domain, order)
        body, headers = webhook(order, self.shop.domain)
        assert self.app.test_client().post("/webhooks/shopify", data=body, headers=headers).status_code == 200

    def send_unmappable(self) -> None:
        body = b'{"name": "#1003", "line_items": []}'   # no order id: a mapping failure
        self.app.test_client().post("/webhooks/shopify", data=body, headers=webhook_headers(
            self.shop.domain, "orders/create", body, SHOPIFY_SECRET))


def add_user(hub: Hub, email: str, role: str = "support", merchant_id: int | None = None) -> int:
    with hub.session() as s:
        return create_user(s, email, PASSWORD, role, merchant_id).id


def new_token(email: str, name: str = "ci") -> str:
    result = CliRunner().invoke(o2c, ["token", "create", email, "--name", name])
    assert result.exit_code == 0, (result.output, result.stderr)
    return result.stdout.split()[-1]


@pytest.fixture
def api(make_hub, shop_factory, platforms) -> Api:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    add_user(hub, SUPPORT)
    return Api(hub, create_app(hub), shop, platforms, new_token(SUPPORT))


def ids(answer: dict) -> list[int]:
    return [r["id"] for r in answer["runs"]]


def _audit(hub: Hub) -> list[AuditEntry]:
    with hub.session() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def first_run(hub: Hub) -> SyncRun:
    with hub.session() as s:
        return s.scalar(select(SyncRun).order_by(SyncRun.id))


def secrets_of(hub: Hub) -> list[str]:
    with hub.session() as s:
        conns = s.scalars(select(Connection)).all()
        found = [v for c in conns for v in hub.secrets.decrypt(c.secrets).values() if v]
        return found + [c.secrets for c in conns]


def test_tokens_are_made_and_revoked_by_the_cli_and_everything_else_is_401(api: Api) -> None:
    hub, runner = api.hub, CliRunner()
    assert api.token.startswith("o2c_") and len(api.token) > 40
    with hub.session() as s:
        row = s.scalar(select(ApiToken))
        assert row.token_hash == hashlib.sha256(api.token.encode()).hexdigest() and row.name == "ci"
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "token.created")).actor == "cli"
    listing = runner.invoke(o2c, ["token", "list"])
    assert listing.exit_code == 0 and SUPPORT in listing.output and api.token not in listing.output

    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "},
                    {"Authorization": "Bearer o2c_not-a-token"}, {"Authorization": api.token}):
        r = api.app.test_client().get("/api/v1/runs", headers=headers)
        assert r.status_code == 401 and r.json["error"] and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.get("/runs")["runs"] == []
    assert api.call("GET", "/runs/1", token="").status_code == 401
    assert api.call("POST", "/runs/1/retry", token="").status_code == 401

    # a console session is no key to the API, and the API sets no cookie
    browser = api.app.test_client()
    assert login(browser, SUPPORT, PASSWORD).status_code == 302 and browser.get("/console/runs").status_code == 200
    r = browser.get("/api/v1/runs")
    assert r.status_code == 401 and "Set-Cookie" not in r.headers

    other = new_token(SUPPORT, "other")
    assert runner.invoke(o2c, ["token", "revoke", str(row.id)]).exit_code == 0
    assert api.call("GET", "/runs").status_code == 401 and api.call("GET", "/runs", other).status_code == 200
    again = runner.invoke(o2c, ["token", "revoke", str(row.id)])
    assert again.exit_code == 1 and "revoked already" in again.stderr
    assert [runner.invoke(o2c, ["token", "revoke", ref]).exit_code for ref in ("999", "abc")] == [1, 2]
    nobody = runner.invoke(o2c, ["token", "create", "nobody@example.com", "--name", "x"])
    assert nobody.exit_code == 1 and "no user nobody@example.com" in nobody.stderr
    assert runner.invoke(o2c, ["token", "create", SUPPORT]).exit_code == 2      # --name is required
    with hub.session() as s:                                                    # a disabled user's tokens stop
        s.scalar(select(User).where(User.email == SUPPORT)).disabled = True
    assert api.call("GET", "/runs", other).status_code == 401
    assert [e.action for e in _audit(hub)].count("token.revoked") == 1

    # unknown routes and wrong methods answer JSON too
    assert api.call("GET", "/nothing-here").status_code == 404
    assert api.call("DELETE", "/runs").status_code == 405


def test_runs_list_filters_keyset_pages_and_counts(api: Api) -> None:
    hub = api.hub
    with hub.session() as s:
        other = create_merchant(s, "Other Shop").id
        statuses = ("succeeded", "failed", "retrying", "skipped")
        for n in range(120):
            s.add(SyncRun(merchant_id=api.shop.merchant_id if n % 2 else other, kind="order" if n % 3 else "payment",
                          source_platform="shopify" if n % 5 else "woocommerce", source_id=str(450_000 + n),
                          source_name=f"#{1000 + n}", status=statuses[n % 4], attempts=1,
                          reason="quickbooks: boom" if n % 4 == 1 else None,
                          created_at=utcnow() - timedelta(days=10 if n < 20 else 0)))
        s.commit()
        all_ids = sorted(s.scalars(select(SyncRun.id)), reverse=True)
        by_id = {r.id: r for r in s.scalars(select(SyncRun))}

    first = api.get("/runs")
    assert ids(first) == all_ids[:50] and first["next"] == all_ids[49]
    assert first["counts"] == {"succeeded": 30, "failed": 30, "retrying": 30, "skipped": 30}
    seen, page = [], {"next": ""}
    while page["next"] is not None:
        page = api.get(f"/runs?limit=7&before={page['next']}")
        seen += ids(page)
    assert seen == all_ids
    assert ids(api.get("/runs?limit=200")) == all_ids
    assert {"id", "merchant", "merchant_name", "kind", "source", "status", "attempts", "reason", "created_at",
            "updated_at"} <= set(first["runs"][0])     # the shape of `o2c syncs list --json`

    shop_id = api.shop.merchant_id
    failed = api.get(f"/runs?status=failed&merchant={shop_id}&limit=200")
    assert ids(failed) == [i for i in all_ids if by_id[i].status == "failed" and by_id[i].merchant_id == shop_id]
    assert failed["counts"] == {"failed": 30, "skipped": 30}     # every status of the other filters' runs
    woo = api.get("/runs?platform=woocommerce&kind=payment&limit=200")["runs"]
    assert woo and all(r["source"]["platform"] == "woocommerce" and r["kind"] == "payment" for r in woo)
    for q, n in (("%231007", 7), ("1008", 8), ("450009", 9)):     # an order's name, number or id
        assert ids(api.get(f"/runs?q={q}")) == [all_ids[::-1][n]]
    old = (utcnow() - timedelta(days=5)).date().isoformat()
    assert len(api.get(f"/runs?created_before={old}&limit=200")["runs"]) == 20
    assert len(api.get(f"/runs?created_after={old}T00:00:00Z&limit=200")["runs"]) == 100

    for bad in ("limit=0", "limit=201", "limit=x", "before=-1", "status=bogus", "kind=refundz", "platform=x",
                "merchant=Acme", "created_after=yesterday", "colour=red"):
        r = api.call("GET", f"/runs?{bad}")
        assert r.status_code == 400 and r.json["error"], bad
    assert "limit" in api.call("GET", "/runs?limit=201").json["error"]


def test_a_failed_run_in_full_redacted_retried_until_it_succeeds_and_skipped(api: Api) -> None:
    p, hub, shop = api.platforms, api.hub, api.shop
    p.quickbooks.fail_next(400, 1, path_contains="/invoice")
    api.send(an_order())
    [run] = settled(hub)
    assert run.status == "failed", run.reason

    with hub.session() as s:   # an excerpt as a connector might have written it, secrets and all
        conn = s.scalar(select(Connection).where(Connection.platform == "quickbooks"))
        access = hub.secrets.decrypt(conn.secrets)["access_token"]
        s.scalar(select(SyncAttempt).where(SyncAttempt.run_id == run.id)).excerpt = {
            "request": {"method": "POST", "url": f"https://qb.example/v3?access_token={access}",
                        "headers": {"Authorization": f"Bearer {access}"}, "body": f'{{"note": "{access}"}}'},
            "response": {"status": 400, "body": "Bearer abc.def-123 refused", "SyncToken": "3"}}
    detail = api.get(f"/runs/{run.id}")   # `o2c syncs show --json`, plus error codes and excerpts
    assert {"attempt_log", "steps", "bindings", "order", "error_code"} <= set(detail)
    [attempt] = detail["attempt_log"]
    assert attempt["outcome"] == "failed" and attempt["excerpt"]["request"]["headers"]["Authorization"] == REDACTED
    assert attempt["excerpt"]["response"] == {"status": 400, "body": f"Bearer {REDACTED} refused", "SyncToken": "3"}
    assert REDACTED in attempt["excerpt"]["request"]["url"] and access not in json.dumps(attempt)
    answers = [api.call("GET", path).get_data(as_text=True) for path in (
        "/runs", f"/runs/{run.id}", "/failures", "/openapi.json", "/runs?status=failed")]
    assert attempt["error_code"] == detail["error_code"] == run.error_code and run.error_code.startswith("quickbooks")
    assert api.call("GET", "/runs/999999").status_code == 404

    r = api.call("POST", f"/runs/{run.id}/retry")
    assert r.status_code == 202 and r.json["requeued"] == [run.id]
    assert r.json["run"]["status"] in ("pending", "running", "succeeded")    # dispatched at once
    [run] = settled(hub)
    assert run.status == "succeeded", run.reason
    assert [a["number"] for a in api.get(f"/runs/{run.id}")["attempt_log"]] == [1, 2]
    assert len(p.quickbooks.objects(shop.realm, "Invoice")) == 1
    [entry] = [e for e in _audit(hub) if e.action == "run.rerun"]
    assert (entry.actor, entry.target_id, entry.detail["via"]) == (SUPPORT, str(run.id), "api")

    api.send_unmappable()
    mapping = settled(hub)[-1]
    assert mapping.status == "failed" and mapping.error_kind == "mapping"
    for no_reason in ({}, {"json": {"reason": "  "}}, {"data": "reason=x"}):
        assert api.call("POST", f"/runs/{mapping.id}/skip", **no_reason).status_code == 400
    r = api.call("POST", f"/runs/{mapping.id}/skip", json={"reason": "test delivery"})
    assert r.status_code == 200 and r.json["run"]["status"] == "skipped"
    assert r.json["run"]["reason"] == f"skipped by {SUPPORT}: test delivery"
    again = api.call("POST", f"/runs/{run.id}/skip", json={"reason": "no"})
    assert again.status_code == 409 and "succeeded run cannot be skipped" in again.json["error"]
    assert api.call("POST", "/runs/999999/skip", json={"reason": "x"}).status_code == 404
    assert [e.actor for e in _audit(hub) if e.action == "run.skip"] == [SUPPORT]
    answers += [api.call("POST", "/runs/retry", json={}).get_data(as_text=True), r.get_data(as_text=True)]
    for text in answers:   # no answer shows a connection's secrets, their ciphertext or the API token
        assert not [sec for sec in secrets_of(hub) + [api.token] if sec in text]


def test_failures_by_cause_group_retry_and_retry_by_filter(api: Api) -> None:
    p, hub = api.platforms, api.hub
    p.quickbooks.fail_next(400, 2, path_contains="/invoice")
    api.send(an_order(450_001, 1001))
    settled(hub)
    api.send(an_order(450_002, 1002, email="grace@example.com"))
    settled(hub)
    api.send_unmappable()
    runs = settled(hub)
    assert [r.status for r in runs] == ["failed"] * 3

    listed = api.get("/failures")
    assert [g["count"] for g in listed["groups"]] == [2, 1] and listed["total"] == 3
    quickbooks = listed["groups"][0]
    assert quickbooks["source"] == "quickbooks" and quickbooks["newest_run"] == runs[1].id
    assert api.call("POST", "/failures/0000000000000000/retry").status_code == 404
    r = api.call("POST", f"/failures/{quickbooks['key']}/retry")
    assert r.status_code == 202 and r.json["count"] == 2
    runs = settled(hub)
    assert [r.status for r in runs] == ["succeeded", "succeeded", "failed"]
    assert [g["count"] for g in api.get("/failures")["groups"]] == [1]
    assert "failures.rerun_group" in [e.action for e in _audit(hub)]

    for bad in ({"status": "succeeded"}, {"platform": "nope"}, {"colour": "red"}, {"merchant": "Acme"}):
        assert api.call("POST", "/runs/retry", json=bad).status_code == 400, bad
    for body in ({"data": "not json", "content_type": "application/json"}, {"json": [1, 2]}):
        assert api.call("POST", "/runs/retry", **body).status_code == 400
    r = api.call("POST", "/runs/retry", json={"merchant": api.shop.merchant_id, "platform": "quickbooks"})
    assert r.status_code == 202 and r.json["requeued"] == []    # the failed run came from Shopify
    r = api.call("POST", "/runs/retry", json={"merchant": api.shop.merchant_id, "platform": "shopify"})
    assert r.status_code == 202 and r.json["requeued"] == [runs[2].id]
    assert settled(hub)[2].status == "failed"        # the same mapping failure again
    entry = [e for e in _audit(hub) if e.action == "runs.rerun_matching"][-1]
    assert entry.actor == SUPPORT and entry.detail["filter"]["platform"] == "shopify"


def test_resume_a_reconnected_connection(api: Api) -> None:
    hub, p, shop = api.hub, api.platforms, api.shop
    with hub.session() as s:
        conn = s.scalar(select(Connection).where(Connection.platform == "quickbooks"))
        secrets = hub.secrets.decrypt(conn.secrets)
        conn.secrets = hub.secrets.encrypt({**secrets, "refresh_token": "revoked-refresh-token"})
        conn_id = conn.id
    p.quickbooks.expire_tokens()
    api.send(an_order())

    wait_until(lambda: (run := first_run(hub)) and (run.status, run.error_kind) == ("retrying", "auth"))
    refused = api.call("POST", f"/connections/{conn_id}/resume")
    assert refused.status_code == 409 and "needs reconnect" in refused.json["error"]
    assert "revoked-refresh-token" not in refused.get_data(as_text=True)
    assert api.call("POST", "/connections/999/resume").status_code == 404

    with hub.session() as s:   # the merchant reconnected out of band: the run still waits its hour
        conn = s.get(Connection, conn_id)
        conn.secrets = hub.secrets.encrypt({"access_token": p.quickbooks.issue_token(shop.realm),
                                            "refresh_token": p.quickbooks.issue_refresh_token(shop.realm)})
        conn.status, conn.status_reason = "active", None
    time.sleep(0.5)
    run = first_run(hub)
    assert run.status == "retrying" and run.next_attempt_at > utcnow() + timedelta(minutes=30)
    r = api.call("POST", f"/connections/{conn_id}/resume")
    assert r.status_code == 200 and r.json["requeued"] == [run.id], r.json
    [run] = settled(hub)
    assert run.status == "succeeded", run.reason
    entry = [e for e in _audit(hub) if e.action == "connection.resume"][-1]
    assert (entry.actor, entry.target_id, entry.merchant_id) == (SUPPORT, str(conn_id), shop.merchant_id)
    assert api.call("POST", f"/connections/{conn_id}/resume").json["requeued"] == []


def test_a_merchant_token_sees_and_acts_only_on_its_own_merchant(api: Api, shop_factory) -> None:  # noqa: ANN001
    hub, mine = api.hub, api.shop
    theirs = shop_factory(hub)
    with hub.session() as s:
        for merchant_id in (mine.merchant_id, theirs.merchant_id):
            s.add(SyncRun(merchant_id=merchant_id, kind="order", source_platform="shopify", source_id="1",
                          source_name="#1001", status="failed", attempts=1, reason="quickbooks: boom",
                          error_kind="permanent"))
        s.commit()
        own_run, other_run = s.scalars(select(SyncRun.id).order_by(SyncRun.id)).all()
        their_conn = s.scalar(select(Connection.id).where(Connection.merchant_id == theirs.merchant_id))
    add_user(hub, "owner@shop.example", "merchant", mine.merchant_id)
    token = new_token("owner@shop.example")

    for path in ("/runs", f"/runs?merchant={mine.merchant_id}"):
        assert ids(api.get(path, token)) == [own_run] and api.get(path, token)["counts"] == {"failed": 1}
    assert api.call("GET", f"/runs?merchant={theirs.merchant_id}", token).status_code == 403
    assert api.get(f"/runs/{own_run}", token)["id"] == own_run
    assert api.call("GET", f"/runs/{other_run}", token).status_code == 404
    assert api.call("POST", f"/runs/{other_run}/retry", token).status_code == 404
    assert api.call("POST", f"/runs/{other_run}/skip", token, json={"reason": "x"}).status_code == 404
    assert api.call("POST", f"/connections/{their_conn}/resume", token).status_code == 404
    assert api.call("POST", "/runs/retry", token, json={"merchant": theirs.merchant_id}).status_code == 403
    [group] = api.get("/failures", token)["groups"]
    staff_groups = api.get("/failures")["groups"]     # one group a merchant: the fix is each merchant's own
    assert group["count"] == 1 and [g["count"] for g in staff_groups] == [1, 1]
    assert group["merchant"] == mine.merchant_id and group["key"] in [g["key"] for g in staff_groups]

    r = api.call("POST", f"/failures/{group['key']}/retry", token)      # the same cause: only its own run
    assert r.status_code == 202 and r.json["requeued"] == [own_run]
    r = api.call("POST", "/runs/retry", token, json={})
    assert r.status_code == 202 and other_run not in r.json["requeued"]
    assert [r.status for r in settled(hub) if r.id == other_run] == ["failed"]
    assert {e.actor for e in _audit(hub) if e.action in ("failures.rerun_group", "runs.rerun_matching")} == {
        "owner@shop.example"}


def test_the_openapi_document_describes_every_route(api: Api) -> None:
    doc = api.app.test_client().get("/api/v1/openapi.json").json   # no token needed
    assert doc == document()
    if importlib.util.find_spec("openapi_spec_validator"):   # the real validator when installed; else our checks
        importlib.import_module("openapi_spec_validator").validate(doc)
    assert {"openapi", "info", "paths", "components"} <= set(doc) and doc["openapi"].startswith("3.1.")
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearer"] | {"description": ""} == {
        "type": "http", "scheme": "bearer", "description": ""} and doc["security"] == [{"bearer": []}]

    routes = set()
    for rule in api.app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == {(path, m) for path, item in doc["paths"].items() for m in item} and len(routes) == 13

    def resolve(node: Any) -> Any:   # a local $ref to what it names
        while isinstance(node, dict) and "$ref" in node:
            node = functools.reduce(operator.getitem, node["$ref"].removeprefix("#/").split("/"), doc)
        return node

    for ref in re.findall(r'"\$ref": "([^"]+)"', json.dumps(doc)):     # every $ref anywhere resolves
        resolve({"$ref": ref})

    op_ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(op_ids) == len(set(op_ids))
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["summary"] and op["responses"], (path, method)
            params = [resolve(p) for p in op.get("parameters", [])]
            assert all(p["in"] in ("path", "query") and "schema" in p for p in params)
            in_path = set(re.findall(r"{(\w+)}", path))
            assert {p["name"] for p in params if p["in"] == "path"} == in_path, path
            assert all(p["required"] for p in params if p["in"] == "path")
            for code, response in op["responses"].items():
                response = resolve(response)
                assert response["description"] and resolve(response["content"]["application/json"]["schema"]), (
                    path, method, code)
            assert ("401" in op["responses"]) == (path != "/openapi.json") == (op.get("security") != []), path
    list_params = {resolve(p)["name"] for p in doc["paths"]["/runs"]["get"]["parameters"]}
    assert list_params == {"merchant", "platform", "kind", "status", "created_after", "created_before", "q",
                           "limit", "before"}
