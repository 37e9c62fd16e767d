"""A table's partition columns, read from its Delta log through the governed table service, on
every transport: UC REST (ColumnInfo.partition_index), GraphQL (`partitionColumns`, batched for
listed tables) and the Python API; a reader who may not see the table gets NOT_FOUND as before."""

from __future__ import annotations

import httpx
import pytest

from api.graphql import execute
from api.server import make_app
from catalog.client import Cairn, Metastore

UC = "/api/2.1/unity-catalog"


@pytest.fixture
def lake(admin: Cairn) -> Cairn:
    admin.sql("CREATE CATALOG main; CREATE SCHEMA main.s")
    admin.tables.create_table("main.s.byday", [{"name": "id", "type": "bigint"}, {"name": "day", "type": "date"},
                                               {"name": "region", "type": "string"}], partition_columns=["region", "day"])
    admin.tables.create_table("main.s.flat", [{"name": "id", "type": "bigint"}])
    admin.sql("CREATE VIEW main.s.v AS SELECT id FROM main.s.flat")
    admin.principals.create_user("ana")
    admin.principals.create_user("bob")
    admin.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA"])
    admin.grants.grant("table", "main.s.byday", "ana", ["SELECT"])
    return admin


def test_get_table_reads_them_from_the_delta_log(lake: Cairn, metastore: Metastore) -> None:
    assert lake.tables.get_table("main.s.byday").partition_columns == ("region", "day")
    assert lake.tables.get_table("main.s.flat").partition_columns == ()
    assert lake.tables.get_table("main.s.v").partition_columns == ()
    ana = metastore.as_principal("ana")
    assert ana.tables.get_table("main.s.byday").partition_columns == ("region", "day")
    assert ana.tables.get_table_by_id(str(lake.tables.get_table("main.s.byday").id)).partition_columns == ("region", "day")
    assert [t.partition_columns for t in lake.tables.list_tables("main", "s")] == [None, None, None]  # lists: not read
    tables = list(lake.tables.list_tables("main", "s"))
    shown = {t.full_name: v if isinstance(v, tuple) else repr(v) for t, v in zip(tables, ana.tables.partition_columns_many(tables).values())}
    assert shown == {"main.s.byday": ("region", "day"), "main.s.flat": "NotFound(\"table 'main.s.flat' does not exist\")",
                     "main.s.v": "NotFound(\"table 'main.s.v' does not exist\")"}  # what get_table would answer ana
    found = metastore.as_principal("bob").tables.partition_columns_many(tables)
    assert {type(v).__name__ for v in found.values()} == {"NotFound"}  # bob sees none of them
    assert lake.tables.partition_columns_many(tables) == {tables[0].id: ("region", "day"), tables[1].id: (), tables[2].id: ()}


def test_graphql_partition_columns(lake: Cairn, metastore: Metastore) -> None:
    res = execute(lake, '{ table(name: "main.s.byday") { partitionColumns columns { name } } }')
    assert res["data"]["table"] == {"partitionColumns": ["region", "day"], "columns": [{"name": "id"}, {"name": "day"}, {"name": "region"}]}
    res = execute(lake, '{ schema(name: "main.s") { tables { edges { node { name partitionColumns } } } } }')
    assert [e["node"] for e in res["data"]["schema"]["tables"]["edges"]] == [
        {"name": "byday", "partitionColumns": ["region", "day"]}, {"name": "flat", "partitionColumns": []}, {"name": "v", "partitionColumns": []}]
    batch = [e for e in lake.audit.list_events(action="get_table", max_results=100) if e.securable_name == "3 tables"]
    assert len(batch) == 1  # the listed tables' partition columns: one governed call
    ana = metastore.as_principal("ana")
    res = execute(ana, '{ schema(name: "main.s") { tables { edges { node { name partitionColumns } } } } }')
    assert [e["node"] for e in res["data"]["schema"]["tables"]["edges"]] == [{"name": "byday", "partitionColumns": ["region", "day"]}]
    res = execute(metastore.as_principal("bob"), '{ table(name: "main.s.byday") { partitionColumns } }')
    assert res["errors"][0]["extensions"]["code"] == "NOT_FOUND" and res["data"] == {"table": None}


@pytest.mark.slow
def test_uc_rest_get_table_has_partition_index(lake: Cairn, metastore: Metastore, live) -> None:  # type: ignore[no-untyped-def]
    tokens = {p: lake.tokens.create_token(None if p == "admin" else p, "1d")[0] for p in ("admin", "ana", "bob")}
    with live(make_app(metastore)) as url:
        def get(name: str, who: str) -> httpx.Response:
            return httpx.get(f"{url}{UC}/tables/{name}", headers={"Authorization": f"Bearer {tokens[who]}"})

        got = get("main.s.byday", "ana")
        flat = get("main.s.flat", "admin")
        hidden = get("main.s.byday", "bob")

        def listed(who: str, **params: str) -> dict[str, list]:
            r = httpx.get(f"{url}{UC}/tables", params={"catalog_name": "main", "schema_name": "s", **params},
                          headers={"Authorization": f"Bearer {tokens[who]}"})
            assert r.status_code == 200, r.text
            return {t["name"]: [(c["name"], c.get("partition_index")) for c in t["columns"]] for t in r.json()["tables"]}

        # lists read no Delta log unless asked with UC's include_delta_metadata; then one governed call for the page
        plain, rich = listed("admin"), listed("admin", include_delta_metadata="true")
        as_ana = listed("ana", include_delta_metadata="true")
    assert got.status_code == 200, got.text
    assert [(c["name"], c.get("partition_index")) for c in got.json()["columns"]] == [("id", None), ("day", 1), ("region", 0)]
    assert "partition_index" not in got.json()["columns"][0]
    assert flat.status_code == 200 and all("partition_index" not in c for c in flat.json()["columns"])
    assert hidden.status_code == 404 and hidden.json()["error_code"] == "NOT_FOUND"
    assert plain["byday"] == [("id", None), ("day", None), ("region", None)]
    assert rich["byday"] == [("id", None), ("day", 1), ("region", 0)] and rich["flat"] == [("id", None)]
    assert as_ana == {"byday": [("id", None), ("day", 1), ("region", 0)]}  # ana sees only that table, and its partitions
    assert len([e for e in lake.audit.list_events(action="get_table", max_results=100) if e.securable_name == "3 tables"]) == 1


def test_a_table_whose_log_cannot_be_read_still_shows_the_rest(lake: Cairn) -> None:
    from pathlib import Path

    location = Path((lake.tables.get_table("main.s.byday").storage_location or "").removeprefix("file://"))
    (location / "_delta_log" / f"{1:020d}.json").write_text("not json")  # a commit no reader can parse
    table = lake.tables.get_table("main.s.byday")
    assert table.partition_columns is None and [c.name for c in table.columns] == ["id", "day", "region"]  # unknown, not ()
    res = execute(lake, '{ table(name: "main.s.byday") { name partitionColumns } }')
    assert res["data"]["table"] == {"name": "byday", "partitionColumns": None} and "errors" not in res
