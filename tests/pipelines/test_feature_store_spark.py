"""The same training sets on Spark as on DuckDB, row by row: ties, nulls, lookback, defaults, masks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
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
    fe.create_table("main.ml.users", "user_id", "ts", df=pd.DataFrame({
        "user_id": [1, 1, 1, 2, 2, 3],
        "ts": [T("2024-01-01"), T("2024-01-05"), T("2024-01-10"), T("2024-01-03"), T("2024-01-04"), T("2024-01-01")],
        "spend": [1.0, 2.0, None, 4.0, 5.0, 6.0], "orders": [10, 20, 30, 40, 50, 60]}))
    # Ties past the feature store: the later commit, then the later row, must win on both engines.
    admin.data.write("main.ml.users", [{"user_id": 3, "ts": T("2024-01-01").to_pydatetime(), "spend": 7.0, "orders": 70},
                                       {"user_id": 3, "ts": T("2024-01-01").to_pydatetime(), "spend": 8.0, "orders": 80}])
    fe.create_table("main.ml.static", "user_id", df=pd.DataFrame({"user_id": [1, 2], "age": [30, 40]}))
    yield admin
    ms.close()


LABELS = [(1, "2023-12-31", 0), (1, "2024-01-01", 1), (1, "2024-01-04", 0), (1, "2024-01-11", 1), (2, "2024-01-03 12:00", 0),
          (3, "2024-01-02", 1), (4, "2024-01-05", 0), (None, "2024-01-05", 1), (1, None, 0), (2, "2024-02-20", 1), (1, "2024-01-05", 0)]


def labels() -> pd.DataFrame:
    return pd.DataFrame({"user_id": pd.array([r[0] for r in LABELS], "Int64"), "at": [T(r[1]) if r[1] else pd.NaT for r in LABELS],
                         "y": [r[2] for r in LABELS]})


def value(v: object) -> object:
    if pd.isna(v):
        return None
    if isinstance(v, pd.Timestamp):  # Spark hands back times in UTC without a zone
        return v.tz_convert(None) if v.tzinfo else v
    return float(v) if isinstance(v, (int, float)) else v


def rows(df: pd.DataFrame) -> list[tuple]:
    return [tuple(value(v) for v in r) for r in df.itertuples(index=False)]


@pytest.mark.parametrize("lookups", [
    [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at")],
    [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at", lookback_window=timedelta(days=2),
                   default_values={"spend": -1.0}, rename_outputs={"orders": "n"}),
     FeatureLookup("main.ml.static", "user_id")],
    [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at", lookback_window=timedelta(0), feature_names=["orders"]),
     FeatureLookup("main.ml.users", "user_id", feature_names=["spend"], rename_outputs={"spend": "latest_spend"})],
], ids=["plain", "lookback-defaults-static", "exact-and-latest"])
def test_spark_and_duckdb_agree_row_by_row(spark, lake: Cairn, lookups) -> None:  # type: ignore[no-untyped-def]
    fe = FeatureEngineeringClient(lake)
    embedded = fe.create_training_set(labels(), lookups, label="y").load_df()
    sdf = spark.createDataFrame(labels())
    on_spark = fe.create_training_set(sdf, lookups, label="y").load_df()
    assert type(on_spark).__module__.startswith("pyspark")
    got = on_spark.toPandas()
    assert list(got.columns) == list(embedded.columns)
    assert rows(got) == rows(embedded)
    if len(lookups) == 1:
        assert [r[4] for r in rows(embedded)] == [None, 10, 10, 30, 40, 80, None, None, None, 50, 20]  # ties: 80 wins


def test_spark_reads_are_governed_and_masked(spark, lake: Cairn) -> None:  # type: ignore[no-untyped-def]
    lake.principals.create_user("bob")
    lake.sql("""
        CREATE FUNCTION main.ml.hide(orders BIGINT) RETURNS BIGINT RETURN CASE WHEN is_member('admins') THEN orders ELSE -9 END;
        ALTER TABLE main.ml.users ALTER COLUMN orders SET MASK main.ml.hide;
        GRANT USE CATALOG ON CATALOG main TO bob; GRANT USE SCHEMA ON SCHEMA main.ml TO bob;
        GRANT SELECT ON TABLE main.ml.users TO bob;
    """)
    bob = FeatureEngineeringClient(lake.metastore.as_principal("bob"))
    lk = [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at", feature_names=["orders"])]
    out = bob.create_training_set(spark.createDataFrame(labels()), lk, label="y").load_df().toPandas()
    assert {v for v in out["orders"] if not pd.isna(v)} == {-9}
    from catalog.errors import NotFound, PermissionDenied

    with pytest.raises((PermissionDenied, NotFound)):
        bob.create_training_set(spark.createDataFrame(labels()), [FeatureLookup("main.ml.static", "user_id")], label="y")
    spark_reads = [e for e in lake.audit.list_events(action="read_table", max_results=1000).items
                   if e.source == "spark" and e.principal == "bob" and e.securable_name == "main.ml.users"]
    assert spark_reads and {e.parameters["delta_version"] for e in spark_reads} == {2}
