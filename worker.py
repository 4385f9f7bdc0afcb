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


def _rq_worker_class() -> type:
    from rq import SimpleWorker

    class Worker(SimpleWorker):
        """rq's ``SimpleWorker`` whose command listener (the worker's pubsub thread) wakes every second.

        On SIGTERM rq unsubscribes the worker's channel, then stops that thread and waits for it. rq starts
        it with a 60 s sleep, and when the thread reads the UNSUBSCRIBE reply before it is told to stop (the
        main thread a little slow, as on a busy machine), redis-py has it wait that long for a new
        subscription: the stopped worker took up to a minute to exit (a test or supervisor killed it first).
        """

        def subscribe(self) -> None:
            self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
            self.pubsub = self.connection.pubsub()
            self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
            self.pubsub_thread = self.pubsub.run_in_thread(
                sleep_time=1, daemon=True, exception_handler=self._pubsub_exception_handler)

    return Worker


def _run_rq(hub: Hub, dispatcher: RQDispatcher, *, burst: bool) -> None:
    stop = threading.Event()
    # jobs run in this process (no fork per job): the database pool and clients are reused safely
    worker = _rq_worker_class()([dispatcher.queue], connection=dispatcher.redis)
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
