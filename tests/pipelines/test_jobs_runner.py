"""Running jobs for real: subprocess tasks as run_as, parallel branches, retries, run_if, timeouts
and cancel that kill the process group, lineage runs tied to job runs, the scheduler, the CLI."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.client import Metastore
from pipelines.jobs.runner import Runner, run_job
from pipelines.jobs.scheduler import Scheduler

pytestmark = pytest.mark.slow
S = "pipelines.jobs.samples"


@pytest.fixture
def ms(tmp_path: Path) -> Iterator[Metastore]:
    m = Metastore.open(home=tmp_path / "home")
    m.initialize("admin")
    a = m.as_principal("admin")
    a.principals.create_service_principal("etl-sp")
    a.principals.create_user("alice")
    a.jobs.set_service_principal_user("etl-sp", "alice")
    a.sql("CREATE CATALOG main; CREATE SCHEMA main.raw; CREATE SCHEMA main.feat; CREATE SCHEMA main.secret;"
          "CREATE TABLE main.raw.events (user_id BIGINT, v DOUBLE); INSERT INTO main.raw.events VALUES (1, 1.5), (2, 2.5);"
          "CREATE TABLE main.feat.copy (user_id BIGINT, v DOUBLE); CREATE TABLE main.secret.pii (user_id BIGINT, v DOUBLE);"
          "GRANT USE CATALOG ON CATALOG main TO `etl-sp`; GRANT USE SCHEMA, SELECT ON SCHEMA main.raw TO `etl-sp`;"
          "GRANT USE SCHEMA, SELECT, MODIFY ON SCHEMA main.feat TO `etl-sp`")
    yield m
    m.close()


def _task(key: str, fn: str, deps: tuple[str, ...] = (), **extra: object) -> dict:
    params = extra.pop("params", {})
    return {"task_key": key, "depends_on": [{"task_key": d} for d in deps], "python_task": {"entry_point": f"{S}:{fn}", "parameters": params},
            **extra}


def test_dag_runs_in_parallel_with_retries_and_run_if(ms: Metastore, tmp_path: Path) -> None:
    alice = ms.as_principal("alice")
    stamps = tmp_path / "stamps.jsonl"
    alice.jobs.create_job({"name": "dag", "run_as": "etl-sp", "tasks": [
        _task("left", "stamp", params={"path": str(stamps), "seconds": 2}),
        _task("right", "stamp", params={"path": str(stamps), "seconds": 2}),
        _task("flaky", "fail", ("left", "right"), params={"succeed_from_attempt": 2}, max_retries=2, min_retry_interval_millis=300),
        _task("broken", "fail", ("flaky",), max_retries=1),
        _task("on_failure", "echo", ("broken",), run_if="AT_LEAST_ONE_FAILED"),
        _task("after_success", "echo", ("broken",)),
        _task("cleanup", "echo", ("after_success", "on_failure"), run_if="ALL_DONE"),
    ]})
    run = run_job(ms, "alice", "dag")
    got = [(t.task_key, t.attempt, t.result_state) for t in sorted(run.tasks, key=lambda t: (t.task_key, t.attempt))]
    assert got == [("after_success", 0, "UPSTREAM_FAILED"), ("broken", 0, "FAILED"), ("broken", 1, "FAILED"), ("cleanup", 0, "SUCCESS"),
                   ("flaky", 0, "FAILED"), ("flaky", 1, "FAILED"), ("flaky", 2, "SUCCESS"), ("left", 0, "SUCCESS"),
                   ("on_failure", 0, "SUCCESS"), ("right", 0, "SUCCESS")]
    assert run.result_state == "SUCCESS_WITH_FAILURES"  # the only leaf (cleanup) succeeded
    assert "failed on purpose" in next(t for t in run.tasks if t.task_key == "broken").state_message
    left, right = (json.loads(line) for line in stamps.read_text().splitlines())
    assert left["start"] < right["end"] and right["start"] < left["end"], "independent tasks overlap in time"
    assert left["pid"] != right["pid"] != os.getpid()
    flaky = sorted((t for t in run.tasks if t.task_key == "flaky"), key=lambda t: t.attempt)
    assert (flaky[1].started_at - flaky[0].ended_at).total_seconds() >= 0.3  # min_retry_interval_millis


def test_a_task_acts_as_run_as_and_cannot_exceed_it(ms: Metastore) -> None:
    admin, alice = ms.as_principal("admin"), ms.as_principal("alice")
    alice.jobs.create_job({"name": "copy", "run_as": "etl-sp", "tasks": [
        _task("ok", "copy_table", params={"source": "main.raw.events", "target": "main.feat.copy"}),
        _task("steal", "copy_table", params={"source": "main.raw.events", "target": "main.secret.pii"}),
    ]})
    run = run_job(ms, "alice", "copy")
    by = {t.task_key: t for t in run.tasks}
    assert by["ok"].result_state == "SUCCESS" and by["steal"].result_state == "FAILED"
    assert "PermissionDenied" in by["steal"].state_message or "NotFound" in by["steal"].state_message
    assert admin.data.read("main.feat.copy").num_rows == 2 and admin.data.read("main.secret.pii").num_rows == 0
    denied = [e for e in admin.audit.list_events(principal="etl-sp") if e.result.value == "DENIED"]
    assert [e.securable_name for e in denied] == ["main.secret.pii"]
    # the task's lineage run is linked both ways: task run -> lineage run -> job run, and the edge carries it
    lineage = admin.lineage.get_run(by["ok"].lineage_run_id)
    assert lineage["principal"] == "etl-sp" and lineage["state"] == "COMPLETE"
    assert lineage["parameters"]["job_run_id"] == run.run_id and lineage["parameters"]["task_key"] == "ok"
    assert [n for n, _ in lineage["inputs"]] == ["main.raw.events"] and [n for n, _ in lineage["outputs"]] == ["main.feat.copy"]
    edges = admin.lineage.list_edges("TABLE")
    assert any(e["target"] == "main.feat.copy" and e["run_id"] == by["ok"].lineage_run_id for e in edges)
    rows = admin.sql(f"SELECT task_key, result_state, lineage_run_id FROM system.lakeflow.job_task_run_timeline WHERE job_run_id = {run.run_id} "
                     "ORDER BY task_key").rows
    assert rows == [("ok", "SUCCESS", by["ok"].lineage_run_id), ("steal", "FAILED", by["steal"].lineage_run_id)]
    assert ms.as_principal("etl-sp").sql("SELECT count(*) FROM system.lakeflow.jobs").rows == [(0,)]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie child of nobody we wait on counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_timeout_and_cancel_kill_the_whole_process_group(ms: Metastore, tmp_path: Path) -> None:
    alice = ms.as_principal("alice")
    pids = tmp_path / "pids.json"
    alice.jobs.create_job({"name": "slow", "run_as": "etl-sp", "tasks": [
        _task("sleepy", "sleep", params={"seconds": 120, "pid_file": str(pids), "with_child": True}, timeout_seconds=20),
        _task("after", "echo", ("sleepy",)),
    ]})
    t0 = time.monotonic()
    run = run_job(ms, "alice", "slow")
    assert time.monotonic() - t0 < 90  # the task sleeps 120 s: it was stopped (20 s leave a loaded machine time to start it)
    assert [(t.task_key, t.result_state) for t in run.tasks] == [("sleepy", "TIMEDOUT"), ("after", "UPSTREAM_FAILED")]
    assert run.result_state == "FAILED"
    assert all(_gone(p) for p in json.loads(pids.read_text())), "the task and its child are killed"
    assert ms.as_principal("admin").lineage.get_run(run.tasks[0].lineage_run_id)["state"] == "ABORT"
    # cancel from elsewhere (another client, another thread): the runner kills the group
    pids.unlink()
    alice.jobs.update_job("slow", {"name": "slow", "run_as": "etl-sp", "tasks": [
        _task("sleepy", "sleep", params={"seconds": 60, "pid_file": str(pids), "with_child": True})]})
    queued = alice.jobs.run_now("slow")
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(run=Runner(ms, "alice").run(queued.run_id)))
    worker.start()
    deadline = time.monotonic() + 30
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    ms.as_principal("admin").jobs.cancel_run(queued.run_id)
    worker.join(30)
    assert result["run"].result_state == "CANCELED" and result["run"].tasks[0].result_state == "CANCELED"
    assert all(_gone(p) for p in json.loads(pids.read_text()))


def test_the_scheduler_starts_due_runs_once(ms: Metastore) -> None:
    alice = ms.as_principal("alice")
    alice.jobs.create_job({"name": "tick", "run_as": "etl-sp", "schedule": {"quartz_cron_expression": "* * * * * ?"},
                           "tasks": [_task("a", "echo")]})
    time.sleep(1.1)
    first, second = Scheduler(ms, "admin"), Scheduler(ms, "admin")
    started = first.tick()
    assert len(started) == 1 and second.tick() in ([], [started[0] + 1])  # the same fire time is never run twice
    first.close()
    second.close()
    runs = list(alice.jobs.list_runs("tick"))
    fires = [r.scheduled_for for r in runs]
    assert len(fires) == len(set(fires)) and all(r.trigger == "PERIODIC" and r.triggered_by == "alice" for r in runs)
    assert runs[-1].result_state == "SUCCESS"


def test_cli_create_run_and_inspect(ms: Metastore, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from api.cli import cli

    (tmp_path / "q.sql").write_text("INSERT INTO main.feat.copy SELECT user_id, v * CAST({{factor}} AS DOUBLE) FROM main.raw.events")
    (tmp_path / "job.yml").write_text("""
name: cli-job
run_as: etl-sp
parameters: [{name: factor, default: "2"}]
tasks:
  - task_key: scale
    sql_task: {file: q.sql, parameters: {factor: "{{job.parameters.factor}}"}}
""")
    home = ["--home", str(ms.settings.home), "--as", "alice", "--json"]
    r = CliRunner().invoke(cli, [*home, "jobs", "create", str(tmp_path / "job.yml")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["run_as"] == "etl-sp"
    r = CliRunner().invoke(cli, [*home, "jobs", "run", "cli-job", "--param", "factor=10"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["result"] == "SUCCESS" and out["tasks"][0]["task"] == "scale"
    assert sorted(ms.as_principal("admin").data.read("main.feat.copy").column("v").to_pylist()) == [15.0, 25.0]
    r = CliRunner().invoke(cli, [*home, "jobs", "run", "cli-job", "--param", "nope=1"])
    assert r.exit_code == 2 and "no parameter 'nope'" in r.output
    r = CliRunner().invoke(cli, [*home, "jobs", "runs", "cli-job"])
    assert [x["result"] for x in json.loads(r.output)] == ["SUCCESS"]
    r = CliRunner().invoke(cli, ["--home", str(ms.settings.home), "--as", "admin", "--json", "jobs", "cancel", str(out["run_id"])])
    assert r.exit_code == 1 and "FAILED_PRECONDITION" in r.output
