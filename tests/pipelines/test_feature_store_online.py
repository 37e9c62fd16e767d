"""Publishing to online stores (SQLite, and a real Redis from tests/redis.sh) and reading by key."""

from __future__ import annotations

import os
import uuid

import pandas as pd
import pytest

from catalog.errors import PermissionDenied
from pipelines.features import FeatureEngineeringClient
from pipelines.features.online import TABLE_ID_KEY, RedisOnlineStore, SqliteOnlineStore

REDIS_URL = os.environ.get("CAIRN_TEST_REDIS_URL")


def T(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield SqliteOnlineStore(tmp_path / "online.db")
        return
    if not REDIS_URL:
        pytest.skip("CAIRN_TEST_REDIS_URL is not set; `make test` starts Redis with tests/redis.sh")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    namespace = f"cairn-test-{uuid.uuid4().hex[:8]}"  # tests share the server: a namespace each
    yield RedisOnlineStore(client=client, namespace=namespace)
    for key in client.scan_iter(f"{namespace}:*"):
        client.delete(key)


@pytest.fixture
def fe(admin):
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    client = FeatureEngineeringClient(admin)
    client.create_table("main.ml.users", "user_id", "ts", df=pd.DataFrame({
        "user_id": [1, 1, 2, 3], "ts": [T("2024-01-01"), T("2024-01-05"), T("2024-01-03"), T("2024-01-02")],
        "spend": [1.0, 2.0, 4.0, None]}))
    return client


def test_publish_latest_row_per_key_then_incremental(fe, admin, store, backend):
    if backend == "postgres" and isinstance(store, RedisOnlineStore):
        pytest.skip("the Redis store does not depend on the metastore backend; run once")
    first = fe.publish_table("main.ml.users", online_store=store)
    assert (first.mode, first.keys_written, first.version) == ("FULL", 3, 1)
    got = fe.read_online_features("main.ml.users", [{"user_id": 1}, {"user_id": 3}, {"user_id": 9}], ["spend"], online_store=store)
    assert got.rows == [{"user_id": 1, "spend": 2.0}, {"user_id": 3, "spend": None}, {"user_id": 9, "spend": None}]
    assert got.version == 1 and got.published_at is not None
    # Nothing changed: nothing sent.
    assert fe.publish_table("main.ml.users", online_store=store).keys_written == 0
    # An update of user 2, an older row for user 1 (not the latest: stays 2.0), a delete of user 3.
    fe.write_table("main.ml.users", pd.DataFrame({"user_id": [2, 1], "ts": [T("2024-02-01"), T("2023-06-01")], "spend": [8.0, 0.5]}))
    admin.data.delete("main.ml.users", where="user_id = 3")
    again = fe.publish_table("main.ml.users", online_store=store)
    # Sent: user 2 only (user 1's older row changes nothing), and the delete of user 3.
    assert (again.mode, again.keys_written, again.keys_deleted, again.version) == ("INCREMENTAL", 1, 1, 3)
    got = fe.read_online_features("main.ml.users", [[1], [2], [3]], online_store=store)
    assert [r["spend"] for r in got.rows] == [2.0, 8.0, None]
    assert [r["ts"] for r in got.rows] == ["2024-01-05T00:00:00.000000+00:00", "2024-02-01T00:00:00.000000+00:00", None]
    assert got.version == 3
    # The incremental result equals a full publish into a fresh store.
    fresh = SqliteOnlineStore(str(admin.metastore.settings.home / f"fresh-{uuid.uuid4().hex}.db"))
    fe.publish_table("main.ml.users", online_store=fresh)
    keys = ["[1]", "[2]", "[3]"]
    assert store.read("main.ml.users", keys) == fresh.read("main.ml.users", keys)


def test_default_store_lives_under_cairn_home_and_reader_leases(fe, admin):
    fe.publish_table("main.ml.users")
    assert (admin.metastore.settings.home / "online.db").exists()
    reader = fe.online_reader("main.ml.users", ["spend"])
    assert reader.lookup([1, 2, {"user_id": 5}]) == [{"spend": 2.0}, {"spend": 4.0}, {"spend": None}]
    audits = [e for e in admin.audit.list_events(action="read_table", max_results=1000).items if e.securable_name == "main.ml.users"]
    assert audits  # the lease's check was audited


def test_drop_table_removes_its_online_rows(fe, admin, store, backend, metastore):
    if backend == "postgres" and isinstance(store, RedisOnlineStore):
        pytest.skip("the Redis store does not depend on the metastore backend; run once")
    fe.publish_table("main.ml.users")  # the default SQLite store
    fe.publish_table("main.ml.users", online_store=store)
    fe.create_table("main.ml.other", "item", df=pd.DataFrame({"item": [1], "price": [2.0]}))
    fe.publish_table("main.ml.other", online_store=store)
    # Refused (bob does not own it): nothing removed anywhere.
    admin.principals.create_user("bob")
    admin.grants.grant("catalog", "main", "bob", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    with pytest.raises(PermissionDenied):
        FeatureEngineeringClient(metastore.as_principal("bob")).drop_table("main.ml.users")
    assert store.read("main.ml.users", ["[1]"])[0] is not None
    # Dropped: its rows and published state leave both stores; the other table's stay.
    default = SqliteOnlineStore(admin.metastore.settings.home / "online.db")
    same = isinstance(store, SqliteOnlineStore) and store.path == default.path  # the fixture's SQLite file is the default one
    assert fe.drop_table("main.ml.users") == (3 if same else 6)  # 3 keys in each store
    for s in (store, default):
        assert s.read("main.ml.users", ["[1]", "[2]", "[3]"]) == [None, None, None]
        assert s.state("main.ml.users") is None
    assert store.read("main.ml.other", ["[1]"]) == ['{"price":2.0}']
    # A store named explicitly is cleared too (as one published to from another process would be).
    fe.create_table("main.ml.users", "user_id", df=pd.DataFrame({"user_id": [4], "spend": [1.0]}))
    store.write("main.ml.users", [("[4]", '{"spend":1.0}')], [], 1, full=True)
    assert fe.drop_table("main.ml.users", online_stores=[store]) == 1
    assert store.read("main.ml.users", ["[4]"]) == [None]


def test_sqlite_commits_without_checkpointing_then_checkpoints_in_the_background(fe, tmp_path):
    import sqlite3
    import time

    store = SqliteOnlineStore(tmp_path / "ck.db")
    assert store._con().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # never inside a commit
    fe.publish_table("main.ml.users", online_store=store)
    deadline = time.monotonic() + 10
    while store.checkpoints == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.checkpoints >= 1
    # Everything committed is in the database file itself: a copy without the WAL holds it.
    copy = tmp_path / "copy.db"
    copy.write_bytes((tmp_path / "ck.db").read_bytes())
    con = sqlite3.connect(copy)
    rows = con.execute("SELECT k FROM features WHERE tbl = 'main.ml.users'").fetchall()
    assert sorted(k for (k,) in rows) == sorted(["[1]", "[2]", "[3]", TABLE_ID_KEY])  # 3 keys and the table-id row
    assert con.execute("SELECT version FROM published WHERE tbl = 'main.ml.users'").fetchone()[0] == 1
    con.close()
