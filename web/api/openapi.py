"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of every route (served without a token)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from hub.order_models import STATES
from mappings.inputs import ROW_ID_MAX
from web.api.blueprint import PREFIX, bp
from web.api.service import DEFAULT_PAGE, MAX_PAGE
from web.console.run_list import KINDS, PLATFORMS, STATUSES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(type_: str, **extra: Any) -> dict[str, Any]:
    return {"type": [type_, "null"], **extra}


def _ok(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): {"$ref": f"#/components/responses/E{code}"} for code in (401, *codes)}


def _param(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


_STAMP = _nullable("string", format="date-time")
_ROW_ID = {"type": "integer", "minimum": 1, "maximum": ROW_ID_MAX}   # every id is an INTEGER column
_WHEN = {"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]}
STORE_PLATFORMS = ("shopify", "woocommerce")
_FILTERS = ("merchant", "platform", "kind", "status", "created_after", "created_before", "q")

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Source": {"type": "object", "required": ["platform", "id", "name"], "properties": {
        "platform": {"type": "string"}, "id": {"type": "string"}, "name": _nullable("string")}},
    "RunSummary": {"type": "object", "required": ["id", "merchant", "kind", "source", "status", "attempts",
                                                  "reason", "created_at", "updated_at"], "properties": {
        "id": {"type": "integer"}, "merchant": {"type": "integer"}, "merchant_name": _nullable("string"),
        "kind": {"type": "string", "enum": list(KINDS)}, "source": _ref("Source"),
        "status": {"type": "string", "enum": list(STATUSES)}, "attempts": {"type": "integer"},
        "reason": _nullable("string"), "error_kind": _nullable("string"), "trigger": _nullable("string"),
        "next_attempt_at": _STAMP, "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"}, "finished_at": _STAMP}},
    "Attempt": {"type": "object", "required": ["number", "outcome"], "properties": {
        "number": {"type": "integer"}, "started_at": _STAMP, "finished_at": _STAMP,
        "outcome": _nullable("string"), "step": _nullable("string"), "error_kind": _nullable("string"),
        "error_code": _nullable("string", description="the platform's fault code (quickbooks:6000) or the "
                                                      "mapping rule"),
        "error": _nullable("string"),
        "excerpt": {"type": ["object", "null"], "description": "the failing call, secrets redacted: "
                    "{request: {method, url, body}, response: {status, body}}"}}},
    "Step": {"type": "object", "required": ["step", "outcome"], "properties": {
        "attempt": {"type": "integer"}, "step": {"type": "string"}, "outcome": {"type": "string"},
        "target": {"oneOf": [{"type": "null"}, _ref("ObjectRef")]}, "message": _nullable("string"),
        "at": _STAMP}},
    "ObjectRef": {"type": "object", "required": ["platform", "id"], "properties": {
        "platform": {"type": "string"}, "type": _nullable("string"), "id": {"type": "string"}}},
    "Binding": {"type": "object", "required": ["source", "target"], "properties": {
        "source": _ref("ObjectRef"), "target": _ref("ObjectRef"), "data": {"type": "object"}}},
    "RunDetail": {"allOf": [_ref("RunSummary"), {"type": "object", "required": [
        "attempt_log", "steps", "bindings", "order"], "properties": {
        "error_code": _nullable("string"), "attempt_log": {"type": "array", "items": _ref("Attempt")},
        "steps": {"type": "array", "items": _ref("Step")},
        "bindings": {"type": "array", "items": _ref("Binding")},
        "order": {"type": ["object", "null"], "description": "the canonical order the run synced"}}}]},
    "RunPage": {"type": "object", "required": ["runs", "next", "counts"], "properties": {
        "runs": {"type": "array", "items": _ref("RunSummary")},
        "next": _nullable("integer", description="pass as `before` for the next page; null on the last"),
        "counts": {"type": "object", "additionalProperties": {"type": "integer"},
                   "description": "runs matching the filters other than status, by status"}}},
    "RunFilter": {"type": "object", "additionalProperties": False, "properties": {
        "merchant": _ROW_ID, "platform": {"type": "string", "enum": list(PLATFORMS)},
        "kind": {"type": "string", "enum": list(KINDS)},
        "status": {"type": "string", "enum": ["failed"], "description": "only failed runs are re-run"},
        "created_after": _WHEN, "created_before": _WHEN, "q": {"type": "string"}}},
    "SkipRequest": {"type": "object", "required": ["reason"], "properties": {
        "reason": {"type": "string", "minLength": 1}}},
    "Requeued": {"type": "object", "required": ["requeued"], "properties": {
        "requeued": {"type": "array", "items": {"type": "integer"}}, "count": {"type": "integer"},
        "run": _ref("RunSummary"), "group": _ref("FailureGroup")}},
    "Skipped": {"type": "object", "required": ["run"], "properties": {"run": _ref("RunSummary")}},
    "FailureGroup": {"type": "object", "required": ["key", "pattern", "count"], "properties": {
        "key": {"type": "string"}, "error_kind": _nullable("string"), "source": _nullable("string"),
        "code": _nullable("string"), "pattern": {"type": "string", "description": "the reason with ids, "
                                                 "numbers and amounts replaced by placeholders"},
        "count": {"type": "integer", "description": "orders failing now for this cause (runs, for work that "
                                                     "stands for no order)"},
        "newest_run": {"type": "integer"}, "newest_reason": _nullable("string"),
        "merchant": {"type": "integer"}, "kind": _nullable("string"),
        "cause": {"type": "string", "description": "the cause in words, with no placeholder"},
        "fix": _nullable("string"), "first_seen": _nullable("string"), "last_seen": _nullable("string"),
        "orders": {"type": "array", "items": {"type": "object", "properties": {
            "platform": {"type": "string"}, "id": _nullable("string"), "name": _nullable("string"),
            "run": {"type": "integer"}, "reason": _nullable("string")}}}}},
    "FailureList": {"type": "object", "required": ["groups", "total"], "properties": {
        "groups": {"type": "array", "items": _ref("FailureGroup")}, "total": {"type": "integer"}}},
    "Resumed": {"type": "object", "required": ["connection", "requeued"], "properties": {
        "connection": {"type": "object", "properties": {
            "id": {"type": "integer"}, "platform": {"type": "string"}, "merchant": {"type": "integer"},
            "status": {"type": "string"}}},
        "requeued": {"type": "array", "items": {"type": "integer"}}}},
    "OpenApiDocument": {"type": "object", "required": ["openapi", "info", "paths"]},
    "Order": {"type": "object", "required": [
        "merchant", "platform", "id", "name", "customer", "currency", "total", "state", "reason", "financial_status",
        "fulfillment_status", "quickbooks", "hubspot", "received_at", "invoiced_at", "paid_at", "fulfilled_at",
        "deposited_at", "runs"], "properties": {
        "merchant": {"type": "integer"}, "platform": {"type": "string", "enum": list(STORE_PLATFORMS)},
        "store": _nullable("string", description="the shop domain or the store's URL"),
        "id": {"type": "string", "description": "the store's order id"}, "name": _nullable("string"),
        "customer": {"type": "object", "required": ["name", "email"], "properties": {
            "name": _nullable("string"), "email": _nullable("string", description="lower-cased")}},
        "currency": _nullable("string"), "total": _nullable("string", description="exact decimal, e.g. 68.75"),
        "state": {"type": "string", "enum": list(STATES)},
        "reason": _nullable("string", description="why it is failing, waiting or skipped; else null"),
        "financial_status": _nullable("string"), "fulfillment_status": _nullable("string"),
        "quickbooks": {"type": "object", "required": ["invoice_id", "doc_number", "total", "balance",
                                                      "payment_ids", "refund_ids", "deposit_id"], "properties": {
            "invoice_id": _nullable("string"), "doc_number": _nullable("string"), "total": _nullable("string"),
            "balance": _nullable("string"), "payment_ids": {"type": "array", "items": {"type": "string"}},
            "refund_ids": {"type": "array", "items": {"type": "string"}}, "deposit_id": _nullable("string")}},
        "hubspot": {"type": "object", "required": ["contact_id", "deal_id"], "properties": {
            "contact_id": _nullable("string"), "deal_id": _nullable("string")}},
        "ordered_at": _STAMP, "received_at": _STAMP, "invoiced_at": _STAMP, "paid_at": _STAMP,
        "fulfilled_at": _STAMP, "deposited_at": _STAMP, "updated_at": _STAMP,
        "runs": {"type": "array", "items": {"type": "integer"}}}},
    "OrderPage": {"type": "object", "required": ["orders", "next"], "properties": {
        "orders": {"type": "array", "items": _ref("Order")},
        "next": _nullable("integer", description="pass as `before` for the next page; null on the last")}},
    "OrderDetail": {"allOf": [_ref("Order"), {"type": "object", "required": ["timeline"], "properties": {
        "timeline": {"type": "array", "items": {"type": "object", "required": ["at", "kind", "text", "run"],
                                                "properties": {
            "at": _STAMP, "kind": {"type": "string", "description": "webhook, pull, document, step, attempt, "
                                   "payment_back, support or receivables (dunning)"},
            "text": {"type": "string"}, "run": _nullable("integer")}}}}}]},
    "Payout": {"type": "object", "required": [
        "merchant", "platform", "payout_id", "status", "currency", "net", "issued_at", "deposit_id", "difference",
        "reason"], "properties": {
        "merchant": {"type": "integer"}, "platform": {"type": "string"}, "store": {"type": "string"},
        "payout_id": {"type": "string"},
        "status": {"type": "string", "enum": ["scheduled", "paid", "posted", "held", "failed"]},
        "currency": {"type": "string"}, "net": {"type": "string", "description": "decimal text, e.g. \"1234.56\""},
        "issued_at": _STAMP, "deposit_id": _nullable("string"),
        "difference": _nullable("string", description="payout net minus what the deposit would total; "
                                                      "\"0.00\" when posted"),
        "reason": _nullable("string"),
        "unexplained": {"type": "array", "items": {"type": "object"},
                        "description": "the transactions a held payout cannot explain, each with its cause"},
        "deposit_ids": {"type": "array", "items": {"type": "string"},
                        "description": "every deposit the payout was posted as, in part order (a payout of more "
                                       "lines than one deposit takes is split into several that add up to it)"},
        "transfer_id": _nullable("string", description="a withdrawal's transfer from the bank to the processor's "
                                                       "clearing account (its deposit totals 0.00)")}},
    "PayoutList": {"type": "object", "required": ["payouts"], "properties": {
        "payouts": {"type": "array", "items": _ref("Payout")}}},
    "Receivables": {"type": "object", "required": ["merchant", "as_of", "currency", "open", "overdue", "buckets",
                                                   "dso_days", "dso_period_days", "invoices", "holds", "check"],
                    "properties": {
        "merchant": {"type": "integer"}, "as_of": {"type": "string", "format": "date"}, "currency": {"type": "string"},
        "open": {"type": "string"}, "overdue": {"type": "string"},
        "buckets": {"type": "object", "required": ["current", "1_30", "31_60", "61_90", "over_90"],
                    "additionalProperties": {"type": "string"}},
        "dso_days": {"type": "number", "description": "open receivables ÷ credit sales in the period × its days"},
        "dso_period_days": {"type": "integer"},
        "invoices": {"type": "array", "items": {"type": "object", "required": [
            "doc_number", "customer", "due_date", "balance", "days_overdue", "dunning_stage"], "properties": {
            "doc_number": _nullable("string"), "customer": {"type": "string"},
            "due_date": {"type": "string", "format": "date"}, "balance": {"type": "string"},
            "days_overdue": {"type": "integer"}, "dunning_stage": _nullable("string")}}},
        "holds": {"type": "array", "description": "orders held from fulfilment over their customer's credit limit",
                  "items": {"type": "object", "required": ["customer", "limit", "exposure", "orders", "holds"],
                            "properties": {"customer": {"type": "string"}, "limit": {"type": "string"},
                                           "exposure": {"type": "string"},
                                           "orders": {"type": "array", "items": {"type": "string"}},
                                           "holds": {"type": "array", "items": {"type": "integer"}}}}},
        "check": _nullable("object", description="QuickBooks' AgedReceivables buckets (`quickbooks`) and the "
                                                 "hub's difference from them (`difference`, only buckets that "
                                                 "differ)")}},
}

PARAMETERS: dict[str, Any] = {
    "run_id": {"name": "run_id", "in": "path", "required": True, "schema": _ROW_ID},
    "key": {"name": "key", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "a failure group's key (GET /failures)"},
    "connection_id": {"name": "connection_id", "in": "path", "required": True, "schema": _ROW_ID},
    "merchant": {"name": "merchant", "in": "query", "schema": _ROW_ID,
                 "description": "a merchant id (a merchant user's token: only its own)"},
    "platform": {"name": "platform", "in": "query", "schema": {"type": "string", "enum": list(PLATFORMS)}},
    "kind": {"name": "kind", "in": "query", "schema": {"type": "string", "enum": list(KINDS)}},
    "status": {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(STATUSES)}},
    "created_after": {"name": "created_after", "in": "query", "schema": _WHEN,
                      "description": "ISO date or date-time (UTC when it names no offset), inclusive"},
    "created_before": {"name": "created_before", "in": "query", "schema": _WHEN,
                       "description": "ISO date or date-time (UTC when it names no offset), exclusive"},
    "q": {"name": "q", "in": "query", "schema": {"type": "string"},
          "description": "an order's name (#1001), number or id"},
    "limit": {"name": "limit", "in": "query",
              "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE}},
    "before": {"name": "before", "in": "query", "schema": _ROW_ID,
               "description": "the `next` of the previous page: runs with a smaller id"},
    "as_of": {"name": "as_of", "in": "query", "schema": {"type": "string", "format": "date"},
              "description": "the day to age the invoices on (default today)"},
    "state": {"name": "state", "in": "query", "schema": {"type": "string", "enum": list(STATES)}},
    "store_platform": {"name": "platform", "in": "query",
                       "schema": {"type": "string", "enum": list(STORE_PLATFORMS)}},
    "order_platform": {"name": "platform", "in": "path", "required": True,
                       "schema": {"type": "string", "enum": list(STORE_PLATFORMS)}},
    "order_id": {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "the store's order id (or its name without #)"},
}

_ERROR_TEXT = {400: "a filter or the body could not be read", 401: "no token, or an unknown or revoked one",
               403: "the token's user may not do this (e.g. names another merchant)",
               404: "no such object (or it belongs to another merchant)", 409: "the action does not apply now",
               502: "a platform (QuickBooks) did not answer: try again"}


def _op(summary: str, op_id: str, responses: dict[str, Any], params: Sequence[str] = (),
        body: str | None = None, *, public: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "operationId": op_id, "responses": responses}
    if params:
        op["parameters"] = [_param(p) for p in params]
    if body:
        op["requestBody"] = {"required": body == "SkipRequest",
                             "content": {"application/json": {"schema": _ref(body)}}}
    if public:
        op["security"] = []
    return op


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``/api/v1``."""
    paths = {
        "/runs": {"get": _op("Sync runs, newest first, filtered, in keyset pages", "listRuns",
                             {"200": _ok("RunPage", "a page of runs"), **_errors(400, 403)},
                             [*_FILTERS, "limit", "before"])},
        "/runs/retry": {"post": _op("Re-run every failed run matching the filter", "retryMatchingRuns",
                                    {"202": _ok("Requeued", "the runs re-queued"), **_errors(400, 403)},
                                    body="RunFilter")},
        "/runs/{run_id}": {"get": _op("One run: attempts (error codes, redacted excerpts), steps, bindings, "
                                      "the canonical order", "getRun",
                                      {"200": _ok("RunDetail", "the run"), **_errors(404)}, ["run_id"])},
        "/runs/{run_id}/retry": {"post": _op("Re-run a run now", "retryRun",
                                             {"202": _ok("Requeued", "re-queued"), **_errors(404, 409)},
                                             ["run_id"])},
        "/runs/{run_id}/skip": {"post": _op("Skip a pending, retrying or failed run, saying why", "skipRun",
                                            {"200": _ok("Skipped", "skipped"), **_errors(400, 404, 409)},
                                            ["run_id"], "SkipRequest")},
        "/failures": {"get": _op("Failed runs grouped by cause, biggest group first", "listFailures",
                                 {"200": _ok("FailureList", "the groups"), **_errors()})},
        "/failures/{key}/retry": {"post": _op("Re-run every failed run of a group", "retryFailureGroup",
                                              {"202": _ok("Requeued", "re-queued"), **_errors(404)}, ["key"])},
        "/connections/{connection_id}/resume": {"post": _op(
            "Make the runs waiting for a reconnected connection due now", "resumeConnection",
            {"200": _ok("Resumed", "the runs re-queued"), **_errors(404, 409)}, ["connection_id"])},
        "/orders": {"get": _op("Store orders (the order ledger), newest first, in keyset pages", "listOrders",
                               {"200": _ok("OrderPage", "a page of orders"), **_errors(400, 403)},
                               ["merchant", "state", "store_platform", "limit", "before"])},
        "/orders/{platform}/{order_id}": {"get": _op(
            "One store order: where it stands, its documents, runs and timeline", "getOrder",
            {"200": _ok("OrderDetail", "the order"), **_errors(400, 403, 404)},
            ["order_platform", "order_id", "merchant"])},
        "/payouts": {"get": _op("Store payouts, newest first, with their QuickBooks deposit or why they are held",
                                "listPayouts", {"200": _ok("PayoutList", "the payouts"), **_errors(400, 403)},
                                ["merchant", "limit"])},
        "/receivables": {"get": _op(
            "A merchant's receivables: open and overdue balances, ageing, DSO, overdue invoices, checked against "
            "QuickBooks' AgedReceivables", "getReceivables",
            {"200": _ok("Receivables", "the receivables"), **_errors(400, 403, 404, 409, 502)},
            ["merchant", "as_of"])},
        "/openapi.json": {"get": _op("This document", "openapi",
                                     {"200": _ok("OpenApiDocument", "the OpenAPI document")}, public=True)},
    }
    responses = {f"E{code}": {"description": text, "content": {"application/json": {"schema": _ref("Error")}}}
                 for code, text in _ERROR_TEXT.items()}
    return {
        "openapi": "3.1.0",
        "info": {"title": "O2C Hub API", "version": "1",
                 "description": "Store orders, sync runs, failures and connections of the O2C Hub. Every route "
                                "but this document needs `Authorization: Bearer <token>` (`o2c token create`); the "
                                "token acts with its user's role: a merchant user's token sees and acts on "
                                "its own merchant only. Errors are `{\"error\": \"...\"}`."},
        "servers": [{"url": PREFIX}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": SCHEMAS, "parameters": PARAMETERS, "responses": responses,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "an API token from `o2c token create`"}}},
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())
