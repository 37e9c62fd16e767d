"""Partitioned feature tables: really partitioned on disk (files under `col=value/`, values in the
Delta log, not in the files), and read back whole by every path that reads Parquet files itself:
read_table and time travel, the SQL shim (Arrow and native DuckDB), training sets, online publish
(full and incremental), pruning; with a row filter and a mask on the partition column for a reader
who is not the owner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.client import Cairn, Metastore
from catalog.errors import InvalidArgument, NotFound
from pipelines.features import FeatureEngineeringClient, FeatureLookup
from pipelines.features.online import SqliteOnlineStore


def T(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


FEATURES = pd.DataFrame({
    "user_id": [1, 1, 2, 3, 4],
    "ts": [T("2024-01-01"), T("2024-01-05"), T("2024-01-03"), T("2024-01-02"), T("2024-01-02")],
    "region": ["US", "US", "EU", "EU", "a b'/c"],  # a value that needs quoting in a path and in SQL
    "spend": [1.0, 2.0, 3.0, 4.0, 5.0],
})


@pytest.fixture
def fe(admin: Cairn) -> FeatureEngineeringClient:
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    client = FeatureEngineeringClient(admin)
    client.create_table("main.ml.users", primary_keys=["user_id"], timestamp_keys=["ts"], df=FEATURES, partition_columns=["region"])
    return client


def location(admin: Cairn, name: str) -> Path:
    return Path((admin.tables.get_table(name).storage_location or "").removeprefix("file://"))


def log_adds(root: Path) -> list[dict]:
    out = []
    for f in sorted((root / "_delta_log").glob("*.json")):
        out += [json.loads(line)["add"] for line in f.read_text().splitlines() if '"add"' in line]
    return out


def rows(df: pd.DataFrame, *cols: str) -> list[tuple]:
    return sorted(tuple(None if pd.isna(v) else v for v in r) for r in df[list(cols)].itertuples(index=False))


def test_the_table_is_partitioned_on_disk_and_in_the_log(fe: FeatureEngineeringClient, admin: Cairn) -> None:
    root = location(admin, "main.ml.users")
    dirs = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert dirs == ["region=EU", "region=US", "region=a%20b%27%2Fc"]
    for f in root.glob("region=*/*.parquet"):
        assert pq.read_schema(f).names == ["user_id", "ts", "spend"]  # the partition column is not in the files
    adds = log_adds(root)
    assert sorted(a["partitionValues"]["region"] for a in adds) == ["EU", "US", "a b'/c"]
    assert fe.get_table("main.ml.users").partition_columns == ("region",)
    # A merge keeps the partitioning: a new region gets its own directory.
    fe.write_table("main.ml.users", pd.DataFrame({"user_id": [5], "ts": [T("2024-01-02")], "region": ["APAC"], "spend": [9.0]}))
    assert (root / "region=APAC").is_dir()
    assert [a["partitionValues"] for a in log_adds(root)][-1] == {"region": "APAC"}


def test_read_table_sql_and_time_travel_restore_the_partition_column(fe: FeatureEngineeringClient, admin: Cairn) -> None:
    want = rows(FEATURES, "user_id", "region", "spend")
    assert rows(fe.read_table("main.ml.users"), "user_id", "region", "spend") == want
    fe.write_table("main.ml.users", pd.DataFrame({"user_id": [2], "ts": [T("2024-01-03")], "region": ["EU"], "spend": [30.0]}))
    assert rows(fe.read_table("main.ml.users", as_of_version=1), "user_id", "region", "spend") == want
    sql = "SELECT user_id, region, spend FROM main.ml.users VERSION AS OF 1 ORDER BY user_id, spend"
    for _ in range(3):  # the first run reads Arrow datasets, later ones DuckDB's own Parquet reader
        assert admin.sql(sql).rows == [(1, "US", 1.0), (1, "US", 2.0), (2, "EU", 3.0), (3, "EU", 4.0), (4, "a b'/c", 5.0)]
        assert admin.sql("SELECT region, sum(spend) FROM main.ml.users GROUP BY region ORDER BY region").rows == [
            ("EU", 34.0), ("US", 3.0), ("a b'/c", 5.0)]
        assert admin.sql("SELECT user_id, region FROM main.ml.users WHERE region LIKE 'a b%'").rows == [(4, "a b'/c")]
    assert rows(admin.data.read("main.ml.users", filters=[("region", "=", "EU")]).to_pandas(), "user_id", "spend") == [(2, 30.0), (3, 4.0)]


def test_training_sets_read_partition_columns(fe: FeatureEngineeringClient, admin: Cairn) -> None:
    labels = pd.DataFrame({"user_id": [1, 2, 3, 4, 1], "at": [T("2024-01-06"), T("2024-01-06"), T("2024-01-06"), T("2024-01-06"),
                                                              T("2024-01-02")], "y": [0, 1, 0, 1, 1]})
    lk = FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at")
    out = fe.create_training_set(labels, [lk], label="y").load_df()
    assert list(out["region"]) == ["US", "EU", "EU", "a b'/c", "US"]
    assert list(out["spend"]) == [2.0, 3.0, 4.0, 5.0, 1.0]
    # Ties written past the feature store take the tie-break path (file names and row numbers).
    admin.data.write("main.ml.users", [{"user_id": 3, "ts": T("2024-01-02").to_pydatetime(), "region": "EU", "spend": 40.0}])
    out = fe.create_training_set(labels, [lk], label="y").load_df()
    assert list(out["spend"]) == [2.0, 3.0, 40.0, 5.0, 1.0] and list(out["region"]) == ["US", "EU", "EU", "a b'/c", "US"]
    # The partitioned table as the training rows.
    saved = fe.create_training_set(labels, [FeatureLookup("main.ml.users", "user_id", feature_names=["spend"],
                                                          rename_outputs={"spend": "s2"})], label="y")
    assert list(saved.load_df()["s2"]) == [2.0, 3.0, 40.0, 5.0, 2.0]
    from_table = fe.create_training_set("main.ml.users", [], label="spend").load_df()
    assert sorted(from_table["region"]) == ["EU", "EU", "EU", "US", "US", "a b'/c"]


def test_publish_and_incremental_republish(fe: FeatureEngineeringClient, admin: Cairn, tmp_path: Path) -> None:
    store = SqliteOnlineStore(str(tmp_path / "online.db"))
    assert fe.publish_table("main.ml.users", store).mode == "FULL"
    got = fe.read_online_features("main.ml.users", [{"user_id": 1}, {"user_id": 4}], online_store=store).rows
    assert [(r["region"], r["spend"]) for r in got] == [("US", 2.0), ("a b'/c", 5.0)]
    fe.write_table("main.ml.users", pd.DataFrame({"user_id": [2, 6], "ts": [T("2024-01-09"), T("2024-01-01")], "region": ["EU", "APAC"],
                                                  "spend": [7.0, 8.0]}))
    # The published row of user 1 is deleted: its key is read back from the snapshot (a point read).
    admin.data.delete("main.ml.users", "user_id = 1 AND spend = 2.0")
    res = fe.publish_table("main.ml.users", store)
    assert res.mode == "INCREMENTAL" and res.keys_point_read == 1
    got = fe.read_online_features("main.ml.users", [{"user_id": 1}, {"user_id": 2}, {"user_id": 6}], online_store=store).rows
    assert [(r["region"], r["spend"]) for r in got] == [("US", 1.0), ("EU", 7.0), ("APAC", 8.0)]


def test_plan_scan_prunes_files_by_partition(fe: FeatureEngineeringClient, admin: Cairn) -> None:
    full = admin.data.plan_scan("main.ml.users")
    assert full.partition_columns == ("region",) and len(full.files) == 3
    eu = admin.data.plan_scan("main.ml.users", partition_filters=[("region", "=", "EU"), ("spend", ">", 100)])
    assert [os.path.basename(os.path.dirname(f)) for f in eu.files] == ["region=EU"] and eu.partitions == (("EU",),)
    assert len(admin.data.plan_scan("main.ml.users", partition_filters=[("region", "in", ["US", "EU"])]).files) == 2
    assert admin.data.plan_scan("main.ml.users", partition_filters=[("region", "not in", ["US", "EU"])]).partitions == (("a b'/c",),)
    from catalog.sql import duck

    con = duck.database(frozenset(f.removeprefix("file://") for f in eu.files))
    assert sorted(con.execute(f"SELECT user_id, region FROM {eu.source()} AS s").fetchall()) == [(2, "EU"), (3, "EU")]
    # One read_parquet per partition, its values as constants: DuckDB drops the branches a filter
    # on the partition column excludes, so only the EU file is read.
    con = duck.database(frozenset(f.removeprefix("file://") for f in full.files))
    plan = "".join(r[1] for r in con.execute(f"EXPLAIN SELECT user_id FROM {full.source()} AS s WHERE region = 'EU'").fetchall())
    assert plan.count("READ_PARQUET") == 2  # one operator box: its title and its function name
    plan = "".join(r[1] for r in con.execute(f"EXPLAIN SELECT user_id FROM {full.source()} AS s").fetchall())
    assert plan.count("READ_PARQUET") == 6


@pytest.mark.parametrize("columns, parts, message", [
    ([{"name": "id", "type": "bigint"}, {"name": "v", "type": "double"}], ["v"], "partition column 'v' of 'main.ml.bad' is double"),
    ([{"name": "id", "type": "bigint"}, {"name": "b", "type": "binary"}], ["b"], "partition column 'b' of 'main.ml.bad' is binary"),
    ([{"name": "id", "type": "bigint"}, {"name": "a", "type": "array<int>"}], ["a"], "is array<int>"),
    ([{"name": "id", "type": "bigint"}, {"name": "f", "type": "float"}], ["f"], "is float"),
    ([{"name": "id", "type": "bigint"}, {"name": "d", "type": "date"}], ["nope"], "partition column 'nope' is not a column of 'main.ml.bad'"),
    ([{"name": "id", "type": "bigint"}], ["id"], "cannot be partitioned by all of its columns"),
])
def test_bad_partition_columns_are_refused_and_create_nothing(admin: Cairn, columns: list, parts: list, message: str) -> None:
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        admin.tables.create_table("main.ml.bad", columns, partition_columns=parts)
    with pytest.raises(NotFound):
        admin.tables.get_table("main.ml.bad")
    fe = FeatureEngineeringClient(admin)
    with pytest.raises(InvalidArgument, match="partition column 'score' of 'main.ml.f' is double"):
        fe.create_table("main.ml.f", "id", df=pd.DataFrame({"id": [1], "score": [0.5]}), partition_columns="score")
    with pytest.raises(NotFound):
        admin.tables.get_table("main.ml.f")
    assert list(admin.tables.list_tables("main", "ml").items) == []


def test_sql_create_partitioned_by(admin: Cairn) -> None:
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.s")
    admin.sql("CREATE TABLE main.s.ev (id INT, d DATE, v DOUBLE) PARTITIONED BY (d)")
    admin.sql("INSERT INTO main.s.ev VALUES (1, DATE '2024-01-01', 1.5), (2, DATE '2024-01-02', 2.5), (3, NULL, 3.5)")
    admin.sql("UPDATE main.s.ev SET v = v * 2 WHERE d = DATE '2024-01-02'")
    root = location(admin, "main.s.ev")
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("d=")) == ["d=2024-01-01", "d=2024-01-02", "d=__HIVE_DEFAULT_PARTITION__"]
    for _ in range(2):
        assert admin.sql("SELECT id, CAST(d AS STRING), v FROM main.s.ev ORDER BY id").rows == [
            (1, "2024-01-01", 1.5), (2, "2024-01-02", 5.0), (3, None, 3.5)]
    admin.sql("CREATE TABLE main.s.copy PARTITIONED BY (k) AS SELECT id, id % 2 AS k FROM main.s.ev")
    assert sorted(p.name for p in location(admin, "main.s.copy").iterdir() if p.name.startswith("k=")) == ["k=0", "k=1"]
    assert admin.sql("SELECT id, k FROM main.s.copy ORDER BY id").rows == [(1, 1), (2, 0), (3, 1)]
    # Hive's form names the column with its type.
    admin.sql("CREATE TABLE main.s.h (id INT) PARTITIONED BY (day STRING)")
    assert [c.name for c in admin.tables.get_table("main.s.h").columns] == ["id", "day"]
    with pytest.raises(InvalidArgument, match="partition column 'v' of 'main.s.bad' is double"):
        admin.sql("CREATE TABLE main.s.bad (id INT, v DOUBLE) PARTITIONED BY (v)")
    with pytest.raises(NotFound):
        admin.tables.get_table("main.s.bad")


def test_commit_files_checks_partition_values(admin: Cairn) -> None:
    from catalog.scan import DataFile

    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.s")
    admin.tables.create_table("main.s.t", [{"name": "id", "type": "bigint"}, {"name": "d", "type": "date"}], partition_columns=["d"])
    root = location(admin, "main.s.t")
    (root / "d=2024-01-01").mkdir()
    path = root / "d=2024-01-01" / "f.parquet"
    pq.write_table(pa.table({"id": pa.array([7], pa.int64())}), path)
    size = path.stat().st_size
    with pytest.raises(InvalidArgument, match=r"partitioned by \(d\); a data file gave values for \(\)"):
        admin.data.commit_files("main.s.t", [DataFile(str(path), size, 1, 0)])
    with pytest.raises(InvalidArgument, match="partition value 'soon' is not a date"):
        admin.data.commit_files("main.s.t", [DataFile(str(path), size, 1, 0, {"d": "soon"})])
    assert admin.data.read("main.s.t").num_rows == 0
    admin.data.commit_files("main.s.t", [DataFile(str(path), size, 1, 0, {"d": "2024-01-01"})])
    assert admin.sql("SELECT id, CAST(d AS STRING) FROM main.s.t").rows == [(7, "2024-01-01")]


@pytest.fixture
def bob(admin: Cairn, metastore: Metastore, fe: FeatureEngineeringClient) -> Cairn:
    """bob may read main.ml.users, whose row filter shows him the EU partition only, with the region masked."""
    admin.principals.create_user("bob")
    admin.sql("""
        CREATE FUNCTION main.ml.eu_only(region STRING) RETURNS BOOLEAN RETURN region = 'EU';
        CREATE FUNCTION main.ml.hide(region STRING) RETURNS STRING RETURN concat(substr(region, 1, 1), '*');
        ALTER TABLE main.ml.users SET ROW FILTER main.ml.eu_only ON (region);
        ALTER TABLE main.ml.users ALTER COLUMN region SET MASK main.ml.hide;
        GRANT USE CATALOG ON CATALOG main TO bob; GRANT USE SCHEMA ON SCHEMA main.ml TO bob;
        GRANT SELECT ON TABLE main.ml.users TO bob;
    """)
    return metastore.as_principal("bob")


def test_a_filter_and_a_mask_on_the_partition_column_apply_to_a_reader(bob: Cairn, admin: Cairn) -> None:
    fb = FeatureEngineeringClient(bob)
    assert rows(fb.read_table("main.ml.users"), "user_id", "region", "spend") == [(2, "E*", 3.0), (3, "E*", 4.0)]
    assert rows(fb.read_table("main.ml.users", as_of_version=1), "user_id", "region") == [(2, "E*"), (3, "E*")]
    for _ in range(3):
        assert bob.sql("SELECT user_id, region FROM main.ml.users ORDER BY user_id").rows == [(2, "E*"), (3, "E*")]
        assert bob.sql("SELECT count(*) FROM main.ml.users WHERE region <> 'EU'").rows == [(2,)]  # the masked value
    labels = pd.DataFrame({"user_id": [1, 2, 3, 4], "at": [T("2024-01-06")] * 4, "y": [0, 1, 0, 1]})
    out = fb.create_training_set(labels, [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at")], label="y").load_df()
    assert [None if pd.isna(v) else v for v in out["region"]] == [None, "E*", "E*", None]
    assert [None if pd.isna(v) else v for v in out["spend"]] == [None, 3.0, 4.0, None]
