"""Webhook-to-invoice latency at a steady rate, with the hub in its own processes as it is deployed.

``python -m benchmarks.latency [--mode scale-out|embedded] [--rate 20] [--seconds 30] [--merchants 10]``
(the rows are ``rows(...)``, for the ``make bench`` printer). ``o2c serve`` (gunicorn) and, in the scale-out
mode, ``--workers`` ``o2c worker`` processes run on their own, against the simulated platforms of this
process (their published limits and ``--latency``); in the embedded mode ``o2c serve`` runs the jobs itself
on SQLite. This process sends signed ``orders/create`` webhooks at ``--rate`` a second, spread round-robin
over ``--merchants`` shops, each at its moment whatever the answers before it took (an open loop, as a
store's traffic is). Each order's latency runs from the moment its webhook was sent to the moment its
invoice binding was written; the stages of the median order (stored in the inbox, its run opened, its first
attempt started, invoiced) tell where the time went, and the CPU of the hub's processes, of this process
(the simulators and the sender) and of the whole machine tell whether it was spent waiting or computing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks import harness

STAGES = ("stored", "routed", "started", "invoiced")
SHOPIFY_PLANS = {"standard": 100.0, "plus": 1000.0}   # GraphQL cost points restored a second


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


class _Sender:
    """Posts each planned webhook at its moment from a few kept-alive connections (an open loop)."""

    def __init__(self, port: int, connections: int = 8) -> None:
        self.port = port
        self.todo: queue.Queue[tuple[float, str, bytes, dict[str, str]] | None] = queue.Queue()
        self.sent: dict[str, datetime] = {}
        self.statuses: dict[int, int] = {}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._post, daemon=True) for _ in range(connections)]
        for t in self.threads:
            t.start()

    def _post(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while (item := self.todo.get()) is not None:
            at, order_id, body, headers = item
            pause = at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent = datetime.now(UTC).replace(tzinfo=None)
            try:
                conn.request("POST", "/webhooks/shopify", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                status = 0
            with self.lock:
                self.sent[order_id] = sent
                self.statuses[status] = self.statuses.get(status, 0) + 1
        conn.close()

    def close(self) -> None:
        for _ in self.threads:
            self.todo.put(None)
        for t in self.threads:
            t.join()


def steady(sims: harness.Sims, folder: Path, *, rate: float, seconds: float, merchants: int,
           mode: str = "scale-out", workers: int = 4, gunicorn_workers: int | None = None,
           warm_up: float = 0.0, shopify_plan: str = "plus", timeout: float = 300.0) -> dict[str, Any]:
    """Webhooks at ``rate`` a second for ``seconds`` over ``merchants`` shops; the latencies and stages.
    ``warm_up``: seconds of the same traffic first, untimed, so that the timed orders meet a hub in its
    steady state (most buyers and every SKU already in QuickBooks and bound), as a merchant's do after its
    first days. ``shopify_plan``: the shops' GraphQL cost bucket, ``plus`` (1,000 points/s) or ``standard``
    (100 points/s: at about 70 points an order pulled, a Standard shop sustains some 1.4 orders/s, less than
    the 2 a second of each shop here; a shop with that many orders is on Plus)."""
    from demo.simulators.shopify import webhook_headers
    from hub.models import Binding, SyncAttempt, SyncRun, WebhookEvent

    database = None
    extra: dict[str, str] = {"O2C_SWEEP_INTERVAL": "1"}
    if mode == "scale-out":
        database = harness._scratch_database()
        extra.update(O2C_DATABASE_URL=database.replace("postgresql://", "postgresql+psycopg://", 1),
                     O2C_REDIS_URL=harness.BENCH_REDIS)
        harness._flush_redis()
    else:
        extra.update(O2C_EMBEDDED_THREADS=str(max(4, 2 * merchants)))
    session = harness.HubSession(sims, folder, **extra)
    try:
        shops = [session.shop() for _ in range(merchants)]
        restore = SHOPIFY_PLANS[shopify_plan]
        sims.shopify.set_throttle(maximum_available=10 * restore, restore_rate=restore)
        count, warm_count = max(1, int(rate * seconds)), int(rate * warm_up)

        def planned(n: int, first_id: int, first_number: int) -> list[tuple[str, bytes, dict[str, str]]]:
            out = []
            for i in range(n):
                shop = shops[i % merchants]
                [order] = harness.add_orders(sims, shop, 1, 50, 20, seed=first_id + i, first_id=first_id + i,
                                             days_ago=0, first_number=first_number + i)
                body = json.dumps(order.webhook_body()).encode()
                out.append((str(order.order_id), body,
                            webhook_headers(shop.domain, "orders/create", body, harness.SHOPIFY_SECRET)))
            return out

        warm, plan = planned(warm_count, 8_000_000, 50_000), planned(count, 9_000_000, 60_000)
        env = {**os.environ, **session.env}
        port = harness.free_port()
        serve = [sys.executable, "-m", "cli.main", "serve", "--port", str(port)] + (
            ["--workers", str(gunicorn_workers)] if gunicorn_workers else [])
        with harness._served(serve, env, folder / "serve.log", port) as served, \
                harness.Workers(workers if mode == "scale-out" else 0, env, folder) as job_processes:
            if mode == "scale-out":
                job_processes.wait_registered(harness.BENCH_REDIS)
            hub_pids = _descendants(served.proc.pid) + [p.pid for p in job_processes.procs]
            if warm:
                _send(port, warm, rate)
                _wait_invoiced(session, len(warm), timeout)
            for sim in sims.all():
                with sim.lock:
                    sim.calls.clear()
            hub_before, own_before, machine_before = harness.cpu_seconds(hub_pids), time.process_time(), \
                harness.machine_busy()
            sender = _send(port, plan, rate)
            done = _wait_invoiced(session, warm_count + count, timeout)
            hub_cpu = harness.cpu_seconds(hub_pids) - hub_before
            own = time.process_time() - own_before
            machine = [a - b for a, b in zip(harness.machine_busy(), machine_before, strict=True)]
            with session.hub.session() as s:
                stored = dict(s.execute(select(SyncRun.source_id, func.min(WebhookEvent.received_at))
                                        .join(WebhookEvent, WebhookEvent.sync_run_id == SyncRun.id)
                                        .group_by(SyncRun.source_id)).all())
                routed = dict(s.execute(select(SyncRun.source_id, func.min(SyncRun.created_at))
                                        .group_by(SyncRun.source_id)).all())
                first = dict(s.execute(select(SyncRun.source_id, func.min(SyncAttempt.started_at))
                                       .join(SyncAttempt, SyncAttempt.run_id == SyncRun.id)
                                       .group_by(SyncRun.source_id)).all())
                failed = s.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.status == "failed")) or 0
                bindings = (s.scalar(select(func.count()).select_from(Binding).where(
                    Binding.source_type == "order", Binding.target_type == "invoice")) or 0) - warm_count
            throttled = {sim.__class__.__name__.replace("Simulator", ""): sim.count_calls(lambda c: c.status == 429)
                         for sim in sims.all()}
            calls = {sim.__class__.__name__.replace("Simulator", ""): sim.count_calls() for sim in sims.all()}
    finally:
        session.close()
        if database is not None:
            harness._drop_database(database)
            harness._flush_redis()
    sent = sender.sent
    lat = sorted((done[k] - v).total_seconds() for k, v in sent.items() if k in done)
    stages = {}
    median = _median_order(sent, done)
    if median is not None:
        t0 = sent[median]
        for name, table in zip(STAGES, (stored, routed, first, done), strict=True):
            if median in table and table[median] is not None:
                stages[name] = (table[median] - t0).total_seconds()
    invoiced = len(lat)
    return {"mode": mode, "orders": count, "invoiced": invoiced, "bindings": bindings, "failed": failed,
            "merchants": merchants, "rate": rate, "workers": workers if mode == "scale-out" else 0,
            "p50": harness.percentile(lat, 50), "p95": harness.percentile(lat, 95),
            "max": lat[-1] if lat else float("nan"), "stages": stages, "statuses": sender.statuses,
            "throttled": throttled, "calls_per_order": {k: v / max(1, invoiced) for k, v in calls.items()},
            "hub_cpu_ms": 1000 * hub_cpu / max(1, invoiced), "sims_cpu_ms": 1000 * own / max(1, invoiced),
            "machine_busy": 100 * machine[0] / machine[1] if machine[1] else float("nan")}


def _send(port: int, plan: list[tuple[str, bytes, dict[str, str]]], rate: float) -> _Sender:
    """Every planned webhook sent at ``rate`` a second (returns once all were answered)."""
    sender = _Sender(port)
    started = time.perf_counter() + 0.2
    for i, (order_id, body, headers) in enumerate(plan):
        sender.todo.put((started + i / rate, order_id, body, headers))
    sender.close()
    return sender


def _median_order(sent: dict[str, datetime], done: dict[str, datetime]) -> str | None:
    ranked = sorted((done[k] - v, k) for k, v in sent.items() if k in done)
    return ranked[len(ranked) // 2][1] if ranked else None


def _wait_invoiced(session: harness.HubSession, count: int, timeout: float) -> dict[str, datetime]:
    """{order id: when its invoice binding was written}, once every order has one or nothing is left to do."""
    from hub.models import Binding, SyncRun

    deadline = time.monotonic() + timeout
    done: dict[str, datetime] = {}
    while time.monotonic() < deadline:
        with session.hub.session() as s:
            done = dict(s.execute(select(Binding.source_id, Binding.created_at).where(
                Binding.source_type == "order", Binding.target_type == "invoice")).all())
            open_runs = s.scalar(select(func.count()).select_from(SyncRun).where(
                SyncRun.status.in_(("pending", "running", "retrying"))))
            runs_seen = s.scalar(select(func.count()).select_from(SyncRun))
        if len(done) >= count or (runs_seen >= count and not open_runs):
            break
        time.sleep(0.1)
    return done


def rows(sims: harness.Sims, folder: Path, *, rate: float, seconds: float, merchants: int,
         modes: tuple[str, ...] = ("scale-out", "embedded"), workers: int = 4,
         warm_up: float = 0.0, shopify_plan: str = "plus") -> list[tuple[str, str, str]]:
    """(figure, measured, details) for each mode, for the ``make bench`` printer."""
    out = []
    for mode in modes:
        for sim in sims.all():
            latency = sim.latency
            sim.reset()
            sim.latency = latency
        r = steady(sims, folder / f"latency-{mode}", rate=rate, seconds=seconds, merchants=merchants, mode=mode,
                   workers=workers, warm_up=warm_up, shopify_plan=shopify_plan)
        r["warm_up"], r["shopify_plan"] = warm_up, shopify_plan
        out.append((f"webhook-to-invoice latency at {rate:g} orders/s, {mode}",
                    f"p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s", details(r)))
    return out


def details(r: dict[str, Any]) -> str:
    stages = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in r["stages"].items())
    hub = f"{r['workers']} workers" if r["mode"] == "scale-out" else "jobs in `o2c serve`"
    calls = ", ".join(f"{k} {v:.1f}" for k, v in r["calls_per_order"].items())
    limited = sum(r["throttled"].values())
    warm = f"after {r['warm_up']:g} s of the same traffic, untimed" if r.get("warm_up") else "from a cold start"
    return (f"{r['invoiced']}/{r['orders']} invoiced ({r['failed']} failed), {r['merchants']} merchants "
            f"(Shopify {r.get('shopify_plan', 'plus')} shops), {hub}, {warm}; "
            f"median order: {stages}; calls per order: {calls}; 429s {limited}; CPU per order: hub "
            f"{r['hub_cpu_ms']:.0f} ms, simulators+sender {r['sims_cpu_ms']:.0f} ms; machine busy "
            f"{r['machine_busy']:.0f}%; max {r['max']:.2f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__.splitlines()[0])
    p.add_argument("--latency", type=float, default=0.05, help="simulated platform latency in seconds (0.05)")
    p.add_argument("--rate", type=float, default=20.0, help="webhooks a second (20)")
    p.add_argument("--seconds", type=float, default=30.0, help="how long the rate lasts (30)")
    p.add_argument("--merchants", type=int, default=10, help="merchants sharing the rate (10)")
    p.add_argument("--mode", default="scale-out,embedded", help="scale-out, embedded or both (comma-separated)")
    p.add_argument("--workers", type=int, default=10, help="`o2c worker` processes in the scale-out mode (10)")
    p.add_argument("--shopify-plan", choices=sorted(SHOPIFY_PLANS), default="plus",
                   help="the shops' GraphQL cost bucket (plus: 1,000 points/s; standard: 100)")
    p.add_argument("--warm-up", type=float, default=30.0,
                   help="seconds of the same traffic sent first, untimed (30; 0: from a cold start)")
    args = p.parse_args(argv)
    with harness.simulated(args.latency) as (sims, folder):
        table = rows(sims, folder, rate=args.rate, seconds=args.seconds, merchants=args.merchants,
                     modes=tuple(args.mode.split(",")), workers=args.workers, warm_up=args.warm_up,
                     shopify_plan=args.shopify_plan)
    for figure, measured, info in table:
        sys.stdout.write(f"{figure}\n  {measured}\n  {info}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
