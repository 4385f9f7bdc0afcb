"""schemathesis against ``/api/v1/openapi.json`` served by the real Flask app (WSGI, real database, a real
token from ``o2c token create``, PostgreSQL): for every operation, examples generated from the document itself (valid
and invalid), answered without a server error and as the document says (status codes, content types,
bodies, headers). Bounded: 25 examples per operation."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from demo.simulators.shopify import webhook_headers
from tests.conftest import SHOPIFY_SECRET
from tests.web.test_api import add_user, new_token
from tests.web.test_hostile_input import NoDispatch
from web.api.openapi import document
from web.app import create_app

SUPPORT = "support@example.com"
EXAMPLES = 25   # per operation and generation mode
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@dataclass
class ServedApi:
    app: Flask
    token: str


@pytest.fixture
def served_api(make_hub, shop_factory, postgres_url) -> ServedApi:  # noqa: ANN001
    """PostgreSQL: the stricter of the two databases (INTEGER ids end at 2^31 - 1, no NUL in text)."""
    hub = make_hub(postgres_url)
    hub._dispatcher = NoDispatch()  # type: ignore[assignment] - answers are what is checked, not the work
    shop = shop_factory(hub)
    add_user(hub, SUPPORT)
    app = create_app(hub)
    for body in (b'{"name": "#1003"}', b'{"id": 450001, "name": "#1001"}'):   # a failed run and a pending one
        r = app.test_client().post("/webhooks/shopify", data=body, headers=webhook_headers(
            shop.domain, "orders/create", body, SHOPIFY_SECRET))
        assert r.status_code == 200
    return ServedApi(app, new_token(SUPPORT))


OPERATIONS = [(method.upper(), path) for path, item in document()["paths"].items() for method in item]


def takes_input(method: str, path: str) -> bool:
    """Whether the operation has anything a negative (invalid) example could be made of."""
    op = document()["paths"][path][method.lower()]
    return bool(op.get("parameters") or op.get("requestBody"))


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_as_documented(served_api: ServedApi, method: str, path: str) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", served_api.app)
    operation = schema[path][method]
    headers = {"Authorization": f"Bearer {served_api.token}"}
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if takes_input(method, path) else (
        GenerationMode.POSITIVE,)
    for mode in modes:

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                         HealthCheck.data_too_large])
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        one()
