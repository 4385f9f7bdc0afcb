"""Worker entry points: an rq worker with the sweeper (scale-out) or the in-process runner (embedded).

Both execute ``sync.jobs.run_sync``; the sweeper re-dispatches runs that are due (retries) or whose
worker died (lapsed lease), so the database, not the queue, is the source of truth.
"""

from __future__ import annotations

import logging
import threading
import time

from hub.runtime import Hub, set_current_hub
from sync.dispatch import EmbeddedRunner, RQDispatcher

log = logging.getLogger("o2c.worker")


def run_worker(hub: Hub, *, burst: bool = False) -> None:
    """Work until stopped (or, with ``burst``, until nothing is due)."""
    set_current_hub(hub)
    dispatcher = hub.dispatcher
    if isinstance(dispatcher, RQDispatcher):
        _run_rq(hub, dispatcher, burst=burst)
    else:
        assert isinstance(dispatcher, EmbeddedRunner)
        _run_embedded(hub, dispatcher, burst=burst)


def _run_rq(hub: Hub, dispatcher: RQDispatcher, *, burst: bool) -> None:
    from rq import SimpleWorker

    stop = threading.Event()
    # jobs run in this process (no fork per job): the database pool and clients are reused safely
    worker = SimpleWorker([dispatcher.queue], connection=dispatcher.redis)
    if burst:
        while True:
            dispatcher.sweep()
            worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
            if not _due_now(hub):
                return
            time.sleep(0.2)
    sweeper = threading.Thread(target=_sweep_loop, args=(hub, dispatcher, stop), name="o2c-sweeper",
                               daemon=True)
    sweeper.start()
    try:
        worker.work(with_scheduler=True, logging_level="INFO")
    finally:
        stop.set()


def _sweep_loop(hub: Hub, dispatcher: RQDispatcher, stop: threading.Event) -> None:
    from sync.catchup import run_due_catchups

    interval = hub.settings.sweep_interval
    while not stop.wait(interval):
        try:
            # one sweeper per interval across every worker on this Redis
            if dispatcher.redis.set(f"o2c:{hub.settings.queue_name}:sweeper", "1", nx=True,
                                    px=max(100, int(interval * 900))):
                dispatcher.sweep()
            run_due_catchups(hub)  # a database lock per connection keeps it to one worker
        except Exception:  # noqa: BLE001 - Redis or the database briefly away: try again next tick
            log.exception("sweep failed")


def _run_embedded(hub: Hub, runner: EmbeddedRunner, *, burst: bool) -> None:
    try:
        while True:
            runner.sweep()
            runner.wait_idle(timeout=3600 if burst else hub.settings.sweep_interval)
            if burst and not _due_now(hub):
                return
            time.sleep(0.2 if burst else hub.settings.sweep_interval)
    finally:
        runner.stop()


def _due_now(hub: Hub) -> bool:
    from sync.runs import due_runs

    return bool(due_runs(hub.sessions, limit=1))
