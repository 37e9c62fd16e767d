"""Small task functions for trying jobs out (and for the tests): `pipelines.jobs.samples:NAME`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def echo(ctx: Any, **parameters: Any) -> dict[str, Any]:
    """Return the parameters and who ran them (printed into the task's log)."""
    return {"principal": ctx.cairn.principal, "task": ctx.task_key, "run": ctx.job_run_id, **parameters}


def stamp(ctx: Any, path: str, seconds: float = 0.0) -> None:
    """Append when this task started and ended (and its pid) to `path`; sleep `seconds` between."""
    start = time.time()
    time.sleep(float(seconds))
    with open(path, "a") as f:
        f.write(json.dumps({"task": ctx.task_key, "attempt": ctx.attempt, "start": start, "end": time.time(), "pid": os.getpid()}) + "\n")


def sleep(ctx: Any, seconds: float, pid_file: str | None = None, with_child: bool = False) -> None:
    """Sleep; with `with_child`, in a child process too (a kill must reach the whole group)."""
    pids = [os.getpid()]
    if with_child:
        child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({float(seconds)})"])
        pids.append(child.pid)
    if pid_file:
        Path(pid_file).write_text(json.dumps(pids))
    time.sleep(float(seconds))


def fail(ctx: Any, message: str = "failed on purpose", succeed_from_attempt: int | None = None) -> None:
    """Raise, unless this is attempt `succeed_from_attempt` or later."""
    if succeed_from_attempt is not None and ctx.attempt >= int(succeed_from_attempt):
        return
    raise RuntimeError(message)


def copy_table(ctx: Any, source: str, target: str) -> int:
    """Read `source` and append it to `target`, as the task's principal, recorded under the task's lineage run."""
    data = ctx.cairn.data.read(source, run_id=ctx.lineage_run_id)
    ctx.cairn.data.write(target, data, run_id=ctx.lineage_run_id)
    return data.num_rows
