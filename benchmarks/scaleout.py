"""Scale-out: orders/s of 1 and then N ``o2c worker`` processes on PostgreSQL + Redis over several merchants.

``python -m benchmarks.scaleout`` (the rows are ``rows(...)``, for the ``make bench`` printer). For each worker
count: a scratch PostgreSQL database and the Redis of ``O2C_BENCH_REDIS``, ``merchants`` shops with
``orders`` new orders each on the simulated platforms (their published limits, ``--latency``), the workers
started and registered first, then one order run per order opened and enqueued as the webhook receiver
does; the clock runs until every run has settled. Reported: orders/s for each count and their ratio, the
429s the simulators answered (the limits are enforced there: the hub must stay under them), and the CPU
seconds per order of the workers (the hub) and of this process (the simulators and the clock), so that on a
small machine a ratio below N can be told apart: CPU saturated, or waiting on something.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks import harness


def throughput(sims: harness.Sims, folder: Path, *, workers: int, merchants: int, orders: int,
               timeout: float = 900.0) -> dict[str, Any]:
    """``workers`` ``o2c worker`` processes syncing ``orders`` orders of each of ``merchants`` merchants."""
    from hub.models import SyncRun
    from sync import runs

    database = harness._scratch_database()
    redis_url = harness.BENCH_REDIS
    harness._flush_redis()
    stack = contextlib.ExitStack()
    session = harness.HubSession(sims, folder, O2C_DATABASE_URL=database.replace(
        "postgresql://", "postgresql+psycopg://", 1), O2C_REDIS_URL=redis_url, O2C_SWEEP_INTERVAL="2")
    try:
        shops = [session.shop() for _ in range(merchants)]
        plan = []
        for m, shop in enumerate(shops):
            for o in harness.add_orders(sims, shop, orders, 40, 20, seed=m, first_id=30_000_000 + m * 100_000,
                                        days_ago=0, first_number=70_000):
                plan.append((shop, o))
        env = {**os.environ, **session.env}
        job_processes = stack.enter_context(harness.Workers(workers, env, folder))
        job_processes.wait_registered(redis_url)
        for sim in sims.all():
            with sim.lock:
                sim.calls.clear()
        with sims.shopify.lock:
            sims.shopify.operations.clear()
        pids = [p.pid for p in job_processes.procs]
        own_before, hub_before, machine_before = time.process_time(), harness.cpu_seconds(pids), harness.machine_busy()
        started = time.perf_counter()
        ids = []
        with session.hub.session() as s:   # as the receiver does for each webhook: a run, then a job
            for shop, o in plan:
                run, _ = runs.open_run(s, merchant_id=shop.merchant_id, kind="order", platform="shopify",
                                       source_id=str(o.order_id), source_name=o.name, trigger="webhook")
                s.flush()
                ids.append(run.id)
            s.commit()
        for run_id in ids:
            session.hub.dispatcher.dispatch(run_id)
        open_statuses = ("pending", "running", "retrying")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with session.hub.session() as s:
                if not s.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.status.in_(open_statuses))):
                    break
            time.sleep(0.1)
        wall = time.perf_counter() - started
        own, hub_cpu = time.process_time() - own_before, harness.cpu_seconds(pids) - hub_before
        machine = [after - before for after, before in zip(harness.machine_busy(), machine_before, strict=True)]
        with session.hub.session() as s:
            succeeded = s.scalar(select(func.count()).select_from(SyncRun).where(
                SyncRun.status == "succeeded")) or 0
        throttled = {sim.__class__.__name__.replace("Simulator", ""): sim.count_calls(lambda c: c.status == 429)
                     for sim in sims.all()}
        with sims.shopify.lock:   # Shopify's GraphQL limit answers 200 with a THROTTLED error, not 429
            cost_throttled = sum(1 for op in sims.shopify.operations if op[3] == "THROTTLED")
    finally:
        stack.close()
        session.close()
        harness._drop_database(database)
        harness._flush_redis()
    count = len(plan)
    return {"workers": workers, "orders": count, "succeeded": succeeded, "seconds": wall,
            "rate": succeeded / wall if wall else 0.0, "throttled": throttled,
            "cost_throttled": cost_throttled,
            "hub_cpu_ms": 1000 * hub_cpu / max(1, succeeded), "sims_cpu_ms": 1000 * own / max(1, succeeded),
            "machine_busy": 100 * machine[0] / machine[1] if machine[1] else float("nan")}


def rows(sims: harness.Sims, folder: Path, *, workers: int = 4, merchants: int = 10,
         orders: int = 40) -> list[tuple[str, str, str]]:
    """The scale-out rows (figure, measured, details; target) for the ``make bench`` printer."""
    one = throughput(sims, folder / "one", workers=1, merchants=merchants, orders=orders)
    _reset(sims)
    many = throughput(sims, folder / "many", workers=workers, merchants=merchants, orders=orders)
    out = []
    for r in (one, many):
        limited = sum(r["throttled"].values())
        out.append((f"scale-out throughput, {r['workers']} worker{'s' if r['workers'] > 1 else ''}",
                    f"{r['rate']:.2f} orders/s, 429s {limited}",
                    f"{r['succeeded']}/{r['orders']} synced in {r['seconds']:.1f} s, {merchants} merchants; CPU per "
                    f"order: workers {r['hub_cpu_ms']:.0f} ms, simulators {r['sims_cpu_ms']:.0f} ms; machine CPU busy "
                    f"{r['machine_busy']:.0f}%; Shopify THROTTLED answers {r['cost_throttled']} (the hub waits "
                    "as asked); 429s 0"))
    ratio = many["rate"] / one["rate"] if one["rate"] else float("nan")
    out.append((f"scale-out ratio, {workers} workers / 1", f"{ratio:.2f}x",
                f"{os.cpu_count()} cores shared by the workers, PostgreSQL, Redis and the simulators; >= 3x"))
    return out


def _reset(sims: harness.Sims) -> None:
    for sim in sims.all():
        latency = sim.latency
        sim.reset()
        sim.latency = latency


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scaleout", description=__doc__.splitlines()[0])
    p.add_argument("--latency", type=float, default=0.05, help="simulated platform latency in seconds (0.05)")
    p.add_argument("--workers", type=int, default=4, help="worker processes of the scaled-out run (4)")
    p.add_argument("--merchants", type=int, default=10, help="merchants (10)")
    p.add_argument("--orders", type=int, default=40, help="orders per merchant (40)")
    args = p.parse_args(argv)
    with harness.simulated(args.latency) as (sims, folder):
        table = rows(sims, folder, workers=args.workers, merchants=args.merchants, orders=args.orders)
    for figure, measured, details in table:
        sys.stdout.write(f"{figure:<34}  {measured:<28}  {details}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
