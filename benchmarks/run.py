"""``python -m benchmarks`` (or ``make bench``): the figures of issue 18, each with its goal and, where there is
one, the reference measured beside it in the same run (the ingest figures: a minimal correct receiver under
gunicorn), printed as a table; a figure the harness does not measure yet has a row that says so.

Against the built-in simulated platforms, which enforce the published limits (QuickBooks 500 requests/min,
10 concurrent and 40 batch requests/min per company; HubSpot 100 requests/10 s; Shopify's cost bucket) and
answer after ``--latency`` seconds (default 0.05). Options scale each figure down (the smoke test does) or up
(``--full``: the memory figure on 100,000 orders instead of a scaled-down run).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--latency", type=float, default=0.05, help="simulated platform latency in seconds (0.05)")
    p.add_argument("--webhooks", type=int, default=3000, help="webhooks sent to `o2c serve` (3000)")
    p.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: 2 x cores + 1)")
    p.add_argument("--clients", type=int, default=16, help="concurrent webhook senders (16)")
    p.add_argument("--orders", type=int, default=2000, help="backfill orders (2000)")
    p.add_argument("--customers", type=int, default=400, help="backfill customers (400)")
    p.add_argument("--skus", type=int, default=60, help="backfill SKUs (60)")
    p.add_argument("--paged-orders", type=int, default=200,
                   help="orders of the paged-listing backfill shown beside the bulk one (200)")
    p.add_argument("--rate", type=float, default=20.0, help="steady webhook rate for the latency figure (20/s)")
    p.add_argument("--seconds", type=float, default=30.0, help="how long the steady rate lasts (30 s)")
    p.add_argument("--merchants", type=int, default=10, help="merchants sharing the steady rate (10)")
    p.add_argument("--latency-modes", default="scale-out,embedded",
                   help="modes of the latency figure: scale-out, embedded or both (comma-separated)")
    p.add_argument("--latency-workers", type=int, default=10,
                   help="`o2c worker` processes of the scale-out latency figure (10)")
    p.add_argument("--latency-warm-up", type=float, default=30.0,
                   help="seconds of the same traffic sent before the latency figure's, untimed (30)")
    p.add_argument("--memory-orders", type=int, default=5000, help="orders of the scaled-down memory run (5000)")
    p.add_argument("--full", action="store_true", help="memory figure on 100,000 orders")
    p.add_argument("--scaleout-workers", type=int, default=4, help="workers of the scale-out figure (4)")
    p.add_argument("--scaleout-orders", type=int, default=40, help="orders per merchant of the scale-out figure (40)")
    p.add_argument("--only", default="ingest,backfill,latency,memory,scaleout",
                   help="comma-separated figures to run")
    return p.parse_args(argv)


NOT_YET = "not measured yet"


def main(argv: list[str] | None = None) -> int:
    from benchmarks import harness

    args = parse(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    only = set(args.only.split(","))
    sims = harness.start_sims(args.latency)
    folder = harness.scratch()
    rows: list[tuple[str, ...]] = []
    started = time.perf_counter()
    try:
        if "ingest" in only:
            ref = harness.reference_ingest(folder / "reference", webhooks=args.webhooks, workers=args.workers,
                                           clients=args.clients)
            reference = (f"{ref['rate']:.0f}/s, p50 {ref['p50_ms']:.1f} ms, p99 {ref['p99_ms']:.1f} ms "
                         f"({ref['stored']}/{ref['sent']} stored)")
            for mode, label in (("scale-out", "PostgreSQL + Redis"), ("embedded", "SQLite, WAL, group commit")):
                r = harness.ingest(sims, folder / f"ingest-{mode}", webhooks=args.webhooks, workers=args.workers,
                                   clients=args.clients, mode=mode)
                rows.append((f"1. webhook ingest, {mode} ({label})", ">= 0.7x reference, p99 < 50 ms, none lost",
                             f"{r['rate'] / ref['rate']:.2f}x ({r['rate']:.0f}/s), p50 {r['p50_ms']:.1f} ms, "
                             f"p99 {r['p99_ms']:.1f} ms, lost {r['sent'] - r['stored']}", reference,
                             f"{r['sent']} signed orders/create from {args.clients} clients, `o2c serve` under "
                             "gunicorn; reference: HMAC, one PostgreSQL insert, one Redis push"))
        if "backfill" in only:
            from benchmarks import backfill as backfill_figures

            goals = ("<= 0.1", "0", ">= 90%")
            for (name, measured, details), goal in zip(backfill_figures.rows(
                    sims, folder, orders=args.orders, customers=args.customers, skus=args.skus,
                    paged_orders=args.paged_orders, reset=lambda: _reset(sims, args.latency)), goals, strict=True):
                rows.append((f"2. {name}", goal, measured, "-", details))
        if "latency" in only:
            from benchmarks import latency as latency_figures

            _reset(sims, args.latency)
            for name, measured, details in latency_figures.rows(
                    sims, folder, rate=args.rate, seconds=args.seconds, merchants=args.merchants,
                    modes=tuple(args.latency_modes.split(",")), workers=args.latency_workers,
                    warm_up=args.latency_warm_up):
                rows.append((f"3. {name}", "p95 < 1 s at 20 orders/s, 10 merchants", measured, "-", details))
        if "memory" in only:
            _reset(sims, 0.0)
            n = 100_000 if args.full else args.memory_orders
            r = harness.memory(sims, folder / "memory", orders=n)
            samples = r["rss_mb"]
            early = next((mb for count, mb in samples if count >= r["synced"] / 5), samples[0][1] if samples else 0)
            last = samples[-1][1] if samples else 0
            scale = "full run" if args.full else "scaled-down run; --full for 100,000"
            rows.append(("4. peak worker memory (backfill, separate process)",
                         "< 250 MB, flat from 10,000 to 100,000 orders",
                         f"{r['peak_mb']:.0f} MB peak; {early:.0f} MB at 1/5, {last:.0f} MB at the end", "-",
                         f"{r['synced']} orders ({scale})"))
        label = f"5. scale-out: {args.scaleout_workers} `o2c worker` vs 1, {args.merchants} merchants"
        if "scaleout" in only:
            from benchmarks import scaleout

            _reset(sims, args.latency)
            *runs, (_, ratio, details) = scaleout.rows(sims, folder / "scaleout", workers=args.scaleout_workers,
                                                      merchants=args.merchants, orders=args.scaleout_orders)
            rows.append((label, ">= 3x, under every limit", ratio, "-",
                         "; ".join(f"{name}: {measured}" for name, measured, _ in runs) + f"; {details}"))
        else:
            rows.append((label, ">= 3x, under every limit", "not run (add scaleout to --only)", "-", ""))
    finally:
        for sim in sims.all():
            sim.stop()
        shutil.rmtree(folder, ignore_errors=True)
    _table(rows, args, time.perf_counter() - started)
    return 0


def _reset(sims, latency: float) -> None:  # noqa: ANN001
    for sim in sims.all():
        sim.reset()
        sim.latency = latency


def _table(rows: list[tuple[str, ...]], args: argparse.Namespace, seconds: float) -> None:
    head = ("figure (issue 18)", "goal", "measured", "reference", "details")
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]
    line = "  ".join("-" * w for w in widths)
    out = sys.stdout
    out.write(f"O2C Hub benchmarks: simulated platforms with their published limits, latency "
              f"{args.latency * 1000:g} ms, {os.cpu_count()} cores, {seconds:.0f} s\n")
    out.write("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + "\n" + line + "\n")
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
    out.flush()
