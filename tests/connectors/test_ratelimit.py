"""The rate limiter: limits hold in every window under threads (memory) and separate processes (Redis)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from connectors.errors import Retryable
from connectors.ratelimit import Limit, MemoryBackend, RateLimiter, RateLimitTimeout, RedisBackend

REPO = Path(__file__).resolve().parents[2]
TWENTY_PER_SECOND = {"p": (Limit(20, 1),)}


def most_in_window(stamps: list[float], window: float) -> int:
    """The largest number of calls in any window of ``window`` seconds."""
    s = sorted(stamps)
    best, j = 0, 0
    for i, t in enumerate(s):
        while s[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.fixture(params=["memory", "redis"])
def make_limiter(request: pytest.FixtureRequest) -> Iterator:
    """Build limiters that share one state: in one process (memory) or through Redis (a client each)."""
    clients: list[redis.Redis] = []
    shared = MemoryBackend()

    def build(limits: dict[str, tuple[Limit, ...]], headroom: float = 1.0) -> RateLimiter:
        if request.param == "memory":
            return RateLimiter(shared, limits, headroom=headroom)
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        clients.append(client)
        return RateLimiter(RedisBackend(client), limits, headroom=headroom)

    yield build
    for client in clients:
        client.close()


def test_published_limits_with_headroom() -> None:
    def rounded(limits: tuple[Limit, ...]) -> list[tuple[int, float]]:
        return [(lim.requests, round(lim.seconds, 3)) for lim in limits]

    limiter = RateLimiter(MemoryBackend())  # 95 %: fewer calls, and a slightly longer window
    # windows are stretched by 5 %, but by one second at most (a minute's window: 61 s)
    assert rounded(limiter.effective("quickbooks")) == [(475, 61.0), (9, 1.053)]
    assert rounded(limiter.effective("quickbooks-batch")) == [(39, 61.0)]   # one spare permit: HEADROOMS
    assert rounded(limiter.effective("hubspot")) == [(95, 10.526)]
    assert rounded(limiter.effective("shopify")) == [(38, 21.0)]
    assert rounded(limiter.effective("woocommerce")) == [(4, 1.053)]
    assert limiter.effective("unknown-platform") == ()
    assert RateLimiter(MemoryBackend(), {"p": (Limit(1, 1),)}, headroom=0.5).effective("p") == (Limit(1, 2),)
    with pytest.raises(ValueError):
        RateLimiter(MemoryBackend(), headroom=1.5)


def test_threads_never_exceed_the_limit_in_any_window() -> None:
    limiter = RateLimiter(MemoryBackend(), TWENTY_PER_SECOND)  # 95 % headroom: 19 per second
    stamps: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait()
        for _ in range(8):
            limiter.acquire("p", "acct", timeout=30)
            now = time.monotonic()
            with lock:
                stamps.append(now)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(stamps) == 64
    # the window is stretched to 1.053 s, which absorbs the time between a grant and the caller noting it
    assert most_in_window(stamps, 1.0) <= 19
    assert most_in_window(stamps, 1.0) >= 10  # it does let a burst through
    assert max(stamps) - min(stamps) >= 2.0  # 64 calls at 19 per 1.053 s need at least 2.5 s


WORKER = """
import json, sys, time
import redis
from connectors.ratelimit import Limit, RateLimiter, RedisBackend
url, calls = sys.argv[1], int(sys.argv[2])
client = redis.Redis.from_url(url)
limiter = RateLimiter(RedisBackend(client), {"p": (Limit(20, 1),)})
client.incr("ready")
while not client.exists("go"):
    time.sleep(0.002)
stamps = []
for _ in range(calls):
    limiter.acquire("p", "acct", timeout=30)
    stamps.append(time.time())
print(json.dumps(stamps))
"""


def test_processes_never_exceed_the_limit_in_any_window(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, redis_url, "12"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        deadline = time.monotonic() + 10
        while int(client.get("ready") or 0) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        client.set("go", 1)
        stamps: list[float] = []
        for p in procs:
            out, err = p.communicate(timeout=30)
            assert p.returncode == 0, err
            stamps += json.loads(out)
    finally:
        for p in procs:
            p.kill()
        client.close()
    assert len(stamps) == 48
    # the window is stretched to 1.053 s, which absorbs the time between Redis granting a call and the process
    # noting it
    assert most_in_window(stamps, 1.0) <= 19
    assert max(stamps) - min(stamps) >= 1.0  # 48 calls at 19 per 1.053 s need at least 2.1 s


def test_accounts_are_independent_and_timeout_gives_retry_after(make_limiter) -> None:
    a, b = make_limiter({"p": (Limit(3, 10),)}), make_limiter({"p": (Limit(3, 10),)})
    for _ in range(3):
        assert a.acquire("p", "A", timeout=0) < 0.5
    started = time.monotonic()
    with pytest.raises(RateLimitTimeout) as caught:
        b.acquire("p", "A", timeout=0.2)
    assert time.monotonic() - started < 1.0  # it knows at once that 0.2 s will not do
    assert 9.0 < caught.value.retry_after <= 10.0
    assert isinstance(caught.value, Retryable) and caught.value.platform == "p"
    for _ in range(3):  # another account, and another platform for the same account, are untouched
        assert b.acquire("p", "B", timeout=0) < 0.5
        assert b.acquire("q", "A", timeout=0) < 0.5


def test_acquire_waits_for_the_oldest_call_to_leave_the_window(make_limiter) -> None:
    limiter = make_limiter({"p": (Limit(2, 0.5),)})
    limiter.acquire("p", "A")
    limiter.acquire("p", "A")
    waited = limiter.acquire("p", "A", timeout=5)
    assert 0.4 <= waited < 3.0


def test_every_limit_of_a_platform_holds(make_limiter) -> None:
    limiter = make_limiter({"p": (Limit(4, 30), Limit(2, 0.3))})
    stamps = []
    for _ in range(4):
        limiter.acquire("p", "A", timeout=5)
        stamps.append(time.monotonic())
    assert most_in_window(stamps, 0.28) <= 2  # the short limit spaced them
    with pytest.raises(RateLimitTimeout) as caught:  # and the long one is full
        limiter.acquire("p", "A", timeout=1)
    assert 28.0 < caught.value.retry_after <= 30.0


def test_penalize_holds_everyone_on_that_account(make_limiter) -> None:
    first, second = make_limiter({"p": (Limit(100, 1),)}), make_limiter({"p": (Limit(100, 1),)})
    first.penalize("p", "A", 0.6)
    first.penalize("p", "A", 0.1)  # a shorter penalty never shortens one in force
    with pytest.raises(RateLimitTimeout) as caught:
        second.acquire("p", "A", timeout=0.1)
    assert 0.3 < caught.value.retry_after <= 0.6
    assert second.acquire("p", "B", timeout=0) < 0.3
    assert second.acquire("p", "A", timeout=5) >= 0.3  # what was left of the 0.6 s
    assert second.acquire("p", "A", timeout=0) < 0.3


def test_unknown_platforms_are_not_limited_but_penalties_hold(make_limiter) -> None:
    limiter = make_limiter(TWENTY_PER_SECOND)
    started = time.monotonic()
    for _ in range(200):
        assert limiter.acquire("woocommerce", "A", timeout=0) < 0.5
    assert time.monotonic() - started < 5.0
    limiter.penalize("woocommerce", "A", 5)
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("woocommerce", "A", timeout=0.1)


def test_redis_keys_expire_by_themselves(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    limiter = RateLimiter(RedisBackend(client, prefix="t:rl"), {"p": (Limit(5, 2), Limit(50, 30))})
    limiter.acquire("p", "A")
    limiter.penalize("p", "B", 3)
    keys = sorted(k.decode() for k in client.keys("t:rl:*"))
    assert keys == ["t:rl:{p:A}:log", "t:rl:{p:B}:penalty"]
    assert 0 < client.pttl("t:rl:{p:A}:log") <= 33_000  # the longest window (30 / 0.95 s) and a second
    assert 0 < client.pttl("t:rl:{p:B}:penalty") <= 3_001
    client.close()


def test_calls_in_flight_never_exceed_the_slots_across_limiters(make_limiter, monkeypatch) -> None:  # noqa: ANN001
    """QuickBooks' "10 concurrent requests" reading: each limiter (a worker) holds a slot per call under way;
    however long the calls take, no more than the slots overlap, and a slot a dead worker held frees itself."""
    import connectors.ratelimit as rl

    limiters = [make_limiter({}) for _ in range(3)]
    for limiter in limiters:
        limiter._slots = {"p": 3}
    lock, now, peak = threading.Lock(), [0], [0]

    def call(limiter: RateLimiter) -> None:
        with limiter.in_flight("p", "acct"):
            with lock:
                now[0] += 1
                peak[0] = max(peak[0], now[0])
            time.sleep(0.05)
            with lock:
                now[0] -= 1

    threads = [threading.Thread(target=call, args=(limiters[i % 3],)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 3
    monkeypatch.setattr(rl, "IN_FLIGHT_LEASE", 0.3)
    held = [limiters[0].in_flight("p", "acct") for _ in range(3)]
    for slot in held:
        slot.__enter__()   # never left: the worker died mid-call
    with pytest.raises(RateLimitTimeout):
        with limiters[1].in_flight("p", "acct", timeout=0.1):
            pass
    with limiters[1].in_flight("p", "acct", timeout=2.0):   # the dead worker's slots lapse after the lease
        pass
    assert limiters[2].slots("quickbooks") is None and RateLimiter(MemoryBackend()).slots("quickbooks") == 9
