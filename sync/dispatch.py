"""Getting runs to a worker: rq on Redis (scale-out) or an in-process thread pool (embedded).

Both run the same job function, ``sync.microbatch.run``: with ``O2C_BATCH_WINDOW`` > 0 (the default, 0.5 s)
the order runs of one merchant that arrive within the window are drained together by one batch job
(``sync.orders``); otherwise, and for other kinds of runs, ``sync.jobs.run_sync`` works on one run. Dispatch
is only a hint: the database is the source of truth, and the sweeper re-dispatches any run that is due or
whose worker died, so a lost queue message delays a sync but never loses it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sync import runs

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.dispatch")
SWEEP_FETCH = 100   # jobs the sweeper reads from Redis in one round trip


def job_id(run_id: int) -> str:
    return f"o2c-run-{run_id}"


class Dispatcher(Protocol):
    def dispatch(self, run_id: int) -> None: ...
    def sweep(self) -> int: ...
    def stop(self) -> None: ...


class EmbeddedRunner:
    """Runs jobs on a small thread pool in this process; a sweeper thread picks up due runs."""

    def __init__(self, hub: Hub, threads: int = 4, sweep_interval: float = 2.0) -> None:
        self.hub = hub
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="o2c-job")
        self._inflight: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._sweeper = threading.Thread(target=self._sweep_loop, args=(sweep_interval,),
                                         name="o2c-sweeper", daemon=True)
        self._sweeper.start()

    def dispatch(self, run_id: int) -> None:
        with self._lock:
            if run_id in self._inflight or self._stop.is_set():
                return
            self._inflight.add(run_id)
        self._pool.submit(self._run, run_id)

    def _run(self, run_id: int) -> None:
        from sync.microbatch import run

        try:
            run(run_id, hub=self.hub, window=self.hub.settings.batch_window)
        except Exception:  # noqa: BLE001 - the job records its own failures; never kill the pool
            log.exception("job for run %s crashed", run_id)
        finally:
            with self._lock:
                self._inflight.discard(run_id)
                self._idle.notify_all()

    def sweep(self) -> int:
        count = route_received(self.hub, self.dispatch)
        for run_id, _status in runs.due_runs(self.hub.sessions):
            self.dispatch(run_id)
            count += 1
        return count

    def depth(self) -> int:
        """Runs handed to this process's pool and not finished yet (queued or running)."""
        with self._lock:
            return len(self._inflight)

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is in flight (used by the demo and ``syncs retry`` in embedded mode)."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._inflight, timeout=timeout)

    def _sweep_loop(self, interval: float) -> None:
        from sync.catchup import run_due_catchups

        while not self._stop.wait(interval):
            try:
                self.sweep()
                run_due_catchups(self.hub)
            except Exception:  # noqa: BLE001 - e.g. the database is briefly unavailable
                log.exception("sweep failed")

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


class RQDispatcher:
    """Enqueues ``sync.dispatch.run_job`` on an rq queue; ``o2c worker`` processes run it."""

    def __init__(self, hub: Hub) -> None:
        from redis import Redis
        from rq import Queue

        self.hub = hub
        self.redis = Redis.from_url(hub.settings.redis_url)
        self.queue = Queue(hub.settings.queue_name, connection=self.redis)

    def dispatch(self, run_id: int) -> None:
        self.queue.enqueue("sync.dispatch.run_job", run_id, job_id=job_id(run_id),
                           result_ttl=60, failure_ttl=86400,
                           job_timeout=max(600, int(self.hub.settings.run_lease_seconds * 20)))

    def depth(self) -> int:
        """Jobs waiting in the rq queue."""
        return int(self.queue.count)

    def route_event(self, event_id: int) -> None:
        """The receiver stored the event: a worker routes it and runs its run (``route_job``)."""
        self.queue.enqueue("sync.dispatch.route_job", event_id, job_id=f"o2c-event-{event_id}",
                           result_ttl=60, failure_ttl=86400,
                           job_timeout=max(600, int(self.hub.settings.run_lease_seconds * 20)))

    def sweep(self) -> int:
        """Enqueue every due run that is not already waiting in the queue."""
        count = route_received(self.hub, self.dispatch)
        due = runs.due_runs(self.hub.sessions)
        # a lapsed lease (running) means the job's worker died: always re-enqueue, whatever its job says
        waiting = self._waiting_jobs([run_id for run_id, status in due if status != "running"])
        for run_id, _status in due:
            if run_id not in waiting:
                self.dispatch(run_id)
                count += 1
        return count

    def _waiting_jobs(self, run_ids: list[int]) -> set[int]:
        """The runs whose job waits in the queue (queued, deferred or scheduled), enqueued in the last ten
        minutes. Only the job's ``data``, ``status`` and ``enqueued_at`` are read (a hash without ``data`` is
        no job, as rq's ``Job.fetch`` has it), ``SWEEP_FETCH`` jobs per round trip."""
        from rq.job import Job, JobStatus
        from rq.utils import str_to_date

        waiting = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED}
        stale = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=10)
        out: set[int] = set()
        for start in range(0, len(run_ids), SWEEP_FETCH):
            part = run_ids[start:start + SWEEP_FETCH]
            with self.redis.pipeline(transaction=False) as pipe:
                for run_id in part:
                    pipe.hmget(Job.key_for(job_id(run_id)), "data", "status", "enqueued_at")
                answers = pipe.execute()
            for run_id, (data, status, enqueued_at) in zip(part, answers, strict=True):
                if data is None or not status or not enqueued_at:
                    continue
                enqueued = str_to_date(enqueued_at).replace(tzinfo=None)
                if JobStatus(status.decode() if isinstance(status, bytes) else status) in waiting \
                        and enqueued > stale:
                    out.add(run_id)
        return out

    def stop(self) -> None:
        self.redis.close()


def run_job(run_id: int) -> str:
    """The rq entry point: the process's hub (from the environment) runs ``sync.microbatch.run`` with the
    micro-batch window of its settings."""
    from hub.runtime import current_hub
    from sync.microbatch import run

    hub = current_hub()
    return run(run_id, hub=hub, window=hub.settings.batch_window)


def route_job(event_id: int) -> str:
    """The rq entry point of a stored webhook: route it (``sync.routing``), then run its run here."""
    from hub.runtime import current_hub
    from sync.microbatch import run
    from sync.routing import route_event

    hub = current_hub()
    run_id = route_event(hub, event_id)
    if run_id is None:
        return "no run"
    return run(run_id, hub=hub, window=hub.settings.batch_window)


def route_received(hub: Hub, dispatch: Callable[[int], None]) -> int:
    """Route the events a lost nudge or queue message left ``received``, and dispatch their runs."""
    from sync.routing import received_events, route_events

    count = 0
    for run_id in dict.fromkeys(route_events(hub, received_events(hub.sessions)).values()):
        dispatch(run_id)
        count += 1
    return count


def make_dispatcher(hub: Hub) -> Dispatcher:
    if hub.settings.redis_url:
        return RQDispatcher(hub)
    return EmbeddedRunner(hub, threads=hub.settings.embedded_threads,
                          sweep_interval=hub.settings.sweep_interval)
