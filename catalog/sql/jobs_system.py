"""`system.lakeflow.*`: jobs, their runs and task runs as tables (in the spirit of Databricks'
system.lakeflow), built from the governed job service, so each caller sees only the jobs it may view."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from catalog.paging import every

_TS = pa.timestamp("us", tz="UTC")
_SCHEMAS = {
    "jobs": pa.schema([("job_id", pa.int64()), ("name", pa.string()), ("description", pa.string()), ("creator_id", pa.string()),
                       ("run_as", pa.string()), ("schedule", pa.string()), ("pause_status", pa.string()), ("change_time", _TS),
                       ("tasks", pa.int64())]),
    "job_run_timeline": pa.schema([("job_id", pa.int64()), ("run_id", pa.int64()), ("run_name", pa.string()),
                                   ("period_start_time", _TS), ("period_end_time", _TS), ("trigger_type", pa.string()),
                                   ("run_type", pa.string()), ("triggered_by", pa.string()), ("run_as", pa.string()),
                                   ("state", pa.string()), ("result_state", pa.string()), ("termination_message", pa.string()),
                                   ("job_parameters", pa.string())]),
    "job_task_run_timeline": pa.schema([("job_id", pa.int64()), ("run_id", pa.int64()), ("job_run_id", pa.int64()),
                                        ("task_key", pa.string()), ("attempt", pa.int64()), ("period_start_time", _TS),
                                        ("period_end_time", _TS), ("state", pa.string()), ("result_state", pa.string()),
                                        ("termination_message", pa.string()), ("lineage_run_id", pa.string())]),
}


def lakeflow(c: Any, what: str) -> pa.Table:
    rows: list[dict[str, Any]] = []
    if what == "jobs":
        for j in every(c.jobs.list_jobs):
            s = j.settings.schedule
            rows.append(dict(job_id=j.job_id, name=j.name, description=j.settings.description, creator_id=j.owner, run_as=j.run_as,
                             schedule=s.quartz_cron_expression + " " + s.timezone_id if s else None,
                             pause_status=s.pause_status if s else None, change_time=j.updated_at, tasks=len(j.settings.tasks)))
    else:
        for r in every(c.jobs.list_runs):
            if what == "job_run_timeline":
                rows.append(dict(job_id=r.job_id, run_id=r.run_id, run_name=r.job_name, period_start_time=r.started_at or r.created_at,
                                 period_end_time=r.ended_at, trigger_type="CRON" if r.trigger == "PERIODIC" else "ONE_TIME",
                                 run_type="JOB_RUN", triggered_by=r.triggered_by, run_as=r.run_as, state=r.state, result_state=r.result_state,
                                 termination_message=r.state_message, job_parameters=json.dumps(r.parameters)))
            else:
                rows += [dict(job_id=r.job_id, run_id=t.task_run_id, job_run_id=r.run_id, task_key=t.task_key, attempt=t.attempt,
                              period_start_time=t.started_at, period_end_time=t.ended_at, state=t.state, result_state=t.result_state,
                              termination_message=t.state_message, lineage_run_id=t.lineage_run_id) for t in r.tasks]
    return pa.Table.from_pylist(rows, schema=_SCHEMAS[what])
