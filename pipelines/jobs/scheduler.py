"""Fires jobs' Quartz schedules: inside `cairn serve`, or standalone (`cairn jobs scheduler`).

Each tick asks the governed job service, as a metastore admin, which unpaused schedules have a fire
time at or before now with no run yet, then claims each as the job's owner (`run_scheduled`: one
run per job and fire time, so several schedulers sharing PostgreSQL start it once) and runs it on a
worker thread; the tasks themselves run in subprocesses as the job's `run_as`. A fire time missed
while no scheduler ran is run once (the latest), as Databricks does, never replayed one by one.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from catalog.client import Metastore
from catalog.errors import CairnError
from pipelines.jobs.runner import Runner

log = logging.getLogger("cairn.jobs")


class Scheduler:
    def __init__(self, metastore: Metastore, principal: str, tick_seconds: float = 1.0, max_parallel_runs: int = 8) -> None:
        self.metastore = metastore
        self.principal = principal
        self.tick_seconds = tick_seconds
        self.pool = ThreadPoolExecutor(max_parallel_runs, thread_name_prefix="cairn-job")
        self.stop = threading.Event()
        self.futures: list[Future[object]] = []

    def tick(self, at: datetime | None = None) -> list[int]:
        """Start every run due at `at` (default now); returns the ids of the runs started."""
        at = at or datetime.now(UTC)
        started = []
        for name, owner, fire in self.metastore.as_principal(self.principal).jobs.list_due(at):
            try:
                run = self.metastore.as_principal(owner).jobs.run_scheduled(name, fire)
            except CairnError as exc:  # the owner lost its rights, or the job changed meanwhile
                log.warning("scheduled run of job %s at %s not started: %s", name, fire.isoformat(), exc)
                continue
            if run is None:
                continue  # another scheduler claimed it
            started.append(run.run_id)
            if run.state == "PENDING":
                self.futures.append(self.pool.submit(Runner(self.metastore, owner).run, run.run_id))
            else:
                log.info("scheduled run %s of job %s: %s", run.run_id, name, run.state_message)
        self.futures = [f for f in self.futures if not f.done()]
        return started

    def serve_forever(self) -> None:
        log.info("job scheduler running as %s, every %.1fs", self.principal, self.tick_seconds)
        while not self.stop.wait(self.tick_seconds):
            try:
                self.tick()
            except CairnError as exc:
                log.warning("scheduler tick failed: %s", exc)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="cairn-job-scheduler", daemon=True)
        thread.start()
        return thread

    def close(self, wait: bool = True) -> None:
        self.stop.set()
        self.pool.shutdown(wait=wait)


def start_in_background(metastore: Metastore, principal: str | None) -> Scheduler | None:
    """The scheduler of `cairn serve`: started when the server's principal is a metastore admin."""
    if not principal:
        log.warning("job scheduler not started: serve with --as ADMIN to run job schedules")
        return None
    try:
        metastore.as_principal(principal).jobs.list_due(datetime.now(UTC))
    except CairnError as exc:
        log.warning("job scheduler not started: %s", exc)
        return None
    scheduler = Scheduler(metastore, principal)
    scheduler.start()
    return scheduler
