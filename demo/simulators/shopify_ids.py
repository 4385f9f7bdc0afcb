"""How Shopify's GraphQL Admin API treats ``ID`` variables that are not global ids.

Shopify coerces every variable before it runs anything (graphql-ruby). A value of an ``ID`` variable
that is not a global id (``gid://shopify/{object_name}/{id}``, see shopify.dev "Global IDs in Shopify
APIs") refuses the **whole document**: the answer has an error per bad variable and no ``data`` at all,
e.g.::

    {"errors": [{"message": "Variable $id3 of type ID! was provided invalid value",
                 "locations": [{"line": 1, "column": 52}],
                 "extensions": {"value": "gid://shopify/Order/²",
                                "problems": [{"path": [], "explanation": "Invalid global id 'gid://shopify/Order/²'",
                                              "message": "Invalid global id 'gid://shopify/Order/²'"}]}}]}

(public reports of this shape: Shopify/js-buy-sdk#728, inspireui/support#676, r0busta/go-shopify-graphql#11).
So one bad id among the aliases of a query fails every order the query asked for, which is what the hub
must cope with; the simulator does the same, never answering the good aliases.
"""

from __future__ import annotations

import re
from typing import Any

import graphql
from graphql.language import ListTypeNode, NonNullTypeNode, OperationDefinitionNode, TypeNode

#: ``gid://shopify/Order/123`` (digits in ASCII only), optionally with parameters (``?inventory_item_id=…``).
GLOBAL_ID = re.compile(r"gid://shopify/[A-Za-z][A-Za-z0-9]*/[0-9]+(\?[^\s]*)?", re.ASCII)


def _type_text(node: TypeNode) -> str:
    return graphql.print_ast(node)


def _named(node: TypeNode) -> str:
    while isinstance(node, NonNullTypeNode | ListTypeNode):
        node = node.type
    return node.name.value  # type: ignore[attr-defined]


def _values(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [v for item in value for v in _values(item)]
    return [value]


def invalid_id_variables(op: OperationDefinitionNode, variables: dict[str, Any]) -> list[dict[str, Any]]:
    """The errors Shopify answers for the ``ID`` variables of ``op`` whose values are not global ids (empty
    when every one is fine; then the document may run)."""
    errors: list[dict[str, Any]] = []
    variables = variables if isinstance(variables, dict) else {}
    for definition in op.variable_definitions or ():
        if _named(definition.type) != "ID":
            continue
        name = definition.variable.name.value
        bad = next((v for v in _values(variables.get(name)) if v is not None
                    and not (isinstance(v, str) and GLOBAL_ID.fullmatch(v))), None)
        if bad is None:
            continue
        explanation = f"Invalid global id '{bad}'"
        loc = definition.loc.source.get_location(definition.loc.start) if definition.loc else None
        errors.append({"message": f"Variable ${name} of type {_type_text(definition.type)} was provided invalid value",
                       "locations": [{"line": loc.line, "column": loc.column}] if loc else [],
                       "extensions": {"value": variables.get(name),
                                      "problems": [{"path": [], "explanation": explanation,
                                                    "message": explanation}]}})
    return errors
