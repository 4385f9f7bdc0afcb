"""No secret in clear anywhere the hub writes or shows, and ``o2c rotate-key``.

Every access token, refresh token and client secret used while the three OAuth flows run, syncs go
through, tokens are refreshed (ahead of expiry and on a 401) and flows are refused, is looked for in:
the log at DEBUG (every logger, the SDKs' included), the refusal pages, the console pages, the JSON API,
``o2c syncs list|show --json`` and a dump of every database table (``connections.secrets`` is raw
Fernet ciphertext). ``o2c rotate-key`` re-encrypts under the new first key, in batches, idempotently,
keeps a value a worker rewrote meanwhile, and the hub works with both keys listed while it runs.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
import requests
from click.testing import CliRunner
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, update

import cli.keys
from cli.main import main as o2c
from hub.crypto import SecretBox
from hub.merchants import connect, create_merchant
from hub.models import Connection, SyncRun, utcnow
from hub.runtime import Hub
from hub.settings import Settings
from hub.users import create_user
from sync.accounts import Accounts
from tests.conftest import HS_CLIENT, QB_CLIENT, SHOPIFY_SECRET
from tests.helpers import an_order, settled, wait_until
from tests.web.test_compliance import dump
from tests.web.test_oauth import PASSWORD, Web, connect_hubspot, web  # noqa: F401 - the ``web`` fixture


def issued(web: Web) -> set[str]:  # noqa: F811
    """Every token the fakes ever issued (access and refresh), and the apps' client secrets."""
    p = web.platforms
    found = {SHOPIFY_SECRET, QB_CLIENT[1], HS_CLIENT[1]}
    for sim in (p.shopify, p.quickbooks, p.hubspot):
        found |= set(sim.tokens)
    found |= set(p.quickbooks.refresh_tokens) | set(p.hubspot.refresh_tokens) | set(p.shopify.app_state.refresh)
    return {t for t in found if t and len(t) >= 8}


def test_no_secret_in_logs_errors_pages_api_cli_or_database(web: Web, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.DEBUG)
    p, base = web.platforms, web.base
    shown: list[str] = []   # every answer a person or a script saw

    # the three flows: a new shop (expiring token), then its merchant's books and CRM
    shop = p.shopify.add_shop("secret-shop.myshopify.com")
    shown.append(web.browser().get(f"{base}/connect/shopify", params={"shop": shop}, timeout=10).text)
    [store] = web.connections("shopify")
    with web.hub.session() as s:
        create_user(s, "owner@secret.example", PASSWORD, "merchant", store.merchant_id)
        create_user(s, "admin@secret.example", PASSWORD, "admin")
    p.quickbooks.add_company("4620816")
    owner = web.browser("owner@secret.example")
    shown.append(owner.get(f"{base}/connect/quickbooks", timeout=10).text)
    shown.append(connect_hubspot(web, owner, "5150").text)

    # syncs, with every kind of refresh on the way
    web.send(shop, an_order(450_001, 1001))
    p.hubspot.expire_tokens()                                      # a 401, then a refresh
    with web.hub.session() as s:                                   # ahead of expiry
        s.execute(update(Connection).values(token_expires_at=utcnow() + timedelta(minutes=1)))
    web.send(shop, an_order(450_002, 1002))
    assert [r.status for r in settled(web.hub)] == ["succeeded", "succeeded"]
    assert p.quickbooks.refresh_count >= 1 and p.shopify.app_state.refreshes >= 1

    # refusals: a replayed QuickBooks code, a made-up HubSpot code, a forged Shopify callback
    r = owner.get(f"{base}/connect/quickbooks", allow_redirects=False, timeout=10)
    callback = requests.get(r.headers["Location"], allow_redirects=False, timeout=10).headers["Location"]
    shown.append(owner.get(callback, timeout=10).text)
    shown.append(owner.get(callback, timeout=10).text)
    shown.append(owner.get(f"{base}/connect/hubspot/callback", params={"code": "x", "state": "y"}, timeout=10).text)
    shown.append(requests.get(f"{base}/connect/shopify/callback", params={"shop": shop, "hmac": "0"},
                              timeout=10).text)
    # a refresh that fails for good: the run waits, its reason is shown
    p.quickbooks.expire_tokens()
    with p.quickbooks.lock:
        p.quickbooks.refresh_tokens.clear()
    web.send(shop, an_order(450_003, 1003))
    wait_until(lambda: web.connections("quickbooks")[0].status == "needs_reconnect")

    # what people and scripts see
    admin = web.browser("admin@secret.example")
    with web.hub.session() as s:
        run_ids = list(s.scalars(select(SyncRun.id)))
    for path in ["/console/connections", "/console/runs", "/console/failures", "/console/audit", "/console/staff",
                 *[f"/console/runs/{i}" for i in run_ids]]:
        for browser in (admin, owner):
            page = browser.get(f"{base}{path}", timeout=10)
            assert page.status_code in (200, 404), path
            shown.append(page.text)
    if "api" in web.app.blueprints:
        from web.api.tokens import create_token

        with web.hub.session() as s:
            _, api_token = create_token(s, "admin@secret.example", "secrets test")
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {api_token}"
        for path in ["/runs", "/failures", *[f"/runs/{i}" for i in run_ids]]:
            shown.append(api.get(f"{base}/api/v1{path}", timeout=10).text)
    runner = CliRunner()
    for args in (["syncs", "list", "--json"], *[["syncs", "show", str(i), "--json"] for i in run_ids]):
        result = runner.invoke(o2c, args)
        assert result.exit_code == 0, result.output
        shown.append(result.output)

    secrets = issued(web)
    for conn in web.connections():
        secrets |= {v for v in web.secrets(conn.id).values() if v} if conn.secrets else set()
    assert len(secrets) >= 10          # the flows really issued tokens
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert not re.search(r"/oauth/v1/(access|refresh)-tokens/(?!\[redacted\])", logged)   # paths masked
    haystacks = {"log": logged, "answers": "\n".join(shown), "database": dump(web.hub)}
    for where, text in haystacks.items():
        leaked = sorted(s[:6] + "…" for s in secrets if s in text)
        assert not leaked, f"secrets in the {where}: {leaked}"
    assert re.search(r"gAAAAA[\w-]{40,}", haystacks["database"])      # the secrets column is ciphertext


# -- o2c rotate-key ------------------------------------------------------------------------------
def _raw(hub: Hub) -> dict[int, str]:
    with hub.session() as s:
        return {c.id: c.secrets for c in s.scalars(select(Connection).order_by(Connection.id))}


def test_rotate_key_reencrypts_in_batches_idempotently_while_the_hub_runs(
        make_hub, shop_factory, platforms, database_url, monkeypatch) -> None:  # noqa: ANN001
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    hub_old = make_hub(database_url, O2C_ENCRYPTION_KEY=old)
    shop = shop_factory(hub_old)
    with hub_old.session() as s:
        other = create_merchant(s, "Second")
        for n in range(4):
            connect(s, hub_old.secrets, other, "quickbooks", f"77000{n}", {"access_token": f"tok-{n}-" + "x" * 20,
                                                                         "refresh_token": f"ref-{n}-" + "y" * 20})
    before = _raw(hub_old)
    assert len(before) == 7

    # every process gets "new,old"; the hub keeps working on values under either key
    monkeypatch.setenv("O2C_ENCRYPTION_KEY", f"{new},{old}")
    both = Hub(Settings.from_env())
    try:
        assert Accounts(both, shop.merchant_id).quickbooks().preferences()

        # a worker refreshes a token in the middle of the rotation: its value (under the new key) is kept
        worker_wrote: list[int] = []
        real_rotate = cli.keys.MultiFernet.rotate

        def rotate_while_a_worker_writes(self, token):  # noqa: ANN001, ANN202
            if not worker_wrote:
                with both.session() as s:
                    row = s.scalar(select(Connection).where(Connection.secrets == token.decode()))
                    row.secrets = both.secrets.encrypt({"access_token": "refreshed-by-a-worker"})
                    worker_wrote.append(row.id)
            return real_rotate(self, token)

        monkeypatch.setattr(cli.keys.MultiFernet, "rotate", rotate_while_a_worker_writes)
        result = CliRunner().invoke(o2c, ["rotate-key", "--batch-size", "2"])
        assert result.exit_code == 0, result.output
        assert result.output.split()[-1] == "6" and "1 already under the current key" in result.output
        monkeypatch.setattr(cli.keys.MultiFernet, "rotate", real_rotate)

        after = _raw(both)
        primary = Fernet(new.encode())
        assert all(primary.decrypt(v.encode()) for v in after.values())
        assert all(after[i] != before[i] for i in after)
        assert both.secrets.decrypt(after[worker_wrote[0]]) == {"access_token": "refreshed-by-a-worker"}
        with pytest.raises(InvalidToken):
            Fernet(old.encode()).decrypt(after[shop_conn := min(after)].encode())
        assert SecretBox([new]).decrypt(after[shop_conn])          # the old key can now be dropped

        again = CliRunner().invoke(o2c, ["rotate-key"])
        assert again.exit_code == 0 and again.output.split()[-1] == "0" and _raw(both) == after
        assert Accounts(both, shop.merchant_id).quickbooks().preferences()

        # a value no configured key opens: named (by row, never by content), exit 1
        with both.session() as s:
            s.execute(update(Connection).where(Connection.id == shop_conn)
                      .values(secrets=Fernet(Fernet.generate_key()).encrypt(b"{}").decode()))
        broken = CliRunner().invoke(o2c, ["rotate-key"])
        assert broken.exit_code == 1 and f"connections {shop_conn}" in broken.output
    finally:
        both.close()
