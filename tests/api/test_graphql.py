"""GraphQL: queries, mutations, loaders that bound SQL queries, limits, error codes, governance."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from api.graphql import execute
from catalog.client import Cairn, Metastore


@pytest.fixture
def lake(admin: Cairn) -> Cairn:
    admin.sql("CREATE CATALOG main COMMENT 'prod'; CREATE SCHEMA main.s")
    for i in range(100):
        admin.tables.create_table(f"main.s.t{i:03d}", [{"name": "id", "type": "bigint"}, {"name": "email", "type": "string"}])
    admin.principals.create_user("ana")
    admin.tags.set_tags("table", "main.s.t007", {"pii": "true"}, column="email")
    admin.grants.grant("table", "main.s.t007", "ana", "SELECT")
    return admin


def test_catalog_tree_with_tags_owners_and_grants_in_bounded_queries(lake: Cairn, metastore: Metastore) -> None:
    statements: list[str] = []
    listener = lambda conn, cursor, stmt, params, context, many: statements.append(stmt)  # noqa: E731
    event.listen(metastore.engine, "before_cursor_execute", listener)
    try:
        res = execute(lake, """{ catalogs { edges { node { name comment schemas { edges { node { fullName
                tables(first: 100) { edges { node { fullName owner tags { key value column } grants { principal privilege } } } } } } } } } } }""")
    finally:
        event.remove(metastore.engine, "before_cursor_execute", listener)
    assert "errors" not in res
    cat = res["data"]["catalogs"]["edges"][0]["node"]
    tables = [e["node"] for e in cat["schemas"]["edges"][0]["node"]["tables"]["edges"]]
    assert (cat["name"], cat["comment"], len(tables)) == ("main", "prod", 100)
    t7 = next(t for t in tables if t["fullName"] == "main.s.t007")
    assert t7 == {"fullName": "main.s.t007", "owner": "admin", "tags": [{"key": "pii", "value": "true", "column": "email"}],
                  "grants": [{"principal": "ana", "privilege": "SELECT"}]}
    assert len(statements) < 60, f"{len(statements)} SQL statements for 100 tables"


def test_lineage_audit_search_and_effective_privileges(lake: Cairn, metastore: Metastore) -> None:
    lake.lineage.record(["main.s.t001"], ["main.s.t002"])
    res = execute(lake, '{ lineage(name: "main.s.t001") { truncated nodes { name depth kind } } '
                        'search(text: "pii=true", catalog: "main") { fullName } '
                        'table(name: "main.s.t007") { effectivePrivileges(principal: "ana") { privilege reasons { kind description } } } '
                        'auditEvents(first: 2, action: "record_lineage") { edges { node { action principal result } } } }')
    assert "errors" not in res, res
    data = res["data"]
    assert data["lineage"] == {"truncated": False, "nodes": [{"name": "main.s.t002", "depth": 1, "kind": "TABLE"}]}
    assert data["search"] == [{"fullName": "main.s.t007"}]
    assert data["table"]["effectivePrivileges"] == [{"privilege": "SELECT", "reasons": [{"kind": "DIRECT", "description": "SELECT granted on table main.s.t007 to ana"}]}]
    assert [e["node"] for e in data["auditEvents"]["edges"]] == [{"action": "record_lineage", "principal": "admin", "result": "ALLOWED"}]


def test_mutations_and_sql(lake: Cairn) -> None:
    res = execute(lake, 'mutation { createTable(name: "main.s.new", columns: [{name: "a", type: "int"}]) { fullName columns { name type } } '
                        'grant(kind: "table", name: "main.s.new", principal: "ana", privileges: ["SELECT"]) { principal privilege } '
                        'setTags(kind: "table", name: "main.s.new", tags: [{key: "tier", value: "gold"}]) { key value } }')
    assert res["data"]["createTable"] == {"fullName": "main.s.new", "columns": [{"name": "a", "type": "int"}]}
    assert res["data"]["grant"] == [{"principal": "ana", "privilege": "SELECT"}]
    res = execute(lake, 'mutation { sql(statement: "INSERT INTO main.s.new VALUES (1), (2)") { columns rows } }')
    assert res["data"]["sql"] == {"columns": ["num_affected_rows", "num_inserted_rows"], "rows": [["2", "2"]]}
    res = execute(lake, 'mutation { sql(statement: "SELECT sum(a) AS s FROM main.s.new") { rows } }')
    assert res["data"]["sql"]["rows"] == [["3"]]


def test_errors_have_codes_and_governance_applies(lake: Cairn, metastore: Metastore) -> None:
    ana = metastore.as_principal("ana")
    res = execute(ana, '{ table(name: "main.s.t001") { fullName } }')
    assert res["errors"][0]["extensions"]["code"] == "NOT_FOUND" and res["data"] == {"table": None}
    res = execute(ana, 'mutation { createCatalog(name: "x") { name } }')
    assert res["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    assert execute(ana, "{ catalogs { edges { node { name } } } }")["data"] == {"catalogs": {"edges": []}}
    res = execute(lake, '{ table(name: "main..x") { fullName } }')
    assert res["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT" and "part 2 is empty" in res["errors"][0]["message"]
    res = execute(lake, "{ nope }")
    assert res["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
    tree = "{ catalogs { edges { node { schemas { edges { node { tables { edges { node { effectivePrivileges { reasons { kind } } } } } } } } } } } }"
    assert "errors" not in execute(lake, tree)  # the deepest natural query fits the limit
    deeper = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } } }"
    res = execute(lake, deeper)
    assert res["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT" and "levels deep" in res["errors"][0]["message"]
    res = execute(lake, "{ catalogs { edges { node { name ")
    assert res["errors"][0]["locations"][0]["line"] == 1
