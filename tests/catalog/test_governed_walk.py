"""Walk every public service method as a principal with no privileges: each one is refused (or,
for the few open to every principal, shows nothing it should not), and each writes one audit row."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from sqlalchemy import select

from catalog.client import Cairn, Metastore
from catalog.errors import CairnError, NotFound, PermissionDenied
from catalog.store import tables as t

COLS = [{"name": "x", "type": "int"}]

# service attribute -> method -> positional arguments for the call
CALLS: dict[str, dict[str, tuple[Any, ...]]] = {
    "catalogs": {
        "create_catalog": ("c2",), "get_catalog": ("c",), "list_catalogs": (), "update_catalog": ("c", "new comment"),
        "delete_catalog": ("c", True),
    },
    "schemas": {
        "create_schema": ("c.s2",), "get_schema": ("c.s",), "list_schemas": ("c",), "update_schema": ("c.s", "x"),
        "delete_schema": ("c.s", True),
    },
    "tables": {
        "create_table": ("c.s.t2", COLS), "get_table": ("c.s.t",), "get_table_by_id": ("5",), "list_tables": ("c", "s"), "update_table": ("c.s.t", "x"),
        "delete_table": ("c.s.t",), "generate_temporary_credentials": ("c.s.t",),
        "set_row_filter": ("c.s.t", "c.s.f", []), "drop_row_filter": ("c.s.t",), "set_column_mask": ("c.s.t", "x", "c.s.f"),
        "drop_column_mask": ("c.s.t", "x"), "partition_columns_many": ([],),
    },
    "data": {
        "read": ("c.s.t",), "read_pandas": ("c.s.t",), "history": ("c.s.t",), "read_changes": ("c.s.t", 0),
        "write": ("c.s.t", [{"x": 1}]), "merge": ("c.s.t", [{"x": 1}], ["x"]), "delete": ("c.s.t", "x = 1"),
        "update": ("c.s.t", {"x": "2"}), "optimize": ("c.s.t",), "vacuum": ("c.s.t",), "restore": ("c.s.t", 0),
        "plan_scan": ("c.s.t",), "plan_scans": ([("c.s.t", None, None)],), "prepare_write": ("c.s.t",), "commit_files": ("c.s.t", []),
        "history_many": ([],),
    },
    "models": {
        "create_registered_model": ("c.s.m2",), "get_registered_model": ("c.s.m",), "list_registered_models": ("c", "s"),
        "update_registered_model": ("c.s.m", "x"), "delete_registered_model": ("c.s.m",),
        "create_model_version": ("c.s.m", "file:///x"), "finalize_model_version": ("c.s.m", 1),
        "get_model_version": ("c.s.m", 1), "list_model_versions": ("c.s.m",), "update_model_version": ("c.s.m", 1, "x"),
        "delete_model_version": ("c.s.m", 1), "generate_temporary_credentials": ("c.s.m", 1),
        "set_alias": ("c.s.m", "champion", 1), "delete_alias": ("c.s.m", "champion"), "get_version_by_alias": ("c.s.m", "champion"),
        "set_model_version_tag": ("c.s.m", 1, "k", "v"), "delete_model_version_tag": ("c.s.m", 1, "k"),
        "get_model_version_tags": ("c.s.m", 1), "set_gates": ("c.s.m", []), "get_gates": ("c.s.m",),
        "get_gate_results": ("c.s.m", 1), "evaluate_gates": ("c.s.m", "champion", 1), "promote": ("c.s.m", "champion", 1),
    },
    "webhooks": {
        "create_webhook": ("w", "https://example.com/hook", ["model_version.created"], "c.s.m"), "list_webhooks": (),
        "get_webhook": ("hook-of-admin",), "update_webhook": ("hook-of-admin", None, None, "DISABLED"),
        "delete_webhook": ("hook-of-admin",), "list_deliveries": ("hook-of-admin",),
    },
    "functions": {
        "create_function": ("c.s.f2", "1", "int"), "get_function": ("c.s.f",), "list_functions": ("c", "s"),
        "delete_function": ("c.s.f",), "authorize_execute": ("c.s.f",),
    },
    "principals": {
        "create_principal": ("p1",), "create_user": ("u1",), "create_group": ("g1",), "create_service_principal": ("sp1",),
        "get_principal": ("admin",), "list_principals": (), "delete_principal": ("other",), "set_admin": ("nobody", True),
        "add_member": ("g", "nobody"), "remove_member": ("g", "other"), "list_members": ("g",), "list_groups_of": ("nobody",),
    },
    "grants": {
        "grant": ("table", "c.s.t", "nobody", "SELECT"), "revoke": ("table", "c.s.t", "other", "SELECT"),
        "list_grants": ("table", "c.s.t"), "get_effective_privileges": ("table", "c.s.t", "other"),
        "check": ("table", "c.s.t", "SELECT"), "transfer_ownership": ("table", "c.s.t", "nobody"),
        "list_grants_many": ([],), "get_effective_privileges_many": ([],),
    },
    "tags": {
        "set_tags": ("table", "c.s.t", {"a": "b"}), "unset_tags": ("table", "c.s.t", ["k"]), "list_tags": ("table", "c.s.t"),
        "list_tags_many": ([],),
    },
    "audit": {"list_events": (), "request": ("graphql",), "statement": ("SELECT 1",)},
    "storage_credentials": {
        "create_storage_credential": ("cred2",), "get_storage_credential": ("cred",), "list_storage_credentials": (),
        "update_storage_credential": ("cred", "x"), "delete_storage_credential": ("cred",),
    },
    "external_locations": {
        "create_external_location": ("loc2", "s3://bucket/elsewhere"), "get_external_location": ("loc",), "list_external_locations": (),
        "update_external_location": ("loc", None, None, "x"), "delete_external_location": ("loc",),
    },
    "tokens": {"create_token": ("other",), "list_tokens": (), "revoke_token": ("token-of-other",)},
    "serving": {
        "create_endpoint": ("ep2", [{"entity_name": "c.s.m", "entity_version": 1}]), "get_endpoint": ("ep",), "list_endpoints": (),
        "update_config": ("ep", [{"entity_name": "c.s.m", "entity_version": 1}]), "delete_endpoint": ("ep",), "authorize_query": ("ep",),
    },
    "lineage": {
        "start_run": ("job",), "complete_run": ("run-of-other",), "get_run": ("run-of-other",), "record": (["c.s.t"], ["c.s.t2"]),
        "get_downstream": ("c.s.t",), "get_upstream": ("c.s.t",), "get_path": ("c.s.t", "c.s.t"), "get_impact": ("c.s.t.x",),
        "ingest_openlineage": ({"eventTime": "2026-01-01T00:00:00Z", "producer": "p", "schemaURL": "s", "eventType": "COMPLETE",
                                "run": {"runId": "3f1c0a56-0b5e-4c1b-9a7e-1d2c3b4a5f60"}, "job": {"namespace": "n", "name": "j"},
                                "outputs": [{"namespace": "cairn", "name": "c.s.t"}]},),
        "extract_sql": ("SELECT x FROM c.s.t",), "list_edges": (), "record_sql": ("INSERT INTO c.s.t2 SELECT x FROM c.s.t",),
    },
}

# Open to every known principal, as in Databricks: directory lookups and filtered lists.
OPEN = {"request", "statement", "list_catalogs", "get_principal", "list_principals", "list_members", "list_groups_of", "list_events", "start_run", "extract_sql", "list_edges", "list_tokens", "list_tags_many", "list_grants_many",
        "history_many", "get_effective_privileges_many", "partition_columns_many", "list_storage_credentials", "list_external_locations", "list_webhooks", "list_endpoints"}

# The audit log's count ("showing 100 of 2,345") is open like its listing, and as filtered.
CALLS["audit"]["count_events"] = ()
OPEN.add("count_events")
CALLS["audit"]["list_writers"] = ("c.s.t",)  # DESCRIBE HISTORY's userName: needs SELECT, like the history

# Jobs: the job "j" and its run belong to the admin (run ids are filled in by the walk)
_JOB = {"name": "j", "tasks": [{"task_key": "a", "python_task": {"entry_point": "pipelines.jobs.samples:echo"}}]}
_AT = __import__("datetime").datetime(2026, 1, 1, tzinfo=__import__("datetime").UTC)
CALLS["jobs"] = {
    "create_job": ({**_JOB, "name": "j2", "run_as": "other"},), "update_job": ("j", _JOB), "delete_job": ("j",), "get_job": ("j",),
    "list_jobs": (), "set_permission": ("j", "nobody", "CAN_MANAGE"), "set_permissions": ("j", {"nobody": "CAN_MANAGE"}), "get_permissions": ("j",),
    "set_service_principal_user": ("sp", "nobody"), "run_now": ("j",), "run_scheduled": ("j", _AT), "get_run": (0,),
    "list_runs": (), "cancel_run": (0,), "begin_run": (0,), "record_task": (0, "a", 0, "RUNNING"), "finish_run": (0, "SUCCESS"),
    "cancel_requested": (0,), "list_due": (_AT,),
}
OPEN |= {"list_jobs", "list_runs"}


def public_methods(service: object) -> set[str]:
    return {n for n, _ in inspect.getmembers(service, inspect.ismethod) if not n.startswith("_")}


def test_every_public_method_is_listed(admin: Cairn) -> None:
    from catalog.service.common import Service

    services = {name for name, value in vars(admin).items() if isinstance(value, Service)}
    assert services == set(CALLS), "every service of the client is walked"
    for attr, calls in CALLS.items():
        assert public_methods(getattr(admin, attr)) == set(calls), attr


def test_every_method_is_governed_and_audited(metastore: Metastore, admin: Cairn, monkeypatch: pytest.MonkeyPatch) -> None:
    admin.principals.create_user("nobody")
    admin.principals.create_user("other")
    admin.principals.create_group("g")
    admin.principals.add_member("g", "other")
    admin.catalogs.create_catalog("c")
    admin.schemas.create_schema("c.s")
    admin.tables.create_table("c.s.t", COLS)
    admin.grants.grant("table", "c.s.t", "other", "SELECT")
    admin.tags.set_tags("table", "c.s.t", {"k": "v"})
    admin.models.create_registered_model("c.s.m")
    admin.models.create_model_version("c.s.m", "file:///m")
    admin.models.finalize_model_version("c.s.m", 1)
    admin.serving.create_endpoint("ep", [{"entity_name": "c.s.m", "entity_version": 1}])
    admin.functions.create_function("c.s.f", "1", "int")
    admin.tables.create_table("c.s.t2", COLS)
    admin.storage_credentials.create_storage_credential("cred")
    admin.external_locations.create_external_location("loc", "s3://bucket/loc", "cred")
    other_run = metastore.as_principal("other").lineage.start_run("theirs")
    CALLS["lineage"]["complete_run"] = (other_run,)
    CALLS["lineage"]["get_run"] = (other_run,)
    CALLS["tables"]["get_table_by_id"] = (str(admin.tables.get_table("c.s.t").id),)
    # Batch lookups take entities from governed lists; handed an invisible one they return nothing for it.
    CALLS["tags"]["list_tags_many"] = ([admin.tables.get_table("c.s.t")],)
    CALLS["grants"]["list_grants_many"] = ([admin.tables.get_table("c.s.t")],)
    # Per-row batches answer each row as the single call would: here, each row refused.
    CALLS["data"]["history_many"] = ([admin.tables.get_table("c.s.t")],)
    CALLS["grants"]["get_effective_privileges_many"] = ([admin.tables.get_table("c.s.t")],)
    CALLS["tables"]["partition_columns_many"] = ([admin.tables.get_table("c.s.t")],)
    CALLS["tokens"]["revoke_token"] = (admin.tokens.create_token("other")[1].token_id,)
    monkeypatch.setenv("CAIRN_WEBHOOK_ALLOW_PRIVATE", "1")  # no DNS in tests; the URL check is tested on its own
    hook = admin.webhooks.create_webhook("mine", "https://example.com/h", ["model_version.created"], "c.s.m").id
    for m in ("get_webhook", "update_webhook", "delete_webhook", "list_deliveries"):
        CALLS["webhooks"][m] = (hook, *CALLS["webhooks"][m][1:])
    admin.jobs.create_job(_JOB)
    run_id = admin.jobs.run_now("j").run_id
    for method in ("get_run", "cancel_run", "begin_run", "record_task", "finish_run", "cancel_requested"):
        CALLS["jobs"][method] = (run_id, *CALLS["jobs"][method][1:])
    nobody = metastore.as_principal("nobody")

    def audit_count() -> list[tuple[str, str]]:
        with metastore.engine.connect() as conn:
            a = t.audit_events
            return [tuple(r) for r in conn.execute(select(a.c.action, a.c.result).where(a.c.principal == "nobody").order_by(a.c.id))]

    for attr, calls in CALLS.items():
        for method, args in calls.items():
            before = audit_count()
            try:
                result = getattr(getattr(nobody, attr), method)(*args)
                if method in ("request", "statement"):  # context managers: audited when they end
                    with result:
                        pass
            except (PermissionDenied, NotFound):
                assert method not in OPEN, f"{attr}.{method} refused an open call"
                outcome = "DENIED"
            except CairnError as exc:  # pragma: no cover - shown in the assertion
                pytest.fail(f"{attr}.{method} failed with {exc.code}: {exc}")
            else:
                assert method in OPEN, f"{attr}.{method} let a principal without privileges through"
                outcome = "ALLOWED"
                if method in ("list_catalogs", "list_storage_credentials", "list_external_locations", "list_webhooks", "list_endpoints", "list_jobs", "list_runs"):
                    assert list(result) == []
                if method == "list_events":
                    assert {e.principal for e in result} == {"nobody"}
                if method in ("list_tags_many", "list_grants_many"):
                    assert result == {}
                if method in ("history_many", "get_effective_privileges_many", "partition_columns_many"):
                    assert [type(e) for e in result.values()] == [NotFound], (method, result)
            after = audit_count()
            assert len(after) == len(before) + 1, f"{attr}.{method} wrote {len(after) - len(before)} audit rows"
            assert after[-1][1] == outcome, f"{attr}.{method}: audit says {after[-1][1]}"
