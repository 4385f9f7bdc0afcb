"""Bulk query operations for the Shopify simulator, as Shopify serves them (API 2025-01).

``bulkOperationRunQuery(query:)`` (a mutation: 10 points like any other) checks the query and answers at
once with the operation (``CREATED``) or ``userErrors``; the operation then runs in the background
(``RUNNING``) and ends ``COMPLETED`` with ``objectCount``, ``rootObjectCount``, ``fileSize`` and ``url``: a
JSONL file served by this simulator over HTTP on 127.0.0.1 (no access token, as Shopify's signed storage
URL needs none; ``url`` is null when the query found nothing). ``currentBulkOperation(type: QUERY)`` and
``node(id:)`` read an operation's state. What Shopify refuses, refused here (``userErrors`` with the codes of
the 2025-01 schema):

* ``OPERATION_IN_PROGRESS``: one bulk query operation at a time per shop and app (API versions before
  2026-01), while the last one is ``CREATED`` or ``RUNNING``;
* ``INVALID``: a query that is not a valid document of the Admin schema (the same graphql-core validation
  as every other call), that has variables or several operations, that has no connection, more than five
  connections, or connections nested more than two levels deep. A connection inside a list field (e.g.
  ``refunds { refundLineItems }``) is refused too ⚠ (Shopify's guide lists it among the unsupported
  shapes in some versions: the stricter reading).

The file (shopify.dev, "Perform bulk operations with the GraphQL Admin API"; and Shopify/shopify-api-ruby
issue 729) has one JSON object per line: each node of the top connection, and each node of a nested
connection on its own line with ``__parentId``, the ``id`` of the node it belongs to, *after* that node
(not necessarily right after it). A nested connection's field is left out of its parent's line. List and
object fields stay inline. A connection without ``first`` returns all of its nodes.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

import graphql
from flask import Response
from graphql.language import FieldNode, OperationDefinitionNode, SelectionSetNode

from demo.simulators.shopify_orders import connection, gql_time

MAX_CONNECTIONS = 5
MAX_DEPTH = 2
RESULTS_PATH = "/bulk-results"


class _Operation:
    def __init__(self, op_id: int, domain: str, query: str) -> None:
        self.id, self.domain, self.query = op_id, domain, query
        self.status = "CREATED"
        self.created_at = datetime.now(UTC)
        self.completed_at: datetime | None = None
        self.object_count = 0
        self.root_object_count = 0
        self.file_size: int | None = None
        self.url: str | None = None
        self.error_code: str | None = None

    @property
    def gid(self) -> str:
        return f"gid://shopify/BulkOperation/{self.id}"

    def graphql(self) -> dict[str, Any]:
        return {"id": self.gid, "status": self.status, "type": "QUERY", "query": self.query,
                "createdAt": gql_time(self.created_at),
                "completedAt": gql_time(self.completed_at) if self.completed_at else None,
                "objectCount": str(self.object_count), "rootObjectCount": str(self.root_object_count),
                "fileSize": str(self.file_size) if self.file_size is not None else None,
                "url": self.url, "partialDataUrl": None, "errorCode": self.error_code}


class ShopifyBulkControls:
    """Mixed into ``ShopifySimulator``: bulk operations per shop and the JSONL files they produce."""

    lock: Any
    schema: graphql.GraphQLSchema
    app: Any
    latency: float
    url: str

    def _reset_bulk(self) -> None:
        self.bulk_operations: dict[str, list[_Operation]] = {}
        self.bulk_files: dict[str, bytes] = {}
        self.bulk_run_seconds = 0.2     # how long an operation stays RUNNING (at least)
        self._bulk_ids = itertools.count(7_000_000)

    def register_bulk_routes(self) -> None:
        self.app.add_url_rule(f"{RESULTS_PATH}/<token>.jsonl", "bulk_result", self._bulk_file, methods=["GET"])

    # -- GraphQL fields ------------------------------------------------------------------------
    def bulk_query_fields(self, domain: str) -> dict[str, Any]:
        return {"currentBulkOperation": lambda info, type="QUERY": self._current(domain),
                "node": lambda info, id: self._node(domain, id)}

    def bulk_mutation_fields(self, domain: str) -> dict[str, Any]:
        return {"bulkOperationRunQuery": lambda info, query: self._run(domain, query)}

    def _current(self, domain: str) -> dict[str, Any] | None:
        with self.lock:
            ops = self.bulk_operations.get(domain) or []
            return ops[-1].graphql() if ops else None

    def _node(self, domain: str, gid: str) -> dict[str, Any] | None:
        with self.lock:
            for op in self.bulk_operations.get(domain) or []:
                if op.gid == gid:
                    return {**op.graphql(), "__typename": "BulkOperation"}
        return None

    def _run(self, domain: str, query: str) -> dict[str, Any]:
        with self.lock:
            ops = self.bulk_operations.setdefault(domain, [])
            busy = next((op for op in ops if op.status in ("CREATED", "RUNNING")), None)
            if busy is not None:
                return _refused("OPERATION_IN_PROGRESS", "A bulk query operation for this app and shop is already "
                                f"in progress: {busy.gid}.")
        problem, doc = self._check(query)
        if problem:
            return _refused("INVALID", problem)
        with self.lock:
            op = _Operation(next(self._bulk_ids), domain, query)
            ops.append(op)
            created = op.graphql()   # the answer shows the operation as created, before it starts running
        threading.Thread(target=self._execute, args=(op, doc), name="sim-shopify-bulk", daemon=True).start()
        return {"bulkOperation": created, "userErrors": []}

    # -- checking ------------------------------------------------------------------------------
    def _check(self, query: str) -> tuple[str | None, graphql.DocumentNode | None]:
        try:
            doc = graphql.parse(query)
        except graphql.GraphQLError as exc:
            return f"Invalid bulk query: {exc.message}", None
        errors = graphql.validate(self.schema, doc)
        if errors:
            return f"Invalid bulk query: {errors[0].message}", None
        ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
        if len(ops) != 1 or ops[0].operation != graphql.OperationType.QUERY:
            return "Bulk queries must contain exactly one query operation.", None
        if ops[0].variable_definitions:
            return "Bulk queries cannot take variables.", None
        found: list[int] = []
        problem = self._walk(ops[0].selection_set, self.schema.query_type, 0, False, found, doc)
        if problem:
            return problem, None
        if not found:
            return "Bulk queries must contain at least one connection.", None
        if len(found) > MAX_CONNECTIONS:
            return f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections.", None
        return None, doc

    def _walk(self, selection: SelectionSetNode | None, parent: Any, depth: int, in_list: bool,
              found: list[int], doc: graphql.DocumentNode) -> str | None:
        if selection is None:
            return None
        for node in selection.selections:
            if isinstance(node, FieldNode):
                fdef = parent.fields.get(node.name.value) if hasattr(parent, "fields") else None
                if fdef is None:
                    continue
                wrapped, listed = fdef.type, False
                while isinstance(wrapped, graphql.GraphQLNonNull | graphql.GraphQLList):
                    listed |= isinstance(wrapped, graphql.GraphQLList)
                    wrapped = wrapped.of_type
                listed &= not parent.name.endswith("Connection")   # a connection's edges / nodes
                level = depth
                if wrapped.name.endswith("Connection"):
                    if in_list:
                        return f"Connection field '{node.name.value}' cannot be nested inside a list field."
                    level = depth + 1
                    found.append(level)
                    if level > MAX_DEPTH:
                        return f"Bulk queries cannot nest connections more than {MAX_DEPTH} levels deep."
                problem = self._walk(node.selection_set, wrapped, level, in_list or listed, found, doc)
            else:  # fragments: walk their selections against the type they apply to
                sel = node.selection_set if hasattr(node, "selection_set") and node.selection_set else None
                if sel is None:
                    name = node.name.value
                    frag = next(d for d in doc.definitions if isinstance(d, graphql.FragmentDefinitionNode)
                                and d.name.value == name)
                    sel, cond = frag.selection_set, frag.type_condition
                else:
                    cond = node.type_condition
                target = self.schema.get_type(cond.name.value) if cond else parent
                problem = self._walk(sel, target, depth, in_list, found, doc)
            if problem:
                return problem
        return None

    # -- running -------------------------------------------------------------------------------
    def _execute(self, op: _Operation, doc: graphql.DocumentNode) -> None:
        time.sleep(self.latency)
        with self.lock:
            op.status = "RUNNING"
        started = time.monotonic()
        result = graphql.execute_sync(self.schema, doc, root_value=self._bulk_root(op.domain),
                                      field_resolver=_unbounded_resolver)
        lines: list[str] = []
        roots = 0
        if result.data:
            for value in result.data.values():
                for node in _nodes(value):
                    roots += 1
                    _flatten(node, None, lines)
        body = "".join(line + "\n" for line in lines).encode()
        time.sleep(max(0.0, self.bulk_run_seconds - (time.monotonic() - started)))
        with self.lock:
            if result.errors:
                op.status, op.error_code = "FAILED", "INTERNAL_SERVER_ERROR"
            else:
                token = secrets.token_urlsafe(18)
                self.bulk_files[token] = body
                op.url = f"{self.url}{RESULTS_PATH}/{token}.jsonl" if lines else None
                op.status = "COMPLETED"
                op.object_count, op.root_object_count, op.file_size = len(lines), roots, len(body)
            op.completed_at = datetime.now(UTC)

    def _bulk_root(self, domain: str) -> dict[str, Any]:
        return {"orders": lambda info, **args: self._all_orders(domain, **args)}

    def _all_orders(self, domain: str, *, query: str | None = None, sortKey: str = "ID", reverse: bool = False,
                    **_: Any) -> dict[str, Any]:
        from demo.simulators.shopify import _matches, _sort_value

        key = sortKey or "ID"
        with self.lock:
            chosen = [o for o in self.orders.get(domain, {}).values() if _matches(o, query)]  # type: ignore[attr-defined]
            chosen.sort(key=lambda o: (_sort_value(o, key), o.order_id), reverse=bool(reverse))
            nodes = [o.graphql() for o in chosen]
        return connection(nodes, [o.order_id for o in chosen], unbounded=True)

    def _bulk_file(self, token: str) -> Response:
        with self.lock:
            body = self.bulk_files.get(token)
        if body is None:
            return Response("<Error><Code>NoSuchKey</Code></Error>", status=404, mimetype="application/xml")
        return Response(body, mimetype="application/jsonl")


def _refused(code: str, message: str) -> dict[str, Any]:
    return {"bulkOperation": None, "userErrors": [{"field": ["query"], "message": message, "code": code}]}


def _unbounded_resolver(source: Any, info: graphql.GraphQLResolveInfo, **args: Any) -> Any:
    """graphql-core's default resolver, except that a connection asked without ``first``/``last`` returns
    every node (what a bulk operation does)."""
    value = source.get(info.field_name) if isinstance(source, dict) else getattr(source, info.field_name, None)
    if callable(value):
        named = graphql.get_named_type(info.return_type)
        if named.name.endswith("Connection") and args.get("first") is None and args.get("last") is None:
            args = {**args, "first": None, "unbounded": True}
        return value(info, **args)
    return value


def _nodes(conn: Any) -> list[dict[str, Any]]:
    if not isinstance(conn, dict):
        return []
    if isinstance(conn.get("edges"), list):
        return [e["node"] for e in conn["edges"] if isinstance(e, dict) and isinstance(e.get("node"), dict)]
    return [n for n in conn.get("nodes") or [] if isinstance(n, dict)]


def _is_connection(value: Any) -> bool:
    return isinstance(value, dict) and ("edges" in value or "nodes" in value) and (
        isinstance(value.get("edges"), list) or isinstance(value.get("nodes"), list))


def _flatten(node: dict[str, Any], parent_id: str | None, lines: list[str]) -> None:
    """One line for ``node`` (its nested connections left out), then one per node of each of them."""
    nested: list[dict[str, Any]] = []

    def strip(obj: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if _is_connection(v):
                nested.append(v)
            elif isinstance(v, dict):
                out[k] = strip(v)
            else:
                out[k] = v
        return out

    line = strip(node)
    if parent_id is not None:
        line["__parentId"] = parent_id
    lines.append(json.dumps(line, separators=(",", ":")))
    for conn in nested:
        for child in _nodes(conn):
            _flatten(child, node.get("id"), lines)
