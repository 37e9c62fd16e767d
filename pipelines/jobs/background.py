"""Runs started by a server's transports (REST `run-now`, GraphQL `runJob`), executed in that server.

One small thread pool per process; each run is executed by a Runner acting as the principal who
started it (its tasks run in subprocesses as the job's `run_as`), as `cairn jobs run` does in the CLI.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from catalog.errors import CairnError
from pipelines.jobs.runner import Runner

log = logging.getLogger("cairn.jobs")
MAX_PARALLEL_RUNS = 4
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def execute(metastore: Any, principal: str, run_id: int) -> Future[None]:
    """Execute the PENDING run `run_id` in the background, recording it as `principal`."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(MAX_PARALLEL_RUNS, thread_name_prefix="cairn-job-run")
        return _pool.submit(_run, metastore, principal, run_id)


def _run(metastore: Any, principal: str, run_id: int) -> None:
    try:
        Runner(metastore, principal).run(run_id)
    except CairnError as exc:  # canceled before it began, say: the run's own record says so
        log.warning("run %s did not execute: %s", run_id, exc)
    except Exception:
        log.exception("run %s failed in its runner", run_id)


def shutdown() -> None:
    """Stop taking runs (a server shutting down); runs not begun stay PENDING."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
