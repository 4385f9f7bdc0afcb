"""The scale-out benchmark (``benchmarks.scaleout``) runs end to end on tiny sizes: real ``o2c worker``
processes on PostgreSQL + Redis, one and then two, and prints orders/s for each and their ratio (no figure is
checked against a target: timings belong to the benchmark, not to the tests)."""

from __future__ import annotations

import pytest

from benchmarks import harness, scaleout


@pytest.mark.slow
def test_the_scale_out_benchmark_syncs_every_order_with_one_and_with_two_workers(
        redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(harness, "BENCH_REDIS", redis_url)   # the test's own Redis database
    assert scaleout.main(["--latency", "0", "--workers", "2", "--merchants", "2", "--orders", "3"]) == 0
    out = capsys.readouterr().out
    assert "scale-out throughput, 1 worker" in out and "scale-out throughput, 2 workers" in out, out
    assert out.count("6/6 synced") == 2, out
    assert "scale-out ratio, 2 workers / 1" in out and "429s 0 " in out, out
