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
                        'search(text: "pii=true", catalog: "main") { edges { node { fullName } } } '
                        'table(name: "main.s.t007") { effectivePrivileges(principal: "ana") { privilege reasons { kind description } } } '
                        'auditEvents(first: 2, action: "record_lineage") { edges { node { action principal result } } } }')
    assert "errors" not in res, res
    data = res["data"]
    assert data["lineage"] == {"truncated": False, "nodes": [{"name": "main.s.t002", "depth": 1, "kind": "TABLE"}]}
    assert data["search"]["edges"] == [{"node": {"fullName": "main.s.t007"}}]
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


def test_connections_page_with_cursors_past_the_default_page(lake: Cairn) -> None:
    query = """query($after: String) { schema(name: "main.s") { tables(first: 40, after: $after) {
               edges { cursor node { name } } pageInfo { hasNextPage endCursor } } } }"""
    names, after = [], None
    while True:
        page = execute(lake, query, {"after": after})["data"]["schema"]["tables"]
        names += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert names == [f"t{i:03d}" for i in range(100)]
    default = execute(lake, '{ schema(name: "main.s") { tables { edges { node { name } } pageInfo { hasNextPage } } } }')
    assert len(default["data"]["schema"]["tables"]["edges"]) == 100 and default["data"]["schema"]["tables"]["pageInfo"]["hasNextPage"] is False
    lake.tables.create_table("main.s.t100", [{"name": "id", "type": "bigint"}])
    default = execute(lake, '{ schema(name: "main.s") { tables { edges { node { name } } pageInfo { hasNextPage } } } }')
    assert len(default["data"]["schema"]["tables"]["edges"]) == 100 and default["data"]["schema"]["tables"]["pageInfo"]["hasNextPage"] is True
    bad = execute(lake, '{ schema(name: "main.s") { tables(first: 5000) { edges { node { name } } } } }')
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT" and "first must be between 0 and 1000" in bad["errors"][0]["message"]


def test_a_cursor_keeps_its_place_when_items_are_added_or_dropped_before_it(lake: Cairn) -> None:
    query = """query($after: String) { schema(name: "main.s") { tables(first: 40, after: $after) {
               edges { node { name } } pageInfo { hasNextPage hasPreviousPage endCursor } } } }"""
    first = execute(lake, query, {"after": None})["data"]["schema"]["tables"]
    assert first["edges"][-1]["node"]["name"] == "t039" and first["pageInfo"]["hasPreviousPage"] is False
    lake.tables.create_table("main.s.a000", [{"name": "id", "type": "bigint"}])  # sorts before the cursor
    lake.tables.delete_table("main.s.t010")
    second = execute(lake, query, {"after": first["pageInfo"]["endCursor"]})["data"]["schema"]["tables"]
    assert [e["node"]["name"] for e in second["edges"]] == [f"t{i:03d}" for i in range(40, 80)]  # no repeat, no gap
    assert second["pageInfo"]["hasPreviousPage"] is True and second["pageInfo"]["hasNextPage"] is True
    res = execute(lake, '{ schema(name: "main.s") { tables(last: 5) { edges { node { name } } } } }')
    assert res["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT" and "first and after" in res["errors"][0]["message"]
    res = execute(lake, '{ schema(name: "main.s") { tables(after: "%%%") { edges { node { name } } } } }')
    assert res["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT" and "'%%%'" in res["errors"][0]["message"]


def test_a_page_deep_in_a_connection_costs_what_the_first_page_does(lake: Cairn, metastore: Metastore) -> None:
    for _ in range(1500):
        lake.catalogs.get_catalog("main")
    query = """query($after: String) { auditEvents(first: 10, action: "get_catalog", after: $after) {
               edges { node { id } } pageInfo { endCursor } } }"""
    deep = execute(lake, """{ auditEvents(first: 1000, action: "get_catalog") { pageInfo { endCursor } } }""")
    cursor = deep["data"]["auditEvents"]["pageInfo"]["endCursor"]
    counts, pages = [], []
    for after in (None, cursor):
        statements: list[str] = []
        listener = lambda conn, cur, stmt, params, context, many, into=statements: into.append(stmt)  # noqa: E731
        event.listen(metastore.engine, "before_cursor_execute", listener)
        try:
            pages.append(execute(lake, query, {"after": after})["data"]["auditEvents"]["edges"])
        finally:
            event.remove(metastore.engine, "before_cursor_execute", listener)
        counts.append(len(statements))
    assert counts[0] == counts[1], counts
    assert len(pages[1]) == 10 and pages[1][0]["node"]["id"] == pages[0][0]["node"]["id"] - 1000  # newest first


def test_every_list_of_objects_is_a_connection_that_pages(lake: Cairn, monkeypatch: pytest.MonkeyPatch) -> None:
    import api.graphql

    for m in ("m1", "m2", "m3"):
        lake.models.create_registered_model(f"main.s.{m}")
    for _ in range(3):
        lake.models.create_model_version("main.s.m1", "file:///m")
    for f in ("f1", "f2"):
        lake.functions.create_function(f"main.s.{f}", "true", "boolean", [])

    def walk(query: str, path: list[str], first: int) -> list[object]:
        names, after, pages = [], None, 0
        while True:
            data = execute(lake, query, {"first": first, "after": after})
            assert "errors" not in data, data
            conn = data["data"]
            for step in path:
                conn = conn[step]
            names += [next(iter(e["node"].values())) for e in conn["edges"]]
            pages += 1
            if not conn["pageInfo"]["hasNextPage"]:
                return [names, pages]
            after = conn["pageInfo"]["endCursor"]

    page = "pageInfo { hasNextPage endCursor }"
    q = "query($first: Int, $after: String) "
    assert walk(q + '{ schema(name: "main.s") { models(first: $first, after: $after) { edges { node { name } } %s } } }' % page,
                ["schema", "models"], 2) == [["m1", "m2", "m3"], 2]
    assert walk(q + '{ model(name: "main.s.m1") { versions(first: $first, after: $after) { edges { node { version } } %s } } }' % page,
                ["model", "versions"], 1) == [[1, 2, 3], 3]
    assert walk(q + '{ schema(name: "main.s") { functions(first: $first, after: $after) { edges { node { name } } %s } } }' % page,
                ["schema", "functions"], 1) == [["f1", "f2"], 2]
    assert walk(q + "{ principals(first: $first, after: $after) { edges { node { name } } %s } }" % page, ["principals"], 1) == [["admin", "ana"], 2]
    # Search reads the catalog's tables page by page (30 at a time here) until its page of hits is full.
    monkeypatch.setattr(api.graphql, "MAX_FIRST", 30)
    hits, pages = walk(q + '{ search(text: "5", catalog: "main", first: $first, after: $after) { edges { node { name } } %s } }' % page,
                       ["search"], 7)
    assert hits == [f"t{i:03d}" for i in range(100) if "5" in f"{i:03d}"] and pages == 3


def test_queries_that_could_ask_for_too_many_objects_are_refused_before_they_run(lake: Cairn, metastore: Metastore) -> None:
    statements: list[str] = []
    listener = lambda conn, cursor, stmt, params, context, many: statements.append(stmt)  # noqa: E731
    deep = """{ catalogs(first: 1000) { edges { node { schemas(first: 1000) { edges { node {
              tables(first: 1000) { edges { node { name } } } } } } } } } }"""
    event.listen(metastore.engine, "before_cursor_execute", listener)
    try:
        res = execute(lake, deep)
    finally:
        event.remove(metastore.engine, "before_cursor_execute", listener)
    assert res["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
    assert "1,001,001,000 objects; the limit is 1,500,000" in res["errors"][0]["message"] and statements == []
    # The same bound through variables.
    res = execute(lake, "query($n: Int) { catalogs(first: $n) { edges { node { schemas(first: $n) { edges { node { tables(first: $n) "
                        "{ edges { node { name } } } } } } } } } }", {"n": 200})
    assert "8,040,200 objects" in res["errors"][0]["message"]
    ok = execute(lake, "query($n: Int) { catalogs(first: $n) { edges { node { schemas(first: $n) { edges { node { name } } } } } } }", {"n": 200})
    assert ok["data"]["catalogs"]["edges"][0]["node"]["schemas"]["edges"] == [{"node": {"name": "s"}}]


def test_functions_in_the_tree_and_by_name(lake: Cairn) -> None:
    lake.functions.create_function("main.s.us_only", "region = 'US'", "boolean", [{"name": "region", "type": "string"}], comment="row filter")
    res = execute(lake, '{ schema(name: "main.s") { functions { edges { node { name dataType language parameters { name type } comment } } } } '
                        'function(name: "main.s.us_only") { fullName routineDefinition owner } }')
    assert res["data"]["schema"]["functions"]["edges"] == [{"node": {"name": "us_only", "dataType": "boolean", "language": "SQL",
                                                             "parameters": [{"name": "region", "type": "string"}], "comment": "row filter"}}]
    assert res["data"]["function"] == {"fullName": "main.s.us_only", "routineDefinition": "region = 'US'", "owner": "admin"}


def test_a_parsed_query_is_reused_and_a_bad_one_answers_the_same_error_each_time(lake: Cairn) -> None:
    from api.graphql import parsed

    parsed.cache_clear()
    q = '{ table(name: "main.s.t001") { name } }'
    assert execute(lake, q)["data"]["table"]["name"] == "t001"
    assert execute(lake, q)["data"]["table"]["name"] == "t001"
    assert parsed.cache_info().hits >= 1
    bad = "{ table(name: 1) { nope } }"
    first, second = execute(lake, bad), execute(lake, bad)
    assert first == second and first["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
    assert "Cannot query field 'nope'" in " ".join(e["message"] for e in first["errors"])


def test_a_request_is_audited_with_its_query_and_its_calls_commit_together(lake: Cairn, metastore: Metastore) -> None:
    client = metastore.as_principal("admin", "graphql", "req-1")
    q = '{ table(name: "main.s.t007") { fullName tags { key value column } } nope: table(name: "main.s.missing") { name } }'
    res = execute(client, q)
    assert res["data"]["table"]["tags"] == [{"key": "pii", "value": "true", "column": "email"}]
    assert res["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    events = [e for e in lake.audit.list_events(max_results=1000) if e.request_id == "req-1"]
    assert sorted((e.action, e.result.value) for e in events) == [
        ("get_table", "ALLOWED"), ("get_table", "FAILED"), ("graphql_request", "ALLOWED"), ("list_tags", "ALLOWED")]
    request = next(e for e in events if e.action == "graphql_request")
    assert request.parameters["query"] == q and request.source == "graphql"
    # Writes inside a request are seen by the reads after them in the same request.
    res = execute(client, 'mutation { createTable(name: "main.s.fresh", columns: [{name: "a", type: "int"}]) { fullName } '
                          'sql(statement: "SELECT count(*) AS n FROM main.s.fresh") { rows } }')
    assert res == {"data": {"createTable": {"fullName": "main.s.fresh"}, "sql": {"rows": [["0"]]}}}


def test_a_cursor_far_into_a_connection_still_finds_the_next_page(lake: Cairn) -> None:
    for _ in range(1100):
        lake.catalogs.get_catalog("main")
    query = """query($after: String) { auditEvents(first: 500, action: "get_catalog", after: $after) {
               edges { node { action } } pageInfo { hasNextPage endCursor } } }"""
    seen, after, pages = 0, None, 0
    while True:
        page = execute(lake, query, {"after": after})["data"]["auditEvents"]
        seen += len(page["edges"])
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert (seen, pages) == (1100, 3)


def test_external_locations_and_storage_credentials(admin: Cairn, metastore: Metastore, tmp_path_factory: pytest.TempPathFactory) -> None:
    dirs = [tmp_path_factory.mktemp(f"loc{i}") for i in range(3)]
    admin.principals.create_user("ana")
    res = execute(admin, 'mutation { createStorageCredential(name: "local", comment: "server") { name owner readOnly } }')
    assert res["data"]["createStorageCredential"] == {"name": "local", "owner": "admin", "readOnly": False}
    for i, d in enumerate(dirs):
        res = execute(admin, 'mutation($n: String!, $u: String!) { createExternalLocation(name: $n, url: $u, credentialName: "local") { name url } }',
                      {"n": f"loc{i}", "u": f"file://{d}/"})
        assert res["data"]["createExternalLocation"] == {"name": f"loc{i}", "url": str(d)}
    bad = execute(admin, 'mutation { createExternalLocation(name: "x", url: "../x") { name } }')
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT" and "'../x' is relative" in bad["errors"][0]["message"]
    page1 = execute(admin, "{ externalLocations(first: 2) { edges { node { name credentialName } } pageInfo { hasNextPage endCursor } } }")
    conn = page1["data"]["externalLocations"]
    assert [e["node"]["name"] for e in conn["edges"]] == ["loc0", "loc1"] and conn["pageInfo"]["hasNextPage"]
    page2 = execute(admin, '{ externalLocations(first: 2, after: "%s") { edges { node { name } } } }' % conn["pageInfo"]["endCursor"])
    assert [e["node"]["name"] for e in page2["data"]["externalLocations"]["edges"]] == ["loc2"]
    admin.grants.grant("external_location", "loc1", "ana", "CREATE EXTERNAL TABLE")
    ana = metastore.as_principal("ana")
    seen = execute(ana, "{ externalLocations { edges { node { name grants { principal privilege } } } } storageCredentials { edges { node { name } } } }")
    assert seen["data"] == {"externalLocations": {"edges": [{"node": {"name": "loc1", "grants": [{"principal": "ana", "privilege": "CREATE EXTERNAL TABLE"}]}}]},
                            "storageCredentials": {"edges": []}}
    hidden = execute(ana, '{ externalLocation(name: "loc0") { url } }')
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert execute(admin, 'mutation { drop(kind: "external_location", name: "loc2") }')["data"]["drop"] is True
    refused = execute(admin, 'mutation { drop(kind: "storage_credential", name: "local") }')
    assert refused["errors"][0]["extensions"]["code"] == "FAILED_PRECONDITION"
    assert execute(admin, 'mutation { drop(kind: "storage_credential", name: "local", cascade: true) }')["data"]["drop"] is True
    assert [x.full_name for x in admin.external_locations.list_external_locations()] == ["loc0", "loc1"]
    assert list(admin.storage_credentials.list_storage_credentials()) == []
