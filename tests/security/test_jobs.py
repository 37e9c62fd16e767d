"""Attacks on jobs: running arbitrary code, SQL injection through parameters, borrowing a service principal."""

from __future__ import annotations

import pytest

from catalog.client import Cairn, Metastore
from catalog.errors import InvalidArgument, NotFound, PermissionDenied
from pipelines.jobs.task import bind_sql


def test_a_task_cannot_name_code_outside_the_allowed_packages(metastore: Metastore, admin: Cairn) -> None:
    for entry in ("os:system", "subprocess:run", "builtins:eval", "pipelinesx.evil:f", "pipelines.jobs.task:_private"):
        with pytest.raises(InvalidArgument):
            admin.jobs.create_job({"name": "x", "tasks": [{"task_key": "a", "python_task": {"entry_point": entry}}]})
    assert list(admin.jobs.list_jobs()) == []
    failed = [e for e in admin.audit.list_events(action="create_job") if e.result.value == "FAILED"]
    assert len(failed) == 5 and all(e.error_code == "INVALID_ARGUMENT" for e in failed)


def test_sql_parameters_are_values_never_sql() -> None:
    evil = "x'); DROP TABLE main.raw.events; --"
    bound = bind_sql("SELECT * FROM t WHERE name = {{who}}", {"who": evil})
    assert bound == "SELECT * FROM t WHERE name = 'x''); DROP TABLE main.raw.events; --'"
    import sqlglot

    assert len(sqlglot.parse(bound, read="databricks")) == 1
    with pytest.raises(KeyError):
        bind_sql("SELECT {{missing}}", {})


def test_nobody_borrows_a_service_principal_or_forges_run_progress(metastore: Metastore, admin: Cairn) -> None:
    for u in ("mallory", "alice"):
        admin.principals.create_user(u)
    admin.principals.create_service_principal("prod-sp")
    mallory, alice = metastore.as_principal("mallory"), metastore.as_principal("alice")
    with pytest.raises(PermissionDenied):
        mallory.jobs.create_job({"name": "m", "run_as": "prod-sp", "tasks": [{"task_key": "a", "python_task": {"entry_point": "pipelines.jobs.samples:echo"}}]})
    with pytest.raises(PermissionDenied):
        mallory.jobs.set_service_principal_user("prod-sp", "mallory")
    alice.jobs.create_job({"name": "a", "tasks": [{"task_key": "a", "python_task": {"entry_point": "pipelines.jobs.samples:echo"}}]})
    run = alice.jobs.run_now("a")
    # mallory cannot see, cancel, or write progress into alice's run
    for call in (lambda: mallory.jobs.get_run(run.run_id), lambda: mallory.jobs.cancel_run(run.run_id),
                 lambda: mallory.jobs.finish_run(run.run_id, "SUCCESS"), lambda: mallory.jobs.begin_run(run.run_id)):
        with pytest.raises(NotFound):
            call()
    assert alice.jobs.get_run(run.run_id).state == "PENDING"
    denied = [e for e in admin.audit.list_events(principal="mallory") if e.result.value == "DENIED"]
    assert {e.action for e in denied} >= {"create_job", "get_job_run", "cancel_job_run", "finish_job_run", "begin_job_run"}


# Over REST and GraphQL (a real server on 127.0.0.1) -------------------------------------------------
_ECHO = {"task_key": "a", "python_task": {"entry_point": "pipelines.jobs.samples:echo"}}
_SLEEP = {"task_key": "s", "python_task": {"entry_point": "pipelines.jobs.samples:sleep", "parameters": {"seconds": 30}}}


@pytest.fixture
def server(metastore: Metastore, admin: Cairn, live):  # type: ignore[no-untyped-def]
    from api.server import make_app

    for u in ("alice", "bob", "mallory"):
        admin.principals.create_user(u)
    admin.principals.create_service_principal("prod-sp")
    admin.jobs.set_service_principal_user("prod-sp", "alice")
    tokens = {u: admin.tokens.create_token(u, "1d")[0] for u in ("alice", "bob", "mallory")}
    with live(make_app(metastore)) as url:
        import httpx

        def call(method: str, path: str, who: str, **kw):  # type: ignore[no-untyped-def]
            return httpx.request(method, url + path, headers={"Authorization": f"Bearer {tokens[who]}"}, timeout=30, **kw)

        def gql(query: str, who: str, **variables):  # type: ignore[no-untyped-def]
            return call("POST", "/graphql", who, json={"query": query, "variables": variables}).json()

        yield call, gql


def _denied(admin: Cairn, who: str, action: str) -> list[str]:
    return [e.source for e in admin.audit.list_events(principal=who, action=action, max_results=100) if e.result.value == "DENIED"]


@pytest.mark.slow
def test_can_view_cannot_run_or_cancel_over_rest_or_graphql(server, admin: Cairn) -> None:  # type: ignore[no-untyped-def]
    call, gql = server
    alice = admin.metastore.as_principal("alice")  # type: ignore[attr-defined]
    job = alice.jobs.create_job({"name": "j", "tasks": [_SLEEP]})
    alice.jobs.set_permission("j", "bob", "CAN_VIEW")
    run = alice.jobs.run_now("j")  # queued, not executed: it stays PENDING
    r = call("POST", "/api/2.1/jobs/run-now", "bob", json={"job_id": job.job_id})
    assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assert "CAN_VIEW" in r.json()["message"]
    r = call("POST", "/api/2.1/jobs/runs/cancel", "bob", json={"run_id": run.run_id})
    assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assert gql('mutation { runJob(job: "j") { runId } }', "bob")["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    assert gql(f"mutation {{ cancelJobRun(runId: {run.run_id}) {{ runId }} }}", "bob")["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    r = call("PATCH", f"/api/2.0/permissions/jobs/{job.job_id}", "bob", json={"access_control_list": [
        {"user_name": "bob", "permission_level": "CAN_MANAGE"}]})
    assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED")
    # nothing changed: one run, still PENDING, not cancel-requested; bob still only CAN_VIEW
    runs = list(alice.jobs.list_runs("j"))
    assert [(x.run_id, x.state, x.cancel_requested) for x in runs] == [(run.run_id, "PENDING", False)]
    assert alice.jobs.get_permissions("j") == {"alice": "IS_OWNER", "bob": "CAN_VIEW"}
    assert sorted(_denied(admin, "bob", "run_job")) == ["graphql", "rest"]
    assert sorted(_denied(admin, "bob", "cancel_job_run")) == ["graphql", "rest"]
    assert _denied(admin, "bob", "set_job_permissions") == ["rest"]
    # with CAN_MANAGE_RUN the same calls pass
    alice.jobs.set_permission("j", "bob", "CAN_MANAGE_RUN")
    assert call("POST", "/api/2.1/jobs/runs/cancel", "bob", json={"run_id": run.run_id}).json() == {}
    assert alice.jobs.get_run(run.run_id).result_state == "CANCELED"


@pytest.mark.slow
def test_run_as_needs_the_service_principal_user_role_over_rest(server, admin: Cairn) -> None:  # type: ignore[no-untyped-def]
    call, gql = server
    for run_as in ({"service_principal_name": "prod-sp"}, "prod-sp", {"user_name": "alice"}):
        r = call("POST", "/api/2.1/jobs/create", "bob", json={"name": "b", "run_as": run_as, "tasks": [_ECHO]})
        assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED"), r.text
    err = gql("mutation($s: String!) { createJob(spec: $s) { name } }", "bob", s="{name: b, run_as: prod-sp, tasks: [{task_key: a, "
              "python_task: {entry_point: 'pipelines.jobs.samples:echo'}}]}")["errors"][0]
    assert err["extensions"]["code"] == "PERMISSION_DENIED"
    assert list(admin.jobs.list_jobs()) == []
    assert sorted(_denied(admin, "bob", "create_job")) == ["graphql", "rest", "rest", "rest"]
    # CAN_MANAGE on alice's job does not let bob switch it to a service principal he may not use
    alice = admin.metastore.as_principal("alice")  # type: ignore[attr-defined]
    job = alice.jobs.create_job({"name": "a", "tasks": [_ECHO]})
    alice.jobs.set_permission("a", "bob", "CAN_MANAGE")
    for path, body in (("/api/2.1/jobs/reset", {"job_id": job.job_id, "new_settings": {"name": "a", "run_as": {"service_principal_name": "prod-sp"},
                                                                                        "tasks": [_ECHO]}}),
                       ("/api/2.1/jobs/update", {"job_id": job.job_id, "new_settings": {"run_as": {"service_principal_name": "prod-sp"}}})):
        r = call("POST", path, "bob", json=body)
        assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED"), r.text
    assert admin.jobs.get_job("a").run_as == "alice"
    assert _denied(admin, "bob", "update_job") == ["rest", "rest"]
    # alice holds the role: the same request from her works
    r = call("POST", "/api/2.1/jobs/update", "alice", json={"job_id": job.job_id, "new_settings": {"run_as": {"service_principal_name": "prod-sp"}}})
    assert r.json() == {} and admin.jobs.get_job("a").run_as == "prod-sp"


@pytest.mark.slow
def test_page_tokens_and_ids_reveal_no_other_principals_jobs(server, admin: Cairn) -> None:  # type: ignore[no-untyped-def]
    import base64

    call, gql = server
    alice, mallory = (admin.metastore.as_principal(u) for u in ("alice", "mallory"))  # type: ignore[attr-defined]
    hidden = [alice.jobs.create_job({"name": n, "tasks": [_ECHO]}) for n in ("a-secret-1", "a-secret-2", "m-secret")]
    mine = [mallory.jobs.create_job({"name": n, "tasks": [_ECHO]}) for n in ("b-mine", "z-mine")]
    alice_runs = [alice.jobs.run_now("a-secret-1").run_id for _ in range(2)]
    # alice's own page token, or tokens forged to start anywhere, list only what mallory may see
    alice_page = call("GET", "/api/2.1/jobs/list", "alice", params={"limit": 1}).json()
    assert alice_page["has_more"] is True
    forged = [alice_page["next_page_token"], *(base64.urlsafe_b64encode(n.encode()).decode().rstrip("=") for n in ("", "a", "a-secret-1", "m"))]
    seen = set()
    for token in forged:
        got = call("GET", "/api/2.1/jobs/list", "mallory", params={"page_token": token, "limit": 100}).json()
        names = [j["settings"]["name"] for j in got["jobs"]]
        assert set(names) <= {"b-mine", "z-mine"} and got["has_more"] is False, (token, got)
        seen |= set(names)
    assert seen == {"b-mine", "z-mine"}
    one = call("GET", "/api/2.1/jobs/list", "mallory", params={"limit": 1}).json()
    assert [j["settings"]["name"] for j in one["jobs"]] == ["b-mine"] and one["has_more"] is True
    assert [j["settings"]["name"] for j in call("GET", "/api/2.1/jobs/list", "mallory",
                                                params={"limit": 1, "page_token": one["next_page_token"]}).json()["jobs"]] == ["z-mine"]
    bad = call("GET", "/api/2.1/jobs/list", "mallory", params={"page_token": "%%%"})
    assert (bad.status_code, bad.json()["error_code"]) == (400, "INVALID_ARGUMENT")
    # runs: a forged "before" token lists none of alice's runs
    token = base64.urlsafe_b64encode(str(10**9).encode()).decode().rstrip("=")
    runs = call("GET", "/api/2.1/jobs/runs/list", "mallory", params={"page_token": token}).json()
    assert runs["runs"] == [] and runs["has_more"] is False
    q = "query($after: String) { jobs(first: 10, after: $after) { edges { node { name } } } }"
    assert [e["node"]["name"] for e in gql(q, "mallory", after=alice_page["next_page_token"])["data"]["jobs"]["edges"]] == ["b-mine", "z-mine"]
    # a hidden job or run answers exactly as one that does not exist (no name, same message)
    for path, params, ghost in (("/api/2.1/jobs/get", "job_id", 10**6), ("/api/2.1/jobs/runs/get", "run_id", 10**6)):
        real = hidden[0].job_id if params == "job_id" else alice_runs[0]
        a = call("GET", path, "mallory", params={params: real}).json()
        b = call("GET", path, "mallory", params={params: ghost}).json()
        assert a["error_code"] == b["error_code"] == "NOT_FOUND"
        assert a["message"].replace(str(real), "N") == b["message"].replace(str(ghost), "N") and "secret" not in a["message"]
    r = call("GET", f"/api/2.0/permissions/jobs/{hidden[2].job_id}", "mallory").json()
    assert r["error_code"] == "NOT_FOUND" and "secret" not in r["message"]
    assert {j.name for j in mine} == {"b-mine", "z-mine"}


def test_a_spec_over_the_api_reads_no_server_file(metastore: Metastore, admin: Cairn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """createJob takes the SQL it is given: a sql_task naming a server file and no query is refused,
    so a job cannot be made to carry (and show) a file of the server's."""
    from api.graphql import execute

    secret = tmp_path / "secret.sql"
    secret.write_text("SELECT 'the server secret'")
    spec = f"{{name: s, tasks: [{{task_key: a, sql_task: {{file: '{secret}'}}}}]}}"
    res = execute(admin, "mutation($s: String!) { createJob(spec: $s) { tasks { sql } } }", {"s": spec})
    assert res["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT" and "has no SQL" in res["errors"][0]["message"]
    assert list(admin.jobs.list_jobs()) == []


@pytest.mark.parametrize("sql", ["SELECT * FROM t WHERE name = '{{who}}'", 'SELECT * FROM t WHERE name = "{{who}}"',
                                 "SELECT * FROM `{{who}}`", "SELECT 1 -- for {{who}}", "SELECT /* {{who}} */ 1"])
def test_a_parameter_quoted_or_commented_by_the_author_cannot_carry_sql(admin: Cairn, sql: str) -> None:
    """Authors used to Databricks' text parameters write '{{who}}': a value bound there would close
    the quote, and whoever may run the job (CAN MANAGE RUN) would run SQL as its run_as. Refused."""
    evil = "'; DROP TABLE main.raw.events; --"
    with pytest.raises(InvalidArgument, match="write it bare"):
        bind_sql(sql, {"who": evil})
    with pytest.raises(InvalidArgument, match="task 'a'.*write it bare"):
        admin.jobs.create_job({"name": "q", "parameters": [{"name": "who", "default": "x"}],
                               "tasks": [{"task_key": "a", "sql_task": {"query": sql}}]})
    assert list(admin.jobs.list_jobs()) == []
    assert [e.error_code for e in admin.audit.list_events(action="create_job")] == ["INVALID_ARGUMENT"]
