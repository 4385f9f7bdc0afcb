"""Privacy and lifecycle webhooks with header values longer than the inbox columns: refused or stored, never a 500."""

from __future__ import annotations

import json

import pytest

from demo.simulators.shopify import webhook_headers
from tests.conftest import SHOPIFY_SECRET
from web.app import create_app


@pytest.mark.parametrize("topic", ["customers/redact", "customers/data_request", "shop/redact", "app/uninstalled"])
def test_a_long_shop_domain_and_delivery_id_never_raise_a_server_error(make_hub, shop_factory, postgres_url,  # noqa: ANN001
                                                                        topic: str) -> None:
    hub = make_hub(database_url=postgres_url)
    shop_factory(hub)
    raw = json.dumps({"customer": {"id": 1}}).encode()
    h = webhook_headers("é" * 300, topic, raw, SHOPIFY_SECRET, webhook_id="é" * 300)
    r = create_app(hub).test_client().post("/webhooks/shopify", data=raw, headers=h)
    assert r.status_code < 500, r.get_data(as_text=True)
