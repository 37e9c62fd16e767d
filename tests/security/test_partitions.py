"""Attacks on partitioned tables. bob may SELECT a table partitioned by region whose row filter
shows him the EU partition only: no path (the SQL shim on Arrow and on DuckDB's own reader, plain
and time-travel reads, the change feed, training sets on DuckDB and Spark, online publishing) gives
him another partition's rows. And partition values come from the Delta log only: a file placed
under `region=US/` by a writer is not taken to be in the US partition by any reader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.client import Cairn, Metastore
from catalog.errors import FailedPrecondition
from pipelines.features import FeatureEngineeringClient, FeatureLookup
from pipelines.features.online import SqliteOnlineStore


def T(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


FEATURES = pd.DataFrame({"user_id": [1, 2, 3, 4], "ts": [T("2024-01-01")] * 4, "region": ["US", "EU", "EU", "APAC"],
                         "pay": [100.0, 200.0, 300.0, 400.0]})
LABELS = pd.DataFrame({"user_id": [1, 2, 3, 4], "at": [T("2024-01-02")] * 4, "y": [0, 1, 0, 1]})


def make_world(admin: Cairn, metastore: Metastore) -> Cairn:
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.fs")
    fa = FeatureEngineeringClient(admin)
    fa.create_table("main.fs.pay", "user_id", "ts", df=FEATURES, partition_columns=["region"])
    admin.principals.create_user("bob")
    admin.sql("""
        CREATE FUNCTION main.fs.eu_only(region STRING) RETURNS BOOLEAN RETURN region = 'EU';
        ALTER TABLE main.fs.pay SET ROW FILTER main.fs.eu_only ON (region);
        GRANT USE CATALOG ON CATALOG main TO bob; GRANT USE SCHEMA ON SCHEMA main.fs TO bob;
        GRANT SELECT ON TABLE main.fs.pay TO bob;
    """)
    return metastore.as_principal("bob")


@pytest.fixture
def bob(admin: Cairn, metastore: Metastore) -> Cairn:
    return make_world(admin, metastore)


def test_the_shim_gives_no_other_partition(bob: Cairn) -> None:
    for _ in range(3):  # Arrow datasets first, then DuckDB's own Parquet reader on the same files
        assert bob.sql("SELECT user_id, region FROM main.fs.pay ORDER BY user_id").rows == [(2, "EU"), (3, "EU")]
        assert bob.sql("SELECT count(*) FROM main.fs.pay WHERE region <> 'EU'").rows == [(0,)]
        assert bob.sql("SELECT sum(pay) FROM main.fs.pay VERSION AS OF 1").rows == [(500.0,)]
        assert bob.sql("WITH t AS (SELECT * FROM main.fs.pay) SELECT DISTINCT region FROM t").rows == [("EU",)]


def test_reads_the_change_feed_and_a_pruned_plan_give_no_other_partition(bob: Cairn) -> None:
    assert sorted(bob.data.read("main.fs.pay").column("region").to_pylist()) == ["EU", "EU"]
    assert bob.data.read("main.fs.pay", filters=[("region", "=", "US")]).num_rows == 0
    assert bob.data.read("main.fs.pay", version=1, columns=["pay"]).column("pay").to_pylist() in ([200.0, 300.0], [300.0, 200.0])
    assert set(bob.data.read_changes("main.fs.pay", 0).column("region").to_pylist()) == {"EU"}
    # Asking for the US partition's files still hands out the policy with them: what an engine
    # reads from the plan is filtered.
    plan = bob.data.plan_scan("main.fs.pay", partition_filters=[("region", "=", "US")])
    assert plan.partitions == (("US",),) and plan.policy.row_filter is not None
    from catalog.scan import policy_sql
    from catalog.sql import duck

    con = duck.database(frozenset(f.removeprefix("file://") for f in plan.files))
    assert con.execute(policy_sql(plan.policy, f"{plan.source()} AS src", [c.name for c in plan.columns])).fetchall() == []


def test_training_sets_give_no_other_partition(bob: Cairn) -> None:
    fb = FeatureEngineeringClient(bob)
    out = fb.create_training_set(LABELS, [FeatureLookup("main.fs.pay", "user_id", timestamp_lookup_key="at")], label="y").load_df()
    assert [None if pd.isna(v) else v for v in out["pay"]] == [None, 200.0, 300.0, None]
    assert [None if pd.isna(v) else v for v in out["region"]] == [None, "EU", "EU", None]
    rows = fb.create_training_set("main.fs.pay", [], label="pay").load_df()  # the table as the training rows
    assert sorted(rows["user_id"]) == [2, 3]


def test_online_publishing_is_refused(bob: Cairn, admin: Cairn, tmp_path: Path) -> None:
    store = SqliteOnlineStore(str(tmp_path / "online.db"))
    for who in (bob, admin):
        with pytest.raises(FailedPrecondition, match="row filter or column masks"):
            FeatureEngineeringClient(who).publish_table("main.fs.pay", store)
    assert store.state("main.fs.pay") is None
    with pytest.raises(FailedPrecondition, match="online features cannot be served"):
        FeatureEngineeringClient(bob).read_online_features("main.fs.pay", [{"user_id": 1}], online_store=store)


def test_a_file_under_a_forged_partition_directory_keeps_its_own_values(admin: Cairn, metastore: Metastore) -> None:
    """carol may write to an unpartitioned table; she commits a file of EU rows under `region=US/`.
    Every reader reads them as EU (DuckDB and Arrow would have guessed US from the path), so bob,
    shown the US rows only, sees none of them."""
    from catalog.scan import DataFile

    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.fs")
    admin.tables.create_table("main.fs.flat", [{"name": "user_id", "type": "bigint"}, {"name": "region", "type": "string"}])
    for who in ("bob", "carol"):
        admin.principals.create_user(who)
    admin.sql("""
        CREATE FUNCTION main.fs.us_only(region STRING) RETURNS BOOLEAN RETURN region = 'US';
        ALTER TABLE main.fs.flat SET ROW FILTER main.fs.us_only ON (region);
        GRANT USE CATALOG ON CATALOG main TO bob; GRANT USE SCHEMA ON SCHEMA main.fs TO bob;
        GRANT USE CATALOG ON CATALOG main TO carol; GRANT USE SCHEMA ON SCHEMA main.fs TO carol;
        GRANT SELECT ON TABLE main.fs.flat TO bob; GRANT MODIFY ON TABLE main.fs.flat TO carol;
    """)
    root = Path((admin.tables.get_table("main.fs.flat").storage_location or "").removeprefix("file://"))
    forged = root / "region=US" / "part-0.parquet"
    forged.parent.mkdir()
    pq.write_table(pa.table({"user_id": pa.array([9], pa.int64()), "region": ["EU"]}), forged)
    metastore.as_principal("carol").data.commit_files("main.fs.flat", [DataFile(str(forged), forged.stat().st_size, 1, 0)])
    bob = metastore.as_principal("bob")
    for _ in range(3):
        assert bob.sql("SELECT user_id, region FROM main.fs.flat").rows == []
    assert bob.data.read("main.fs.flat").num_rows == 0
    plan = bob.data.plan_scan("main.fs.flat")
    from catalog.sql import duck

    con = duck.database(frozenset(f.removeprefix("file://") for f in plan.files))
    assert con.execute(f"SELECT region FROM {plan.source()} AS s").fetchall() == [("EU",)]


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    from pipelines.spark import local_session

    session = local_session("cairn-security-partitions", cores="2")
    yield session
    session.stop()


@pytest.mark.slow
def test_spark_gives_no_other_partition(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ms = Metastore.open(home=tmp_path)
    ms.initialize("admin")
    try:
        make_world(ms.as_principal("admin"), ms)
        options = {"home": str(tmp_path), "principal": "bob"}
        df = spark.read.format("cairn").options(**options).load("main.fs.pay")
        assert sorted((r.user_id, r.region) for r in df.collect()) == [(2, "EU"), (3, "EU")]
        assert df.where("region = 'US'").count() == 0
        from pipelines.spark import governed

        assert [tuple(r) for r in governed(spark, **options).sql("SELECT count(*) FROM main.fs.pay WHERE region <> 'EU'").collect()] == [(0,)]
        fb = FeatureEngineeringClient(ms.as_principal("bob"))
        out = fb.create_training_set(spark.createDataFrame(LABELS), [FeatureLookup("main.fs.pay", "user_id", timestamp_lookup_key="at")],
                                     label="y").load_df().toPandas()
        assert [None if pd.isna(v) else v for v in out["pay"]] == [None, 200.0, 300.0, None]
    finally:
        ms.close()
