"""Incremental publishing from the change data feed's rows: after any mix of changes the online store
holds exactly what a full publish of the same version would, and only keys the feed cannot settle
are read from the snapshot."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.features import FeatureEngineeringClient
from pipelines.features.online import SqliteOnlineStore


def T(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def fe(admin):
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    client = FeatureEngineeringClient(admin)
    client.create_table("main.ml.users", "user_id", "ts", df=pd.DataFrame({
        "user_id": [1, 1, 2, 2, 3, 4],
        "ts": [T("2024-01-01"), T("2024-01-05"), T("2024-01-03"), T("2024-01-04"), T("2024-01-02"), T("2024-01-02")],
        "spend": [1.0, 2.0, 4.0, 5.0, 6.0, 7.0]}))
    client.create_table("main.ml.static", "item", df=pd.DataFrame({"item": ["a", "b", "c"], "price": [1.0, 2.0, 3.0]}))
    return client


def same_as_full(fe, admin, table: str, store: SqliteOnlineStore, keys: list[str]) -> None:
    fresh = SqliteOnlineStore(admin.metastore.settings.home / f"fresh-{table}-{len(keys)}.db")
    fe.publish_table(table, online_store=fresh)
    assert store.read(table, keys) == fresh.read(table, keys)


def test_incremental_matches_a_full_publish(fe, admin, tmp_path):
    store = SqliteOnlineStore(tmp_path / "online.db")
    fe.publish_table("main.ml.users", online_store=store)
    keys = ["[1]", "[2]", "[3]", "[4]", "[5]"]
    # The same row updated, a newer row, an older row (changes nothing), a new key.
    fe.write_table("main.ml.users", pd.DataFrame({"user_id": [1, 2, 3, 5], "ts": [T("2024-01-05"), T("2024-02-01"), T("2023-01-01"), T("2024-01-01")],
                                                  "spend": [20.0, 50.0, 0.5, 9.0]}))
    got = fe.publish_table("main.ml.users", online_store=store)
    assert (got.mode, got.keys_written, got.keys_deleted, got.keys_point_read) == ("INCREMENTAL", 3, 0, 0)
    same_as_full(fe, admin, "main.ml.users", store, keys)
    rows = fe.read_online_features("main.ml.users", [[1], [2], [3], [5]], ["spend"], online_store=store).rows
    assert [r["spend"] for r in rows] == [20.0, 50.0, 6.0, 9.0]
    # Deleting the published row of user 2 (an older one remains: read from the snapshot), every row
    # of user 4 (gone), and an older row of user 1 (the published one stays: nothing to read).
    admin.data.delete("main.ml.users", where="(user_id = 2 AND ts > '2024-01-10') OR user_id = 4 OR (user_id = 1 AND ts < '2024-01-02')")
    got = fe.publish_table("main.ml.users", online_store=store)
    assert (got.keys_written, got.keys_deleted, got.keys_point_read) == (1, 1, 2)
    rows = fe.read_online_features("main.ml.users", [[1], [2], [4]], ["spend", "ts"], online_store=store).rows
    assert rows == [{"user_id": 1, "spend": 20.0, "ts": "2024-01-05T00:00:00.000000+00:00"},
                    {"user_id": 2, "spend": 5.0, "ts": "2024-01-04T00:00:00.000000+00:00"},
                    {"user_id": 4, "spend": None, "ts": None}]
    same_as_full(fe, admin, "main.ml.users", store, keys)
    # Several versions at once, a row deleted then written again, then an overwrite.
    admin.data.delete("main.ml.users", where="user_id = 3")
    fe.write_table("main.ml.users", pd.DataFrame({"user_id": [3], "ts": [T("2024-01-02")], "spend": [60.0]}))
    got = fe.publish_table("main.ml.users", online_store=store)
    assert (got.keys_written, got.keys_deleted, got.keys_point_read) == (1, 0, 0)
    same_as_full(fe, admin, "main.ml.users", store, keys)
    fe.write_table("main.ml.users", pd.DataFrame({"user_id": [1, 6], "ts": [T("2024-03-01"), T("2024-03-01")], "spend": [1.5, 6.5]}),
                   mode="overwrite")
    got = fe.publish_table("main.ml.users", online_store=store)
    assert got.mode == "INCREMENTAL"
    same_as_full(fe, admin, "main.ml.users", store, [*keys, "[6]"])
    assert [r["spend"] for r in fe.read_online_features("main.ml.users", [[1], [2], [6]], ["spend"], online_store=store).rows] == [1.5, None, 6.5]


def test_incremental_without_a_timestamp_key(fe, admin, tmp_path):
    store = SqliteOnlineStore(tmp_path / "online.db")
    fe.publish_table("main.ml.static", online_store=store)
    fe.write_table("main.ml.static", pd.DataFrame({"item": ["a", "d"], "price": [10.0, 4.0]}))
    admin.data.delete("main.ml.static", where="item = 'b'")
    got = fe.publish_table("main.ml.static", online_store=store)
    assert (got.mode, got.keys_written, got.keys_deleted, got.keys_point_read) == ("INCREMENTAL", 2, 1, 0)
    rows = fe.read_online_features("main.ml.static", [["a"], ["b"], ["c"], ["d"]], online_store=store).rows
    assert [r["price"] for r in rows] == [10.0, None, 3.0, 4.0]
    same_as_full(fe, admin, "main.ml.static", store, ['["a"]', '["b"]', '["c"]', '["d"]'])
