"""Jobs over GraphQL on a real 127.0.0.1 server: jobs(first, after), job(name|id) with tasks, schedule and
permissions, jobRuns with task runs; createJob from YAML or JSON, runJob (executed in the server),
cancelJobRun; the same governed service, audited with the GraphQL source."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.server import make_app
from catalog.client import Cairn, Metastore

pytestmark = pytest.mark.slow

SPEC = """
name: nightly
run_as: etl-sp
max_concurrent_runs: 2
parameters: [{name: who, default: x}]
schedule: {quartz_cron_expression: "0 0/15 * * * ?", timezone_id: UTC, pause_status: PAUSED}
tasks:
  - task_key: extract
    python_task: {entry_point: "pipelines.jobs.samples:echo", parameters: {w: "{{job.parameters.who}}"}}
  - task_key: load
    depends_on: [{task_key: extract}]
    python_task: {entry_point: "pipelines.jobs.samples:echo"}
"""
JOB = """query($name: String, $id: Int) { job(name: $name, id: $id) { jobId name owner runAs permission maxConcurrentRuns
  parameters { name default } schedule { quartzCronExpression timezoneId pauseStatus }
  tasks { taskKey dependsOn runIf entryPoint parameters } permissions { principal level } } }"""
RUNS = """query($job: String, $first: Int, $after: String) { jobRuns(job: $job, first: $first, after: $after) {
  edges { cursor node { runId jobName state resultState triggeredBy runAs parameters { name value }
  tasks { taskKey attempt state resultState lineageRunId } } } pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture
def gql(metastore: Metastore, admin: Cairn, live: Any) -> Iterator[Any]:
    for u in ("alice", "bob"):
        admin.principals.create_user(u)
    admin.principals.create_service_principal("etl-sp")
    admin.jobs.set_service_principal_user("etl-sp", "alice")
    tokens = {u: admin.tokens.create_token(u, "1d")[0] for u in ("alice", "bob")}
    with live(make_app(metastore)) as url:
        def call(query: str, who: str = "alice", **variables: Any) -> dict[str, Any]:
            r = httpx.post(url + "/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {tokens[who]}"},
                           timeout=30)
            return r.json()  # type: ignore[no-any-return]

        yield call


def wait(gql: Any, job: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        node = gql(RUNS, job=job, first=1)["data"]["jobRuns"]["edges"][0]["node"]
        if node["state"] in ("TERMINATED", "SKIPPED") or time.monotonic() > deadline:
            return node  # type: ignore[no-any-return]
        time.sleep(0.2)


def test_create_from_yaml_read_run_and_list_runs(gql: Any, admin: Cairn) -> None:
    created = gql("mutation($spec: String!) { createJob(spec: $spec) { jobId name runAs permission } }", spec=SPEC)["data"]["createJob"]
    assert (created["name"], created["runAs"], created["permission"]) == ("nightly", "etl-sp", "IS_OWNER")
    admin.jobs.set_permission("nightly", "bob", "CAN_VIEW")
    job = gql(JOB, id=created["jobId"])["data"]["job"]
    assert job == {
        "jobId": created["jobId"], "name": "nightly", "owner": "alice", "runAs": "etl-sp", "permission": "IS_OWNER", "maxConcurrentRuns": 2,
        "parameters": [{"name": "who", "default": "x"}],
        "schedule": {"quartzCronExpression": "0 0/15 * * * ?", "timezoneId": "UTC", "pauseStatus": "PAUSED"},
        "tasks": [{"taskKey": "extract", "dependsOn": [], "runIf": "ALL_SUCCESS", "entryPoint": "pipelines.jobs.samples:echo",
                   "parameters": json.dumps({"w": "{{job.parameters.who}}"})},
                  {"taskKey": "load", "dependsOn": ["extract"], "runIf": "ALL_SUCCESS", "entryPoint": "pipelines.jobs.samples:echo",
                   "parameters": "{}"}],
        "permissions": [{"principal": "alice", "level": "IS_OWNER"}, {"principal": "bob", "level": "CAN_VIEW"}],
    }
    assert gql(JOB, "bob", name="nightly")["data"]["job"]["permission"] == "CAN_VIEW"

    ran = gql('mutation { runJob(job: "nightly", parameters: [{name: "who", value: "gql"}]) { runId state triggeredBy } }')["data"]["runJob"]
    assert (ran["state"], ran["triggeredBy"]) == ("PENDING", "alice")
    node = wait(gql, "nightly")
    assert (node["runId"], node["jobName"], node["state"], node["resultState"], node["runAs"]) == \
        (ran["runId"], "nightly", "TERMINATED", "SUCCESS", "etl-sp")
    assert node["parameters"] == [{"name": "who", "value": "gql"}]
    assert [(t["taskKey"], t["attempt"], t["state"], t["resultState"]) for t in node["tasks"]] == \
        [("extract", 0, "TERMINATED", "SUCCESS"), ("load", 0, "TERMINATED", "SUCCESS")]
    assert all(t["lineageRunId"] for t in node["tasks"])
    # a second run; paging newest first
    gql('mutation { runJob(job: "nightly") { runId } }')
    second = wait(gql, "nightly")
    page1 = gql(RUNS, job="nightly", first=1)["data"]["jobRuns"]
    assert [e["node"]["runId"] for e in page1["edges"]] == [second["runId"]] and page1["pageInfo"]["hasNextPage"] is True
    page2 = gql(RUNS, job="nightly", first=5, after=page1["pageInfo"]["endCursor"])["data"]["jobRuns"]
    assert [e["node"]["runId"] for e in page2["edges"]] == [ran["runId"]] and page2["pageInfo"]["hasNextPage"] is False
    events = [e for e in admin.audit.list_events(action="run_job") if e.principal == "alice"]
    assert [(e.source, e.result.value) for e in events] == [("graphql", "ALLOWED")] * 2


def test_jobs_connection_pages(gql: Any) -> None:
    for n in ("a", "b", "c"):
        spec = json.dumps({"name": n, "tasks": [{"task_key": "t", "python_task": {"entry_point": "pipelines.jobs.samples:echo"}}]})
        assert gql("mutation($s: String!) { createJob(spec: $s) { name } }", s=spec)["data"]["createJob"] == {"name": n}
    q = "query($after: String) { jobs(first: 2, after: $after) { edges { node { name } } pageInfo { hasNextPage endCursor } } }"
    first = gql(q)["data"]["jobs"]
    assert [e["node"]["name"] for e in first["edges"]] == ["a", "b"] and first["pageInfo"]["hasNextPage"] is True
    rest = gql(q, after=first["pageInfo"]["endCursor"])["data"]["jobs"]
    assert [e["node"]["name"] for e in rest["edges"]] == ["c"] and rest["pageInfo"]["hasNextPage"] is False
    assert gql(q, "bob")["data"]["jobs"]["edges"] == []  # bob sees none of alice's jobs


def test_cancel_and_bad_specs(gql: Any, admin: Cairn, tmp_path: Any) -> None:
    pid_file = tmp_path / "pids.json"
    spec = json.dumps({"name": "slow", "tasks": [{"task_key": "s", "python_task": {
        "entry_point": "pipelines.jobs.samples:sleep", "parameters": {"seconds": 60, "pid_file": str(pid_file)}}}]})
    gql("mutation($s: String!) { createJob(spec: $s) { name } }", s=spec)
    run_id = gql('mutation { runJob(job: "slow") { runId } }')["data"]["runJob"]["runId"]
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    canceled = gql("mutation($id: Int!) { cancelJobRun(runId: $id) { state cancelRequested } }", id=run_id)["data"]["cancelJobRun"]
    assert canceled == {"state": "TERMINATING", "cancelRequested": True}
    node = wait(gql, "slow", 30)
    assert (node["state"], node["resultState"], node["tasks"][0]["resultState"]) == ("TERMINATED", "CANCELED", "CANCELED")
    for bad, text in (("name: [unclosed", "not valid YAML or JSON"), ("name: x\ntasks: []", "needs a list of tasks"),
                      ('{"name": "x", "tasks": [{"task_key": "a", "python_task": {"entry_point": "os:system"}}]}', "outside the packages")):
        err = gql("mutation($s: String!) { createJob(spec: $s) { name } }", s=bad)["errors"][0]
        assert err["extensions"]["code"] == "INVALID_ARGUMENT" and text in err["message"], err
    assert sorted(j.name for j in admin.jobs.list_jobs()) == ["slow"]
    err = gql('{ job(name: "slow", id: 1) { name } }')["errors"][0]
    assert err["extensions"]["code"] == "INVALID_ARGUMENT"
