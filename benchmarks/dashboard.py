"""The dashboard's and the failures view's queries at a million ledger rows, on PostgreSQL.

``python -m benchmarks.dashboard [--orders 1000000] [--merchants 50] [--postgres URL] [--repeat 5]
[--explain] [--keep]`` makes a fresh database, migrates it, loads ``--orders`` store orders and as many
runs in a few ``INSERT … SELECT generate_series`` statements (received over the last year, 93 % in sync,
2 % failing, 2 % pending, 1 % waiting, 2 % skipped; invoiced seconds to minutes after receipt, most paid
within days), runs ``VACUUM ANALYZE``, then times every query the dashboard (``sync.health``) and the
failures view (``sync.failures``) make, for one merchant and across merchants: the median of
``--repeat`` runs in ms, and the plan's top node and the indexes it uses (``--explain``: whole plans).
The database is dropped afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from hub import db
from sync import failures, health

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

SEED = """
INSERT INTO merchants (id, name, created_at)
  SELECT m, 'Merchant ' || m, now() FROM generate_series(1, :merchants) m;
INSERT INTO connections (id, merchant_id, platform, account, status, settings, token_expires_at, created_at, updated_at)
  SELECT (m - 1) * 3 + p, m, (ARRAY['shopify', 'quickbooks', 'hubspot'])[p],
         (ARRAY['shop-', 'realm-', 'portal-'])[p] || m,
         CASE WHEN p = 2 AND m % 10 = 0 THEN 'needs_reconnect' ELSE 'active' END, '{}',
         now() + (m || ' hours')::interval, now(), now()
  FROM generate_series(1, :merchants) m, generate_series(1, 3) p;
CREATE TEMP TABLE seed AS
  SELECT i, 1 + (i % :merchants) AS merchant_id,
         (now() AT TIME ZONE 'UTC') - make_interval(secs => (i::float8 / :orders) * 365 * 86400) AS received_at,
         CASE WHEN i % 100 < 93 THEN 'in_sync' WHEN i % 100 < 95 THEN 'failing' WHEN i % 100 < 97 THEN 'pending'
              WHEN i % 100 < 98 THEN 'waiting' ELSE 'skipped' END AS state
  FROM generate_series(1, :orders) i;
INSERT INTO sync_runs (id, merchant_id, connection_id, kind, source_platform, source_id, source_name, trigger, status,
                       attempts, reason, error_kind, error_code, created_at, updated_at, finished_at)
  SELECT i, merchant_id, (merchant_id - 1) * 3 + 1, 'order', 'shopify', (5000000 + i)::text, '#' || i, 'webhook',
         CASE state WHEN 'in_sync' THEN 'succeeded' WHEN 'failing' THEN 'failed' WHEN 'pending' THEN 'pending'
                    WHEN 'waiting' THEN 'retrying' ELSE 'skipped' END,
         1, CASE WHEN state = 'failing' THEN
               CASE WHEN i % 3 = 0
                    THEN 'mapping: SKU "SKU-' || (i % 40) || '" has no QuickBooks item (rule items.when_missing)'
                    ELSE 'quickbooks: Business Validation Error (code 6000) on invoice ' || i END END,
         CASE WHEN state = 'failing' THEN CASE WHEN i % 3 = 0 THEN 'mapping' ELSE 'permanent' END
              WHEN state = 'waiting' THEN 'auth' END,
         CASE WHEN state = 'failing' THEN CASE WHEN i % 3 = 0 THEN 'items.when_missing' ELSE 'quickbooks:6000' END END,
         received_at, received_at + interval '40 seconds', received_at + interval '40 seconds'
  FROM seed;
INSERT INTO store_orders (id, merchant_id, platform, store, connection_id, order_id, name, currency, total, state,
                          last_run_id, payment_ids, refund_ids, ordered_at, received_at, invoiced_at, paid_at,
                          updated_at, invoice_id, doc_number)
  SELECT i, merchant_id, 'shopify', 'shop-' || merchant_id, (merchant_id - 1) * 3 + 1, (5000000 + i)::text, '#' || i,
         'USD', ((i % 20000) / 100.0)::text, state, i, '[]', '[]', received_at - interval '5 seconds', received_at,
         CASE WHEN state = 'in_sync' THEN received_at + make_interval(secs => 2 + (i % 600)) END,
         CASE WHEN state = 'in_sync' AND i % 10 < 8 THEN received_at + make_interval(secs => 600 + (i % 7) * 86400) END,
         received_at + interval '40 seconds', CASE WHEN state = 'in_sync' THEN 'inv-' || i END,
         CASE WHEN state = 'in_sync' THEN i::text END
  FROM seed;
SELECT setval('merchants_id_seq', :merchants); SELECT setval('connections_id_seq', :merchants * 3);
SELECT setval('sync_runs_id_seq', :orders); SELECT setval('store_orders_id_seq', :orders);
"""


def _queries(merchant: int | None) -> list[tuple[str, Callable[[Session], Any]]]:
    month = health.window_start("day")
    day = health.window_start("hour")
    return [
        ("orders received by hour (24 h)", lambda s: health.order_flow(s, merchant, "hour")),
        ("orders received by day (30 days)", lambda s: health.order_flow(s, merchant, "day")),
        ("order-to-invoice p50/p95 (30 days)", lambda s: health.order_to_invoice(s, merchant, month)),
        ("order-to-cash p50/p95 (30 days)", lambda s: health.order_to_cash(s, merchant, month)),
        ("backlog (pending/waiting/failing)", lambda s: health.backlog(s, merchant)),
        ("open runs (pending/running/retrying)", lambda s: health.open_runs(s, merchant)),
        ("connections + last success", lambda s: health.connection_health(s, merchant)),
        *([("by merchant (24 h)", lambda s: health.by_merchant(s, day))] if merchant is None else []),
        ("failures view: failing orders by cause", lambda s: failures.failure_groups(s, merchant)),
    ]


def _seed(url: str, orders: int, merchants: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in (st.strip() for st in SEED.split(";")):
            if statement:
                conn.execute(statement.replace(":merchants", str(merchants)).replace(":orders", str(orders)))
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def _plan_summary(plan: list[str]) -> str:
    indexes = sorted({line.split(" using ")[1].split(" ")[0] for line in plan if " using " in line})
    seq = [line.split("Seq Scan", 1)[1].split("  (")[0].strip() for line in plan if "Seq Scan" in line]
    top = plan[0].strip().split("  (")[0] if plan else ""
    return f"{top}; indexes: {', '.join(indexes) or 'none'}" + (f"; seq scan {', '.join(seq)}" if seq else "")


def measure(engine: Any, repeat: int, explain: bool) -> list[tuple[str, str, float, str]]:
    results = []
    for scope_name, merchant in (("one merchant", 7), ("all merchants", None)):
        for name, query in _queries(merchant):
            times = []
            for _ in range(repeat):
                with Session(engine) as s:
                    started = time.perf_counter()
                    query(s)
                    times.append((time.perf_counter() - started) * 1000)
            statements: list[tuple[str, Any]] = []

            def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                        _many: bool, sink: list[tuple[str, Any]] = statements) -> None:
                sink.append((statement, parameters))

            event.listen(engine, "before_cursor_execute", capture)
            try:
                with Session(engine) as s:
                    query(s)
            finally:
                event.remove(engine, "before_cursor_execute", capture)
            plans = []
            with engine.connect() as conn:
                for statement, parameters in statements[-3:]:   # the query's own (last) statements
                    if statement.lstrip().upper().startswith("SELECT"):
                        plan = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
                        plans.append(plan)
            summary = " | ".join(_plan_summary(p) for p in plans)
            if explain:
                summary += "\n" + "\n\n".join("\n".join(p) for p in plans)
            results.append((scope_name, name, statistics.median(times), summary))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dashboard", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=50)
    parser.add_argument("--postgres", default=ADMIN, help="an admin URL: a fresh database is made beside it")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="print the whole plans")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)

    name = f"o2c_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{args.postgres.rsplit('/', 1)[0]}/{name}"
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        seconds = _seed(url, args.orders, args.merchants)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM store_orders")).scalar_one()
        print(f"seeded {rows:,} ledger rows and as many runs for {args.merchants} merchants in {seconds:.1f} s "
              f"(database {name})")
        print(f"{'scope':<14} {'query':<42} {'median ms':>10}  plan")
        for scope_name, query, ms, plan in measure(engine, args.repeat, args.explain):
            print(f"{scope_name:<14} {query:<42} {ms:>10.1f}  {plan}")
    finally:
        engine.dispose()
        if not args.keep:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
