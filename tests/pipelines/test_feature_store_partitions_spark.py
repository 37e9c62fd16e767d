"""Partitioned tables on Spark: the governed data source restores partition columns from the Delta
log, training sets agree with DuckDB row by row, and Spark writes land partitioned."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from catalog.client import Cairn, Metastore
from pipelines.features import FeatureEngineeringClient, FeatureLookup

pytestmark = pytest.mark.slow


def T(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Cairn]:
    ms = Metastore.open(home=tmp_path)
    ms.initialize("admin")
    admin = ms.as_principal("admin")
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    fe = FeatureEngineeringClient(admin)
    fe.create_table("main.ml.users", "user_id", "ts", partition_columns=["region"], df=pd.DataFrame({
        "user_id": [1, 1, 1, 2, 2, 3],
        "ts": [T("2024-01-01"), T("2024-01-05"), T("2024-01-10"), T("2024-01-03"), T("2024-01-04"), T("2024-01-01")],
        "region": ["US", "US", "US", "EU", "EU", "a b'/c"], "spend": [1.0, 2.0, None, 4.0, 5.0, 6.0]}))
    # Ties past the feature store: the later commit, then the later row, must win on both engines.
    admin.data.write("main.ml.users", [{"user_id": 3, "ts": T("2024-01-01").to_pydatetime(), "region": "a b'/c", "spend": 7.0},
                                       {"user_id": 3, "ts": T("2024-01-01").to_pydatetime(), "region": "a b'/c", "spend": 8.0}])
    yield admin
    ms.close()


def opts(lake: Cairn, principal: str = "admin") -> dict[str, str]:
    return {"home": str(lake.metastore.settings.home), "principal": principal}


def clean(v: object) -> object:
    if pd.isna(v):  # type: ignore[arg-type]
        return None
    if isinstance(v, pd.Timestamp):
        return v.tz_convert(None) if v.tzinfo else v
    return float(v) if isinstance(v, (int, float)) else v


def test_spark_reads_partition_columns_and_time_travels(spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    df = spark.read.format("cairn").options(**opts(lake)).load("main.ml.users")
    assert sorted((r.user_id, r.region, r.spend) for r in df.where("user_id <> 1").collect()) == [
        (2, "EU", 4.0), (2, "EU", 5.0), (3, "a b'/c", 6.0), (3, "a b'/c", 7.0), (3, "a b'/c", 8.0)]
    assert df.where("region = 'US'").count() == 3
    v1 = spark.read.format("cairn").options(**opts(lake)).option("versionAsOf", 1).load("main.ml.users")
    assert sorted(r.region for r in v1.collect()) == ["EU", "EU", "US", "US", "US", "a b'/c"]


def test_spark_and_duckdb_training_sets_agree_row_by_row(spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    fe = FeatureEngineeringClient(lake)
    labels = pd.DataFrame({"user_id": [1, 1, 2, 3, 4, 1], "at": [T("2023-12-31"), T("2024-01-04"), T("2024-01-03 12:00"), T("2024-01-02"),
                                                                  T("2024-01-05"), T("2024-01-11")], "y": [0, 1, 0, 1, 0, 1]})
    lookups = [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at")]
    embedded = fe.create_training_set(labels, lookups, label="y").load_df()
    got = fe.create_training_set(spark.createDataFrame(labels), lookups, label="y").load_df().toPandas()
    assert list(got.columns) == list(embedded.columns) == ["user_id", "at", "y", "region", "spend"]
    as_rows = [[tuple(clean(v) for v in r) for r in d.itertuples(index=False)] for d in (got, embedded)]
    assert as_rows[0] == as_rows[1]
    assert [r[3] for r in as_rows[1]] == [None, "US", "EU", "a b'/c", None, "US"]
    assert [r[4] for r in as_rows[1]] == [None, 1.0, 4.0, 8.0, None, None]  # ties: 8.0 wins; a null stays null


def test_spark_writes_land_partitioned(spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    lake.tables.create_table("main.ml.daily", [{"name": "id", "type": "bigint"}, {"name": "day", "type": "date"},
                                             {"name": "v", "type": "double"}], partition_columns=["day"])
    src = spark.createDataFrame(pd.DataFrame({"id": [1, 2, 3, 4], "day": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01", None]).date,
                                              "v": [1.0, 2.0, 3.0, 4.0]})).repartition(2)
    src.write.format("cairn").options(**opts(lake)).mode("append").save("main.ml.daily")
    root = Path((lake.tables.get_table("main.ml.daily").storage_location or "").removeprefix("file://"))
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("day=")) == ["day=2024-01-01", "day=2024-01-02",
                                                                                    "day=__HIVE_DEFAULT_PARTITION__"]
    for f in root.glob("day=*/*.parquet"):
        assert pq.read_schema(f).names == ["id", "v"]
    adds = [json.loads(line)["add"] for line in (root / "_delta_log" / "00000000000000000001.json").read_text().splitlines() if '"add"' in line]
    assert {a["partitionValues"]["day"] for a in adds} == {"2024-01-01", "2024-01-02", None}
    assert lake.sql("SELECT id, CAST(day AS STRING), v FROM main.ml.daily ORDER BY id").rows == [
        (1, "2024-01-01", 1.0), (2, "2024-01-02", 2.0), (3, "2024-01-01", 3.0), (4, None, 4.0)]
    back = spark.read.format("cairn").options(**opts(lake)).load("main.ml.daily")
    assert sorted((r.id, str(r.day)) for r in back.collect()) == [(1, "2024-01-01"), (2, "2024-01-02"), (3, "2024-01-01"), (4, "None")]
    from pipelines.spark import governed

    g = governed(spark, **opts(lake))
    assert [tuple(r) for r in g.sql("SELECT day, count(*) AS n FROM main.ml.daily WHERE day IS NOT NULL GROUP BY day ORDER BY day").collect()] \
        == [(pd.Timestamp("2024-01-01").date(), 2), (pd.Timestamp("2024-01-02").date(), 1)]
