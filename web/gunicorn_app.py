"""``o2c serve`` under gunicorn: several web worker processes, and the jobs in exactly one place.

Web workers (``gthread``: ``--workers`` processes × ``THREADS`` threads) only verify, store and hand over;
each builds its own ``Hub`` after the fork (database pools and clients are never shared across a fork).
They are ``web.gunicorn_worker.BoundedThreadWorker``: gthread, except that a request is read whole, within
``BODY_DEADLINE`` seconds and ``MAX_BODY`` bytes, before a thread is given to it, so clients that stall or
drip cannot take the threads away from webhooks (see that module for why no gunicorn setting does this).

Where the jobs run:

* **scale-out** (``O2C_REDIS_URL``): in ``o2c worker`` processes, as with the development server; the
  web workers enqueue to rq and share the rate limits through Redis.
* **embedded** (no Redis): not in the web workers. Each of them would run its own runner, sweeper and
  in-memory rate limiter: the same runs would be raced for by N sweepers and a QuickBooks company would
  get N budgets instead of one. So the gunicorn master starts one *job process* beside the workers (the
  embedded runner of ``o2c worker``, with its sweeper and catch-up), restarts it if it dies and stops it
  with the server. A web worker hands each new run to it at once over a Unix datagram socket in the
  temporary folder (``NudgeDispatcher``); a nudge that is lost only waits for the job process's sweeper.
  A stored Shopify order webhook is handed over the same way, as its inbox event: the job process routes
  it (``sync.routing``: the run opened there, not in the request) and runs it.

The master itself runs no jobs and holds no database connection when it forks: it migrates the schema
once before the workers start, then only supervises.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hub.runtime import Hub

log = logging.getLogger("o2c.serve")
THREADS = 8                 # threads per web worker (gthread): webhooks wait on the database, not the CPU
WORKER_CLASS = "web.gunicorn_worker.BoundedThreadWorker"
ROUTE_GROUP = 200           # inbox events the job process routes in one transaction at most


def socket_path(instance: Path) -> str:
    """The job process's socket: in the temporary folder (a Unix socket path must stay short), one per
    instance folder."""
    import tempfile

    digest = hashlib.sha256(str(instance).encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"o2c-jobs-{digest}.sock")


def default_workers() -> int:
    """gunicorn's advice: 2 × cores + 1."""
    return 2 * (os.cpu_count() or 1) + 1


class NudgeDispatcher:
    """A web worker's dispatcher in embedded mode: tells the job process which run to work on."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def dispatch(self, run_id: int) -> None:
        self._send(str(int(run_id)).encode())

    def route_event(self, event_id: int) -> None:
        """A stored webhook: the job process routes it (``sync.routing``) and runs its run."""
        self._send(b"e" + str(int(event_id)).encode())

    def _send(self, message: bytes) -> None:
        try:
            self._sock.sendto(message, self.path)
        except OSError:  # the job process is (re)starting or busy: its sweeper picks the work up
            log.debug("nudge %r not delivered", message)

    def sweep(self) -> int:
        return 0  # the job process sweeps

    def stop(self) -> None:
        self._sock.close()


def serve(host: str, port: int, workers: int) -> None:
    """Run the web app under gunicorn until stopped (the caller checked that gunicorn is installed)."""
    from gunicorn.app.base import BaseApplication

    hub = Hub()  # migrates the schema once, before any worker starts
    embedded = not hub.settings.scale_out
    jobs_socket = socket_path(hub.settings.instance_path)
    hub.engine.dispose()
    supervisor = JobProcess(jobs_socket) if embedded else None

    class _App(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": workers, "worker_class": WORKER_CLASS,
                               "threads": THREADS, "timeout": 60, "graceful_timeout": 20, "keepalive": 5,
                               "backlog": 2048, "accesslog": None, "errorlog": "-", "loglevel": "warning",
                               "when_ready": self._ready, "on_exit": self._exit}.items():
                self.cfg.set(key, value)

        @staticmethod
        def _ready(server: Any) -> None:
            if supervisor is not None:
                supervisor.start()

        @staticmethod
        def _exit(server: Any) -> None:
            if supervisor is not None:
                supervisor.stop()

        def load(self) -> Any:
            from web.app import create_app

            worker_hub = Hub(migrate=False)
            if embedded:
                with worker_hub._lock:  # this process only receives: its runs go to the job process
                    worker_hub._dispatcher = NudgeDispatcher(jobs_socket)  # type: ignore[assignment]
            return create_app(worker_hub)

    _App().run()


class JobProcess:
    """The embedded mode's one job process, kept running by the gunicorn master."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="o2c-job-process", daemon=True)
        self._watcher.start()

    def _spawn(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-m", "web.gunicorn_app", "jobs", self.path],
                                      env=dict(os.environ))

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            if self._proc is not None and self._proc.poll() is not None:
                log.warning("the job process exited (%s); starting it again", self._proc.returncode)
                self._spawn()

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()


def run_jobs(path: str) -> None:
    """The job process: the embedded runner (sweeper and catch-up included), fed by the web workers' nudges
    (``123``: run 123; ``e123``: inbox event 123, routed by one router thread, then its run dispatched)."""
    import queue
    import signal

    from hub.runtime import set_current_hub
    from sync.dispatch import EmbeddedRunner
    from sync.routing import route_events

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hub = Hub(migrate=False)
    set_current_hub(hub)
    runner = hub.dispatcher
    assert isinstance(runner, EmbeddedRunner)
    Path(path).unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(1.0)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    events: queue.SimpleQueue[int | None] = queue.SimpleQueue()

    def route() -> None:  # what arrived meanwhile is routed together: one transaction, one SQLite write lock
        while (first := events.get()) is not None:
            group = [first]
            while len(group) < ROUTE_GROUP and not events.empty():
                if (more := events.get()) is None:
                    events.put(None)
                    break
                group.append(more)
            try:
                run_ids = route_events(hub, group)
            except Exception:  # noqa: BLE001 - left received: the sweeper routes them later
                log.exception("routing of inbox events %s… failed; the sweeper will pick them up", group[0])
                continue
            for run_id in dict.fromkeys(run_ids.values()):
                runner.dispatch(run_id)

    router = threading.Thread(target=route, name="o2c-router", daemon=True)
    router.start()
    runner.sweep()  # what was left while no job process ran
    try:
        while not stopping.is_set():
            try:
                data = sock.recv(64).strip()
            except TimeoutError:
                continue
            except OSError:
                time.sleep(0.1)
                continue
            if data.isdigit():
                runner.dispatch(int(data))
            elif data[:1] == b"e" and data[1:].isdigit():
                events.put(int(data[1:]))
    finally:
        events.put(None)
        router.join(timeout=20)
        sock.close()
        Path(path).unlink(missing_ok=True)
        hub.close()


if __name__ == "__main__":  # pragma: no cover - started by JobProcess
    if len(sys.argv) == 3 and sys.argv[1] == "jobs":
        run_jobs(sys.argv[2])
    else:
        sys.exit("usage: python -m web.gunicorn_app jobs SOCKET")
