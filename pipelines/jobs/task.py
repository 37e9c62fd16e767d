"""One task attempt, in its own process (group): acts as the job's `run_as` through the governed services.

The runner starts `python -m pipelines.jobs.task` with CAIRN_PRINCIPAL set to `run_as` and the task
on stdin (JSON). The task opens a lineage run (its reads and writes are recorded under it, and its
parameters name the job run), reports that run's id to the result file at once (so a runner that
kills it can still close and link it), then calls the entry point or runs the SQL through the shim.

A Python entry point is called as `function(ctx, **parameters)` with a `TaskContext`.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.jobspec import sql_placeholders


@dataclass
class TaskContext:
    """What a task function gets: the client acting as `run_as`, and where it runs."""

    cairn: Any
    lineage_run_id: str
    job_name: str
    job_run_id: int
    task_key: str
    attempt: int
    job_parameters: dict[str, str] = field(default_factory=dict)


def sql_literal(value: Any) -> str:
    """A parameter as a SQL string literal (a value, never SQL text).

    >>> sql_literal("it's")
    "'it''s'"
    """
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def bind_sql(sql: str, params: dict[str, Any]) -> str:
    """`{{name}}` in a SQL task becomes the parameter's value as a string literal. A placeholder
    inside a quoted string, quoted identifier or comment is refused (catalog.jobspec.sql_placeholders)."""
    out, at = [], 0
    for m in sql_placeholders(sql):
        key = m[1].strip()
        if key not in params:
            raise KeyError(f"the SQL names parameter {{{{{key}}}}}, which the task does not have ({', '.join(sorted(params)) or 'none'})")
        out += [sql[at:m.start()], sql_literal(params[key])]
        at = m.end()
    return "".join(out) + sql[at:]


def main() -> int:
    from catalog.client import Metastore

    spec = json.loads(sys.stdin.read())
    result_path = Path(spec["result_path"])
    cairn = Metastore.open(create=False).as_principal(source="python")
    lineage_run = cairn.lineage.start_run(
        f"{spec['job_name']}.{spec['task_key']}", "cairn-jobs",
        parameters={"job_name": spec["job_name"], "job_run_id": spec["run_id"], "task_key": spec["task_key"],
                    "task_run_id": spec["task_run_id"], "attempt": spec["attempt"]},
        code_ref=spec.get("entry_point") or spec.get("sql_file") or "sql",
    )
    result_path.write_text(json.dumps({"lineage_run_id": lineage_run}))
    state = "FAIL"
    try:
        params = spec["parameters"]
        if spec.get("entry_point"):
            module, _, func = spec["entry_point"].partition(":")
            fn = getattr(importlib.import_module(module), func)
            ctx = TaskContext(cairn, lineage_run, spec["job_name"], spec["run_id"], spec["task_key"], spec["attempt"], spec["job_parameters"])
            out = fn(ctx, **params)
            if out is not None:
                print(json.dumps({"result": out}, default=str))
        else:
            cairn.sql_session.run_id = lineage_run
            for r in cairn.sql_session.execute(bind_sql(spec["sql"], params)):
                print(r.message if getattr(r, "message", None) else f"{len(getattr(r, 'rows', []) or [])} row(s)")
        state = "COMPLETE"
        return 0
    except Exception as exc:  # the task's own failure: its message is the task run's state message
        traceback.print_exc()
        result_path.write_text(json.dumps({"lineage_run_id": lineage_run, "error": f"{type(exc).__name__}: {exc}"[:4000]}))
        return 1
    finally:
        cairn.lineage.complete_run(lineage_run, state)


if __name__ == "__main__":
    sys.exit(main())
