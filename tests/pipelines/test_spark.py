"""The governed Spark data source on a shared local[*] SparkSession."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.client import Cairn, Metastore

pytestmark = pytest.mark.slow


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Cairn]:
    ms = Metastore.open(home=tmp_path)
    ms.initialize("admin")
    admin = ms.as_principal("admin")
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.raw")
    admin.tables.create_table("main.raw.events", data=[{"user_id": i, "spend": float(i)} for i in range(10)])
    admin.data.write("main.raw.events", [{"user_id": 100, "spend": 1.0}])
    admin.tables.create_table("main.raw.out", [{"name": "user_id", "type": "bigint"}, {"name": "spend", "type": "double"}])
    admin.principals.create_user("ana")
    yield admin
    ms.close()


def opts(lake: Cairn, principal: str = "admin") -> dict[str, str]:
    return {"home": str(lake.metastore.settings.home), "principal": principal}


def test_read_partitions_by_file_and_time_travels(spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    df = spark.read.format("cairn").options(**opts(lake)).load("main.raw.events")
    assert [(f.name, f.dataType.simpleString()) for f in df.schema.fields] == [("user_id", "bigint"), ("spend", "double")]
    assert df.rdd.getNumPartitions() == 2  # one per file of the snapshot
    assert sorted(r.user_id for r in df.where("spend > 8").collect()) == [9]
    v0 = spark.read.format("cairn").options(**opts(lake)).option("versionAsOf", 0).load("main.raw.events")
    assert v0.count() == 10
    reads = [e for e in lake.audit.list_events(action="read_table", max_results=100) if e.source == "spark"]
    assert {e.parameters["delta_version"] for e in reads} == {0, 1}


def test_writes_commit_executor_files_in_one_delta_version(spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    src = spark.read.format("cairn").options(**opts(lake)).load("main.raw.events").repartition(3)
    src.write.format("cairn").options(**opts(lake)).mode("append").save("main.raw.out")
    history = lake.data.history("main.raw.out")
    assert len(history) == 2 and history[0]["operation"] == "WRITE"
    assert sorted(r["user_id"] for r in lake.data.read("main.raw.out").to_pylist()) == sorted([*range(10), 100])
    src.where("user_id < 3").write.format("cairn").options(**opts(lake)).mode("overwrite").save("main.raw.out")
    assert sorted(r["user_id"] for r in lake.data.read("main.raw.out").to_pylist()) == [0, 1, 2]
    writes = [e for e in lake.audit.list_events(action="write_table", max_results=100) if e.source == "spark"]
    assert [(e.parameters["mode"], e.parameters["delta_version"]) for e in writes] == [("append", 1), ("overwrite", 2)]


def test_spark_paths_are_governed(spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception, match="does not exist"):
        _ = spark.read.format("cairn").options(**opts(lake, "ana")).load("main.raw.events").schema
    lake.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    df = spark.read.format("cairn").options(**opts(lake, "ana")).load("main.raw.events")
    assert df.count() == 11
    with pytest.raises(Exception, match="lacks MODIFY"):
        df.write.format("cairn").options(**opts(lake, "ana")).mode("append").save("main.raw.out")
    assert lake.data.read("main.raw.out").num_rows == 0
    denied = [(e.action, e.source) for e in lake.audit.list_events(principal="ana", result="DENIED", max_results=100)]
    assert denied == [("read_table", "spark"), ("prepare_write", "spark")]


def test_files_outside_the_table_are_refused(lake: Cairn, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from catalog.errors import InvalidArgument
    from catalog.scan import DataFile

    stray = tmp_path / "stray.parquet"
    pq.write_table(pa.table({"user_id": [1], "spend": [1.0]}), stray)
    with pytest.raises(InvalidArgument, match="not inside the location"):
        lake.data.commit_files("main.raw.out", [DataFile(str(stray), stray.stat().st_size, 1, 0)])
    assert lake.data.read("main.raw.out").num_rows == 0


def test_a_spark_run_records_which_versions_it_read_and_wrote(spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from lineage.store import edges

    run = lake.lineage.start_run("spark-copy")
    o = {**opts(lake), "run": run}
    spark.read.format("cairn").options(**o).option("versionAsOf", 0).load("main.raw.events") \
        .write.format("cairn").options(**o).mode("append").save("main.raw.out")
    assert [(n.name, n.depth) for n in lake.lineage.get_upstream("main.raw.out").nodes] == [("main.raw.events", 1)]
    with lake.metastore.engine.connect() as conn:
        edge = conn.execute(select(edges)).one()
    assert (edge.run_id, edge.source_version, edge.target_version) == (run, 0, 1)


def test_row_filters_and_masks_apply_on_executors(spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    lake.functions.create_function("main.raw.small", "user_id < 3", "boolean", [{"name": "user_id", "type": "bigint"}])
    lake.functions.create_function("main.raw.hide", "CASE WHEN is_account_group_member('finance') THEN spend ELSE -1 END", "double",
                                   [{"name": "spend", "type": "double"}])
    lake.tables.set_row_filter("main.raw.events", "main.raw.small", ["user_id"])
    lake.tables.set_column_mask("main.raw.events", "spend", "main.raw.hide")
    rows = spark.read.format("cairn").options(**opts(lake)).load("main.raw.events").orderBy("user_id").collect()
    assert [(r.user_id, r.spend) for r in rows] == [(0, -1.0), (1, -1.0), (2, -1.0)]


def test_governed_spark_sql(spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    from pipelines.spark import governed

    g = governed(spark, **opts(lake))
    assert g.sql("USE CATALOG main").message == "using catalog main"
    g.sql("USE SCHEMA raw")
    df = g.sql("SELECT user_id, spend FROM events WHERE spend > 5 ORDER BY user_id")
    assert [r.user_id for r in df.collect()] == [6, 7, 8, 9]
    g.sql("INSERT INTO main.raw.`out` SELECT user_id, spend FROM events VERSION AS OF 0 WHERE user_id < 2")
    assert sorted(r["user_id"] for r in lake.data.read("main.raw.out").to_pylist()) == [0, 1]
    ana = governed(spark, **opts(lake, "ana"))
    with pytest.raises(Exception, match="does not exist"):
        ana.sql("SELECT * FROM main.raw.events").collect()


def test_reads_files_written_by_merge_into_not_null_columns(spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    # A feature table's keys are NOT NULL; a merge writes Parquet files whose columns are nullable.
    lake.tables.create_table("main.raw.keyed", [{"name": "id", "type": "bigint", "nullable": False}, {"name": "v", "type": "double"}],
                             primary_keys=["id"])
    lake.data.write("main.raw.keyed", [{"id": 1, "v": 1.0}, {"id": 2, "v": 2.0}])
    lake.data.merge("main.raw.keyed", [{"id": 2, "v": 20.0}, {"id": 3, "v": None}], on=["id"])
    df = spark.read.format("cairn").options(**opts(lake)).load("main.raw.keyed")
    assert [(f.name, f.nullable) for f in df.schema.fields] == [("id", False), ("v", True)]
    assert sorted((r.id, r.v) for r in df.collect()) == [(1, 1.0), (2, 20.0), (3, None)]
