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
