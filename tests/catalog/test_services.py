"""Governed services: namespace, principals, grants and reasons, tags, drops, audit, paging."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from catalog.client import Cairn, Metastore
from catalog.entities import AuditResult, TableType
from catalog.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from catalog.privileges import Privilege
from catalog.store import tables as t

COLS = [{"name": "user_id", "type": "bigint", "nullable": False}, {"name": "ts", "type": "timestamp", "nullable": False}, {"name": "email", "type": "string"}]


def count(ms: Metastore, table) -> int:  # type: ignore[no-untyped-def]
    with ms.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.fixture
def world(admin: Cairn) -> Cairn:
    for u in ("alice", "bob"):
        admin.principals.create_user(u)
    admin.principals.create_group("ds")
    admin.principals.create_group("all-eng")
    admin.principals.add_member("ds", "alice")
    admin.principals.add_member("all-eng", "ds")
    admin.catalogs.create_catalog("main", comment="prod")
    admin.schemas.create_schema("main.sales")
    admin.tables.create_table("main.sales.orders", COLS, primary_keys=["user_id", "ts"], timestamp_keys=["ts"])
    return admin


def test_create_get_table_round_trip(world: Cairn, metastore: Metastore) -> None:
    t1 = world.tables.get_table("MAIN.Sales.`ORDERS`")
    assert t1.full_name == "main.sales.orders"
    assert [(c.name, c.type_text, c.nullable, c.position) for c in t1.columns] == [
        ("user_id", "bigint", False, 0), ("ts", "timestamp", False, 1), ("email", "string", True, 2)]
    assert t1.table_type is TableType.MANAGED and t1.data_source_format == "DELTA"
    # A managed folder is a fresh random name that only Cairn chooses, never the table's id.
    folder = Path(t1.storage_location)
    assert folder.parent == metastore.settings.warehouse / "main" / "sales" and re.fullmatch(r"[0-9a-f]{32}", folder.name)
    assert (t1.primary_keys, t1.timestamp_keys) == (("user_id", "ts"), ("ts",))
    assert (t1.owner, t1.created_by) == ("admin", "admin")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(columns=[{"name": "a", "type": "int"}, {"name": "A", "type": "int"}]), "column 'a' appears twice"),
        (dict(columns=[{"name": "a", "type": "integr"}]), "column 'a': 'integr' is not a SQL type"),
        (dict(columns=[{"name": "a", "type": "int int"}]), "is not a SQL type"),
        (dict(columns=[{"name": "a", "type": "int"}], primary_keys=["b"]), "primary key column 'b' is not a column"),
        (dict(columns=[{"name": "a", "type": "int"}], primary_keys=["a"]), "must be NOT NULL"),
        (dict(columns=[{"name": "a", "type": "int", "nullable": False}], primary_keys=["a"], timestamp_keys=["a"]), "must be a timestamp"),
        (dict(columns=[]), "needs at least one column"),
        (dict(columns=[{"name": "a", "type": "int"}], table_type="EXTERNAL"), "needs a storage_location"),
        (dict(columns=[{"name": "a", "type": "int"}], table_type="SIDEWAYS"), "MANAGED, EXTERNAL or VIEW"),
    ],
)
def test_bad_table_definitions_are_refused_with_the_reason(world: Cairn, metastore: Metastore, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    before = count(metastore, t.securables)
    with pytest.raises(InvalidArgument, match=message):
        world.tables.create_table("main.sales.bad", **kwargs)
    assert count(metastore, t.securables) == before
    last = list(world.audit.list_events(action="create_table", max_results=1000))[-1]
    assert (last.result, last.error_code, last.securable_name) == (AuditResult.FAILED, "INVALID_ARGUMENT", "main.sales.bad")


def test_names_are_validated(world: Cairn) -> None:
    with pytest.raises(InvalidArgument, match="part 2 is empty"):
        world.tables.get_table("main..orders")
    with pytest.raises(InvalidArgument, match="expected 3 parts"):
        world.tables.get_table("main.sales")
    with pytest.raises(InvalidArgument, match="at most 3 parts"):
        world.tables.get_table("a.b.c.d")


def test_duplicate_names_conflict_case_insensitively(world: Cairn) -> None:
    with pytest.raises(AlreadyExists, match="catalog 'main' already exists"):
        world.catalogs.create_catalog("MAIN")
    with pytest.raises(AlreadyExists):
        world.tables.create_table("main.sales.Orders", COLS)


def test_external_table_and_view(world: Cairn, ext_dir) -> None:  # type: ignore[no-untyped-def]
    where = str(ext_dir / "raw")
    ext = world.tables.create_table("main.sales.raw", [{"name": "x", "type": "int"}], table_type="EXTERNAL", storage_location=where)
    assert (ext.table_type, ext.storage_location) == (TableType.EXTERNAL, where)
    view = world.tables.create_table("main.sales.v", [], table_type="VIEW", view_definition="SELECT 1 AS x")
    assert (view.table_type, view.view_definition, view.storage_location) == (TableType.VIEW, "SELECT 1 AS x", None)


def test_unknown_principal_is_unauthenticated(world: Cairn, metastore: Metastore) -> None:
    with pytest.raises(Unauthenticated, match="'mallory' does not exist"):
        metastore.as_principal("mallory").catalogs.list_catalogs()


def test_effective_privileges_explain_every_path(world: Cairn) -> None:
    world.grants.grant("catalog", "main", "all-eng", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    world.grants.grant("table", "main.sales.orders", "alice", "ALL PRIVILEGES")
    eff = {e.privilege: e.reasons for e in world.grants.get_effective_privileges("table", "main.sales.orders", "alice")}
    assert set(eff) == {Privilege.SELECT, Privilege.MODIFY, Privilege.APPLY_TAG}
    described = sorted(r.describe() for r in eff[Privilege.SELECT])
    assert described == [
        "ALL PRIVILEGES granted on table main.sales.orders to alice",
        "SELECT inherited from catalog main to all-eng through group ds > all-eng",
    ]
    inherited = next(r for r in eff[Privilege.SELECT] if r.kind == "INHERITED")
    assert (inherited.granted_on, inherited.grantee, inherited.via_groups) == ("main", "all-eng", ("ds", "all-eng"))
    admin_reasons = world.grants.get_effective_privileges("table", "main.sales.orders")
    assert {e.privilege for e in admin_reasons} >= {Privilege.SELECT, Privilege.MODIFY, Privilege.MANAGE}
    assert {r.kind for e in admin_reasons for r in e.reasons} == {"ADMIN", "OWNER"}


def test_asking_about_others_needs_manage(world: Cairn, metastore: Metastore) -> None:
    world.grants.grant("catalog", "main", "bob", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    bob = metastore.as_principal("bob")
    assert [e.privilege for e in bob.grants.get_effective_privileges("table", "main.sales.orders")] == [Privilege.SELECT]
    with pytest.raises(PermissionDenied):
        bob.grants.get_effective_privileges("table", "main.sales.orders", "alice")


def test_privilege_not_applicable_to_kind_is_refused(world: Cairn) -> None:
    with pytest.raises(InvalidArgument, match="privilege CREATE SCHEMA cannot be granted on a table"):
        world.grants.grant("table", "main.sales.orders", "alice", "CREATE SCHEMA")
    with pytest.raises(InvalidArgument, match="unknown privilege 'READ'"):
        world.grants.grant("table", "main.sales.orders", "alice", "READ")
    with pytest.raises(NotFound, match="principal 'nobody'"):
        world.grants.grant("table", "main.sales.orders", "nobody", "SELECT")
    assert world.grants.list_grants("table", "main.sales.orders") == []


def test_grant_and_revoke_take_effect_immediately_and_future_children_inherit(world: Cairn, metastore: Metastore) -> None:
    alice = metastore.as_principal("alice")
    world.grants.grant("catalog", "main", "ds", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    assert alice.grants.check("table", "main.sales.orders", "SELECT") is True
    world.tables.create_table("main.sales.later", COLS)  # created after the grant
    assert alice.grants.check("table", "main.sales.later", "SELECT") is True
    world.grants.revoke("catalog", "main", "ds", ["SELECT"])
    with pytest.raises(NotFound):
        alice.tables.get_table("main.sales.later")


def test_changes_made_by_another_process_are_seen_by_the_next_check(world: Cairn, metastore: Metastore) -> None:
    other = Metastore.open(home=metastore.settings.home, url=metastore.settings.metastore_url)
    try:
        alice_here = metastore.as_principal("alice")
        world.grants.grant("catalog", "main", "alice", ["USE CATALOG", "USE SCHEMA"])
        with pytest.raises(NotFound):
            alice_here.tables.get_table("main.sales.orders")  # warms this process's cache
        other.as_principal("admin").grants.grant("table", "main.sales.orders", "alice", "SELECT")
        assert alice_here.tables.get_table("main.sales.orders").name == "orders"
        other.as_principal("admin").principals.remove_member("ds", "alice")
        other.as_principal("admin").grants.transfer_ownership("table", "main.sales.orders", "bob")
        assert metastore.as_principal("bob").grants.check("table", "main.sales.orders", "MODIFY") is False  # no usage yet
        other.as_principal("admin").grants.grant("catalog", "main", "bob", ["USE CATALOG", "USE SCHEMA"])
        assert metastore.as_principal("bob").grants.check("table", "main.sales.orders", "MODIFY") is True
    finally:
        other.close()


def test_group_cycles_are_refused(world: Cairn, metastore: Metastore) -> None:
    with pytest.raises(InvalidArgument, match="cycle"):
        world.principals.add_member("ds", "all-eng")
    with pytest.raises(InvalidArgument, match="cycle"):
        world.principals.add_member("ds", "ds")
    with pytest.raises(InvalidArgument, match="not a group"):
        world.principals.add_member("alice", "bob")
    assert world.principals.list_members("ds") == ["alice"]
    assert world.principals.list_groups_of("alice") == ["account users", "all-eng", "ds"]  # every user is in account users


def test_only_admins_manage_principals(world: Cairn, metastore: Metastore) -> None:
    alice = metastore.as_principal("alice")
    with pytest.raises(PermissionDenied, match="not a metastore admin"):
        alice.principals.create_user("eve")
    with pytest.raises(PermissionDenied):
        alice.principals.add_member("ds", "bob")
    assert world.principals.list_members("ds") == ["alice"]
    world.principals.set_admin("alice", True)
    assert alice.principals.create_user("eve").name == "eve"


def test_ownership_transfer(world: Cairn, metastore: Metastore) -> None:
    world.grants.transfer_ownership("schema", "main.sales", "ds")
    alice = metastore.as_principal("alice")
    world.grants.grant("catalog", "main", "alice", "USE CATALOG")
    # A schema owner manages its children (grants, drops) but does not read them without a grant.
    assert alice.grants.check("table", "main.sales.orders", "SELECT") is False
    alice.grants.grant("table", "main.sales.orders", "alice", "SELECT")
    assert alice.grants.check("table", "main.sales.orders", "SELECT") is True
    with pytest.raises(NotFound, match="principal 'ghost'"):
        world.grants.transfer_ownership("table", "main.sales.orders", "ghost")
    with pytest.raises(FailedPrecondition, match="owns 1 securable"):
        world.principals.delete_principal("ds")


def test_tags_on_every_taggable_kind(world: Cairn, metastore: Metastore) -> None:
    world.models.create_registered_model("main.sales.churn")
    world.models.create_model_version("main.sales.churn", "file:///m/1")
    world.tags.set_tags("catalog", "main", {"env": "prod"})
    world.tags.set_tags("schema", "main.sales", {"domain": "sales"})
    world.tags.set_tags("table", "main.sales.orders", {"pii": "email"}, column="EMAIL")
    world.tags.set_tags("model", "main.sales.churn", {"stage": "prod"})
    world.tags.set_tags("model_version", "main.sales.churn/1", {"validated": "yes"})
    world.tags.set_tags("table", "main.sales.orders", {"owner-team": "growth"})
    tags = world.tags.list_tags("table", "main.sales.orders")
    assert [(x.column, x.key, x.value) for x in tags] == [(None, "owner-team", "growth"), ("email", "pii", "email")]
    # a version's tag carries who set it, as the registry's tag API records it (approval gates read it)
    assert sorted((x.key, x.value) for x in world.tags.list_tags("model_version", "main.sales.churn/1")) == [
        ("cairn.setter.validated", "admin"), ("validated", "yes")]
    world.tags.unset_tags("table", "main.sales.orders", ["pii"], column="email")
    assert [x.key for x in world.tags.list_tags("table", "main.sales.orders")] == ["owner-team"]
    with pytest.raises(InvalidArgument, match="has no column 'nope'"):
        world.tags.set_tags("table", "main.sales.orders", {"a": "b"}, column="nope")
    with pytest.raises(InvalidArgument, match="cannot carry tags"):
        world.tags.set_tags("metastore", None, {"a": "b"})  # type: ignore[arg-type]
    bob = metastore.as_principal("bob")
    world.grants.grant("catalog", "main", "bob", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    with pytest.raises(PermissionDenied, match="lacks APPLY TAG"):
        bob.tags.set_tags("table", "main.sales.orders", {"x": "y"})


def test_drops_need_cascade_and_remove_grants_and_tags_below(world: Cairn, metastore: Metastore) -> None:
    world.grants.grant("table", "main.sales.orders", "alice", "SELECT")
    world.grants.grant("schema", "main.sales", "alice", "USE SCHEMA")
    world.tags.set_tags("table", "main.sales.orders", {"pii": "yes"}, column="email")
    world.models.create_registered_model("main.sales.m")
    world.models.create_model_version("main.sales.m", "file:///m")
    with pytest.raises(FailedPrecondition, match="not empty"):
        world.schemas.delete_schema("main.sales")
    with pytest.raises(FailedPrecondition, match="not empty"):
        world.catalogs.delete_catalog("main")
    assert count(metastore, t.grants) == 2 and count(metastore, t.tags) == 1
    world.catalogs.delete_catalog("main", cascade=True)
    assert (count(metastore, t.grants), count(metastore, t.tags), count(metastore, t.columns)) == (0, 0, 0)
    assert count(metastore, t.securables) == 1  # only the metastore root is left
    with pytest.raises(NotFound):
        world.tables.get_table("main.sales.orders")
    # A catalog created again with the same name does not inherit the old grants.
    world.catalogs.create_catalog("main")
    assert world.grants.list_grants("catalog", "main") == []


def test_rename_moves_children(world: Cairn, metastore: Metastore) -> None:
    world.grants.grant("catalog", "main", "alice", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    world.schemas.update_schema("main.sales", new_name="commerce", comment="renamed")
    assert world.tables.get_table("main.commerce.orders").name == "orders"
    with pytest.raises(NotFound):
        world.tables.get_table("main.sales.orders")
    assert metastore.as_principal("alice").grants.check("table", "main.commerce.orders", "SELECT") is True


def test_model_versions(world: Cairn) -> None:
    world.models.create_registered_model("main.sales.churn", comment="churn model")
    v1 = world.models.create_model_version("main.sales.churn", "runs:/abc/model", run_id="abc")
    v2 = world.models.create_model_version("main.sales.churn", "runs:/def/model")
    assert (v1.version, v1.status, v1.full_name, v2.version) == (1, "PENDING_REGISTRATION", "main.sales.churn/1", 2)
    assert world.models.finalize_model_version("main.sales.churn", 1).status == "READY"
    with pytest.raises(FailedPrecondition, match="is READY"):
        world.models.finalize_model_version("main.sales.churn", 1)
    world.models.delete_model_version("main.sales.churn", 2)
    assert world.models.create_model_version("main.sales.churn", "x").version == 3  # numbers are never reused
    assert [v.version for v in world.models.list_model_versions("main.sales.churn")] == [1, 3]
    with pytest.raises(NotFound, match="main.sales.churn/9"):
        world.models.get_model_version("main.sales.churn", 9)
    world.models.set_alias("main.sales.churn", "Champion", 3)
    assert world.models.get_registered_model("main.sales.churn").aliases == {"champion": 3}
    assert world.models.get_version_by_alias("main.sales.churn", "champion").version == 3
    with pytest.raises(InvalidArgument, match="alias '7'"):
        world.models.set_alias("main.sales.churn", "7", 1)
    with pytest.raises(NotFound, match="main.sales.churn/2"):
        world.models.set_alias("main.sales.churn", "old", 2)
    world.models.delete_alias("main.sales.churn", "champion")
    with pytest.raises(NotFound, match="no alias 'champion'"):
        world.models.get_version_by_alias("main.sales.churn", "champion")


def test_listing_filters_and_pages(world: Cairn, metastore: Metastore) -> None:
    for i in range(25):
        world.tables.create_table(f"main.sales.t{i:02d}", [{"name": "x", "type": "int"}])
    world.schemas.create_schema("main.hidden")
    world.tables.create_table("main.hidden.secret", [{"name": "x", "type": "int"}])
    for i in range(0, 25, 2):
        world.grants.grant("table", f"main.sales.t{i:02d}", "bob", "SELECT")
    world.grants.grant("catalog", "main", "bob", "USE CATALOG")
    world.grants.grant("schema", "main.sales", "bob", "USE SCHEMA")
    bob = metastore.as_principal("bob")
    seen, token = [], None
    while True:
        page = bob.tables.list_tables("main", "sales", page_token=token, max_results=5)
        seen += [x.name for x in page]
        token = page.next_page_token
        if token is None:
            break
    assert seen == [f"t{i:02d}" for i in range(0, 25, 2)]
    assert [s.name for s in bob.schemas.list_schemas("main")] == ["sales"]
    across = [x.full_name for x in bob.tables.list_tables("main", max_results=1000)]
    assert across == [f"main.sales.t{i:02d}" for i in range(0, 25, 2)]
    assert [c.name for c in metastore.as_principal("alice").catalogs.list_catalogs()] == []
    with pytest.raises(InvalidArgument, match="page_token"):
        bob.tables.list_tables("main", "sales", page_token="!!!")


def test_browse_shows_metadata_without_data(world: Cairn, metastore: Metastore) -> None:
    world.grants.grant("catalog", "main", "bob", "BROWSE")
    bob = metastore.as_principal("bob")
    assert bob.tables.get_table("main.sales.orders").columns[0].name == "user_id"
    assert [x.name for x in bob.tables.list_tables("main", "sales")] == ["orders"]
    with pytest.raises(PermissionDenied, match="lacks USE CATALOG"):
        bob.tables.generate_temporary_credentials("main.sales.orders")


def test_audit_rows_for_allowed_denied_and_failed_with_filters(world: Cairn, metastore: Metastore) -> None:
    bob = metastore.as_principal("bob")
    with pytest.raises(NotFound):
        bob.tables.get_table("main.sales.orders")  # exists but invisible: DENIED, shown as NotFound
    with pytest.raises(NotFound):
        bob.tables.get_table("main.sales.missing")  # does not exist: FAILED
    world.principals.create_principal("svc", "SERVICE_PRINCIPAL")
    world.grants.grant("table", "main.sales.orders", "bob", "SELECT")
    bob_events = list(world.audit.list_events(principal="bob", max_results=1000))
    assert [(e.action, e.result, e.error_code) for e in bob_events] == [
        ("get_table", AuditResult.DENIED, "PERMISSION_DENIED"),
        ("get_table", AuditResult.FAILED, "NOT_FOUND"),
    ]
    assert {e.source for e in bob_events} == {"python"} and all(len(e.request_id) == 32 for e in bob_events)
    grant = list(world.audit.list_events(action="grant", securable_prefix="main.sales"))[-1]
    assert grant.parameters == {"principal": "bob", "privileges": ["SELECT"]}
    assert [e.result for e in world.audit.list_events(result="DENIED", max_results=1000)] == [AuditResult.DENIED]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert list(world.audit.list_events(since=future)) == []
    # Non-admins see only their own events.
    assert {e.principal for e in bob.audit.list_events(max_results=1000)} == {"bob"}
    assert list(bob.audit.list_events(principal="admin")) == []
    # Paging walks every event exactly once.
    ids, token = [], None
    while True:
        page = world.audit.list_events(page_token=token, max_results=7)
        ids += [e.id for e in page]
        token = page.next_page_token
        if not token:
            break
    assert ids == sorted(set(ids)) and len(ids) == count(metastore, t.audit_events) - 1  # the last list call is not in its own page


def test_secrets_are_redacted_in_audit_parameters() -> None:
    from catalog.service.base import redact

    assert redact({"token": "abc", "nested": {"password": "p", "x": 1}, "aws_secret_access_key": "k"}) == {
        "token": "***", "nested": {"password": "***", "x": 1}, "aws_secret_access_key": "***"}


def test_a_method_without_an_authorization_decision_cannot_commit(world: Cairn, metastore: Metastore) -> None:
    from catalog.errors import Internal
    from catalog.service.common import Service

    class Sneaky(Service):
        def drop_everything(self) -> None:
            with self._uow("drop_everything", None, None) as uow:
                uow.store.delete_securable(uow.store.metastore_id())

    before = count(metastore, t.securables)
    with pytest.raises(Internal, match="made no authorization decision"):
        Sneaky(metastore, world.ctx).drop_everything()
    assert count(metastore, t.securables) == before
    last = list(world.audit.list_events(action="drop_everything"))[-1]
    assert (last.result, last.error_code) == (AuditResult.FAILED, "INTERNAL")


def test_initialize_twice_is_refused(metastore: Metastore) -> None:
    with pytest.raises(FailedPrecondition, match="already initialized"):
        metastore.initialize("someone")


def test_concurrent_reads_group_commit_their_audit_rows_and_lose_none(metastore: Metastore, world: Cairn) -> None:
    import threading

    world.catalogs.create_catalog("gc")
    before = count(metastore, t.audit_events)
    errors: list[BaseException] = []

    def reader(i: int) -> None:
        c = metastore.as_principal("admin", request_id=f"gc-{i}")
        try:
            for _ in range(25):
                assert c.catalogs.get_catalog("gc").name == "gc"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert count(metastore, t.audit_events) - before == 8 * 25
    events = list(world.audit.list_events(action="get_catalog", max_results=1000))
    assert sorted({e.request_id for e in events if e.request_id.startswith("gc-")}) == [f"gc-{i}" for i in range(8)]


def test_a_failing_row_in_a_group_commit_fails_only_its_own_caller(metastore: Metastore, world: Cairn) -> None:
    from catalog.service.base import GroupCommit, _Pending

    def row(i: int):  # type: ignore[no-untyped-def]
        return lambda store: store.insert_audit(principal="admin", action=f"probe-{i}", securable_kind=None, securable_name=None,
                                                parameters={}, result="ALLOWED", error_code=None, error_message=None,
                                                request_id=f"probe-{i}", source="PYTHON")

    def broken(store):  # type: ignore[no-untyped-def]
        raise RuntimeError("this row cannot be written")

    batch = [_Pending(row(1)), _Pending(broken), _Pending(row(2))]
    GroupCommit(metastore.engine)._flush(batch)
    assert [p.done for p in batch] == [True, True, True]
    assert [type(p.error).__name__ if p.error else None for p in batch] == [None, "RuntimeError", None]
    assert {e.action for e in world.audit.list_events(max_results=1000) if e.action.startswith("probe-")} == {"probe-1", "probe-2"}


def test_a_token_is_checked_while_a_writer_holds_the_metastore(admin: Cairn, metastore: Metastore) -> None:
    """Every API request looks its token up: that read must not queue behind a writer."""
    import time

    from catalog.service.tokens import authenticate

    raw, _ = admin.tokens.create_token()
    with metastore.engine.connect().execution_options(cairn_write=True) as writer, writer.begin():
        writer.exec_driver_sql("UPDATE settings SET value = value WHERE key = 'metastore_id'")  # holds the write lock
        start = time.perf_counter()
        assert authenticate(metastore.engine, raw) == "admin"
        assert authenticate(metastore.engine, raw + "x") is None
        assert time.perf_counter() - start < 1.0
