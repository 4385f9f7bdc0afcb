"""Shared fixtures: real PostgreSQL and Redis (the suite fails, never skips, without them), the
simulated platforms over real HTTP, and a hub wired to them."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient

from demo.simulators.hubspot import HubSpotSimulator
from demo.simulators.quickbooks import QuickBooksSimulator
from demo.simulators.shopify import ShopifySimulator
from demo.simulators.woocommerce import WooCommerceSimulator
from hub.merchants import connect, create_merchant
from hub.runtime import Hub, set_current_hub
from hub.settings import Settings
from web.app import create_app

PG_ADMIN = os.environ.get("O2C_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _worker_redis_url(base: str, worker: str | None) -> str:
    """The Redis database of this pytest process: ``base``'s own without pytest-xdist, else ``base``'s plus the
    worker's index (gw0 → base, gw1 → base + 1, ...), so that no worker flushes another's jobs away."""
    if not worker or not worker.startswith("gw"):
        return base
    parts = urlsplit(base)
    db = int(parts.path.strip("/") or 0) + int(worker[2:])
    return urlunsplit(parts._replace(path=f"/{db}"))


# the default db 11 and, under pytest-xdist, 12, 13, ... (one per worker)
REDIS_URL = _worker_redis_url(os.environ.get("O2C_TEST_REDIS_URL", "redis://127.0.0.1:6379/11"),
                              os.environ.get("PYTEST_XDIST_WORKER"))
SHOPIFY_SECRET = "shpss_test_webhook_secret"
QB_CLIENT = ("qb-test-client", "qb-test-secret")
HS_CLIENT = ("hs-test-client", "hs-test-secret")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(f"PostgreSQL is required for the tests and is not reachable at {PG_ADMIN}: {exc}")
    return PG_ADMIN


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"o2c_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required for the tests and is not reachable at {REDIS_URL}: {exc}")
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'o2c.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@dataclass
class Platforms:
    shopify: ShopifySimulator
    quickbooks: QuickBooksSimulator
    hubspot: HubSpotSimulator
    woocommerce: WooCommerceSimulator

    def all(self) -> tuple:
        return (self.shopify, self.quickbooks, self.hubspot, self.woocommerce)


@pytest.fixture(scope="session")
def _platform_servers() -> Iterator[Platforms]:
    sims = Platforms(ShopifySimulator(), QuickBooksSimulator(), HubSpotSimulator(), WooCommerceSimulator())
    for sim in sims.all():
        sim.start()
    yield sims
    for sim in sims.all():
        sim.stop()


@pytest.fixture
def platforms(_platform_servers: Platforms) -> Platforms:
    """The simulated platforms, emptied for each test."""
    for sim in _platform_servers.all():
        sim.reset()
    _platform_servers.quickbooks.register_app(*QB_CLIENT)
    _platform_servers.hubspot.register_app(*HS_CLIENT)
    return _platform_servers


def hub_env(platforms: Platforms, instance: Path, database_url: str, redis_url: str | None = None) -> dict[str, str]:
    """The environment an operator would set to point the hub at the simulated platforms."""
    env = {
        "O2C_INSTANCE_PATH": str(instance),
        "O2C_DATABASE_URL": database_url,
        "SHOPIFY_API_SECRET": SHOPIFY_SECRET,
        "O2C_SHOPIFY_API_URL": platforms.shopify.url,
        "O2C_QUICKBOOKS_API_URL": platforms.quickbooks.url,
        "O2C_QUICKBOOKS_OAUTH_URL": platforms.quickbooks.url,
        "O2C_HUBSPOT_API_URL": platforms.hubspot.url,
        "QUICKBOOKS_CLIENT_ID": QB_CLIENT[0], "QUICKBOOKS_CLIENT_SECRET": QB_CLIENT[1],
        "HUBSPOT_CLIENT_ID": HS_CLIENT[0], "HUBSPOT_CLIENT_SECRET": HS_CLIENT[1],
        "O2C_BACKOFF_BASE": "0.2", "O2C_BACKOFF_CAP": "1", "O2C_SWEEP_INTERVAL": "0.3",
        "O2C_CATCHUP_INTERVAL": "0",
        "O2C_RUN_LEASE_SECONDS": "3", "O2C_ENCRYPTION_KEY": "",
        "OAUTHLIB_INSECURE_TRANSPORT": "1",
    }
    if redis_url:
        env["O2C_REDIS_URL"] = redis_url
        env["O2C_QUEUE"] = f"o2c-test-{uuid.uuid4().hex[:8]}"
    return env


@pytest.fixture
def make_hub(platforms: Platforms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Build a hub from the environment an operator would set (embedded unless ``redis_url`` given)."""
    hubs: list[Hub] = []

    def build(database_url: str | None = None, redis_url: str | None = None, **env: str) -> Hub:
        """``env``: further variables (e.g. ``O2C_CATCHUP_INTERVAL="1"``) over the test defaults."""
        url = database_url or f"sqlite:///{tmp_path / 'o2c.sqlite3'}"
        for key, value in {**hub_env(platforms, tmp_path / "instance", url, redis_url), **env}.items():
            monkeypatch.setenv(key, value)
        hub = Hub(Settings.from_env())
        set_current_hub(hub)
        hubs.append(hub)
        return hub

    yield build
    for hub in hubs:
        hub.close()
    set_current_hub(None)


@dataclass
class Shop:
    merchant_id: int
    domain: str
    realm: str
    portal: str


@pytest.fixture
def shop_factory(platforms: Platforms):  # noqa: ANN201
    """A merchant connected to a simulated shop, QuickBooks company and HubSpot account."""
    counter = iter(range(1, 10_000))

    def build(hub: Hub, *, qb_token_ttl: float | None = 3600) -> Shop:
        n = next(counter)
        domain, realm, portal = f"shop-{n}.myshopify.com", f"12345{n:04d}", f"portal-{n}"
        platforms.shopify.add_shop(domain)
        platforms.quickbooks.add_company(realm)
        platforms.hubspot.add_account(portal)
        with hub.session() as s:
            m = create_merchant(s, f"Merchant {n}")
            connect(s, hub.secrets, m, "shopify", domain, {"access_token": platforms.shopify.issue_token(domain)})
            connect(s, hub.secrets, m, "quickbooks", realm, {
                "access_token": platforms.quickbooks.issue_token(realm, expires_in=qb_token_ttl),
                "refresh_token": platforms.quickbooks.issue_refresh_token(realm, QB_CLIENT[0])})
            connect(s, hub.secrets, m, "hubspot", portal, {"access_token": platforms.hubspot.issue_token(portal)})
            return Shop(m.id, domain, realm, portal)

    return build


@pytest.fixture(scope="session", autouse=True)
def _no_process_outlives_the_suite() -> Iterator[None]:
    """Every process a test starts inherits this marker; at the end none may still be alive (a leaked
    worker or server fails the suite, and is ended so it does not linger)."""
    marker = f"O2C_TEST_SESSION={uuid.uuid4().hex}".encode()
    os.environ["O2C_TEST_SESSION"] = marker.decode().split("=", 1)[1]
    yield
    deadline = time.monotonic() + 10
    while (left := _marked_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid, _ in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if left:
        pytest.fail("processes started by the tests outlived them: " + "; ".join(cmd for _, cmd in left))


def _marked_processes(marker: bytes) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                if (entry / "stat").read_text().split(") ", 1)[1][:1] != "Z":   # a zombie is already gone
                    found.append((int(entry.name), cmd))
        except OSError:
            continue
    return found


# -- Flask-style fixtures: one hub wired to the simulators, its app, a test client and the o2c command --------
@pytest.fixture
def hub(make_hub) -> Hub:  # noqa: ANN001
    """An embedded hub (SQLite) pointed at the simulated platforms."""
    return make_hub()


@pytest.fixture
def shop(hub: Hub, shop_factory) -> Shop:  # noqa: ANN001
    """A merchant of ``hub`` connected to a simulated shop, QuickBooks company and HubSpot account."""
    return shop_factory(hub)


@pytest.fixture
def app(hub: Hub) -> Flask:
    return create_app(hub)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    """``app`` served over real HTTP on 127.0.0.1 (for a browser, or a platform that calls the hub back)."""
    from tests.helpers import served

    with served(app) as base:
        yield base


class O2CRunner:
    """``o2c`` invoked in-process against the hub of the test's environment."""

    def invoke(self, args: list[str], **kwargs: object) -> Result:
        from cli.main import main

        return CliRunner().invoke(main, args, **kwargs)


@pytest.fixture
def runner(hub: Hub) -> O2CRunner:
    return O2CRunner()
