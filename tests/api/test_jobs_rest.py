"""The Jobs REST API (Databricks Jobs 2.1/2.2 shape and /api/2.0/permissions/jobs) on a real 127.0.0.1
server: definitions, paging, runs executed in the server with their tasks' states, cancel, ACLs,
errors in the Databricks shape, audit rows with the REST source, and the databricks-sdk as a client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.server import make_app
from catalog.client import Cairn, Metastore

pytestmark = pytest.mark.slow
S = "pipelines.jobs.samples"


def task(key: str, fn: str = "echo", deps: tuple[str, ...] = (), **params: Any) -> dict[str, Any]:
    return {"task_key": key, "depends_on": [{"task_key": d} for d in deps], "python_task": {"entry_point": f"{S}:{fn}", "parameters": params}}


@pytest.fixture
def world(metastore: Metastore, admin: Cairn) -> dict[str, str]:
    for u in ("alice", "bob"):
        admin.principals.create_user(u)
    admin.principals.create_service_principal("etl-sp")
    admin.jobs.set_service_principal_user("etl-sp", "alice")
    return {u: admin.tokens.create_token(u, "1d")[0] for u in ("alice", "bob")}


@pytest.fixture
def api(metastore: Metastore, live: Any, world: dict[str, str]) -> Iterator[Any]:
    with live(make_app(metastore)) as url:
        def call(method: str, path: str, who: str = "alice", **kw: Any) -> httpx.Response:
            return httpx.request(method, url + path, headers={"Authorization": f"Bearer {world[who]}"}, timeout=30, **kw)

        call.url = url  # type: ignore[attr-defined]
        yield call


def wait_run(api: Any, run_id: int, until: tuple[str, ...] = ("TERMINATED", "SKIPPED"), seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        got = api("GET", "/api/2.1/jobs/runs/get", params={"run_id": run_id}).json()
        if got["state"]["life_cycle_state"] in until or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_create_get_run_and_see_task_states(api: Any, admin: Cairn) -> None:
    r = api("POST", "/api/2.1/jobs/create", json={
        "name": "nightly", "run_as": {"service_principal_name": "etl-sp"}, "max_concurrent_runs": 2,
        "parameters": [{"name": "who", "default": "x"}],
        "schedule": {"quartz_cron_expression": "0 0 3 * * ?", "timezone_id": "Europe/Berlin", "pause_status": "PAUSED"},
        "tasks": [task("extract", w="{{job.parameters.who}}"), task("load", deps=("extract",))]})
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"]
    assert isinstance(job_id, int) and set(r.json()) == {"job_id"}
    got = api("GET", "/api/2.1/jobs/get", params={"job_id": job_id}).json()
    assert (got["job_id"], got["creator_user_name"], got["run_as_user_name"], got["permission_level"]) == (job_id, "alice", "etl-sp", "IS_OWNER")
    s = got["settings"]
    assert (s["name"], s["run_as"], s["max_concurrent_runs"], s["parameters"]) == \
        ("nightly", {"service_principal_name": "etl-sp"}, 2, [{"name": "who", "default": "x"}])
    assert s["schedule"] == {"quartz_cron_expression": "0 0 3 * * ?", "timezone_id": "Europe/Berlin", "pause_status": "PAUSED"}
    assert [(t["task_key"], t.get("depends_on")) for t in s["tasks"]] == [("extract", None), ("load", [{"task_key": "extract"}])]

    run_id = api("POST", "/api/2.1/jobs/run-now", json={"job_id": job_id, "job_parameters": {"who": "rest"}}).json()["run_id"]
    run = wait_run(api, run_id)
    assert (run["run_id"], run["job_id"], run["run_name"], run["creator_user_name"], run["run_as"], run["trigger"]) == \
        (run_id, job_id, "nightly", "alice", "etl-sp", "ONE_TIME")
    assert run["state"] == {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": "", "user_cancelled_or_timedout": False}
    assert run["status"] == {"state": "TERMINATED", "termination_details": {"code": "SUCCESS", "type": "SUCCESS", "message": ""}}
    assert run["job_parameters"] == [{"name": "who", "default": "x", "value": "rest"}]
    assert [(t["task_key"], t["attempt_number"], t["state"]["life_cycle_state"], t["state"]["result_state"], t["status"]["state"])
            for t in run["tasks"]] == [("extract", 0, "TERMINATED", "SUCCESS", "TERMINATED"), ("load", 0, "TERMINATED", "SUCCESS", "TERMINATED")]
    assert all(t["lineage_run_id"] and t["end_time"] >= t["start_time"] > 0 for t in run["tasks"])
    assert run["end_time"] >= run["start_time"] > 0
    listed = api("GET", "/api/2.2/jobs/runs/list", params={"job_id": job_id, "expand_tasks": "true"}).json()
    assert [x["run_id"] for x in listed["runs"]] == [run_id] and listed["has_more"] is False and len(listed["runs"][0]["tasks"]) == 2
    # audited as alice from REST; the tasks acted as etl-sp
    started = [e for e in admin.audit.list_events(action="run_job") if e.principal == "alice"]
    assert [(e.source, e.result.value) for e in started] == [("rest", "ALLOWED")]
    assert {e.principal for e in admin.audit.list_events(action="start_run", max_results=100)} == {"etl-sp"}


def test_errors_come_in_the_databricks_shape(api: Any, admin: Cairn) -> None:
    job_id = api("POST", "/api/2.1/jobs/create", json={"name": "j", "tasks": [task("a")]}).json()["job_id"]
    cases = [
        (api("POST", "/api/2.1/jobs/run-now", json={"job_id": job_id, "job_parameters": {"nope": "1"}}), 400, "INVALID_ARGUMENT", "no parameter 'nope'"),
        (api("GET", "/api/2.1/jobs/get", params={"job_id": 987654}), 404, "NOT_FOUND", "job '987654' does not exist"),
        (api("GET", "/api/2.1/jobs/get", params={"job_id": "abc"}), 400, "INVALID_ARGUMENT", "job_id must be a positive integer"),
        (api("POST", "/api/2.1/jobs/create", json={"name": "j", "tasks": [task("a")]}), 409, "ALREADY_EXISTS", "already exists"),
        (api("POST", "/api/2.1/jobs/create", json={"name": "k", "tasks": [task("a", "x")] * 2}), 400, "INVALID_ARGUMENT", "appears twice"),
        (api("POST", "/api/2.1/jobs/create", json={"name": "k", "tasks": "no"}), 400, "INVALID_ARGUMENT", "tasks must be an array"),
        (api("GET", "/api/2.1/jobs/list", params={"limit": 101}), 400, "INVALID_ARGUMENT", "limit must be from 1 to 100"),
        (api("POST", "/api/2.1/jobs/runs/cancel", json={}), 400, "INVALID_ARGUMENT", "run_id is required"),
    ]
    for r, status, code, text in cases:
        body = r.json()
        assert (r.status_code, body["error_code"]) == (status, code), r.text
        assert text in body["message"] and set(body) == {"error_code", "message", "request_id"} and "Traceback" not in r.text
    assert [j.name for j in admin.jobs.list_jobs()] == ["j"]


def test_list_pages_with_tokens(api: Any) -> None:
    for n in ("a1", "a2", "a3", "a4", "a5"):
        api("POST", "/api/2.1/jobs/create", json={"name": n, "tasks": [task("t")]})
    first = api("GET", "/api/2.1/jobs/list", params={"limit": 2}).json()
    assert [j["settings"]["name"] for j in first["jobs"]] == ["a1", "a2"] and first["has_more"] is True
    assert "tasks" not in first["jobs"][0]["settings"]
    second = api("GET", "/api/2.1/jobs/list", params={"limit": 2, "page_token": first["next_page_token"], "expand_tasks": "true"}).json()
    assert [j["settings"]["name"] for j in second["jobs"]] == ["a3", "a4"] and second["jobs"][0]["settings"]["tasks"][0]["task_key"] == "t"
    third = api("GET", "/api/2.1/jobs/list", params={"limit": 2, "page_token": second["next_page_token"]}).json()
    assert [j["settings"]["name"] for j in third["jobs"]] == ["a5"] and third["has_more"] is False and "next_page_token" not in third
    exact = api("GET", "/api/2.1/jobs/list", params={"name": "a3"}).json()
    assert [j["settings"]["name"] for j in exact["jobs"]] == ["a3"]
    assert api("GET", "/api/2.1/jobs/list", params={"name": "zz"}).json() == {"jobs": [], "has_more": False}


def test_reset_update_delete(api: Any, admin: Cairn) -> None:
    job_id = api("POST", "/api/2.1/jobs/create", json={"name": "j", "tasks": [task("a"), task("b", deps=("a",))]}).json()["job_id"]
    assert api("POST", "/api/2.1/jobs/update", json={"job_id": job_id, "new_settings": {"max_concurrent_runs": 3, "tasks": [task("c")]},
                                                     "fields_to_remove": ["tasks/b"]}).json() == {}
    s = admin.jobs.get_job("j").settings
    assert (s.max_concurrent_runs, [t.task_key for t in s.tasks]) == (3, ["a", "c"])
    assert api("POST", "/api/2.1/jobs/reset", json={"job_id": job_id, "new_settings": {"tasks": [task("z")]}}).json() == {}
    s = admin.jobs.get_job("j").settings
    assert (s.name, s.max_concurrent_runs, [t.task_key for t in s.tasks]) == ("j", 1, ["z"])
    renamed = api("POST", "/api/2.1/jobs/reset", json={"job_id": job_id, "new_settings": {"name": "other", "tasks": [task("z")]}})
    assert (renamed.status_code, renamed.json()["error_code"]) == (400, "INVALID_ARGUMENT")
    assert api("POST", "/api/2.1/jobs/delete", json={"job_id": job_id}).json() == {}
    assert api("GET", "/api/2.1/jobs/get", params={"job_id": job_id}).status_code == 404
    assert [e.source for e in admin.audit.list_events(action="delete_job")] == ["rest"]


def test_cancel_a_running_run(api: Any, tmp_path: Any) -> None:
    pid_file = tmp_path / "pids.json"
    job_id = api("POST", "/api/2.1/jobs/create", json={"name": "slow", "tasks": [
        task("sleep", "sleep", seconds=60, pid_file=str(pid_file)), task("after", deps=("sleep",))]}).json()["job_id"]
    run_id = api("POST", "/api/2.1/jobs/run-now", json={"job_id": job_id}).json()["run_id"]
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    running = api("GET", "/api/2.1/jobs/runs/get", params={"run_id": run_id}).json()
    assert running["state"]["life_cycle_state"] == "RUNNING" and running["status"] == {"state": "RUNNING"}
    assert [(t["task_key"], t["status"]["state"]) for t in running["tasks"]] == [("sleep", "RUNNING"), ("after", "BLOCKED")]
    active = api("GET", "/api/2.1/jobs/runs/list", params={"active_only": "true"}).json()
    assert [x["run_id"] for x in active["runs"]] == [run_id]
    assert api("POST", "/api/2.1/jobs/runs/cancel", json={"run_id": run_id}).json() == {}
    run = wait_run(api, run_id, seconds=30)
    assert (run["state"]["life_cycle_state"], run["state"]["result_state"], run["state"]["user_cancelled_or_timedout"]) == \
        ("TERMINATED", "CANCELED", True)
    assert run["status"]["termination_details"]["code"] == "USER_CANCELED"
    assert [(t["task_key"], t["state"]["result_state"]) for t in run["tasks"]] == [("sleep", "CANCELED"), ("after", "CANCELED")]
    again = api("POST", "/api/2.1/jobs/runs/cancel", json={"run_id": run_id})
    assert (again.status_code, again.json()["error_code"]) == (412, "FAILED_PRECONDITION")


def test_permissions_get_patch_put(api: Any, admin: Cairn) -> None:
    job_id = api("POST", "/api/2.1/jobs/create", json={"name": "j", "tasks": [task("a")]}).json()["job_id"]
    path = f"/api/2.0/permissions/jobs/{job_id}"
    acl = api("PATCH", path, json={"access_control_list": [{"user_name": "bob", "permission_level": "CAN_VIEW"}]}).json()
    assert acl == {"object_id": f"/jobs/{job_id}", "object_type": "job", "access_control_list": [
        {"user_name": "alice", "all_permissions": [{"permission_level": "IS_OWNER", "inherited": False}]},
        {"user_name": "bob", "all_permissions": [{"permission_level": "CAN_VIEW", "inherited": False}]}]}
    assert api("GET", path, "bob").json() == acl  # CAN_VIEW may read the ACL
    put = api("PUT", path, json={"access_control_list": [{"service_principal_name": "etl-sp", "permission_level": "CAN_MANAGE_RUN"},
                                                         {"user_name": "alice", "permission_level": "IS_OWNER"}]}).json()
    assert [(next(v for k, v in e.items() if k != "all_permissions"), e["all_permissions"][0]["permission_level"])
            for e in put["access_control_list"]] == [("alice", "IS_OWNER"), ("etl-sp", "CAN_MANAGE_RUN")]
    assert "service_principal_name" in put["access_control_list"][1]
    bad = api("PATCH", path, json={"access_control_list": [{"user_name": "bob", "permission_level": "CAN_VIEW"},
                                                           {"user_name": "ghost", "permission_level": "CAN_VIEW"}]})
    assert (bad.status_code, bad.json()["error_code"]) == (404, "NOT_FOUND")
    owner = api("PUT", path, json={"access_control_list": [{"user_name": "bob", "permission_level": "IS_OWNER"}]})
    assert (owner.status_code, owner.json()["error_code"]) == (400, "INVALID_ARGUMENT")
    assert admin.jobs.get_permissions("j") == {"alice": "IS_OWNER", "etl-sp": "CAN_MANAGE_RUN"}  # nothing half-written


def test_databricks_sdk_as_a_client(api: Any, world: dict[str, str]) -> None:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import RunLifeCycleState, RunResultState

    w = WorkspaceClient(host=api.url, token=world["alice"])
    job_id = w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": "sdk", "tasks": [task("a"), task("b", deps=("a",))]})["job_id"]
    assert w.jobs.get(job_id).settings.name == "sdk"
    assert [j.job_id for j in w.jobs.list(limit=1)] == [job_id]
    run = w.jobs.run_now(job_id).result()  # waits for TERMINATED through runs/get, as the SDK does against Databricks
    assert (run.state.life_cycle_state, run.state.result_state) == (RunLifeCycleState.TERMINATED, RunResultState.SUCCESS)
    assert sorted((t.task_key, t.state.result_state.value) for t in run.tasks) == [("a", "SUCCESS"), ("b", "SUCCESS")]
    assert [r.run_id for r in w.jobs.list_runs(job_id=job_id)] == [run.run_id]
    perms = w.jobs.get_permissions(str(job_id))
    assert [(a.user_name, a.all_permissions[0].permission_level.value) for a in perms.access_control_list] == [("alice", "IS_OWNER")]
    w.jobs.delete(job_id)
    assert list(w.jobs.list()) == []
