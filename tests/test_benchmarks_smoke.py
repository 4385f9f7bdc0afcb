"""The benchmark harness runs end to end on tiny sizes and prints its table with the five figures (no
figure is checked against a target here: timings belong to the benchmark, not to the tests)."""

from __future__ import annotations

import pytest

from benchmarks.run import main


@pytest.mark.slow
def test_the_benchmark_prints_the_five_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--latency", "0", "--webhooks", "40", "--workers", "2", "--orders", "30", "--customers", "6",
                 "--skus", "4", "--paged-orders", "12", "--rate", "6", "--seconds", "2", "--merchants", "2",
                 "--memory-orders", "30"]) == 0
    out = capsys.readouterr().out
    for figure in ("reference receiver", "webhook ingest, scale-out", "webhook ingest, embedded",
                   "API calls per order", "backfill throughput", "webhook-to-invoice latency", "peak worker memory"):
        assert figure in out, out
    assert out.count("lost 0") == 2 and "30/30 orders synced" in out and "12/12 invoiced" in out
