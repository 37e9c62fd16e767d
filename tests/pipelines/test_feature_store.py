"""Feature tables and point-in-time training sets on the embedded engine (DuckDB), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pytest

from catalog.errors import FailedPrecondition, InvalidArgument
from pipelines.features import FeatureEngineeringClient, FeatureFunction, FeatureLookup


def T(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


FEATURES = pd.DataFrame({
    "user_id": [1, 1, 1, 2, 2],
    "ts": [T("2024-01-01"), T("2024-01-05"), T("2024-01-10"), T("2024-01-03"), T("2024-01-04")],
    "spend": [1.0, 2.0, None, 4.0, 5.0],
    "orders": [10, 20, 30, 40, 50],
})


@pytest.fixture
def fe(admin):
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    client = FeatureEngineeringClient(admin)
    client.create_table("main.ml.users", primary_keys=["user_id"], timestamp_keys=["ts"], df=FEATURES, description="per user")
    return client


def labels(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame({"user_id": pd.array([r[0] for r in rows], "Int64"), "at": [T(r[1]) if r[1] else pd.NaT for r in rows],
                         "y": [r[2] for r in rows]})


def build(fe, rows, **lookup):
    lk = FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at", **lookup)
    return fe.create_training_set(labels(rows), [lk], label="y").load_df()


def col(df, name):
    return [None if pd.isna(v) else v for v in df[name]]


def test_feature_table_metadata_and_freshness(fe, admin):
    t = fe.get_table("main.ml.users")
    assert (t.primary_keys, t.timestamp_keys, t.features, t.description) == (("user_id", "ts"), ("ts",), ("spend", "orders"), "per user")
    assert t.version == 1 and t.last_commit is not None
    table = admin.tables.get_table("main.ml.users")
    assert [c.nullable for c in table.columns if c.name in ("user_id", "ts")] == [False, False]
    assert len(fe.read_table("main.ml.users")) == 5
    assert len(fe.read_table("main.ml.users", as_of_version=0)) == 0


def test_point_in_time_edges(fe):
    out = build(fe, [
        (1, "2023-12-31", 0),    # before the first row: no match
        (1, "2024-01-01", 1),    # exact timestamp equality matches (inclusive)
        (1, "2024-01-04", 0),    # between rows: the earlier one
        (1, "2024-01-11", 1),    # latest row has a null spend: stays null, no fall back to 2.0
        (2, "2024-01-03 12:00", 0),
        (3, "2024-01-05", 1),    # unknown key
        (None, "2024-01-05", 0),  # null key matches nothing
        (1, None, 1),            # null lookup time matches nothing
    ])
    assert col(out, "spend") == [None, 1.0, 1.0, None, 4.0, None, None, None]
    assert col(out, "orders") == [None, 10, 10, 30, 40, None, None, None]
    assert list(out.columns) == ["user_id", "at", "y", "spend", "orders"]
    assert col(out, "y") == [0, 1, 0, 1, 0, 1, 0, 1]  # rows keep their order


def test_lookback_window_boundaries(fe):
    rows = [(1, "2024-01-07", 0), (1, "2024-01-07 00:00:01", 0), (1, "2024-01-05", 1), (1, "2024-01-05 00:00:00.000001", 1)]
    out = build(fe, rows, lookback_window=timedelta(days=2))
    # 01-07 minus 2 days = 01-05 exactly: inclusive; one second later the 01-05 row is out of the window.
    assert col(out, "orders") == [20, None, 20, 20]
    exact = build(fe, rows, lookback_window=timedelta(0))
    assert col(exact, "orders") == [None, None, 20, None]


def test_defaults_renames_and_overrides(fe):
    out = build(fe, [(1, "2023-12-31", 0), (1, "2024-01-11", 1), (1, "2024-01-02", 0)],
                feature_names=["spend", "orders"], rename_outputs={"orders": "n_orders"}, default_values={"spend": -1.0, "orders": 0})
    assert col(out, "spend") == [-1.0, None, 1.0]  # a default fills no match, never a matched null
    assert col(out, "n_orders") == [0, 30, 10]
    df = labels([(1, "2024-01-02", 0)])
    df["spend"] = [99.0]  # the training set's own column overrides the lookup
    got = fe.create_training_set(df, [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at")], label="y").load_df()
    assert col(got, "spend") == [99.0] and col(got, "orders") == [10]


def test_late_arriving_rows_and_time_travel(fe):
    ts = fe.create_training_set(labels([(1, "2024-01-06", 1)]), [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at")], "y")
    # A row for 01-06 committed after the training set was created: the set keeps its pinned version...
    fe.write_table("main.ml.users", pd.DataFrame({"user_id": [1], "ts": [T("2024-01-06")], "spend": [7.0], "orders": [70]}))
    assert col(ts.load_df(), "orders") == [20]
    # ...and a new training set sees it, since its timestamp is before the label's.
    again = build(fe, [(1, "2024-01-06", 1), (1, "2024-01-05 23:59:59", 0)])
    assert col(again, "orders") == [70, 20]


def test_duplicate_timestamps_later_commit_wins(fe, admin):
    # write_table upserts by (user_id, ts): the later write replaces the row, and within one
    # batch the last row wins.
    fe.write_table("main.ml.users", pd.DataFrame({"user_id": [1, 1], "ts": [T("2024-01-05")] * 2, "spend": [8.0, 9.0], "orders": [80, 90]}))
    assert col(build(fe, [(1, "2024-01-06", 1)]), "orders") == [90]
    # Rows appended past the feature store can tie: the later Delta commit wins, then the later row.
    admin.data.write("main.ml.users", [{"user_id": 2, "ts": T("2024-01-04").to_pydatetime(), "spend": 1.5, "orders": 500}])
    admin.data.write("main.ml.users", [{"user_id": 2, "ts": T("2024-01-04").to_pydatetime(), "spend": 2.5, "orders": 600},
                                       {"user_id": 2, "ts": T("2024-01-04").to_pydatetime(), "spend": 3.5, "orders": 700}])
    table = admin.tables.get_table("main.ml.users")
    assert "cairn.feature_table.unique_version" not in table.properties or \
        table.properties["cairn.feature_table.unique_version"] != str(fe.get_table("main.ml.users").version)
    assert col(build(fe, [(2, "2024-01-05", 1)]), "orders") == [700]
    latest = fe.create_training_set(labels([(2, None, 0)]), [FeatureLookup("main.ml.users", "user_id")], "y").load_df()
    assert col(latest, "orders") == [700]


def test_latest_value_without_timestamp_lookup(fe):
    out = fe.create_training_set(labels([(1, None, 0), (2, None, 1), (5, None, 0)]), [FeatureLookup("main.ml.users", "user_id")], "y").load_df()
    assert col(out, "orders") == [30, 50, None]


def test_errors_name_what_is_wrong(fe, admin):
    fe.create_table("main.ml.static", primary_keys="user_id", df=pd.DataFrame({"user_id": [1], "age": [30]}))
    df = labels([(1, "2024-01-02", 0)])
    cases = [
        (FeatureLookup("main.ml.users", "uid", timestamp_lookup_key="at"), "lookup key 'uid'"),
        (FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at", feature_names=["nope"]), "feature 'nope'"),
        (FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="when"), "timestamp lookup key 'when'"),
        (FeatureLookup("main.ml.static", "user_id", timestamp_lookup_key="at"), "has no timestamp key"),
    ]
    for lookup, message in cases:
        with pytest.raises(InvalidArgument, match=message):
            fe.create_training_set(df, [lookup], label="y")
    bad = df.assign(user_id=["1"])
    with pytest.raises(InvalidArgument, match="lookup key 'user_id' is string but primary key 'user_id' of 'main.ml.users' is bigint"):
        fe.create_training_set(bad, [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at")], label="y")
    with pytest.raises(InvalidArgument, match="two lookups produce the output 'orders'"):
        fe.create_training_set(df, [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at", feature_names=["orders"]),
                                    FeatureLookup("main.ml.users", "user_id", feature_names=["orders"])], label="y")
    with pytest.raises(InvalidArgument, match="label column 'nope'"):
        fe.create_training_set(df, [], label="nope")
    with pytest.raises(InvalidArgument, match="key column 'id'"):
        fe.create_table("main.ml.bad", primary_keys="id", df=pd.DataFrame({"user_id": [1]}))


def test_two_lookups_static_table_and_arrow_input(fe):
    fe.create_table("main.ml.static", primary_keys="user_id", df=pd.DataFrame({"user_id": [1, 2], "age": [30, 40]}))
    df = pa.table({"user_id": [2, 1], "at": pa.array([T("2024-01-04"), T("2024-01-05")], pa.timestamp("us", "UTC")), "y": [1, 0]})
    ts = fe.create_training_set(df, [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at", feature_names="orders"),
                                     FeatureLookup("main.ml.static", "user_id")], label="y", exclude_columns=["at"])
    out = ts.load_df(format="arrow")
    assert out.column_names == ["user_id", "y", "orders", "age"]
    assert out.to_pydict() == {"user_id": [2, 1], "y": [1, 0], "orders": [50, 20], "age": [40, 30]}


def test_naive_label_times_are_utc(fe):
    df = pd.DataFrame({"user_id": [1], "at": [pd.Timestamp("2024-01-05 00:00:00")], "y": [1]})  # no zone
    out = fe.create_training_set(df, [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at")], label="y").load_df()
    assert col(out, "orders") == [20]


def test_feature_functions(fe, admin):
    admin.functions.create_function("main.ml.double_it", "x * 2", "bigint", [{"name": "x", "type": "bigint"}])
    admin.functions.create_function("main.ml.plus_one", "return None if x is None else x + 1", "bigint", [{"name": "x", "type": "bigint"}],
                                    language="PYTHON")
    out = fe.create_training_set(labels([(1, "2024-01-02", 0), (3, "2024-01-02", 1)]), [
        FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at", feature_names=["orders"]),
        FeatureFunction("main.ml.double_it", {"x": "orders"}, "orders_x2"),
        FeatureFunction("main.ml.plus_one", {"x": "orders"}),
    ], label="y").load_df()
    assert col(out, "orders_x2") == [20, None] and col(out, "plus_one") == [11, None]


def test_save_records_spec_tags_and_lineage(fe, admin):
    admin.tables.create_table("main.ml.labels", data=pa.table({
        "user_id": pa.array([1, 2], pa.int64()), "at": pa.array([T("2024-01-05"), T("2024-01-04")], pa.timestamp("us", "UTC")), "y": [1, 0]}))
    ts = fe.create_training_set("main.ml.labels", [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at", feature_names=["orders"])], "y")
    saved = ts.save("main.ml.train")
    spec = json.loads(saved.properties["cairn.training_set.spec"])
    assert spec["label_source"] == {"table": "main.ml.labels", "version": 0}
    assert spec["feature_tables"] == [{"table": "main.ml.users", "version": 1}]
    assert spec["lookups"][0]["timestamp_lookup_key"] == "at" and spec["point_in_time"] is True
    assert fe.get_training_set_spec("main.ml.train") == spec
    assert {t.key: t.value for t in admin.tags.list_tags("table", "main.ml.train")} == {"training_set": "true", "point_in_time": "true"}
    assert admin.data.read("main.ml.train").to_pydict() == {"user_id": [1, 2], "at": [T("2024-01-05"), T("2024-01-04")], "y": [1, 0], "orders": [20, 50]}
    up = {n.name for n in admin.lineage.get_upstream("main.ml.train").nodes}
    assert {"main.ml.labels", "main.ml.users"} <= up
    edges = admin.lineage.list_edges()
    versions = {(e["source"], e["target"]): (e.get("source_version"), e.get("target_version")) for e in edges}
    assert versions.get(("main.ml.users", "main.ml.train")) == (1, 1)
    assert versions.get(("main.ml.labels", "main.ml.train")) == (0, 1)
    cols = {(e["source"], e["target"]) for e in admin.lineage.list_edges(level="COLUMN")}
    assert ("main.ml.users.orders", "main.ml.train.orders") in cols and ("main.ml.labels.y", "main.ml.train.y") in cols
    with pytest.raises(FailedPrecondition):
        fe.get_training_set_spec("main.ml.users")


def test_training_set_reads_are_audited_with_versions(fe, admin):
    fe.create_training_set(labels([(1, "2024-01-02", 0)]), [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at")], "y")
    rows = [e for e in admin.audit.list_events(action="read_table").items if e.securable_name == "main.ml.users"]
    assert rows and rows[0].parameters["delta_version"] == 1 and rows[0].result.value == "ALLOWED"


def test_drop_table(fe, admin):
    fe.drop_table("main.ml.users")
    assert [t.name for t in admin.tables.list_tables("main", "ml").items] == []
