"""The governed job service, on SQLite and PostgreSQL: job ACLs, run_as, runs, the scheduler's claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from catalog.client import Cairn, Metastore
from catalog.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied


def _def(name: str = "nightly", **over: object) -> dict:
    return {"name": name, "parameters": [{"name": "day", "default": "today"}],
            "tasks": [{"task_key": "a", "python_task": {"entry_point": "pipelines.jobs.samples:echo"}}], **over}


@pytest.fixture
def people(metastore: Metastore, admin: Cairn) -> Metastore:
    for u in ("alice", "bob", "carol"):
        admin.principals.create_user(u)
    admin.principals.create_service_principal("etl-sp")
    admin.principals.create_group("data-eng")
    admin.principals.add_member("data-eng", "carol")
    return metastore


def _denied(admin: Cairn, principal: str, action: str) -> list:
    return [e for e in admin.audit.list_events(principal=principal, action=action) if e.result.value == "DENIED"]


def test_owner_levels_and_visibility(people: Metastore, admin: Cairn) -> None:
    alice, bob, carol = (people.as_principal(p) for p in ("alice", "bob", "carol"))
    job = alice.jobs.create_job(_def())
    assert (job.owner, job.run_as, job.permission) == ("alice", "alice", "IS_OWNER")
    # bob cannot see it: get says NotFound (audited as a denial), list shows nothing
    with pytest.raises(NotFound):
        bob.jobs.get_job("nightly")
    assert _denied(admin, "bob", "get_job")[0].securable_name == "job:nightly"
    assert [j.name for j in bob.jobs.list_jobs()] == []
    with pytest.raises(NotFound):
        bob.jobs.run_now("nightly")
    # CAN_VIEW to a group: carol sees it but may not run it
    alice.jobs.set_permission("nightly", "data-eng", "CAN_VIEW")
    assert carol.jobs.get_job("nightly").permission == "CAN_VIEW"
    with pytest.raises(PermissionDenied, match="needs CAN_MANAGE_RUN"):
        carol.jobs.run_now("nightly")
    assert [r.run_id for r in carol.jobs.list_runs("nightly")] == []
    # CAN_MANAGE_RUN: run and cancel, but not change or delete
    alice.jobs.set_permission("nightly", "carol", "CAN_MANAGE_RUN")
    run = carol.jobs.run_now("nightly", {"day": "2026-11-26"})
    assert (run.state, run.parameters, run.triggered_by, run.run_as) == ("PENDING", {"day": "2026-11-26"}, "carol", "alice")
    with pytest.raises(PermissionDenied, match="needs CAN_MANAGE"):
        carol.jobs.update_job("nightly", _def(max_concurrent_runs=3))
    with pytest.raises(PermissionDenied):
        carol.jobs.delete_job("nightly")
    assert alice.jobs.get_job("nightly").settings.max_concurrent_runs == 1
    assert carol.jobs.cancel_run(run.run_id).result_state == "CANCELED"
    assert alice.jobs.get_permissions("nightly") == {"data-eng": "CAN_VIEW", "carol": "CAN_MANAGE_RUN", "alice": "IS_OWNER"}
    # the admin manages everything
    assert admin.jobs.get_job("nightly").permission == "CAN_MANAGE"
    with pytest.raises(AlreadyExists):
        bob.jobs.create_job(_def())


def test_run_as_a_service_principal_needs_its_user_role(people: Metastore, admin: Cairn) -> None:
    alice, bob = people.as_principal("alice"), people.as_principal("bob")
    with pytest.raises(PermissionDenied, match="Service Principal User"):
        alice.jobs.create_job(_def(run_as="etl-sp"))
    assert _denied(admin, "alice", "create_job") and [j.name for j in admin.jobs.list_jobs()] == []
    with pytest.raises(PermissionDenied):
        alice.jobs.create_job(_def(run_as="bob"))  # another user: never, unless admin
    with pytest.raises(InvalidArgument, match="is a group"):
        admin.jobs.create_job(_def(run_as="data-eng"))
    with pytest.raises(PermissionDenied):
        alice.jobs.set_service_principal_user("etl-sp", "alice")
    admin.jobs.set_service_principal_user("etl-sp", "alice")
    job = alice.jobs.create_job(_def(run_as="etl-sp"))
    assert job.run_as == "etl-sp"
    # bob gets CAN_MANAGE from alice, but may not change what etl-sp runs: he is no user of it
    alice.jobs.set_permission("nightly", "bob", "CAN_MANAGE")
    evil = _def(tasks=[{"task_key": "a", "python_task": {"entry_point": "pipelines.jobs.samples:copy_table",
                                                         "parameters": {"source": "secret.s.t", "target": "bob.s.t"}}}])
    with pytest.raises(PermissionDenied, match="Service Principal User"):
        bob.jobs.update_job("nightly", evil)
    assert admin.jobs.get_job("nightly").settings.tasks[0].entry_point == "pipelines.jobs.samples:echo"
    with pytest.raises(InvalidArgument, match="keeps its name"):
        alice.jobs.update_job("nightly", _def("renamed"))


def test_runs_parameters_concurrency_and_bookkeeping(people: Metastore, admin: Cairn) -> None:
    alice, bob = people.as_principal("alice"), people.as_principal("bob")
    alice.jobs.create_job(_def(max_concurrent_runs=1))
    with pytest.raises(InvalidArgument, match="no parameter 'dya'"):
        alice.jobs.run_now("nightly", {"dya": "x"})
    first = alice.jobs.run_now("nightly")
    assert first.parameters == {"day": "today"}
    second = alice.jobs.run_now("nightly")
    assert second.state == "SKIPPED" and "max_concurrent_runs" in second.state_message
    # only the runner that started a run records its progress
    alice.jobs.set_permission("nightly", "bob", "CAN_MANAGE_RUN")
    with pytest.raises(PermissionDenied, match="only its runner"):
        bob.jobs.begin_run(first.run_id)
    alice.jobs.begin_run(first.run_id)
    tid = alice.jobs.record_task(first.run_id, "a", 0, "RUNNING", lineage_run_id="abc")
    with pytest.raises(InvalidArgument, match="no task 'zz'"):
        alice.jobs.record_task(first.run_id, "zz", 0, "RUNNING")
    alice.jobs.record_task(first.run_id, "a", 0, "TERMINATED", "SUCCESS", task_run_id=tid)
    done = alice.jobs.finish_run(first.run_id, "SUCCESS")
    assert (done.state, done.result_state, [(t.task_key, t.result_state, t.lineage_run_id) for t in done.tasks]) == \
        ("TERMINATED", "SUCCESS", [("a", "SUCCESS", "abc")])
    with pytest.raises(FailedPrecondition):
        alice.jobs.cancel_run(first.run_id)
    with pytest.raises(FailedPrecondition):
        alice.jobs.record_task(first.run_id, "a", 1, "RUNNING")
    runs = alice.jobs.list_runs("nightly")
    assert [(r.run_id, r.state) for r in runs] == [(second.run_id, "SKIPPED"), (first.run_id, "TERMINATED")]
    with pytest.raises(NotFound):
        people.as_principal("carol").jobs.get_run(first.run_id)
    alice.jobs.delete_job("nightly")
    with pytest.raises(NotFound):
        alice.jobs.get_run(first.run_id)


def test_scheduled_fire_times_are_claimed_once(people: Metastore, admin: Cairn) -> None:
    alice = people.as_principal("alice")
    alice.jobs.create_job(_def(schedule={"quartz_cron_expression": "0 0/15 * * * ?", "timezone_id": "UTC"}))
    alice.jobs.create_job(_def("paused", schedule={"quartz_cron_expression": "0 0/15 * * * ?", "pause_status": "PAUSED"}))
    later = datetime.now(UTC) + timedelta(minutes=31)
    with pytest.raises(PermissionDenied):
        alice.jobs.list_due(later)
    due = admin.jobs.list_due(later)
    assert [(n, o) for n, o, _ in due] == [("nightly", "alice")]
    fire = due[0][2]
    assert fire.minute % 15 == 0 and fire.second == 0
    run = alice.jobs.run_scheduled("nightly", fire)
    assert (run.trigger, run.scheduled_for, run.state) == ("PERIODIC", fire, "PENDING")
    assert alice.jobs.run_scheduled("nightly", fire) is None  # a second scheduler finds it claimed
    assert admin.jobs.list_due(later) == []
    with pytest.raises(InvalidArgument, match="not a fire time"):
        alice.jobs.run_scheduled("nightly", fire + timedelta(minutes=1))
    with pytest.raises(FailedPrecondition, match="no unpaused schedule"):
        alice.jobs.run_scheduled("paused", fire)
