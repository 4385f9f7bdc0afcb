"""Every GraphQL document the hub sends to Shopify validates against Shopify's published schema."""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

import graphql
import pytest

from connectors import shopify_queries

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_NAME = "shopify-admin-graphql-2025-01.introspection.json.gz"
SHARED_COPY = REPO_ROOT.parent / "shared" / "vendor-specs" / SCHEMA_NAME
PACKAGE_COPY = REPO_ROOT / "demo" / "simulators" / SCHEMA_NAME


@lru_cache(maxsize=1)
def _schema() -> graphql.GraphQLSchema:
    path = SHARED_COPY if SHARED_COPY.exists() else PACKAGE_COPY
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    schema = graphql.build_client_schema(data["data"])
    # The published schema has deprecation inconsistencies graphql-core would reject.
    schema._validation_errors = []
    return schema


def test_documents_listed():
    names = {n for n in dir(shopify_queries) if n.isupper() and isinstance(getattr(shopify_queries, n), str)
             and ("query " in getattr(shopify_queries, n) or "mutation " in getattr(shopify_queries, n))}
    assert names == set(shopify_queries.DOCUMENTS)


@pytest.mark.parametrize("name", sorted(shopify_queries.DOCUMENTS))
def test_document_validates_against_shopify_schema(name):
    doc = shopify_queries.DOCUMENTS[name]
    errors = graphql.validate(_schema(), graphql.parse(doc))
    assert errors == [], [e.message for e in errors]


def test_order_query_pages_line_items():
    doc = graphql.parse(shopify_queries.ORDER_QUERY)
    op = doc.definitions[0]
    assert {v.variable.name.value for v in op.variable_definitions} == {"id", "linesAfter"}
    assert f"lineItems(first: {shopify_queries.LINES_PAGE_SIZE}, after: $linesAfter)" in shopify_queries.ORDER_QUERY
    assert "pageInfo { hasNextPage endCursor }" in shopify_queries.ORDER_QUERY


def test_schema_copies_identical():
    if not (SHARED_COPY.exists() and PACKAGE_COPY.exists()):
        pytest.skip("only one copy of the schema is present")
    assert SHARED_COPY.read_bytes() == PACKAGE_COPY.read_bytes()
