"""A rate limiter per (platform, account) that keeps the hub's calls under each platform's published limits.

Algorithm: an exact **sliding log**. Every granted call is stored with its time; a call is granted only if, for
every ``Limit(requests, seconds)`` of its platform, fewer than ``floor(requests * headroom)`` calls were granted in
the last ``seconds / headroom``. So "at most N in any window of T seconds" holds for every window, not only on
average (a token bucket or GCRA with burst N lets up to about 2N through in some windows). The log is at most a
few hundred entries per account (QuickBooks: 475), so memory and work stay small.

Two backends with the same semantics:

- ``MemoryBackend()``: one process, shared by all its threads (embedded mode); clock ``time.monotonic``.
- ``RedisBackend(client)``: shared by every worker process on every host (scale-out mode). Each check-and-record is
  one Lua script, so it is atomic in Redis; the clock is Redis' own ``TIME``, so hosts with skewed clocks agree.
  Keys expire by themselves (after the longest window, or the penalty), and both keys of an account share a hash
  tag so the scripts also work on Redis Cluster.

``RateLimiter.acquire`` blocks until a call is allowed; ``penalize`` records a platform's 429/``Retry-After`` so that
no worker calls that account again before it ends. ``RateLimiter.in_flight`` holds one of an account's slots for
calls under way at once (``CONCURRENT``: QuickBooks' 10 concurrent requests per realm), across every worker in
scale-out mode; a slot a dead worker held frees itself after ``IN_FLIGHT_LEASE`` seconds.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from connectors.errors import Retryable


@dataclass(frozen=True)
class Limit:
    """At most ``requests`` calls in any window of ``seconds``."""

    requests: int
    seconds: float


# The platforms' published limits (see shared PLATFORMS.md, "Limits"). Keys are what callers pass as ``platform``;
# the account is the realm id / portal id / shop domain the limit is counted against.
PUBLISHED: dict[str, tuple[Limit, ...]] = {
    # QuickBooks Online: 500 requests/min per realm, and 10 requests/s per realm and app (documented by some as
    # 10 *concurrent* requests; a rate of 10/s also keeps concurrency low for sub-second calls).
    "quickbooks": (Limit(500, 60), Limit(10, 1)),
    # QuickBooks batch endpoint: 40 batch requests/min per realm and app (up to 30 operations each). A batch call
    # acquires "quickbooks-batch" and then "quickbooks", since it is a request to the realm too.
    "quickbooks-batch": (Limit(40, 60),),
    # HubSpot: Free/Starter 100 requests/10 s per account (Professional/Enterprise 190, public OAuth apps 110 per
    # installing account). We cannot tell the tier, so take the lowest. Search is counted apart (~5/s).
    "hubspot": (Limit(100, 10),),
    "hubspot-search": (Limit(5, 1),),
    # Shopify: leaky bucket of 40 calls, leaking 2/s (REST, Standard plans; Plus is 400 / 20/s), per app and shop.
    # "At most 40 in any 20 s" never overflows that bucket (whatever entered in the last 20 s is at most 40, and
    # anything older has leaked out) and still allows a burst of 40 and a sustained 2/s. The GraphQL Admin API is
    # limited by query cost (restored at 100 points/s on Standard): 2 queries/s keeps queries of up to ~50 points
    # within it; a THROTTLED answer should be passed to ``penalize`` with its computed wait.
    "shopify": (Limit(40, 20),),
    # WooCommerce has no API limit of its own: the store's web server is the limit. 5 requests/s per store
    # keeps the hub from slowing a small shop's checkout down (a host's firewall may rate-limit harder).
    "woocommerce": (Limit(5, 1),),
}


#: Calls in flight at once per account. QuickBooks documents its second limit as 10 requests a second or as 10
#: concurrent requests per realm and app (⚠): ``PUBLISHED`` paces the first reading, this the second (a batch of
#: 30 creates can take seconds, so a rate alone would let more than 10 overlap across workers).
CONCURRENT: dict[str, int] = {"quickbooks": 10}
IN_FLIGHT_LEASE = 150.0   # seconds: longer than any call may take (QuickBooks times out at 120 s)
IN_FLIGHT_POLL = 0.02     # seconds between tries while every slot is taken

#: Platforms whose counts keep less headroom than the default. QuickBooks' batch endpoint is what a backfill's
#: speed comes down to (40 requests a minute of up to 30 creates): one spare permit (39) rather than two, the
#: window's one-second margin taking care of the time between a grant and the request's arrival.
HEADROOMS: dict[str, float] = {"quickbooks-batch": 0.975}

MAX_MARGIN = 1.0   # seconds: the most a window is stretched by the headroom (see ``RateLimiter``)


class RateLimitTimeout(Retryable):
    """``acquire`` could not get a slot within its timeout; ``retry_after`` is the earliest sensible retry (s)."""

    def __init__(self, platform: str, account: str, retry_after: float) -> None:
        super().__init__(f"local rate limit for {account}: retry in {retry_after:.1f} s", platform=platform,
                         code="RATE_LIMIT_WAIT", retry_after=retry_after)
        self.account = account


# Limits as the backends take them: (max calls, window in seconds), already reduced by the headroom.
_Limits = tuple[tuple[int, float], ...]


class MemoryBackend:
    """Sliding logs in this process' memory, shared by all its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, deque[float]] = {}
        self._penalties: dict[str, float] = {}
        self._flights: dict[str, dict[str, float]] = {}

    def try_acquire(self, key: str, limits: _Limits) -> tuple[bool, float]:
        """Record a call and return ``(True, 0)``, or return ``(False, seconds until one may be allowed)``."""
        with self._lock:
            now = time.monotonic()
            until = self._penalties.get(key, 0.0)
            if until > now:
                return False, until - now
            self._penalties.pop(key, None)
            if not limits:
                return True, 0.0
            log = self._logs.setdefault(key, deque())
            longest = max(seconds for _, seconds in limits)
            while log and log[0] <= now - longest:
                log.popleft()
            wait = 0.0
            for n, seconds in limits:
                inside = [t for t in log if t > now - seconds]  # ascending
                if len(inside) >= n:
                    # the (len - n)-th oldest call in the window must age out before one more fits
                    wait = max(wait, inside[len(inside) - n] + seconds - now)
            if wait > 0:
                return False, wait
            log.append(now)
            return True, 0.0

    def penalize(self, key: str, seconds: float) -> None:
        with self._lock:
            until = time.monotonic() + seconds
            if until > self._penalties.get(key, 0.0):
                self._penalties[key] = until

    def try_enter(self, key: str, member: str, slots: int, lease: float) -> bool:
        """Take one of ``slots`` in-flight slots for ``member`` (for ``lease`` seconds at most)."""
        with self._lock:
            now = time.monotonic()
            held = {m: t for m, t in self._flights.get(key, {}).items() if t > now}
            self._flights[key] = held
            if len(held) >= slots:
                return False
            held[member] = now + lease
            return True

    def leave(self, key: str, member: str) -> None:
        with self._lock:
            self._flights.get(key, {}).pop(member, None)


# KEYS: log (sorted set: member -> grant time in µs), penalty (string: blocked until, µs).
# ARGV: unique member, then pairs (max calls, window in µs). Returns {1, 0} granted or {0, µs to wait}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then return {0, blocked - now} end
if #ARGV < 2 then return {1, 0} end
local longest = 0
for i = 2, #ARGV, 2 do
  local w = tonumber(ARGV[i + 1])
  if w > longest then longest = w end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - longest))
local wait = 0
for i = 2, #ARGV, 2 do
  local n = tonumber(ARGV[i])
  local w = tonumber(ARGV[i + 1])
  local lo = string.format('(%.0f', now - w)
  local c = redis.call('ZCOUNT', KEYS[1], lo, '+inf')
  if c >= n then
    local e = redis.call('ZRANGEBYSCORE', KEYS[1], lo, '+inf', 'WITHSCORES', 'LIMIT', c - n, 1)
    local d = tonumber(e[2]) + w - now
    if d > wait then wait = d end
  end
end
if wait > 0 then return {0, math.ceil(wait)} end
redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[1])
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil(longest / 1000) + 1000))
return {1, 0}
"""

# KEYS: penalty. ARGV: µs. Extends (never shortens) the block; the key expires when it ends.
_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > cur then
  redis.call('SET', KEYS[1], string.format('%.0f', untl), 'PX', string.format('%d', math.ceil(ARGV[1] / 1000) + 1))
end
return 1
"""


# KEYS: in-flight (sorted set: member -> lease end, µs). ARGV: member, slots, lease µs. Returns 1 taken, 0 full.
_ENTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[3])), ARGV[1])
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil(tonumber(ARGV[3]) / 1000) + 1000))
return 1
"""


class RedisBackend:
    """Sliding logs in Redis, shared by every process on every host; one atomic Lua script per check."""

    def __init__(self, redis_client: Any, prefix: str = "o2c:rl") -> None:
        self.redis = redis_client
        self.prefix = prefix
        self._acquire = redis_client.register_script(_ACQUIRE)
        self._penalize = redis_client.register_script(_PENALIZE)
        self._enter = redis_client.register_script(_ENTER)

    def _keys(self, key: str) -> list[str]:
        base = f"{self.prefix}:{{{key}}}"  # hash tag: all keys of an account in one Redis Cluster slot
        return [f"{base}:log", f"{base}:penalty", f"{base}:inflight"]

    def try_acquire(self, key: str, limits: _Limits) -> tuple[bool, float]:
        args: list[Any] = [uuid.uuid4().hex]
        for n, seconds in limits:
            args += [n, round(seconds * 1_000_000)]
        granted, wait_us = self._acquire(keys=self._keys(key), args=args)
        return bool(granted), int(wait_us) / 1_000_000

    def penalize(self, key: str, seconds: float) -> None:
        self._penalize(keys=self._keys(key)[1:2], args=[max(1, round(seconds * 1_000_000))])

    def try_enter(self, key: str, member: str, slots: int, lease: float) -> bool:
        return bool(self._enter(keys=self._keys(key)[2:], args=[member, slots, round(lease * 1_000_000)]))

    def leave(self, key: str, member: str) -> None:
        self.redis.zrem(self._keys(key)[2], member)


class RateLimiter:
    """Keeps calls per (platform, account) under ``limits`` (times ``headroom``).

    Platforms not in ``limits`` are not limited, but a ``penalize`` still holds them.
    """

    def __init__(self, backend: MemoryBackend | RedisBackend, limits: dict[str, tuple[Limit, ...]] = PUBLISHED, *,
                 headroom: float = 0.95, concurrent: dict[str, int] = CONCURRENT,
                 headrooms: dict[str, float] | None = None) -> None:
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self.backend = backend
        headrooms = HEADROOMS if headrooms is None and limits is PUBLISHED else (headrooms or {})
        self._slots = {platform: max(1, math.floor(n * headroom + 1e-9)) for platform, n in concurrent.items()}
        # Headroom lowers the count and stretches the window: at saturation each call is granted exactly one
        # window after an older one, so without a time margin any jitter on the way to the platform (network,
        # scheduling) could put both in one of its windows. With 0.95, 20/1 s becomes 19 per 1.053 s. The
        # stretch is at most ``MAX_MARGIN`` seconds: jitter does not grow with the window, and a minute's
        # window stretched by 5 % as well would give away a tenth of QuickBooks' batch budget (38 per 63 s
        # is 90 % of 40 a minute; 38 per 61 s is 93 %).
        self._limits: dict[str, _Limits] = {
            platform: tuple((max(1, math.floor(lim.requests * headrooms.get(platform, headroom) + 1e-9)),
                             lim.seconds + min(lim.seconds / headroom - lim.seconds, MAX_MARGIN))
                            for lim in lims)
            for platform, lims in limits.items()
        }

    def effective(self, platform: str) -> tuple[Limit, ...]:
        """The limits actually enforced for ``platform`` (after headroom); empty if it is not limited."""
        return tuple(Limit(n, seconds) for n, seconds in self._limits.get(platform, ()))

    def acquire(self, platform: str, account: str, *, timeout: float = 60.0) -> float:
        """Block until one call to ``platform`` for ``account`` is allowed, and count it; return the seconds waited.

        Raises ``RateLimitTimeout`` (a ``Retryable``) as soon as it knows the wait would end past ``timeout``,
        with ``retry_after`` the wait it found (a lower bound when others are waiting too).
        """
        limits = self._limits.get(platform, ())  # not limited: only a penalty can hold it
        key = f"{platform}:{account}"
        start = time.monotonic()
        deadline = start + timeout
        while True:
            granted, wait = self.backend.try_acquire(key, limits)
            if granted:
                return time.monotonic() - start
            if time.monotonic() + wait > deadline:
                raise RateLimitTimeout(platform, account, retry_after=wait)
            time.sleep(wait)

    def slots(self, platform: str) -> int | None:
        """How many calls to ``platform`` may be under way at once per account (after headroom), or None."""
        return self._slots.get(platform)

    @contextmanager
    def in_flight(self, platform: str, account: str, *, timeout: float = 60.0) -> Iterator[None]:
        """Hold one of the account's in-flight slots for the block (a platform without ``CONCURRENT`` has no
        such limit); raises ``RateLimitTimeout`` when none frees up within ``timeout`` seconds."""
        slots = self._slots.get(platform)
        if slots is None:
            yield
            return
        key, member = f"{platform}:{account}", uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        while not self.backend.try_enter(key, member, slots, IN_FLIGHT_LEASE):
            if time.monotonic() >= deadline:
                raise RateLimitTimeout(platform, account, retry_after=1.0)
            time.sleep(IN_FLIGHT_POLL)
        try:
            yield
        finally:
            self.backend.leave(key, member)

    def penalize(self, platform: str, account: str, seconds: float) -> None:
        """The platform answered 429 / ``Retry-After``: nobody calls ``platform`` for ``account`` for ``seconds``."""
        if seconds > 0:
            self.backend.penalize(f"{platform}:{account}", seconds)
