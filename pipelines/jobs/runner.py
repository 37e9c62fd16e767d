"""Runs one job run: the task DAG in subprocesses, independent tasks in parallel.

Each task attempt is `python -m pipelines.jobs.task` in a new session (its own process group) acting
as the job's `run_as`; a timeout or a cancel kills the whole group (SIGTERM, then SIGKILL). `run_if`
decides what runs once a task's dependencies are done; failed attempts are retried up to
`max_retries` times (timeouts only with `retry_on_timeout`), at least `min_retry_interval_millis`
apart. The runner records every state through the governed job service, acting as the principal
that started the run; cancel requests are polled from the metastore, so `cairn jobs cancel` works
from any process.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog.client import Cairn, Metastore
from catalog.jobspec import JobRun, Task, decide, run_result, substitute

log = logging.getLogger("cairn.jobs")
KILL_GRACE_SECONDS = 2.0


@dataclass
class _Attempt:
    task: Task
    attempt: int
    task_run_id: int
    proc: subprocess.Popen[bytes]
    started: float
    result_path: Path
    log_path: Path
    lineage_run_id: str | None = None


class Runner:
    """Executes runs of jobs, recording them as `principal` (who started them)."""

    def __init__(self, metastore: Metastore, principal: str, poll_seconds: float = 0.1, cancel_poll_seconds: float = 0.5) -> None:
        self.metastore = metastore
        self.principal = principal
        self.poll = poll_seconds
        self.cancel_poll = cancel_poll_seconds

    @property
    def client(self) -> Cairn:
        return self.metastore.as_principal(self.principal)

    def run(self, run_id: int) -> JobRun:
        """Execute a PENDING run to its end and return it (with its task runs)."""
        jobs = self.client.jobs
        run = jobs.begin_run(run_id)
        settings = run.settings
        logs = self.metastore.settings.home / "jobs" / "runs" / str(run_id)
        logs.mkdir(parents=True, exist_ok=True)
        refs = {f"job.parameters.{k}": v for k, v in run.parameters.items()}
        refs.update({"job.run_id": str(run_id), "job.id": str(run.job_id), "job.name": run.job_name, "job.trigger.type": run.trigger,
                     "job.start_time.iso_datetime": datetime.now(UTC).isoformat(),
                     "job.trigger.time.iso_datetime": (run.scheduled_for or run.created_at).isoformat()})
        states: dict[str, str] = {}
        running: dict[str, _Attempt] = {}
        retry_at: dict[str, tuple[int, float]] = {}  # task -> (next attempt, not before)
        started = time.monotonic()
        last_cancel_check = 0.0
        outcome: str | None = None
        message: str | None = None
        try:
            while len(states) < len(settings.tasks):
                now_ = time.monotonic()
                if now_ - last_cancel_check >= self.cancel_poll:
                    last_cancel_check = now_
                    if jobs.cancel_requested(run_id):
                        outcome, message = "CANCELED", "canceled"
                        break
                if settings.timeout_seconds and now_ - started > settings.timeout_seconds:
                    outcome, message = "TIMEDOUT", f"the job run exceeded timeout_seconds={settings.timeout_seconds}"
                    break
                for a in list(running.values()):
                    self._check(jobs, run, a, running, states, retry_at)
                for task in settings.tasks:
                    key = task.task_key
                    if key in states or key in running:
                        continue
                    if key in retry_at:
                        attempt, not_before = retry_at[key]
                        if time.monotonic() >= not_before:
                            del retry_at[key]
                            running[key] = self._launch(jobs, run, task, attempt, refs, logs)
                        continue
                    if any(d not in states for d in task.depends_on):
                        continue
                    verdict = decide(task.run_if, [states[d] for d in task.depends_on])
                    if verdict == "RUN":
                        try:
                            running[key] = self._launch(jobs, run, task, 0, refs, logs)
                        except Exception as exc:  # a parameter reference that does not resolve, say
                            tid = jobs.record_task(run_id, key, 0, "TERMINATED", "FAILED", f"could not start: {exc}")
                            states[key] = "FAILED"
                            log.warning("task %s of run %s could not start (task run %s): %s", key, run_id, tid, exc)
                    else:
                        why = "run_if " + task.run_if + " not met by " + ", ".join(f"{d}={states[d]}" for d in task.depends_on)
                        jobs.record_task(run_id, key, 0, "TERMINATED", verdict, why)
                        states[key] = verdict
                time.sleep(self.poll)
        finally:
            for a in running.values():
                self._kill(a)
                self._close_lineage(run.run_as, a, "ABORT")
                state = outcome if outcome in ("CANCELED", "TIMEDOUT") else "CANCELED"
                jobs.record_task(run_id, a.task.task_key, a.attempt, "TERMINATED", state, message or "the runner stopped",
                                 a.lineage_run_id, a.task_run_id)
                states[a.task.task_key] = state
        for task in settings.tasks:
            if task.task_key not in states:
                jobs.record_task(run_id, task.task_key, 0, "TERMINATED", "CANCELED", message or "not run")
                states[task.task_key] = "CANCELED"
        if outcome is None:
            parents = {d for t in settings.tasks for d in t.depends_on}
            outcome = run_result(states, [t.task_key for t in settings.tasks if t.task_key not in parents])
        return jobs.finish_run(run_id, outcome, message)

    # one attempt ------------------------------------------------------------------------------
    def _launch(self, jobs: Any, run: JobRun, task: Task, attempt: int, refs: dict[str, str], logs: Path) -> _Attempt:
        params = {k: substitute(v, {**refs, "task.name": task.task_key}) for k, v in task.parameters.items()}
        tid = jobs.record_task(run.run_id, task.task_key, attempt, "RUNNING")
        result_path = logs / f"{task.task_key}.{attempt}.json"
        log_path = logs / f"{task.task_key}.{attempt}.log"
        spec = {"job_name": run.job_name, "run_id": run.run_id, "task_key": task.task_key, "task_run_id": tid, "attempt": attempt,
                "entry_point": task.entry_point, "sql": task.sql, "sql_file": task.sql_file, "parameters": params,
                "job_parameters": run.parameters, "result_path": str(result_path)}
        settings = self.metastore.settings
        env = {**os.environ, "CAIRN_HOME": str(settings.home), "CAIRN_METASTORE_URL": settings.metastore_url, "CAIRN_PRINCIPAL": run.run_as,
               "CAIRN_JOB_RUN_ID": str(run.run_id), "CAIRN_TASK_RUN_ID": str(tid)}
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pipelines.jobs.task"], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                env=env, start_new_session=True,
            )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(spec, default=str).encode())
        proc.stdin.close()
        return _Attempt(task, attempt, tid, proc, time.monotonic(), result_path, log_path)

    def _check(self, jobs: Any, run: JobRun, a: _Attempt, running: dict[str, _Attempt], states: dict[str, str],
               retry_at: dict[str, tuple[int, float]]) -> None:
        task, key = a.task, a.task.task_key
        code = a.proc.poll()
        timed_out = code is None and task.timeout_seconds and time.monotonic() - a.started > task.timeout_seconds
        if code is None and not timed_out:
            return
        if timed_out:
            self._kill(a)
        result = self._result(a)
        a.lineage_run_id = result.get("lineage_run_id")
        if timed_out:
            self._close_lineage(run.run_as, a, "ABORT")
            state, msg = "TIMEDOUT", f"the task exceeded timeout_seconds={task.timeout_seconds}"
        elif code == 0:
            state, msg = "SUCCESS", None
        else:
            state, msg = "FAILED", result.get("error") or self._tail(a.log_path) or f"exit code {code}"
        jobs.record_task(run.run_id, key, a.attempt, "TERMINATED", state, msg, a.lineage_run_id, a.task_run_id)
        del running[key]
        retries = task.max_retries if task.max_retries >= 0 else 100
        if state in ("FAILED", "TIMEDOUT") and a.attempt < retries and (state == "FAILED" or task.retry_on_timeout):
            retry_at[key] = (a.attempt + 1, time.monotonic() + task.min_retry_interval_millis / 1000)
        else:
            states[key] = state

    @staticmethod
    def _result(a: _Attempt) -> dict[str, Any]:
        try:
            return json.loads(a.result_path.read_text())
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _tail(path: Path, lines: int = 15) -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @staticmethod
    def _kill(a: _Attempt) -> None:
        """Stop the attempt's whole process group: SIGTERM, then SIGKILL after a grace period."""
        for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(a.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                a.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; children in the group may linger: finish them too
            try:
                os.killpg(a.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break

    def _close_lineage(self, run_as: str, a: _Attempt, state: str) -> None:
        """A killed task cannot close its lineage run: close it as its principal did."""
        lineage_run = a.lineage_run_id or self._result(a).get("lineage_run_id")
        a.lineage_run_id = lineage_run
        if lineage_run:
            try:
                self.metastore.as_principal(run_as).lineage.complete_run(lineage_run, state)
            except Exception as exc:  # the run record stays; say so
                log.warning("could not close lineage run %s: %s", lineage_run, exc)


def run_job(metastore: Metastore, principal: str, name: str, parameters: dict[str, Any] | None = None) -> JobRun:
    """Start a run of job `name` as `principal` and execute it here, waiting for its end.
    A run skipped for `max_concurrent_runs` is returned as it is (SKIPPED)."""
    run = metastore.as_principal(principal).jobs.run_now(name, parameters)
    if run.state != "PENDING":
        return run
    return Runner(metastore, principal).run(run.run_id)
