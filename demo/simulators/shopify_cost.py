"""Shopify's GraphQL query cost, computed statically as the Admin API does before it runs a query.

One calculator for the simulator (which charges and refuses by it) and for the tests (which price every
document the hub sends). It needs Shopify's published schema (graphql-core ``GraphQLSchema``) to know
which fields are connections, objects, interfaces, unions or leaves, so it lives here, next to the 600 KB
introspection file, and not in the hub: the hub sizes its batches with per-node cost figures written in
``connectors.shopify_bulk_queries`` that ``tests/test_shopify_query_cost.py`` derives from this module and
asserts equal.

The rules (shopify.dev, "GraphQL Admin API rate limits", "Cost calculation"; PLATFORMS.md "Added 2026-12"):

* a scalar or enum field costs 0; an object field 1 plus its selection;
* an interface or union field costs the *maximum* of its possible selections (one cost per concrete
  type, with fragments on that type and on the interfaces it implements folded in, and a response key
  selected twice counted once: the normalisation Shopify describes in graphql-ruby's "How complexity
  scoring works", which Shopify wrote);
* a connection costs 2 plus ``first`` (or ``last``, the larger when both) times the cost of one node
  (1 for the node object plus its selection, whether read through ``nodes`` or ``edges { node }``), so
  nested connections multiply; a connection without ``first``/``last`` is priced at Shopify's largest
  page, 250. ``pageInfo`` is priced like any object (1): graphql-ruby's Shopify analyzer prices it 0 and
  Shopify's engineering post ("Rate Limiting GraphQL APIs by Calculating Query Complexity") describes
  the connection's 2 points without it, so this is the more expensive of the two readings;
* a mutation costs 10 (counted here *in addition* to its returned fields: the reading that costs more);
* ``nodes(ids: [...])`` costs the sum of its nodes: ``len(ids)`` times one node;
* a list that is not a connection (``Order.transactions(first:)``, ``Order.refunds(first:)``,
  ``LineItem.taxLines(first:)``, ``taxLines``, ``discountAllocations`` without a size argument):
  Shopify's table has no row for plain lists, and graphql-ruby's algorithm (what Shopify says it runs)
  prices a list of objects like one object. Where such a list takes ``first``/``last`` and it is given,
  this calculator multiplies by it, the more expensive of the two readings; without a size argument
  it counts one item (both readings agree).

Shopify adds that it "incorporates logarithmic scaling into connection fields" (a Shopify staff answer on
community.shopify.dev, "How to calculate GraphQL cost estimates"), i.e. its real figure for a large page
is *lower* than the linear rule above. The linear rule is what is documented, so it is what this module
computes: a query priced ≤ 1,000 here is ≤ 1,000 on Shopify under either reading, and the simulator is
never more generous than the documentation.

``actual_cost`` prices the same document over the data it returned: connections and lists by the items
they hold, a null object 1 and nothing below it, never more than the requested cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import graphql
from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)

MAX_QUERY_COST = 1000      # Shopify refuses a query whose requested cost is above this, on every plan
MUTATION_COST = 10
OBJECT_COST = 1
CONNECTION_COST = 2
MAX_PAGE_SIZE = 250        # what a connection without first/last is priced at

_Composite = graphql.GraphQLObjectType | graphql.GraphQLInterfaceType | graphql.GraphQLUnionType


class CostError(ValueError):
    """The document cannot be priced (no such operation)."""


def requested_cost(schema: graphql.GraphQLSchema, document: str | DocumentNode,
                   variables: Mapping[str, Any] | None = None, operation_name: str | None = None) -> int:
    """The requested cost of one operation of ``document`` with ``variables``, by Shopify's rules."""
    return _Pricer(schema, _parse(document), variables).operation(operation_name, None)


def actual_cost(schema: graphql.GraphQLSchema, document: str | DocumentNode, data: Any,
                variables: Mapping[str, Any] | None = None, operation_name: str | None = None, *,
                requested: int | None = None) -> int:
    """The cost of the same operation over the ``data`` it returned (what Shopify refunds down to);
    ``requested``: its requested cost, when the caller has already priced it with the same variables."""
    pricer = _Pricer(schema, _parse(document), variables)
    if requested is None:
        requested = pricer.operation(operation_name, None)
    return min(requested, pricer.operation(operation_name, data, actual=True))


def max_cost_exceeded_error(cost: int) -> dict[str, Any]:
    """The error Shopify answers (HTTP 200, no ``data``) for a query above ``MAX_QUERY_COST``."""
    return {
        "message": (f"Query cost is {cost}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).\n\n"
                    "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
                    "cost of a query is calculated.\n\n"
                    "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n"
                    "See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"),
        "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": MAX_QUERY_COST,
                       "documentation": "https://shopify.dev/api/usage/limits#rate-limits"},
    }


def _parse(document: str | DocumentNode) -> DocumentNode:
    return graphql.parse(document) if isinstance(document, str) else document


class _Pricer:
    def __init__(self, schema: graphql.GraphQLSchema, doc: DocumentNode,
                 variables: Mapping[str, Any] | None) -> None:
        self.schema = schema
        self.doc = doc
        self.variables = dict(variables or {})
        self.fragments = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
        # what ``_collect`` found for one type and selection sets: the same for every item priced below them
        self._collected: dict[tuple[str, tuple[int, ...]], dict[str, tuple[graphql.GraphQLField, list[FieldNode]]]] = {}

    # -- entry -----------------------------------------------------------------------------------
    def operation(self, name: str | None, data: Any, *, actual: bool = False) -> int:
        op = graphql.get_operation_ast(self.doc, name)
        if not isinstance(op, OperationDefinitionNode):
            raise CostError(f"no operation {name!r} in the document" if name else "no single operation to price")
        mutation = op.operation == graphql.OperationType.MUTATION
        root = self.schema.mutation_type if mutation else self.schema.query_type
        if root is None:
            raise CostError(f"the schema has no {op.operation.value} type")
        total = 0
        for key, (fdef, nodes) in self._collect(root, [op.selection_set]).items():
            value = data.get(key) if isinstance(data, dict) else None
            total += (MUTATION_COST if mutation else 0) + self._field(fdef, nodes, value, actual)
        return total

    # -- selections ------------------------------------------------------------------------------
    def _collect(self, concrete: graphql.GraphQLObjectType | graphql.GraphQLInterfaceType,
                 selection_sets: Iterable[SelectionSetNode | None]
                 ) -> dict[str, tuple[graphql.GraphQLField, list[FieldNode]]]:
        """The fields selected on one type, by response key (a key selected twice is one field); read only."""
        selection_sets = list(selection_sets)
        memo = (concrete.name, tuple(id(s) for s in selection_sets))   # the nodes live as long as self.doc
        if memo in self._collected:
            return self._collected[memo]
        out: dict[str, tuple[graphql.GraphQLField, list[FieldNode]]] = {}
        self._collected[memo] = out

        def walk(sel: SelectionSetNode | None, seen: frozenset[str]) -> None:
            if sel is None:
                return
            for s in sel.selections:
                if isinstance(s, FieldNode):
                    fdef = concrete.fields.get(s.name.value)
                    if fdef is None:   # __typename and other meta fields cost nothing
                        continue
                    key = s.alias.value if s.alias else s.name.value
                    out.setdefault(key, (fdef, []))[1].append(s)
                elif isinstance(s, InlineFragmentNode):
                    if s.type_condition is None or self._applies(s.type_condition.name.value, concrete):
                        walk(s.selection_set, seen)
                elif isinstance(s, FragmentSpreadNode):
                    frag = self.fragments.get(s.name.value)
                    if frag is not None and s.name.value not in seen \
                            and self._applies(frag.type_condition.name.value, concrete):
                        walk(frag.selection_set, seen | {s.name.value})

        for selection_set in selection_sets:
            walk(selection_set, frozenset())
        return out

    def _applies(self, condition: str, concrete: graphql.GraphQLNamedType) -> bool:
        if condition == concrete.name:
            return True
        cond = self.schema.get_type(condition)
        if isinstance(cond, graphql.GraphQLInterfaceType | graphql.GraphQLUnionType) and \
                isinstance(concrete, graphql.GraphQLObjectType):
            return self.schema.is_sub_type(cond, concrete)
        return False

    def _selection(self, named: graphql.GraphQLNamedType, nodes: list[FieldNode], value: Any,
                   actual: bool) -> int:
        """The cost of what is selected below a composite field (without the field's own point)."""
        sets = [n.selection_set for n in nodes]
        if isinstance(named, graphql.GraphQLObjectType):
            candidates: list[graphql.GraphQLObjectType | graphql.GraphQLInterfaceType] = [named]
        elif isinstance(named, graphql.GraphQLInterfaceType | graphql.GraphQLUnionType):
            candidates = list(self.schema.get_possible_types(named))
            if actual and isinstance(value, dict) and isinstance(value.get("__typename"), str):
                typed = self.schema.get_type(value["__typename"])
                candidates = [typed] if isinstance(typed, graphql.GraphQLObjectType) else candidates
            if isinstance(named, graphql.GraphQLInterfaceType):
                candidates.append(named)
        else:
            return 0
        best = 0
        for concrete in candidates:
            cost = 0
            for key, (fdef, fnodes) in self._collect(concrete, sets).items():
                cost += self._field(fdef, fnodes, value.get(key) if isinstance(value, dict) else None, actual)
            best = max(best, cost)
        return best

    # -- fields ----------------------------------------------------------------------------------
    def _field(self, fdef: graphql.GraphQLField, nodes: list[FieldNode], value: Any, actual: bool) -> int:
        named = graphql.get_named_type(fdef.type)
        if not isinstance(named, _Composite):
            return 0   # scalars and enums
        if _is_connection(named):
            return self._connection(named, nodes, value, actual)
        if isinstance(graphql.get_nullable_type(fdef.type), graphql.GraphQLList):
            if actual:
                items = value if isinstance(value, list) else []
                return sum(OBJECT_COST + self._selection(named, nodes, item, True) for item in items
                           if item is not None)
            return self._list_size(nodes) * (OBJECT_COST + self._selection(named, nodes, None, False))
        if actual and value is None:
            return OBJECT_COST
        return OBJECT_COST + self._selection(named, nodes, value, actual)

    def _connection(self, conn: graphql.GraphQLObjectType, nodes: list[FieldNode], value: Any,
                    actual: bool) -> int:
        item_type = graphql.get_named_type(conn.fields["nodes"].type) if "nodes" in conn.fields else None
        edge_type = graphql.get_named_type(conn.fields["edges"].type) if "edges" in conn.fields else None
        fields = self._collect(conn, [n.selection_set for n in nodes])
        node_sel: list[FieldNode] = []
        items_selected = False
        other = 0
        for key, (fdef, fnodes) in fields.items():
            name = fnodes[0].name.value
            if name == "nodes":
                node_sel.extend(fnodes)
                items_selected = True
            elif name == "edges" and isinstance(edge_type, graphql.GraphQLObjectType):
                items_selected = True   # an edge and its node are one item; the cursor is a scalar
                for enodes in (e for _, e in self._collect(edge_type, [f.selection_set for f in fnodes]).values()):
                    if enodes[0].name.value == "node":
                        node_sel.extend(enodes)
            else:   # pageInfo (an object: 1), totalCount and the like
                other += self._field(fdef, fnodes, value.get(key) if isinstance(value, dict) else None, actual)
        if item_type is None or not items_selected:
            return CONNECTION_COST + other
        if actual:
            items = _items(value)
            return CONNECTION_COST + other + sum(
                OBJECT_COST + self._selection(item_type, node_sel, item, True) for item in items)
        per_node = OBJECT_COST + self._selection(item_type, node_sel, None, False)
        return CONNECTION_COST + other + self._page_size(nodes) * per_node

    # -- sizes -----------------------------------------------------------------------------------
    def _arg(self, node: FieldNode, name: str) -> Any:
        for a in node.arguments or ():
            if a.name.value == name:
                if isinstance(a.value, VariableNode):
                    return self.variables.get(a.value.name.value)
                return graphql.value_from_ast_untyped(a.value, self.variables)
        return None

    def _sizes(self, nodes: list[FieldNode]) -> list[int]:
        sizes = []
        for n in nodes:
            for name in ("first", "last"):
                v = self._arg(n, name)
                if isinstance(v, int) and not isinstance(v, bool):
                    sizes.append(max(0, v))
        return sizes

    def _page_size(self, nodes: list[FieldNode]) -> int:
        sizes = self._sizes(nodes)
        return max(sizes) if sizes else MAX_PAGE_SIZE

    def _list_size(self, nodes: list[FieldNode]) -> int:
        sizes = self._sizes(nodes)
        for n in nodes:
            ids = self._arg(n, "ids")
            if isinstance(ids, list):
                sizes.append(len(ids))
        return max(sizes) if sizes else 1


def _is_connection(t: graphql.GraphQLNamedType) -> bool:
    return (isinstance(t, graphql.GraphQLObjectType) and t.name.endswith("Connection")
            and "pageInfo" in t.fields and ("nodes" in t.fields or "edges" in t.fields))


def _items(value: Any) -> list[Any]:
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("nodes"), list):
        return [n for n in value["nodes"] if n is not None]
    edges = value.get("edges")
    if isinstance(edges, list):
        return [e.get("node") for e in edges if isinstance(e, dict) and e.get("node") is not None]
    return []


__all__ = ["MAX_QUERY_COST", "MUTATION_COST", "CostError", "actual_cost", "max_cost_exceeded_error",
           "requested_cost"]
