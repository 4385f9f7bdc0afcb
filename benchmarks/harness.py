"""The benchmark harness: the simulated platforms (with their published limits and a latency), a hub wired to
them, and one function per figure. Each figure is measured in its own run and reported as a rate or ratio."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

SHOPIFY_SECRET = "bench-shopify-secret"


@dataclass
class Sims:
    shopify: Any
    quickbooks: Any
    hubspot: Any

    def all(self) -> tuple:
        return (self.shopify, self.quickbooks, self.hubspot)


@dataclass
class Shop:
    merchant_id: int
    domain: str
    realm: str
    portal: str


def start_sims(latency: float) -> Sims:
    from demo.simulators.hubspot import HubSpotSimulator
    from demo.simulators.quickbooks import QuickBooksSimulator
    from demo.simulators.shopify import ShopifySimulator

    sims = Sims(ShopifySimulator(latency), QuickBooksSimulator(latency), HubSpotSimulator(latency))
    for sim in sims.all():
        sim.start()
        sim.latency = latency
    return sims


def hub_env(sims: Sims, instance: Path, **extra: str) -> dict[str, str]:
    env = {"O2C_INSTANCE_PATH": str(instance), "O2C_DATABASE_URL": f"sqlite:///{instance / 'o2c.sqlite3'}",
           "SHOPIFY_API_SECRET": SHOPIFY_SECRET, "O2C_SHOPIFY_API_URL": sims.shopify.url,
           "O2C_QUICKBOOKS_API_URL": sims.quickbooks.url, "O2C_QUICKBOOKS_OAUTH_URL": sims.quickbooks.url,
           "O2C_HUBSPOT_API_URL": sims.hubspot.url, "O2C_CATCHUP_INTERVAL": "0", "O2C_ENCRYPTION_KEY": "",
           "OAUTHLIB_INSECURE_TRANSPORT": "1", "O2C_REDIS_URL": "", **extra}
    return env


class HubSession:
    """A hub in this process, configured through the environment as an operator would."""

    def __init__(self, sims: Sims, folder: Path, **extra: str) -> None:
        from hub.runtime import Hub, set_current_hub
        from hub.settings import Settings

        self.env = hub_env(sims, folder / "instance", **extra)
        self._saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        self.hub = Hub(Settings.from_env())
        set_current_hub(self.hub)
        self.sims = sims
        self._n = 0

    def shop(self) -> Shop:
        from hub.merchants import connect, create_merchant

        self._n += 1
        n, sims = self._n, self.sims
        domain, realm, portal = f"bench-{n}.myshopify.com", f"9000{n:04d}", f"bench-portal-{n}"
        sims.shopify.add_shop(domain)
        sims.quickbooks.add_company(realm)
        sims.hubspot.add_account(portal)
        with self.hub.session() as s:
            m = create_merchant(s, f"Bench merchant {n}")
            connect(s, self.hub.secrets, m, "shopify", domain, {"access_token": sims.shopify.issue_token(domain)})
            connect(s, self.hub.secrets, m, "quickbooks", realm, {
                "access_token": sims.quickbooks.issue_token(realm, expires_in=None), "refresh_token": "unused"})
            connect(s, self.hub.secrets, m, "hubspot", portal, {"access_token": sims.hubspot.issue_token(portal)})
            return Shop(m.id, domain, realm, portal)

    def close(self) -> None:
        from hub.runtime import set_current_hub

        self.hub.close()
        set_current_hub(None)
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def catalogue(customers: int, skus: int, rng: random.Random) -> tuple[list[dict], list[tuple[str, str, str]]]:
    people = [{"id": 700_000 + i, "email": f"buyer{i}@example.com", "first_name": f"Buyer{i}",
               "last_name": rng.choice(["Lovelace", "Babbage", "Hopper", "Turing", "Curie"])} for i in range(customers)]
    items = [(f"SKU-{i:03d}", f"Product {i}", f"{rng.randint(5, 120)}.{rng.choice(['00', '50', '99'])}")
             for i in range(skus)]
    return people, items


def add_orders(sims: Sims, shop: Shop, count: int, customers: int, skus: int, *, seed: int = 8,
               first_id: int = 5_000_000, days_ago: int = 20, first_number: int = 10_000) -> list[Any]:
    from demo.simulators.shopify_orders import random_order

    rng = random.Random(seed)
    people, items = catalogue(customers, skus, rng)
    start = datetime.now(UTC) - timedelta(days=days_ago)
    orders = []
    for i in range(count):
        o = random_order(rng, first_id + i, first_number + i, skus=items, customers=people,
                         created_at=start + timedelta(seconds=i))
        sims.shopify.add_order(shop.domain, o)
        orders.append(o)
    return orders


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) the running processes ``pids`` have used so far (Linux ``/proc``; a process
    gone, or another system, counts 0)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far (Linux ``/proc/stat``; zeros elsewhere)."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return float(sum(ticks) - idle), float(sum(ticks))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- 1. webhook ingest under gunicorn ---------------------------------------------------------------
def ingest(sims: Sims, folder: Path, *, webhooks: int, workers: int | None, clients: int = 16,
           mode: str = "embedded") -> dict[str, Any]:
    """``o2c serve`` under gunicorn answering ``webhooks`` signed Shopify webhooks from ``clients`` threads, in
    the embedded mode (SQLite, jobs in-process) or scale-out (PostgreSQL + Redis: jobs queued for workers)."""
    from demo.simulators.shopify import webhook_headers

    extra: dict[str, str] = {}
    database = None
    if mode == "scale-out":
        database = _scratch_database()
        extra = {"O2C_DATABASE_URL": database.replace("postgresql://", "postgresql+psycopg://", 1),
                 "O2C_REDIS_URL": BENCH_REDIS}
        _flush_redis()
    session = HubSession(sims, folder, **extra)
    try:
        shop = session.shop()
        deliveries = []
        warmup = 4 * clients
        for order in add_orders(sims, shop, webhooks + warmup, 500, 60, first_id=8_000_000, days_ago=0):
            body = json.dumps(order.webhook_body()).encode()
            deliveries.append((body, webhook_headers(shop.domain, "orders/create", body, SHOPIFY_SECRET)))
        port = free_port()
        args = [sys.executable, "-m", "cli.main", "serve", "--port", str(port)] + (
            ["--workers", str(workers)] if workers else [])
        with _served(args, {**os.environ, **session.env}, folder / "serve.log", port):
            latencies, wall = _drive(port, deliveries, warmup, clients)
        from hub.models import WebhookEvent

        with session.hub.session() as s:
            stored = s.scalar(select(func.count()).select_from(WebhookEvent)) or 0
    finally:
        session.close()
        if database is not None:
            _drop_database(database)
            _flush_redis()
    return {"sent": webhooks, "stored": stored - warmup, "rate": len(latencies) / wall,
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
            "workers": workers, "mode": mode}


def reference_ingest(folder: Path, *, webhooks: int, workers: int | None, clients: int = 16) -> dict[str, Any]:
    """The least a correct receiver does (``benchmarks.reference_receiver``: HMAC over the raw body, one inbox
    insert in PostgreSQL, one job pushed to Redis), under gunicorn with as many workers, driven alike."""
    from benchmarks import reference_receiver
    from demo.simulators.shopify import webhook_headers

    database = _scratch_database()
    try:
        reference_receiver.create_inbox(database)
        warmup = 4 * clients
        deliveries = []
        for i in range(webhooks + warmup):
            body = json.dumps({"id": 9_000_000 + i, "name": f"#{i}", "total_price": "10.00"}).encode()
            headers = webhook_headers("reference.myshopify.com", "orders/create", body, SHOPIFY_SECRET)
            deliveries.append((body, headers))
        port = free_port()
        count = workers or (2 * (os.cpu_count() or 1) + 1)
        args = [sys.executable, "-m", "gunicorn", "--workers", str(count), "--bind", f"127.0.0.1:{port}",
                "--log-level", "warning", "benchmarks.reference_receiver:app"]
        env = {**os.environ, "REF_DATABASE_URL": database, "REF_REDIS_URL": BENCH_REDIS, "REF_SECRET": SHOPIFY_SECRET}
        with _served(args, env, folder / "reference.log", port, health=None):
            latencies, wall = _drive(port, deliveries, warmup, clients)
        stored = reference_receiver.stored(database)
    finally:
        _drop_database(database)
        _flush_redis()
    return {"sent": webhooks, "stored": stored - warmup, "rate": len(latencies) / wall,
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000}


BENCH_POSTGRES = os.environ.get("O2C_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_REDIS = os.environ.get("O2C_BENCH_REDIS", "redis://127.0.0.1:6379/14")


def _scratch_database() -> str:
    import uuid

    import psycopg

    name = f"o2c_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(BENCH_POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return BENCH_POSTGRES.rsplit("/", 1)[0] + "/" + name


def _drop_database(url: str) -> None:
    import psycopg

    with psycopg.connect(BENCH_POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(BENCH_REDIS).flushdb()


class Workers:
    """``o2c worker`` processes for the block (their logs in ``folder``), stopped at its end."""

    def __init__(self, count: int, env: dict[str, str], folder: Path) -> None:
        self.count, self.env, self.folder = count, env, folder
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Any] = []

    def __enter__(self) -> Workers:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            for i in range(self.count):
                log = open(self.folder / f"worker-{i}.log", "wb")  # noqa: SIM115 - closed in __exit__
                self.logs.append(log)
                self.procs.append(subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], env=self.env,
                                                   stdout=log, stderr=subprocess.STDOUT))
        except BaseException:
            self.__exit__()
            raise
        return self

    def wait_registered(self, redis_url: str, timeout: float = 120.0) -> None:
        """Until every worker has registered with rq (raises when one exits first or time runs out)."""
        from redis import Redis
        from rq import Worker

        deadline = time.monotonic() + timeout
        with Redis.from_url(redis_url) as r:
            while len(Worker.all(connection=r)) < self.count:
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                    raise RuntimeError("the workers did not start (see their logs)")
                time.sleep(0.2)

    def __exit__(self, *_exc: object) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self.logs:
            log.close()


class _served:
    """A server process for the block: started, waited for, and stopped (its log in ``log_path``)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, port: int,
                 health: str | None = "/healthz") -> None:
        self.args, self.env, self.log_path, self.port, self.health = args, env, log_path, port, health

    def __enter__(self) -> _served:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(self.port, path=self.health)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.proc.send_signal(signal.SIGINT)   # gunicorn's quick shutdown: the figures are taken already
        self.proc.wait(timeout=60)
        self.log.close()


def _drive(port: int, deliveries: list[tuple[bytes, dict[str, str]]], warmup: int,
           clients: int) -> tuple[list[float], float]:
    """POST ``deliveries`` from ``clients`` threads on kept-alive connections: the first ``warmup`` of them to
    warm every worker up (imports, connections), then the rest, timed. Returns the latencies and the wall time."""
    latencies: list[float] = []
    lock = threading.Lock()
    todo = iter(range(warmup))

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                break
            body, headers = deliveries[i]
            t0 = time.perf_counter()
            conn.request("POST", "/webhooks/shopify", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - t0)
            if response.status != 200:
                raise RuntimeError(f"webhook answered {response.status}")
        conn.close()
        with lock:
            latencies.extend(mine)

    for batch in (range(warmup), range(warmup, len(deliveries))):
        latencies.clear()
        todo = iter(batch)
        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
    return latencies, wall


def _wait_healthy(port: int, timeout: float = 60.0, path: str | None = "/healthz") -> None:
    """Until the server answers ``path`` with 200 (``None``: until it accepts a connection)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            if path is None:
                conn.connect()
                return
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.05)
    raise RuntimeError(f"the server on port {port} did not become healthy")


# -- 2 and 3. backfill: calls per order and throughput against the QuickBooks ceiling ---------------
def backfill(sims: Sims, folder: Path, *, orders: int, customers: int, skus: int,
             listing: str = "auto") -> dict[str, Any]:
    """A batched backfill of ``orders`` orders; ``listing``: ``"bulk"`` (a Shopify bulk operation whatever the
    count), ``"paged"`` (pages of whole orders whatever the count) or ``"auto"`` (as the hub chooses)."""
    import sync.backfill as backfill_module

    session = HubSession(sims, folder)
    shop = session.shop()
    add_orders(sims, shop, orders, customers, skus)
    for sim in sims.all():
        with sim.lock:
            sim.calls.clear()
    chosen = backfill_module.BULK_MIN_ORDERS
    backfill_module.BULK_MIN_ORDERS = {"bulk": 1, "paged": 10**12}.get(listing, chosen)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        result = backfill_module.backfill(session.hub, shop.merchant_id, date.today() - timedelta(days=60),
                                          batched=True)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        backfill_module.BULK_MIN_ORDERS = chosen
    statuses = result.statuses or {}
    synced = sum(1 for s in statuses.values() if s in ("succeeded", "skipped"))
    qb = sims.quickbooks
    created = sum(len(qb.objects(shop.realm, e)) for e in ("Customer", "Item", "Invoice", "Payment"))
    calls = {"shopify": sims.shopify.count_calls(),
             "quickbooks": qb.count_calls(lambda c: "/v3/company/" in c.path),
             "hubspot": sims.hubspot.count_calls()}
    throttled = {"quickbooks": qb.count_calls(lambda c: c.status == 429),
                 "hubspot": sims.hubspot.count_calls(lambda c: c.status == 429)}
    batches = qb.count_calls(lambda c: c.path.endswith("/batch") and c.status == 200)
    session.close()
    ops_per_order = created / max(1, synced)
    ceiling = (qb.batch_requests_per_minute / 60 * qb.max_batch_items) / max(ops_per_order, 1e-9)
    return {"orders": orders, "synced": synced, "failed": sum(1 for s in statuses.values() if s == "failed"),
            "seconds": wall, "cpu_seconds": cpu, "rate": synced / wall, "calls": calls, "batches": batches,
            "throttled": throttled,
            "per_order": {k: v / max(1, synced) for k, v in calls.items()}, "ops_per_order": ops_per_order,
            "ops_per_batch": created / max(1, batches), "ceiling": ceiling,
            "percent": 100 * (synced / wall) / ceiling, "listing": listing}


# -- 5. peak memory of a worker syncing many orders -------------------------------------------------
def memory(sims: Sims, folder: Path, *, orders: int) -> dict[str, Any]:
    """A separate worker process runs the backfill of ``orders`` orders (limits lifted: the figure is memory,
    not speed); it reports its resident memory as it goes and its peak."""
    session = HubSession(sims, folder)
    shop = session.shop()
    add_orders(sims, shop, orders, max(1, orders // 5), 60, first_id=20_000_000)
    qb = sims.quickbooks
    qb.requests_per_minute = qb.batch_requests_per_minute = qb.max_concurrent = 10**9
    sims.shopify.set_throttle(maximum_available=10**9, restore_rate=10**9)
    sims.hubspot.rate_limit = 10**9
    env = {**os.environ, **session.env}
    session.close()
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory_child", str(shop.merchant_id)], env=env,
                         capture_output=True, text=True, timeout=24 * 3600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"memory worker failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="o2c-bench-"))


@contextlib.contextmanager
def simulated(latency: float) -> Iterator[tuple[Sims, Path]]:
    """The simulated platforms (answering after ``latency`` seconds) and a scratch folder for a benchmark's
    command line; both gone after the block. Only errors are logged meanwhile."""
    import logging
    import shutil

    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sims, folder = start_sims(latency), scratch()
    try:
        yield sims, folder
    finally:
        for sim in sims.all():
            sim.stop()
        shutil.rmtree(folder, ignore_errors=True)
