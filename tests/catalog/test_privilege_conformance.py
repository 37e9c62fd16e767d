"""Privilege conformance: every privilege on every kind it applies to, through every way of holding it.

Each case names an operation that needs exactly one privilege beyond a baseline. The actor holds
that privilege as owner, by a direct grant, inherited from a parent, through a group, through a
nested group, or not at all. With it the operation succeeds; without it the operation is refused,
nothing changes, and exactly one DENIED audit row is written.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from catalog.client import Cairn, Metastore
from catalog.entities import AuditResult
from catalog.errors import NotFound, PermissionDenied
from catalog.privileges import Kind
from catalog.store import tables as t

USAGE = [("catalog", "c", ["USE CATALOG"]), ("schema", "c.s", ["USE SCHEMA"])]
# Vending a table's files also needs EXTERNAL USE SCHEMA (never part of ALL PRIVILEGES).
VEND = [("catalog", "c", ["USE CATALOG"]), ("schema", "c.s", ["USE SCHEMA", "EXTERNAL USE SCHEMA"])]
COLS = [{"name": "id", "type": "bigint"}]
DIRS: dict[str, str] = {}  # folders outside the metastore's home, made fresh by build_world


@dataclass(frozen=True)
class Case:
    id: str
    privilege: str
    kind: Kind
    name: str | None
    baseline: list[tuple[str, str, list[str]]]
    action: Callable[[Cairn], Any]
    check: Callable[[Cairn, Any], bool]
    inherit: tuple[str, str] | None = None  # where the inherited mode grants; default PARENT[kind]

    @property
    def parent(self) -> tuple[str, str] | None:
        return self.inherit or PARENT.get(self.kind)


CASES = [
    Case("create-catalog", "CREATE CATALOG", Kind.METASTORE, None, [],
         lambda c: c.catalogs.create_catalog("c2"), lambda a, r: a.catalogs.get_catalog("c2").owner == "actor"),
    Case("use-catalog", "USE CATALOG", Kind.CATALOG, "c", [("schema", "c.s", ["USE SCHEMA", "CREATE TABLE"])],
         lambda c: c.tables.create_table("c.s.t2", COLS), lambda a, r: a.tables.get_table("c.s.t2").owner == "actor"),
    Case("create-schema", "CREATE SCHEMA", Kind.CATALOG, "c", [("catalog", "c", ["USE CATALOG"])],
         lambda c: c.schemas.create_schema("c.s2"), lambda a, r: a.schemas.get_schema("c.s2").owner == "actor"),
    Case("use-schema", "USE SCHEMA", Kind.SCHEMA, "c.s", [("catalog", "c", ["USE CATALOG"]), ("schema", "c.s", ["CREATE TABLE"])],
         lambda c: c.tables.create_table("c.s.t2", COLS), lambda a, r: a.tables.get_table("c.s.t2").owner == "actor"),
    Case("create-table", "CREATE TABLE", Kind.SCHEMA, "c.s", USAGE,
         lambda c: c.tables.create_table("c.s.t2", COLS), lambda a, r: a.tables.get_table("c.s.t2").columns[0].name == "id"),
    Case("create-model", "CREATE MODEL", Kind.SCHEMA, "c.s", USAGE,
         lambda c: c.models.create_registered_model("c.s.m2"), lambda a, r: a.models.get_registered_model("c.s.m2").owner == "actor"),
    Case("create-function", "CREATE FUNCTION", Kind.SCHEMA, "c.s", USAGE,
         lambda c: c.functions.create_function("c.s.f2", "x + 1", "int", [{"name": "x", "type": "int"}]),
         lambda a, r: a.functions.get_function("c.s.f2").columns[0].name == "x"),
    Case("select", "SELECT", Kind.TABLE, "c.s.t", VEND,
         lambda c: c.tables.generate_temporary_credentials("c.s.t", "READ"), lambda a, r: r.operation == "READ" and r.url == a.tables.get_table("c.s.t").storage_location),
    Case("select-catalog-wide", "SELECT", Kind.TABLE, "c.s.t", VEND,
         lambda c: c.tables.generate_temporary_credentials("c.s.t", "READ"), lambda a, r: r.operation == "READ", ("catalog", "c")),
    Case("modify", "MODIFY", Kind.TABLE, "c.s.t", VEND + [("table", "c.s.t", ["SELECT"])],
         lambda c: c.tables.generate_temporary_credentials("c.s.t", "READ_WRITE"), lambda a, r: r.operation == "READ_WRITE"),
    Case("modify-catalog-wide", "MODIFY", Kind.TABLE, "c.s.t", VEND + [("table", "c.s.t", ["SELECT"])],
         lambda c: c.tables.generate_temporary_credentials("c.s.t", "READ_WRITE"), lambda a, r: r.operation == "READ_WRITE", ("catalog", "c")),
    Case("execute-function", "EXECUTE", Kind.FUNCTION, "c.s.f", USAGE,
         lambda c: c.functions.authorize_execute("c.s.f"), lambda a, r: r.routine_definition == "x * 2"),
    Case("execute-function-schema-wide", "EXECUTE", Kind.FUNCTION, "c.s.f", USAGE,
         lambda c: c.functions.authorize_execute("c.s.f"), lambda a, r: r.full_name == "c.s.f", ("schema", "c.s")),
    Case("execute-model", "EXECUTE", Kind.MODEL, "c.s.m", USAGE,
         lambda c: c.models.generate_temporary_credentials("c.s.m", 1), lambda a, r: r.url.endswith("/versions/1")),
    Case("execute-model-catalog-wide", "EXECUTE", Kind.MODEL, "c.s.m", USAGE,
         lambda c: c.models.generate_temporary_credentials("c.s.m", 1), lambda a, r: r.operation == "READ_MODEL_VERSION", ("catalog", "c")),
    Case("apply-tag-catalog", "APPLY TAG", Kind.CATALOG, "c", [("catalog", "c", ["USE CATALOG"])],
         lambda c: c.tags.set_tags("catalog", "c", {"tier": "gold"}), lambda a, r: [x.value for x in a.tags.list_tags("catalog", "c")] == ["gold"]),
    Case("apply-tag-schema", "APPLY TAG", Kind.SCHEMA, "c.s", USAGE,
         lambda c: c.tags.set_tags("schema", "c.s", {"tier": "gold"}), lambda a, r: [x.key for x in a.tags.list_tags("schema", "c.s")] == ["tier"]),
    Case("apply-tag-table", "APPLY TAG", Kind.TABLE, "c.s.t", USAGE,
         lambda c: c.tags.set_tags("table", "c.s.t", {"pii": "true"}, column="id"), lambda a, r: [(x.column, x.key) for x in a.tags.list_tags("table", "c.s.t")] == [("id", "pii")]),
    Case("apply-tag-model", "APPLY TAG", Kind.MODEL, "c.s.m", USAGE,
         lambda c: c.tags.set_tags("model", "c.s.m", {"stage": "prod"}), lambda a, r: [x.value for x in a.tags.list_tags("model", "c.s.m")] == ["prod"]),
    Case("manage-catalog", "MANAGE", Kind.CATALOG, "c", [],
         lambda c: c.grants.grant("catalog", "c", "other", "USE CATALOG"), lambda a, r: [g.principal for g in a.grants.list_grants("catalog", "c", "other")] == ["other"]),
    Case("manage-schema", "MANAGE", Kind.SCHEMA, "c.s", [("catalog", "c", ["USE CATALOG"])],
         lambda c: c.grants.grant("schema", "c.s", "other", "USE SCHEMA"), lambda a, r: len(a.grants.list_grants("schema", "c.s", "other")) == 1),
    Case("manage-table", "MANAGE", Kind.TABLE, "c.s.t", USAGE,
         lambda c: c.grants.grant("table", "c.s.t", "other", "SELECT"), lambda a, r: len(a.grants.list_grants("table", "c.s.t", "other")) == 1),
    Case("apply-tag-table-catalog-wide", "APPLY TAG", Kind.TABLE, "c.s.t", USAGE,
         lambda c: c.tags.set_tags("table", "c.s.t", {"tier": "gold"}), lambda a, r: [x.key for x in a.tags.list_tags("table", "c.s.t")] == ["tier"], ("catalog", "c")),
    Case("manage-model", "MANAGE", Kind.MODEL, "c.s.m", USAGE,
         lambda c: c.grants.grant("model", "c.s.m", "other", "EXECUTE"), lambda a, r: len(a.grants.list_grants("model", "c.s.m", "other")) == 1),
    Case("manage-function", "MANAGE", Kind.FUNCTION, "c.s.f", USAGE,
         lambda c: c.functions.delete_function("c.s.f"), lambda a, r: not any(f.name == "f" for f in a.functions.list_functions("c", "s"))),
    Case("browse", "BROWSE", Kind.CATALOG, "c", [],
         lambda c: c.tables.get_table("c.s.t"), lambda a, r: r.full_name == "c.s.t"),
    Case("all-privileges-schema", "ALL PRIVILEGES", Kind.SCHEMA, "c.s", [("catalog", "c", ["USE CATALOG"])],
         lambda c: c.tables.create_table("c.s.t2", COLS), lambda a, r: a.tables.get_table("c.s.t2").owner == "actor"),
    Case("all-privileges-metastore", "ALL PRIVILEGES", Kind.METASTORE, None, [],
         lambda c: c.catalogs.create_catalog("c2"), lambda a, r: a.catalogs.get_catalog("c2").owner == "actor"),
    Case("all-privileges-catalog", "ALL PRIVILEGES", Kind.CATALOG, "c", [],
         lambda c: c.schemas.create_schema("c.s2"), lambda a, r: a.schemas.get_schema("c.s2").owner == "actor"),
    Case("all-privileges-model", "ALL PRIVILEGES", Kind.MODEL, "c.s.m", USAGE,
         lambda c: c.models.generate_temporary_credentials("c.s.m", 1), lambda a, r: r.operation == "READ_MODEL_VERSION"),
    Case("all-privileges-function", "ALL PRIVILEGES", Kind.FUNCTION, "c.s.f", USAGE,
         lambda c: c.functions.authorize_execute("c.s.f"), lambda a, r: r.full_name == "c.s.f"),
    Case("all-privileges-table", "ALL PRIVILEGES", Kind.TABLE, "c.s.t", VEND,
         lambda c: c.tables.generate_temporary_credentials("c.s.t", "READ_WRITE"), lambda a, r: r.operation == "READ_WRITE"),
    Case("external-use-schema", "EXTERNAL USE SCHEMA", Kind.SCHEMA, "c.s", USAGE + [("table", "c.s.t", ["SELECT"])],
         lambda c: c.tables.generate_temporary_credentials("c.s.t", "READ"), lambda a, r: r.url == a.tables.get_table("c.s.t").storage_location),
    # storage: credentials, external locations and the external tables inside them
    Case("create-storage-credential", "CREATE STORAGE CREDENTIAL", Kind.METASTORE, None, [],
         lambda c: c.storage_credentials.create_storage_credential("cred2"), lambda a, r: a.storage_credentials.get_storage_credential("cred2").owner == "actor"),
    Case("create-external-location", "CREATE EXTERNAL LOCATION", Kind.METASTORE, None, [],
         lambda c: c.external_locations.create_external_location("loc2", DIRS["free"]),
         lambda a, r: (a.external_locations.get_external_location("loc2").owner, r.storage_location) == ("actor", DIRS["free"])),
    Case("create-external-location-with-credential", "CREATE EXTERNAL LOCATION", Kind.STORAGE_CREDENTIAL, "cred",
         [("metastore", None, ["CREATE EXTERNAL LOCATION"])],
         lambda c: c.external_locations.create_external_location("loc2", DIRS["free"], "cred"),
         lambda a, r: a.external_locations.get_external_location("loc2").credential_name == "cred"),
    Case("create-external-table", "CREATE EXTERNAL TABLE", Kind.EXTERNAL_LOCATION, "loc", USAGE + [("schema", "c.s", ["CREATE TABLE"])],
         lambda c: c.tables.create_table("c.s.x", COLS, table_type="EXTERNAL", storage_location=DIRS["loc"] + "/x"),
         lambda a, r: a.tables.get_table("c.s.x").storage_location == DIRS["loc"] + "/x"),
    Case("all-privileges-external-location", "ALL PRIVILEGES", Kind.EXTERNAL_LOCATION, "loc", USAGE + [("schema", "c.s", ["CREATE TABLE"])],
         lambda c: c.tables.create_table("c.s.x", COLS, table_type="EXTERNAL", storage_location=DIRS["loc"] + "/x"),
         lambda a, r: r.owner == "actor"),
    Case("all-privileges-storage-credential", "ALL PRIVILEGES", Kind.STORAGE_CREDENTIAL, "cred", [("metastore", None, ["CREATE EXTERNAL LOCATION"])],
         lambda c: c.external_locations.create_external_location("loc2", DIRS["free"], "cred"), lambda a, r: r.credential_name == "cred"),
    Case("manage-external-location", "MANAGE", Kind.EXTERNAL_LOCATION, "loc", [],
         lambda c: c.grants.grant("external_location", "loc", "other", "READ FILES"),
         lambda a, r: [g.privilege.value for g in a.grants.list_grants("external_location", "loc", "other")] == ["READ FILES"]),
    Case("manage-storage-credential", "MANAGE", Kind.STORAGE_CREDENTIAL, "cred", [],
         lambda c: c.storage_credentials.delete_storage_credential("cred", force=True),
         lambda a, r: list(a.storage_credentials.list_storage_credentials()) == [] and a.external_locations.get_external_location("loc").credential_name is None),
    Case("can-query-endpoint", "CAN QUERY", Kind.SERVING_ENDPOINT, "ep", [],
         lambda c: c.serving.authorize_query("ep"),
         lambda a, r: r.sources == {"m-1": a.models.get_model_version("c.s.m", 1).storage_location}),  # never the version's source
    Case("can-manage-endpoint", "CAN MANAGE", Kind.SERVING_ENDPOINT, "ep", [],
         lambda c: c.serving.update_config("ep", [{"entity_name": "c.s.m", "entity_version": 1, "scale_to_zero_enabled": True}]),
         lambda a, r: a.serving.get_endpoint("ep").config_version == 2),
    Case("can-manage-endpoint-grants", "CAN MANAGE", Kind.SERVING_ENDPOINT, "ep", [],
         lambda c: c.grants.grant("serving_endpoint", "ep", "other", "CAN QUERY"),
         lambda a, r: [g.privilege.value for g in a.grants.list_grants("serving_endpoint", "ep", "other")] == ["CAN QUERY"]),
    Case("all-privileges-endpoint", "ALL PRIVILEGES", Kind.SERVING_ENDPOINT, "ep", [],
         lambda c: c.serving.authorize_query("ep"), lambda a, r: r.endpoint.name == "ep"),
]

# Grantable for Unity Catalog compatibility but checked by no operation yet: Cairn has no
# path-based file reads or writes and no MANAGED LOCATION for catalogs and schemas.
UNUSED = {("CREATE MANAGED STORAGE", Kind.EXTERNAL_LOCATION), ("READ FILES", Kind.EXTERNAL_LOCATION), ("WRITE FILES", Kind.EXTERNAL_LOCATION)}

MODES = ["owner", "direct", "inherited", "group", "nested-group", "none"]
PARENT = {Kind.SCHEMA: ("catalog", "c"), Kind.TABLE: ("schema", "c.s"), Kind.MODEL: ("schema", "c.s"), Kind.FUNCTION: ("catalog", "c")}


def build_world(admin: Cairn) -> None:
    for user in ("actor", "other"):
        admin.principals.create_user(user)
    admin.principals.create_group("inner")
    admin.principals.create_group("outer")
    admin.principals.add_member("inner", "actor")
    admin.principals.add_member("outer", "inner")
    admin.catalogs.create_catalog("c")
    admin.schemas.create_schema("c.s")
    admin.tables.create_table("c.s.t", COLS)
    admin.models.create_registered_model("c.s.m")
    admin.models.create_model_version("c.s.m", "file:///artifacts/m/1")
    admin.models.finalize_model_version("c.s.m", 1)
    admin.serving.create_endpoint("ep", [{"name": "m-1", "entity_name": "c.s.m", "entity_version": 1}])
    admin.functions.create_function("c.s.f", "x * 2", "int", [{"name": "x", "type": "int"}])
    DIRS.update(loc=tempfile.mkdtemp(prefix="cairn-loc-"), free=tempfile.mkdtemp(prefix="cairn-free-"))
    admin.storage_credentials.create_storage_credential("cred")
    admin.external_locations.create_external_location("loc", DIRS["loc"], "cred")


def snapshot(ms: Metastore) -> dict[str, list[tuple[Any, ...]]]:
    """Everything but the audit log, to prove a denial changed nothing."""
    out = {}
    with ms.engine.connect() as conn:
        for table in (t.securables, t.columns, t.grants, t.tags, t.principals, t.group_members, t.storage_paths):
            cols = [c for c in table.c if c.name not in ("properties", "spec")]
            out[table.name] = sorted(tuple(str(v) for v in row) for row in conn.execute(select(*cols)))
    return out


def audit_rows(ms: Metastore, principal: str) -> list[tuple[str, str, str | None]]:
    with ms.engine.connect() as conn:
        a = t.audit_events
        q = select(a.c.action, a.c.result, a.c.error_code).where(a.c.principal == principal).order_by(a.c.id)
        return [tuple(r) for r in conn.execute(q)]


def give(admin: Cairn, mode: str, case: Case) -> None:
    for kind, name, privs in case.baseline:
        admin.grants.grant(kind, name, "actor", privs)
    target_kind = case.kind.value.lower()
    if mode == "owner":
        admin.grants.transfer_ownership(target_kind, case.name, "actor")
    elif mode == "direct":
        admin.grants.grant(target_kind, case.name, "actor", case.privilege)
    elif mode == "inherited":
        parent_kind, parent_name = case.parent  # type: ignore[misc]
        admin.grants.grant(parent_kind, parent_name, "actor", case.privilege)
    elif mode == "group":
        admin.grants.grant(target_kind, case.name, "inner", case.privilege)
    elif mode == "nested-group":
        admin.grants.grant(target_kind, case.name, "outer", case.privilege)


def applicable(case: Case, mode: str) -> bool:
    if mode == "owner" and case.kind is Kind.METASTORE:
        return False  # the metastore has admins, not an owner
    # nothing above a catalog can carry these privileges
    return not (mode == "inherited" and case.parent is None)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_privilege(metastore: Metastore, admin: Cairn, case: Case, mode: str) -> None:
    if not applicable(case, mode):
        pytest.skip(f"{mode} does not apply to {case.kind.value}")
    build_world(admin)
    give(admin, mode, case)
    actor = metastore.as_principal("actor")
    before_state = snapshot(metastore)
    before_audit = audit_rows(metastore, "actor")

    if mode == "none":
        with pytest.raises((PermissionDenied, NotFound)):
            case.action(actor)
        assert snapshot(metastore) == before_state
        new = audit_rows(metastore, "actor")[len(before_audit):]
        assert len(new) == 1
        assert new[0][1] == AuditResult.DENIED.value
        assert new[0][2] == "PERMISSION_DENIED"
    else:
        result = case.action(actor)
        assert case.check(admin, result)
        new = audit_rows(metastore, "actor")[len(before_audit):]
        assert [r[1] for r in new] == [AuditResult.ALLOWED.value]


def test_every_grantable_privilege_and_kind_is_covered() -> None:
    """The cases above span every privilege and every kind it is grantable on (or says why not)."""
    from catalog.privileges import GRANTABLE

    covered = {(c.privilege, c.kind) for c in CASES}
    # The inherited mode grants on the parent kind.
    covered |= {(c.privilege, Kind.parse(c.parent[0])) for c in CASES if c.parent}
    missing = sorted((p.value, k.value) for k, privs in GRANTABLE.items() for p in privs if (p.value, k) not in covered | UNUSED)
    assert missing == []
