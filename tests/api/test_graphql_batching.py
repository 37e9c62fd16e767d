"""Per-row GraphQL fields (`history`, `effectivePrivileges`, tags, grants) cost one governed call per
request, not one per row: counted by the audit rows they leave, and by the service calls made."""

from __future__ import annotations

import pytest

from api.graphql import execute
from catalog.client import Cairn
from catalog.entities import AuditResult

TABLES = [f"main.s.t{i}" for i in range(6)]


@pytest.fixture
def lake(admin: Cairn) -> Cairn:
    admin.sql("CREATE CATALOG main; CREATE SCHEMA main.s")
    for name in TABLES:
        admin.tables.create_table(name, [{"name": "id", "type": "bigint"}])
    admin.principals.create_user("ana")
    admin.grants.grant("catalog", "main", "ana", "USE CATALOG")
    admin.grants.grant("schema", "main.s", "ana", "USE SCHEMA")
    for name in TABLES[:4]:
        admin.grants.grant("table", name, "ana", "SELECT")
    admin.grants.grant("table", TABLES[4], "ana", "MODIFY")  # visible to ana, but no SELECT: no history
    return admin


def rows(c: Cairn, action: str) -> list:  # type: ignore[type-arg]
    return list(c.audit.list_events(action=action, max_results=1000))


def test_history_and_effective_privileges_cost_one_governed_call_per_request(lake: Cairn, metastore) -> None:  # type: ignore[no-untyped-def]
    ana = metastore.as_principal("ana")
    before = {a: len(rows(lake, a)) for a in ("describe_history", "get_effective_privileges")}
    calls: dict[str, int] = {"history": 0, "history_many": 0, "get_effective_privileges": 0, "get_effective_privileges_many": 0}

    def count(svc: object, name: str) -> None:
        fn = getattr(svc, name)

        def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls[name] += 1
            return fn(*args, **kwargs)

        setattr(svc, name, counted)

    for name in ("history", "history_many"):
        count(ana.data, name)
    for name in ("get_effective_privileges", "get_effective_privileges_many"):
        count(ana.grants, name)

    res = execute(ana, """{ schema(name: "main.s") { tables { edges { node { fullName
              effectivePrivileges { privilege } history(limit: 5) { version operation } } } } } }""")

    assert calls == {"history": 0, "history_many": 1, "get_effective_privileges": 0, "get_effective_privileges_many": 1}
    nodes = [e["node"] for e in res["data"]["schema"]["tables"]["edges"]]
    # ana sees five tables; the one she may only MODIFY has no history for her: that row alone fails.
    assert [n and n["fullName"] for n in nodes] == [*TABLES[:4], None]
    assert all(n["history"] == [{"version": 0, "operation": "CREATE TABLE"}] for n in nodes[:4])
    assert all(n["effectivePrivileges"] == [{"privilege": "SELECT"}] for n in nodes[:4])
    assert [(e["extensions"]["code"], e["path"]) for e in res["errors"]] == [
        ("PERMISSION_DENIED", ["schema", "tables", "edges", 4, "node", "history"])]
    assert "ana lacks SELECT on table 'main.s.t4'" in res["errors"][0]["message"]

    history = rows(lake, "describe_history")[before["describe_history"]:]
    privileges = rows(lake, "get_effective_privileges")[before["get_effective_privileges"]:]
    assert [(e.principal, e.result, e.securable_name, e.parameters.get("refused")) for e in history] == [
        ("ana", AuditResult.ALLOWED, "5 tables", ["main.s.t4"])]
    assert [(e.principal, e.result, e.securable_name, e.parameters.get("refused")) for e in privileges] == [
        ("ana", AuditResult.ALLOWED, "5 securables", None)]


def test_another_principals_privileges_are_refused_per_row_in_one_call(lake: Cairn, metastore) -> None:  # type: ignore[no-untyped-def]
    lake.principals.create_user("bo")
    lake.grants.grant("catalog", "main", "bo", "USE CATALOG")
    lake.grants.grant("schema", "main.s", "bo", "USE SCHEMA")
    lake.grants.grant("table", TABLES[0], "bo", "MANAGE")
    lake.grants.grant("table", TABLES[1], "bo", "SELECT")
    bo = metastore.as_principal("bo")
    before = len(rows(lake, "get_effective_privileges"))
    res = execute(bo, """{ schema(name: "main.s") { tables { edges { node { fullName
              effectivePrivileges(principal: "ana") { privilege } } } } } }""")
    nodes = [e["node"] for e in res["data"]["schema"]["tables"]["edges"]]
    assert nodes == [{"fullName": TABLES[0], "effectivePrivileges": [{"privilege": "SELECT"}]}, None]
    assert [e["extensions"]["code"] for e in res["errors"]] == ["PERMISSION_DENIED"]
    audit = rows(lake, "get_effective_privileges")[before:]
    assert [(e.principal, e.result, e.parameters.get("principal"), e.parameters.get("refused")) for e in audit] == [
        ("bo", AuditResult.ALLOWED, "ana", [TABLES[1]])]


def test_a_refused_batch_is_asked_once_and_fails_every_row(lake: Cairn) -> None:
    before = len(rows(lake, "get_effective_privileges"))
    res = execute(lake, """{ schema(name: "main.s") { tables { edges { node { fullName
              effectivePrivileges(principal: "nobody") { privilege } } } } } }""")
    assert [e["node"] for e in res["data"]["schema"]["tables"]["edges"]] == [None] * len(TABLES)
    assert {(e["extensions"]["code"], e["message"]) for e in res["errors"]} == {("NOT_FOUND", "principal 'nobody' does not exist")}
    audit = rows(lake, "get_effective_privileges")[before:]
    assert [(e.result, e.error_code) for e in audit] == [(AuditResult.FAILED, "NOT_FOUND")]
