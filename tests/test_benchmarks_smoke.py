"""The benchmark harness runs end to end on tiny sizes and prints its table with every figure of issue 18 (no
figure is checked against a target here: timings belong to the benchmark, not to the tests)."""

from __future__ import annotations

import pytest

from benchmarks import harness
from benchmarks.run import main


@pytest.mark.slow
def test_the_benchmark_prints_every_figure(capsys: pytest.CaptureFixture[str], redis_url: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "BENCH_REDIS", redis_url)   # the test's own Redis database, flushed after
    assert main(["--latency", "0", "--webhooks", "20", "--clients", "4", "--workers", "1", "--orders", "6",
                 "--customers", "3", "--skus", "2", "--paged-orders", "4", "--rate", "4", "--seconds", "1",
                 "--merchants", "2", "--latency-workers", "2", "--latency-warm-up", "1", "--memory-orders", "6",
                 "--only", "ingest,backfill,latency,memory"]) == 0   # scale-out: its own smoke test
    out = capsys.readouterr().out
    for figure in ("webhook ingest, scale-out", "webhook ingest, embedded", "API calls per order",
                   "QuickBooks ceiling", "429s", "webhook-to-invoice latency", "peak worker memory",
                   "4 `o2c worker` vs 1"):
        assert figure in out, out
    assert out.count("(20/20 stored)") == 2 and out.count("lost 0") == 2, out    # reference and hub, both modes
    assert "6/6 orders synced" in out and out.count("4/4 invoiced (0 failed)") == 2, out   # latency, both modes
