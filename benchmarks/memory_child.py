"""The worker process of the memory figure: backfills its merchant (configured through the environment) and
prints its resident memory as it went, as one JSON line: ``{"orders", "synced", "rss_mb": [...], "peak_mb"}``."""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta


def _status(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def main(merchant_id: int) -> None:
    from connectors.ratelimit import MemoryBackend, RateLimiter
    from hub.runtime import Hub, set_current_hub
    from sync.backfill import backfill

    hub = Hub()
    set_current_hub(hub)
    hub._limiter = RateLimiter(MemoryBackend(), limits={})  # the figure is memory, not speed
    samples: list[tuple[int, float]] = []
    synced = 0

    def progress(n: int) -> None:
        nonlocal synced
        synced += n
        samples.append((synced, round(_status("VmRSS"), 1)))

    backfill(hub, merchant_id, date.today() - timedelta(days=400), batched=True, on_synced=progress)
    hub.close()
    print(json.dumps({"synced": synced, "rss_mb": samples, "peak_mb": round(_status("VmHWM"), 1)}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
