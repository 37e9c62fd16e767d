"""UC REST: a table created with `partition_index` on its columns is a partitioned Delta table."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api.server import make_app
from catalog.client import Cairn, Metastore

pytestmark = pytest.mark.slow
UC = "/api/2.1/unity-catalog"


def test_partition_index_partitions_the_table(metastore: Metastore, admin: Cairn, live) -> None:  # type: ignore[no-untyped-def]
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.s")
    token = admin.tokens.create_token()[0]
    cols = [{"name": "id", "type_text": "bigint", "type_name": "LONG", "position": 0},
            {"name": "day", "type_text": "date", "type_name": "DATE", "position": 1, "partition_index": 0}]
    with live(make_app(metastore)) as url:
        ok = httpx.post(url + UC + "/tables", headers={"Authorization": f"Bearer {token}"}, json={
            "name": "t", "catalog_name": "main", "schema_name": "s", "table_type": "MANAGED", "data_source_format": "DELTA", "columns": cols})
        bad = httpx.post(url + UC + "/tables", headers={"Authorization": f"Bearer {token}"}, json={
            "name": "u", "catalog_name": "main", "schema_name": "s", "table_type": "MANAGED", "data_source_format": "DELTA",
            "columns": [{"name": "id", "type_text": "bigint"}, {"name": "v", "type_text": "double", "partition_index": 0}]})
    assert ok.status_code == 200, ok.text
    assert bad.status_code == 400 and "partition column 'v' of 'main.s.u' is double" in bad.text
    admin.sql("INSERT INTO main.s.t VALUES (1, DATE '2024-01-01')")
    root = Path((admin.tables.get_table("main.s.t").storage_location or "").removeprefix("file://"))
    assert [p.name for p in root.iterdir() if p.name.startswith("day=")] == ["day=2024-01-01"]
    assert admin.sql("SELECT id, CAST(day AS STRING) FROM main.s.t").rows == [(1, "2024-01-01")]
