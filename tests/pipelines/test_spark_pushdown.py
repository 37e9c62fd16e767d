"""Filter pushdown in the governed Spark source: filters skip whole files, by a partition column's
value in the Delta log and by another column's min and max there, and the rows are exactly those of
the same filter applied by Spark to every row of the table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from catalog.client import Cairn, Metastore

pytestmark = pytest.mark.slow


def T(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cairn]:
    """`main.raw.ranges`: four files of disjoint ranges of id, ts and name (and spend, a double);
    `main.raw.byday`: partitioned by day, one file per day and one for day NULL."""
    ms = Metastore.open(home=tmp_path_factory.mktemp("pushdown"))
    ms.initialize("admin")
    admin = ms.as_principal("admin")
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.raw")
    cols = [{"name": "id", "type": "bigint"}, {"name": "ts", "type": "timestamp"}, {"name": "name", "type": "string"},
            {"name": "spend", "type": "double"}, {"name": "note", "type": "string"}]
    admin.tables.create_table("main.raw.ranges", cols)
    for f in range(4):  # file f: ids 10f..10f+9, times on day f+1, names '<letter f><n>'
        admin.data.write("main.raw.ranges", [{"id": 10 * f + i, "ts": T(f + 1, i), "name": f"{'abcd'[f]}{i}", "spend": 10.0 * f + i,
                                              "note": None if i % 3 else "x"} for i in range(10)])
    admin.tables.create_table("main.raw.byday", [{"name": "day", "type": "date"}, {"name": "id", "type": "bigint"}],
                              partition_columns=["day"])
    admin.data.write("main.raw.byday", [{"day": date(2024, 1, d), "id": 10 * d + i} for d in (1, 2, 3) for i in range(3)]
                     + [{"day": None, "id": 99}])
    yield admin
    ms.close()


def opts(lake: Cairn, principal: str = "admin") -> dict[str, str]:
    return {"home": str(lake.metastore.settings.home), "principal": principal}


def rows_of(df: Any) -> list[tuple[Any, ...]]:
    return sorted((tuple(r) for r in df.collect()), key=lambda r: [(v is None, 0 if v is None else v) for v in r])


def scan(spark: Any, lake: Cairn, table: str, where: str, skip: bool = True) -> tuple[int, list[tuple[Any, ...]]]:
    """(files read, rows) of a filtered read through the source, loaded for this one scan: one Spark
    partition per file, and one empty partition of Spark's own when no file is left (see
    test_a_scan_with_no_file_left). `skip`: option skipFiles (this Spark's default otherwise)."""
    df = spark.read.format("cairn").options(**opts(lake), **({"skipFiles": "true"} if skip else {})).load(table).where(where)
    return df.rdd.getNumPartitions(), rows_of(df)


def everything(spark: Any, lake: Cairn, table: str, where: str) -> list[tuple[Any, ...]]:
    """The same filter applied by Spark to every row of the table (no source, so nothing pushed)."""
    full = spark.read.format("cairn").options(**opts(lake)).load(table)
    df = spark.createDataFrame(lake.data.read(table).to_pylist(), schema=full.schema).where(where)
    return rows_of(df)


@pytest.mark.parametrize(("where", "files"), [
    ("id = 15", 1), ("id > 29", 1), ("id >= 29", 2), ("id < 10", 1), ("id <= 10", 2), ("id in (3, 35)", 2),
    ("id < 0", 0), ("id <> 15", 4), ("id not in (1, 2)", 4),
    ("ts >= '2024-01-03'", 2), ("ts < '2024-01-01 05:00:00'", 1), ("ts = '2024-01-02 09:00:00'", 1),
    ("name = 'c4'", 1), ("name >= 'd'", 1), ("name like 'b%'", 4),
    ("spend < 10", 1), ("spend > 29", 4), ("spend = 12.0", 1),  # a double's > skips nothing: NaN would be above
    ("note is null", 4), ("note is not null", 4),
    ("id > 5 and name < 'c'", 2), ("id = 15 or id = 35", 4), ("id > 100 and note is null", 0),
])
def test_filters_skip_files_by_min_and_max(spark, lake: Cairn, where: str, files: int) -> None:  # type: ignore[no-untyped-def]
    read, rows = scan(spark, lake, "main.raw.ranges", where)
    assert read == max(files, 1)
    assert rows == everything(spark, lake, "main.raw.ranges", where)
    assert rows or files == 0 or where in ("id <> 15",)  # each case that reads a file finds rows in it


@pytest.mark.parametrize(("where", "files", "ids"), [
    ("day = '2024-01-02'", 1, [20, 21, 22]), ("day > '2024-01-01'", 2, [20, 21, 22, 30, 31, 32]),
    ("day in ('2024-01-01', '2024-01-03')", 2, [10, 11, 12, 30, 31, 32]), ("day <> '2024-01-02'", 2, [10, 11, 12, 30, 31, 32]),
    ("day not in ('2024-01-02')", 2, [10, 11, 12, 30, 31, 32]), ("day is null", 1, [99]), ("day is not null", 3, list(range(10, 33))),
    ("day = '2024-01-02' and id > 20", 1, [21, 22]), ("day >= '2024-02-01'", 0, []),
    ("id = 21", 1, [21]), ("id > 30", 2, [31, 32, 99]), ("id > 30 and day < '2024-01-03'", 0, []),  # by min and max, too
])
def test_filters_on_partition_columns_skip_partitions(spark, lake: Cairn, where: str, files: int, ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    read, rows = scan(spark, lake, "main.raw.byday", where)
    assert read == max(files, 1)
    assert sorted(r[1] for r in rows) == [i for i in ids if i % 10 < 3 or i == 99]
    assert rows == everything(spark, lake, "main.raw.byday", where)


def test_skipping_is_per_snapshot_and_plain_reads_read_every_file(spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    df = spark.read.format("cairn").options(**opts(lake)).load("main.raw.ranges")
    assert df.rdd.getNumPartitions() == 4 and df.count() == 40
    old = spark.read.format("cairn").options(**opts(lake), skipFiles="true").option("versionAsOf", 2).load("main.raw.ranges").where("id >= 10")
    assert old.rdd.getNumPartitions() == 1 and sorted(r.id for r in old.collect()) == list(range(10, 20))


def test_a_spark_session_of_ones_own_gets_pushdown_from_register(tmp_path: Path, spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    from pipelines.spark import register

    spark.conf.set("spark.sql.python.filterPushdown.enabled", "false")
    register(spark)
    assert spark.conf.get("spark.sql.python.filterPushdown.enabled") == "true"
    assert scan(spark, lake, "main.raw.ranges", "id = 15") == (1, [(15, datetime(2024, 1, 2, 5), "b5", 15.0, None)])


def test_a_dataframe_scanned_again_reads_every_file_it_needs(spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    """Spark 4.3 shares the read planned by one scan's pushdown with every scan of the DataFrame:
    by default files are skipped only where Spark keeps that read to its scan, so a reused
    DataFrame gives every row on both Sparks."""
    from pipelines.spark import SCAN_SCOPED_PUSHDOWN

    df = spark.read.format("cairn").options(**opts(lake)).load("main.raw.ranges")
    assert df.where("id = 15").count() == 1
    assert df.count() == 40 and df.rdd.getNumPartitions() == 4
    assert df.where("id < 10").union(df.where("id >= 30")).count() == 20
    assert scan(spark, lake, "main.raw.ranges", "id = 15", skip=False)[0] == (1 if SCAN_SCOPED_PUSHDOWN else 4)
    with pytest.raises(Exception, match="option skipFiles is true or false, not 'maybe'"):
        _ = spark.read.format("cairn").options(**opts(lake), skipFiles="maybe").load("main.raw.ranges").schema


def test_a_scan_with_no_file_left_reads_nothing(lake: Cairn) -> None:
    from pyspark.sql.datasource import EqualTo, GreaterThan, InputPartition, IsNull
    from pyspark.sql.types import LongType, StructField, StructType

    from pipelines.spark import CairnReader

    schema = StructType([StructField("id", LongType())])
    reader = CairnReader(lake.data.plan_scan("main.raw.ranges", stats=True), schema)
    filters = [GreaterThan(("id",), 100), IsNull(("note",)), EqualTo(("nested", "field"), 1)]
    assert list(reader.pushFilters(filters)) == filters  # every filter handed back: Spark applies them to the rows
    assert reader.partitions() == []
    assert list(reader.read(InputPartition(None))) == []
    import pickle

    assert pickle.loads(pickle.dumps(reader))._plan is None  # the statistics stay on the driver
