"""Governed Delta table data: writes, reads, time travel, DML, maintenance, consistency."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from catalog.client import Cairn, Metastore
from catalog.entities import AuditResult
from catalog.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

ROWS = [{"user_id": 1, "spend": 10.0}, {"user_id": 2, "spend": 20.0}]


@pytest.fixture
def lake(admin: Cairn) -> Cairn:
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.raw")
    admin.tables.create_table(
        "main.raw.events",
        [{"name": "user_id", "type": "bigint", "nullable": False}, {"name": "spend", "type": "double"}],
        enable_change_data_feed=True,
    )
    admin.data.write("main.raw.events", ROWS)
    return admin


def rows(client: Cairn, **kwargs) -> list[tuple]:  # type: ignore[no-untyped-def]
    table = client.data.read("main.raw.events", **kwargs)
    return sorted(tuple(r.values()) for r in table.to_pylist())


def test_create_from_data_infers_columns_and_reads_back(admin: Cairn) -> None:
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.s")
    data = pa.table({"id": pa.array([1, 2], pa.int64()), "ts": pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")),
                     "tags": pa.array([["a"], []], pa.list_(pa.string()))})
    t = admin.tables.create_table("main.s.t", data=data)
    assert [(c.name, c.type_text) for c in t.columns] == [("id", "bigint"), ("ts", "timestamp"), ("tags", "array<string>")]
    assert admin.data.read("main.s.t").to_pylist()[1]["tags"] == []
    assert admin.data.read_pandas("main.s.t", columns=["id"])["id"].tolist() == [1, 2]


def test_append_overwrite_and_time_travel(lake: Cairn) -> None:
    r = lake.data.write("main.raw.events", [{"user_id": 3, "spend": 1.5}])
    assert (r.version, r.metrics["num_rows"]) == (2, 1)
    between = datetime.now(UTC)
    time.sleep(0.05)
    lake.data.write("main.raw.events", [{"user_id": 9, "spend": 0.0}], mode="overwrite")
    assert rows(lake) == [(9, 0.0)]
    assert rows(lake, version=1) == [(1, 10.0), (2, 20.0)]
    assert rows(lake, timestamp=between) == [(1, 10.0), (2, 20.0), (3, 1.5)]
    assert rows(lake, columns=["user_id"], filters=[("user_id", ">", 1)], version=2) == [(2,), (3,)]
    with pytest.raises(InvalidArgument, match="version 42 does not exist"):
        lake.data.read("main.raw.events", version=42)
    with pytest.raises(InvalidArgument, match="has no column 'nope'"):
        lake.data.read("main.raw.events", columns=["nope"])
    assert [h["operation"] for h in lake.data.history("main.raw.events")][:2] == ["WRITE", "WRITE"]


@pytest.mark.parametrize(
    "data, message",
    [
        ([{"user_id": "one", "spend": 1.0}], "column 'user_id' is bigint, got string"),
        ([{"spend": 1.0}], "NOT NULL column 'user_id' is missing"),
        ([{"user_id": None, "spend": 1.0}, {"user_id": 5, "spend": 1.0}], "NOT NULL column 'user_id' has 1 null"),
        ([{"user_id": 5, "spend": 1.0, "country": "fr"}], "unknown column 'country'"),
    ],
)
def test_schema_enforcement_names_the_column_and_writes_nothing(lake: Cairn, data, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument, match=message):
        lake.data.write("main.raw.events", data)
    assert rows(lake) == [(1, 10.0), (2, 20.0)]
    assert len(lake.data.history("main.raw.events")) == 2
    last = list(lake.audit.list_events(action="write_table", max_results=100))[-1]
    assert (last.result, last.error_code) == (AuditResult.FAILED, "INVALID_ARGUMENT")


def test_schema_evolution_only_when_asked_and_catalog_follows(lake: Cairn) -> None:
    lake.data.write("main.raw.events", [{"user_id": 5, "spend": 1.0, "country": "fr"}], merge_schema=True)
    cols = lake.tables.get_table("main.raw.events").columns
    assert [(c.name, c.type_text) for c in cols] == [("user_id", "bigint"), ("spend", "double"), ("country", "string")]
    assert rows(lake) == [(1, 10.0, None), (2, 20.0, None), (5, 1.0, "fr")]


def test_merge_update_delete_and_change_feed(lake: Cairn) -> None:
    res = lake.data.merge("main.raw.events", [{"user_id": 1, "spend": 11.0}, {"user_id": 7, "spend": 7.0}], on=["user_id"])
    assert (res.metrics["num_target_rows_updated"], res.metrics["num_target_rows_inserted"]) == (1, 1)
    assert rows(lake) == [(1, 11.0), (2, 20.0), (7, 7.0)]
    lake.data.merge("main.raw.events", [{"user_id": 2, "spend": 0.0}], on=["user_id"], when_matched_update=None,
                    when_matched_delete_condition="source.spend = 0", when_not_matched_insert=False)
    assert rows(lake) == [(1, 11.0), (7, 7.0)]
    lake.data.update("main.raw.events", {"spend": "spend * 2"}, where="user_id = 7")
    lake.data.delete("main.raw.events", where="user_id = 1")
    assert rows(lake) == [(7, 14.0)]
    changes = lake.data.read_changes("main.raw.events", 2)
    kinds = sorted(zip(changes.column("user_id").to_pylist(), changes.column("_change_type").to_pylist()))
    assert (7, "insert") in kinds and (1, "delete") in kinds and (7, "update_postimage") in kinds
    with pytest.raises(InvalidArgument, match="merge key 'nope'"):
        lake.data.merge("main.raw.events", ROWS, on=["nope"])


def test_optimize_vacuum_guard_and_restore(lake: Cairn) -> None:
    for i in range(3):
        lake.data.write("main.raw.events", [{"user_id": 100 + i, "spend": 1.0}])
    before = rows(lake)
    assert lake.data.optimize("main.raw.events", zorder_by=["user_id"]).metrics["numFilesRemoved"] >= 4
    assert rows(lake) == before
    with pytest.raises(FailedPrecondition, match="under the 168-hour minimum"):
        lake.data.vacuum("main.raw.events", retention_hours=1)
    assert lake.data.vacuum("main.raw.events", retention_hours=0, force=True, dry_run=True) != []
    restored = lake.data.restore("main.raw.events", 1)
    assert rows(lake) == [(1, 10.0), (2, 20.0)]
    assert restored.version == len(lake.data.history("main.raw.events")) - 1


def test_reads_need_select_and_writes_need_modify(lake: Cairn, metastore: Metastore) -> None:
    lake.principals.create_user("ana")
    ana = metastore.as_principal("ana")
    with pytest.raises(NotFound):
        ana.data.read("main.raw.events")
    lake.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    assert rows(ana) == [(1, 10.0), (2, 20.0)]
    with pytest.raises(PermissionDenied, match="lacks MODIFY"):
        ana.data.write("main.raw.events", [{"user_id": 3, "spend": 1.0}])
    with pytest.raises(PermissionDenied, match="lacks MODIFY"):
        ana.data.delete("main.raw.events", "true")
    assert rows(lake) == [(1, 10.0), (2, 20.0)]
    denied = list(lake.audit.list_events(principal="ana", result="DENIED", max_results=100))
    assert [e.action for e in denied] == ["read_table", "write_table", "delete_rows"]
    reads = [e for e in lake.audit.list_events(principal="ana", action="read_table") if e.result is AuditResult.ALLOWED]
    assert reads[0].parameters["delta_version"] == 1


def test_registering_an_existing_delta_table_imports_its_schema(admin: Cairn, ext_dir: Path) -> None:
    from deltalake import write_deltalake

    where = str(ext_dir / "ext")
    write_deltalake(where, pa.table({"k": pa.array([1, 2], pa.int32()), "name": ["a", "b"]}))
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.s")
    t = admin.tables.create_table("main.s.ext", table_type="EXTERNAL", storage_location=where)
    assert [(c.name, c.type_text) for c in t.columns] == [("k", "int"), ("name", "string")]
    assert admin.data.read("main.s.ext").num_rows == 2


def test_concurrent_appends_lose_no_rows(lake: Cairn) -> None:
    errors: list[Exception] = []

    def writer(base: int) -> None:
        for i in range(5):
            try:
                lake.data.write("main.raw.events", [{"user_id": base + i, "spend": 1.0}])
            except Exception as exc:  # a Conflict would be acceptable, a lost row would not
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(1000 * k,)) for k in (1, 2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(type(e).__name__ == "Conflict" for e in errors)
    assert len(rows(lake)) == 2 + 10 - len(errors)


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_old_or_new_state(metastore: Metastore, lake: Cairn, tmp_path: Path) -> None:
    if metastore.engine.dialect.name != "sqlite":
        pytest.skip("one backend is enough: the Delta log, not the metastore, decides")
    script = textwrap.dedent(f"""
        import pyarrow as pa, sys
        from catalog.client import Metastore
        c = Metastore.open(home={str(metastore.settings.home)!r}).as_principal("admin")
        n = 300_000
        while True:
            c.data.write("main.raw.events", pa.table({{"user_id": pa.array(range(n), pa.int64()), "spend": pa.array([1.0] * n)}}))
            print("committed", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert proc.stdout is not None
    proc.stdout.readline()  # one commit done; the next is under way
    time.sleep(0.15)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    table = lake.data.read("main.raw.events")
    assert (table.num_rows - 2) % 300_000 == 0 and table.num_rows > 2
    history = lake.data.history("main.raw.events")
    assert len(history) - 2 == (table.num_rows - 2) // 300_000
    lake.data.write("main.raw.events", [{"user_id": -1, "spend": 0.0}])  # still writable
    assert lake.data.read("main.raw.events").num_rows == table.num_rows + 1


def test_catalog_columns_catch_up_with_a_delta_schema_changed_behind_its_back(lake: Cairn) -> None:
    """A writer that died after its Delta commit but before its metastore update leaves the log
    ahead; the next read brings the catalog's columns in line with the Delta schema."""
    from deltalake import write_deltalake

    location = lake.tables.get_table("main.raw.events").storage_location
    write_deltalake(location, pa.table({"user_id": pa.array([3], pa.int64()), "spend": [1.0], "country": ["fr"]}),
                    mode="append", schema_mode="merge")
    assert [c.name for c in lake.tables.get_table("main.raw.events").columns] == ["user_id", "spend"]
    assert lake.data.read("main.raw.events").num_rows == 3
    assert [c.name for c in lake.tables.get_table("main.raw.events").columns] == ["user_id", "spend", "country"]


@pytest.mark.slow
def test_two_writer_processes_lose_no_rows(metastore: Metastore, lake: Cairn) -> None:
    if metastore.engine.dialect.name != "sqlite":
        pytest.skip("one backend is enough: the Delta log arbitrates concurrent commits")
    script = textwrap.dedent(f"""
        import sys
        from catalog.client import Metastore
        from catalog.errors import Conflict
        c = Metastore.open(home={str(metastore.settings.home)!r}).as_principal("admin")
        base, conflicts = int(sys.argv[1]), 0
        for i in range(8):
            try:
                c.data.write("main.raw.events", [{{"user_id": base + i, "spend": 1.0}}])
            except Conflict:
                conflicts += 1
        print(conflicts)
    """)
    root = Path(__file__).parents[2]
    procs = [subprocess.Popen([sys.executable, "-c", script, str(base)], stdout=subprocess.PIPE, text=True, cwd=root,
                              env={**os.environ, "PYTHONPATH": str(root)}) for base in (1000, 2000)]
    conflicts = sum(int(p.communicate(timeout=120)[0].strip()) for p in procs)
    assert all(p.returncode == 0 for p in procs)
    ids = [r[0] for r in rows(lake)]
    assert len(ids) == 2 + 16 - conflicts and len(set(ids)) == len(ids)
    assert len(lake.data.history("main.raw.events")) == 2 + 16 - conflicts


def test_a_cached_snapshot_sees_every_commit_made_behind_its_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The latest snapshot skips the log listing only while the log directory is unchanged."""
    import time

    import pyarrow as pa
    from deltalake import write_deltalake

    from catalog import delta

    loc = str(tmp_path / "t")
    write_deltalake(loc, pa.table({"x": [1]}))
    assert delta.open_table(loc).version() == 0
    time.sleep(0.15)  # past the racy window: the next open trusts the directory's mtime
    assert delta.open_table(loc).version() == 0
    write_deltalake(loc, pa.table({"x": [2]}), mode="append")  # another writer, not through Cairn
    assert delta.open_table(loc).version() == 1
    write_deltalake(loc, pa.table({"x": [3]}), mode="append")  # at once: within the racy window
    write_deltalake(loc, pa.table({"x": [4]}), mode="append")
    dt = delta.open_table(loc)
    assert dt.version() == 3
    snap = delta.snapshot_files(loc, dt)
    assert len(snap.files) == 4 and [c.name for c in snap.columns] == ["x"]


def test_versions_open_directly_and_tables_checkpoint_every_ten_commits(lake: Cairn) -> None:
    """Delta Lake's checkpoint interval (10), so opening any version replays at most 9 JSON commits."""
    from catalog import delta

    for i in range(10):
        lake.data.write("main.raw.events", [{"user_id": 100 + i, "spend": 1.0}])
    location = lake.tables.get_table("main.raw.events").storage_location or ""
    log = Path(location.removeprefix("file://")) / "_delta_log"
    assert (log / f"{9:020d}.checkpoint.parquet").is_file()
    assert delta.open_table(location).metadata().configuration["delta.checkpointInterval"] == "10"
    assert sorted(r["user_id"] for r in lake.data.read("main.raw.events", version=3).to_pylist()) == [1, 2, 100, 101]
    with pytest.raises(InvalidArgument, match="version 42 does not exist \\(latest is 11\\)"):
        lake.data.read("main.raw.events", version=42)


def test_governed_writes_use_row_groups_of_122880_rows(lake: Cairn) -> None:
    import pyarrow.parquet as pq

    n = 300_000
    lake.data.write("main.raw.events", pa.table({"user_id": pa.array(range(n), pa.int64()), "spend": pa.array([0.5] * n)}), mode="overwrite")
    [path] = [f.removeprefix("file://") for f in lake.data.plan_scan("main.raw.events").files]
    md = pq.read_metadata(path)
    assert [md.row_group(i).num_rows for i in range(md.num_row_groups)] == [122_880, 122_880, 54_240]


def test_a_scan_skips_files_by_the_delta_logs_min_and_max(lake: Cairn) -> None:
    """Delta's data skipping: `plan_scan(stats=True)` carries each file's range per column from the
    log; `meeting(column, low, high)` keeps the files that may hold `low < column <= high`. A
    timestamp's max is kept to the millisecond in the log: a row 0.5 ms past it is not lost."""
    from catalog.scan import DataFile

    lake.tables.create_table("main.raw.clicks", [{"name": "id", "type": "bigint"}, {"name": "ts", "type": "timestamp"}])
    day = [datetime(2026, 1, d, 12, tzinfo=UTC) for d in (1, 2, 3)]
    day[2] = day[2].replace(microsecond=500)  # the log keeps 12:00:00.000 as this file's max
    for d in day:  # one file a day
        lake.data.write("main.raw.clicks", pa.table({"id": pa.array([d.day], pa.int64()), "ts": pa.array([d], pa.timestamp("us", tz="UTC"))}))
    plan = lake.data.plan_scan("main.raw.clicks", stats=True)
    assert plan.stats is not None and plan.stats.num_rows == 3 and {"min.ts", "max.ts", "min.id", "max.id"} <= set(plan.stats.column_names)

    def ids(p: Any) -> list[int]:
        import pyarrow.parquet as pq

        return sorted(i for f in p.files for i in pq.read_table(f.removeprefix("file://")).column("id").to_pylist())

    hour = timedelta(hours=1)
    assert ids(plan.meeting("ts", day[0] + hour, day[1] + hour)) == [2]
    assert plan.meeting("ts", day[0] + hour, day[1] + hour).stats.column("min.id").to_pylist() == [2]
    assert ids(plan.meeting("ts", day[2].replace(microsecond=200), day[2] + hour)) == [3]  # 0.5 ms past the log's max: kept
    assert ids(plan.meeting("ts", day[2] + hour, day[2] + 2 * hour)) == []
    assert ids(plan.meeting("id", 1, 3)) == [2, 3]
    assert plan.meeting("nope", 0, 1) is plan  # no statistics for it: nothing skipped
    # a file committed without statistics is always kept
    writes = lake.data.prepare_write("main.raw.clicks", "append")
    path = os.path.join(writes.files[0].removeprefix("file://"), "part-nostats.parquet")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": pa.array([9], pa.int64()), "ts": pa.array([day[0]], pa.timestamp("us", tz="UTC"))}), path)
    lake.data.commit_files("main.raw.clicks", [DataFile(path, os.path.getsize(path), 1, 0)], "append")
    plan = lake.data.plan_scan("main.raw.clicks", stats=True)
    assert ids(plan.meeting("ts", day[2] + hour, day[2] + 2 * hour)) == [9]
    assert lake.data.plan_scan("main.raw.clicks").stats is None  # only when asked
