"""Online stores: the latest row per primary key of a feature table, for lookups by key at serving
time. SQLite under CAIRN_HOME (embedded default) or Redis (scale-out).

Publishing is governed: it reads the table through `data.plan_scans` / `data.read_changes` (SELECT,
audited with the version) and refuses tables with a row filter or column masks, since a store keyed
by primary key cannot apply them per reader. A re-publish sends only what changed since the version
last published (the change data feed); the store remembers that version and when it was published,
and every read returns them so staleness is visible. Reads check SELECT on the feature table.

Keys are encoded as JSON arrays of the primary key values (the timestamp key excluded; integers,
strings or booleans), values as JSON objects of column -> value, both by DuckDB (timestamps as
ISO 8601 text in UTC, "2024-01-01T00:00:00.000000+00:00").
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from catalog.errors import FailedPrecondition, InvalidArgument
from catalog.scan import ScanPlan, duckdb_cursor, policy_sql
from pipelines.lease import Lease

_TIMES = ("timestamp", "timestamp_ntz")

try:  # parses a batch of feature rows several times faster than json
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads


@dataclass(frozen=True)
class PublishResult:
    table: str
    version: int
    mode: str  # FULL or INCREMENTAL
    keys_written: int
    keys_deleted: int
    seconds: float
    keys_point_read: int = 0  # incremental: keys the change feed could not settle, read from the snapshot


@dataclass(frozen=True)
class OnlineFeatures:
    """A batch lookup: one dict per key (None values where a key was never published), and the
    version of the table they come from, with when it was published."""

    rows: list[dict[str, Any]]
    version: int | None
    published_at: datetime | None

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if hasattr(v, "as_py"):
        return _jsonable(v.as_py())
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, bytes):
        return v.hex()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def encode_key(values: list[Any]) -> str:
    """The key's JSON text.

    >>> encode_key([1, "a"]), encode_key([7])
    ('[1,"a"]', '[7]')
    """
    if len(values) == 1 and type(values[0]) is int:  # the common case, without json.dumps (~10x faster)
        return f"[{values[0]}]"
    return json.dumps([_jsonable(v) for v in values], separators=(",", ":"), ensure_ascii=False)


class OnlineStore:
    """Where published features live: rows by (table, key), and the table's published version."""

    def write(self, table: str, rows: list[tuple[str, str]], deletes: list[str], version: int, full: bool) -> None:
        raise NotImplementedError

    def read(self, table: str, keys: list[str]) -> list[str | None]:
        raise NotImplementedError

    def state(self, table: str) -> tuple[int, datetime] | None:
        raise NotImplementedError

    def drop(self, table: str) -> int:
        """Remove every row of `table` and its published state; returns how many rows were removed."""
        raise NotImplementedError

    def write_changes(self, table: str, rows: list[tuple[str, str]], newer: list[tuple[str, str, str]], time_field: str,
                      deletes: list[str], version: int) -> int:
        """An incremental publish: `rows` replace what is stored; each of `newer` (key, value, time
        text) only when its time is at least the stored row's (or none is stored). Returns how many
        keys were written. This default reads the stored rows of `newer` first; a store that can
        compare where it writes does it in one pass."""
        current = self.read(table, [k for k, _, _ in newer]) if newer else []
        kept = [(k, v) for (k, v, t), now in zip(newer, current) if now is None or t >= (_loads(now).get(time_field) or "")]
        self.write(table, rows + kept, deletes, version, full=False)
        return len(rows) + len(kept)


class SqliteOnlineStore(OnlineStore):
    """One SQLite file (default `$CAIRN_HOME/online.db`); a connection per thread, WAL mode.

    A write commits to the WAL (synchronous=NORMAL: durable if the process dies, not on power loss
    until checkpointed) and returns; the checkpoint that copies its pages into the database file,
    most of an incremental publish's time when the commit ran it, follows in a background thread.
    Readers see the commit at once either way (they read the WAL)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._dirty = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_lock = threading.Lock()
        self.checkpoints = 0  # background checkpoints done (tests wait on it)
        con = self._con()
        con.execute("CREATE TABLE IF NOT EXISTS features (tbl TEXT NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL, PRIMARY KEY (tbl, k)) WITHOUT ROWID")
        con.execute("CREATE TABLE IF NOT EXISTS published (tbl TEXT PRIMARY KEY, version INTEGER NOT NULL, at REAL NOT NULL)")
        con.commit()

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA cache_size=-65536")  # 64 MB of pages: lookups by key are random reads
            con.execute("PRAGMA mmap_size=1073741824")
            con.execute("PRAGMA wal_autocheckpoint=0")  # never in a commit: see _checkpoint_later
            self._local.con = con
        return con

    def _checkpoint_later(self) -> None:
        """Checkpoint the WAL in the background after a write (PASSIVE: it waits for no reader or
        writer, and what it cannot copy now the next one does)."""
        with self._checkpoint_lock:
            self._dirty.set()
            if self._checkpointer is None:
                self._checkpointer = threading.Thread(target=self._run_checkpoints, name="cairn-online-checkpoint", daemon=True)
                self._checkpointer.start()

    def _run_checkpoints(self) -> None:
        while True:  # until no write is left to checkpoint; the thread and its connection end then
            with self._checkpoint_lock:
                if not self._dirty.is_set():
                    self._checkpointer = None
                    return
                self._dirty.clear()
            try:
                self.checkpoint()
            except sqlite3.Error:  # the file went away (a test's temp dir); the next write retries
                pass

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait (at most `timeout` seconds) until the background checkpoint has finished; True once it has."""
        deadline = time.monotonic() + timeout
        while True:
            with self._checkpoint_lock:
                thread = self._checkpointer
            if thread is None:
                return True
            if time.monotonic() >= deadline:
                return False
            thread.join(max(0.0, deadline - time.monotonic()))

    def checkpoint(self) -> None:
        """Copy the committed WAL into the database file now."""
        self._con().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self.checkpoints += 1

    def write(self, table: str, rows: list[tuple[str, str]], deletes: list[str], version: int, full: bool) -> None:
        con = self._con()
        with con:
            if full:
                con.execute("DELETE FROM features WHERE tbl = ?", (table,))
            con.executemany("DELETE FROM features WHERE tbl = ? AND k = ?", [(table, k) for k in deletes])
            con.executemany("INSERT OR REPLACE INTO features (tbl, k, v) VALUES (?, ?, ?)", [(table, k, v) for k, v in rows])
            con.execute("INSERT OR REPLACE INTO published (tbl, version, at) VALUES (?, ?, ?)", (table, version, time.time()))
        self._checkpoint_later()

    def write_changes(self, table: str, rows: list[tuple[str, str]], newer: list[tuple[str, str, str]], time_field: str,
                      deletes: list[str], version: int) -> int:
        con = self._con()
        path = '$."' + time_field.replace('"', '""') + '"'
        with con:  # in key order: neighbouring keys share B-tree pages
            con.executemany("DELETE FROM features WHERE tbl = ? AND k = ?", [(table, k) for k in sorted(deletes)])
            con.executemany("INSERT OR REPLACE INTO features (tbl, k, v) VALUES (?, ?, ?)", [(table, k, v) for k, v in sorted(rows)])
            cur = con.executemany(
                "INSERT INTO features (tbl, k, v) VALUES (?, ?, ?) ON CONFLICT (tbl, k) DO UPDATE SET v = excluded.v "
                "WHERE coalesce(json_extract(features.v, ?), '') <= ?", [(table, k, v, path, t) for k, v, t in sorted(newer)])
            written = cur.rowcount if newer else 0
            con.execute("INSERT OR REPLACE INTO published (tbl, version, at) VALUES (?, ?, ?)", (table, version, time.time()))
        self._checkpoint_later()
        return len(rows) + max(written, 0)

    def drop(self, table: str) -> int:
        con = self._con()
        with con:
            removed = con.execute("DELETE FROM features WHERE tbl = ?", (table,)).rowcount
            con.execute("DELETE FROM published WHERE tbl = ?", (table,))
        self._checkpoint_later()
        return removed

    def read(self, table: str, keys: list[str]) -> list[str | None]:
        con = self._con()
        if len(keys) == 1:
            row = con.execute("SELECT v FROM features WHERE tbl = ? AND k = ?", (table, keys[0])).fetchone()
            return [row[0] if row else None]
        found: dict[str, str] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(con.execute(f"SELECT k, v FROM features WHERE tbl = ? AND k IN ({marks})", (table, *chunk)).fetchall())
        return [found.get(k) for k in keys]

    def state(self, table: str) -> tuple[int, datetime] | None:
        row = self._con().execute("SELECT version, at FROM published WHERE tbl = ?", (table,)).fetchone()
        return (row[0], datetime.fromtimestamp(row[1], UTC)) if row else None


class RedisOnlineStore(OnlineStore):
    """Redis: a hash per feature table (`<namespace>:features:<table>`: key -> JSON), and the
    published version and time in `<namespace>:published:<table>`."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", client: Any = None, namespace: str = "cairn") -> None:
        import redis

        self.client = client or redis.Redis.from_url(url)
        self.namespace = namespace

    def write(self, table: str, rows: list[tuple[str, str]], deletes: list[str], version: int, full: bool) -> None:
        key = f"{self.namespace}:features:{table}"
        pipe = self.client.pipeline(transaction=True)
        if full:
            pipe.delete(key)
        for i in range(0, len(deletes), 10_000):
            pipe.hdel(key, *deletes[i:i + 10_000])
        for i in range(0, len(rows), 10_000):
            pipe.hset(key, mapping=dict(rows[i:i + 10_000]))
        pipe.hset(f"{self.namespace}:published:{table}", mapping={"version": version, "at": time.time()})
        pipe.execute()

    def drop(self, table: str) -> int:
        removed = int(self.client.hlen(f"{self.namespace}:features:{table}"))  # type: ignore[arg-type]  # a sync client
        self.client.delete(f"{self.namespace}:features:{table}", f"{self.namespace}:published:{table}")
        return removed

    def read(self, table: str, keys: list[str]) -> list[str | None]:
        if not keys:
            return []
        # redis-py types a reply as `Awaitable | Any` (the async client shares its stubs): this one is sync.
        got = cast(list[bytes | None], self.client.hmget(f"{self.namespace}:features:{table}", keys))
        return [g.decode() if g is not None else None for g in got]

    def state(self, table: str) -> tuple[int, datetime] | None:
        got = cast(dict[bytes, bytes], self.client.hgetall(f"{self.namespace}:published:{table}"))
        if not got:
            return None
        return int(got[b"version"]), datetime.fromtimestamp(float(got[b"at"]), UTC)


# Beside a table's feature rows, the id of the table they were published from (never a key: keys are JSON arrays).
TABLE_ID_KEY = "#table_id"
_stores: dict[str, SqliteOnlineStore] = {}
_stores_lock = threading.Lock()


# Every store this process published to, per metastore (its home), so dropping a feature table
# clears it from each of them.
_published_to: dict[str, weakref.WeakSet[OnlineStore]] = {}


def _stores_of(cairn: Any) -> weakref.WeakSet[OnlineStore]:
    with _stores_lock:
        return _published_to.setdefault(str(cairn.metastore.settings.home), weakref.WeakSet())


def drop_online(cairn: Any, table: str, stores: list[OnlineStore] | None = None) -> int:
    """Remove `table`'s online rows from the default store (when it exists), every store this
    process published it to, and `stores`. Returns how many rows were removed."""
    targets: list[OnlineStore] = [default_store(cairn)] if default_store_exists(cairn) else []
    for store in [*list(_stores_of(cairn)), *(stores or [])]:
        if all(store is not t for t in targets):
            targets.append(store)
    return sum(_drop(store, table) for store in targets)


def _drop(store: OnlineStore, table: str) -> int:
    marker = store.read(table, [TABLE_ID_KEY])[0] is not None  # the table-id row is not a feature row
    return store.drop(table) - marker


def default_store(cairn: Any) -> SqliteOnlineStore:
    path = str(cairn.metastore.settings.home / "online.db")
    with _stores_lock:
        if path not in _stores:
            _stores[path] = SqliteOnlineStore(path)
        return _stores[path]


def default_store_exists(cairn: Any) -> bool:
    return (cairn.metastore.settings.home / "online.db").exists()


def _feature_table(cairn: Any, name: str) -> Any:
    table = cairn.tables.get_table(name)
    if not table.primary_keys:
        raise InvalidArgument(f"'{table.full_name}' is not a feature table: it has no primary key")
    return table


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _time_text(table: Any, c: str) -> str:
    """Column `c` as the value JSON holds it: timestamps as ISO 8601 text in UTC (whatever DuckDB's
    session time zone), fixed width, so texts of one column compare as their times do."""
    kind = {col.name: col.type_text for col in table.columns}[c]
    if kind == "timestamp":
        return f"strftime(timezone('UTC', {_q(c)}), '%Y-%m-%dT%H:%M:%S.%f+00:00')"
    if kind == "timestamp_ntz":
        return f"strftime({_q(c)}, '%Y-%m-%dT%H:%M:%S.%f')"
    return f"strftime({_q(c)}, '%Y-%m-%d')" if kind == "date" else _q(c)


def _encoded_sql(table: Any, source: str, with_time: bool = False, extra: list[str] | None = None) -> str:
    """The rows of `source` as (key JSON, value JSON), encoded by DuckDB (a Python loop costs ~100x);
    `with_time` adds the timestamp key's text as `t`, `extra` columns of `source` as they are."""
    ts = table.timestamp_keys[0] if table.timestamp_keys else None
    keys = [k for k in table.primary_keys if k != ts]
    obj = ", ".join(f"'{c.name}', {_time_text(table, c.name) if c.type_text in _TIMES else _q(c.name)}"
                    for c in table.columns if c.name not in keys)
    more = (f", {_time_text(table, ts) if ts else 'NULL'} AS t" if with_time else "") + "".join(f", {_q(c)}" for c in extra or [])
    return f"SELECT json_array({', '.join(_q(k) for k in keys)})::VARCHAR AS k, json_object({obj})::VARCHAR AS v{more} FROM ({source}) AS e"


def _latest_sql(table: Any, source: str) -> str:
    ts = table.timestamp_keys[0] if table.timestamp_keys else None
    keys = [k for k in table.primary_keys if k != ts]
    if ts is None:
        return source
    part = ", ".join(f'"{k}"' for k in keys)
    return f'SELECT * FROM ({source}) AS t QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY "{ts}" DESC) = 1'


def publish(cairn: Any, name: str, online_store: OnlineStore | None = None) -> PublishResult:
    """See FeatureEngineeringClient.publish_table."""
    from catalog.sql import duck
    from pipelines.features.engine import local

    started = time.perf_counter()
    store = online_store or default_store(cairn)
    _stores_of(cairn).add(store)
    table = _feature_table(cairn, name)
    if table.row_filter or table.column_masks:
        raise FailedPrecondition(f"'{table.full_name}' has a row filter or column masks, which an online store cannot apply per reader; "
                                 "publish a table (or a view materialized as one) without them")
    previous = store.state(table.full_name) if _published_from(store, table) else None  # another table's rows: publish in full
    ts = table.timestamp_keys[0] if table.timestamp_keys else None
    keys = [k for k in table.primary_keys if k != ts]
    if previous is not None:
        plan = cairn.data.plan_scan(table.full_name)  # checked and audited; fixes the version
        if plan.version == previous[0]:
            return PublishResult(table.full_name, plan.version, "INCREMENTAL", 0, 0, time.perf_counter() - started)
        if plan.version > previous[0]:
            try:
                changes = cairn.data.read_changes(table.full_name, previous[0] + 1, plan.version)
            except Exception:
                changes = None  # the feed does not reach back (vacuumed, or turned on later): publish in full
            if changes is not None:
                return _incremental(cairn, store, table, keys, ts, changes, plan, started)
    plans = cairn.data.plan_scans([(table.full_name, None, None)])
    plan = plans[0]
    assert isinstance(plan, ScanPlan)
    if not plan.policy.empty:  # a policy set between the check above and the plan: refuse all the same
        raise FailedPrecondition(f"'{table.full_name}' has a row filter or column masks")
    files = [local(f) for f in plan.files]
    if files:
        con = duck.database(frozenset(files))
        try:
            src = policy_sql(plan.policy, f"{plan.source()} AS src", [c.name for c in plan.columns])
            rows = con.execute(_encoded_sql(table, _latest_sql(table, src))).fetchall()
        finally:
            con.close()
    else:
        rows = []
    store.write(table.full_name, [*rows, (TABLE_ID_KEY, str(table.id))], [], plan.version, full=True)
    return PublishResult(table.full_name, plan.version, "FULL", len(rows), 0, time.perf_counter() - started)


def _incremental(cairn: Any, store: OnlineStore, table: Any, keys: list[str], ts: str | None, changes: Any,
                 plan: ScanPlan, started: float) -> PublishResult:
    """Apply the change feed since the last published version, from the feed's rows themselves.

    The final state of each changed row (key and time) is its last change (a later commit wins; in
    one commit an insert beats a delete, as when an overwrite rewrites a row). For each key touched:
    - its newest surviving changed row is sent when it is at least as new as the published row (a
      row not in the feed was there at the last publish, so it is no newer than the published one);
    - an older changed row changes nothing (the published row is still the latest);
    - when the published row itself was deleted and no newer changed row survives, the feed cannot
      tell what is latest now: those keys alone are read from the snapshot (a point read by key,
      pruned by the Parquet statistics), and deleted from the store when no row is left.
    Without a timestamp key each key is one row: its last change is sent, or deleted."""
    import pyarrow as pa


    cdf = pa.table(changes)
    if cdf.num_rows == 0:
        store.write(table.full_name, [], [], plan.version, full=False)
        return PublishResult(table.full_name, plan.version, "INCREMENTAL", 0, 0, time.perf_counter() - started)
    columns = [c.name for c in table.columns]
    part = ", ".join(_q(c) for c in ([*keys, ts] if ts else keys))
    final = (f"SELECT * FROM cdf WHERE _change_type <> 'update_preimage' QUALIFY row_number() OVER "
             f"(PARTITION BY {part} ORDER BY _commit_version DESC, (_change_type = 'delete')) = 1")
    con = duckdb_cursor()  # the process's database, which opens no file: the feed is handed in as Arrow
    try:
        con.register("cdf", cdf.select([*columns, "_change_type", "_commit_version"]))
        # One row per changed row (key and time): its encoded key, value (NULL when deleted), time text.
        rows = con.execute("SELECT k, CASE WHEN _change_type = 'delete' THEN NULL ELSE v END, t FROM ("
                           + _encoded_sql(table, final, with_time=True, extra=["_change_type"]) + ") AS e").fetchall()
    finally:
        con.close()
    candidates: dict[str, tuple[str, str]] = {}  # key -> its newest surviving changed row (value, time)
    deleted: dict[str, set[str | None]] = {}
    for k, v, t in rows:
        if v is None:
            deleted.setdefault(k, set()).add(t)
        else:
            best = candidates.get(k)
            if best is None or (t is not None and t > best[1]):
                candidates[k] = (v, t)
    if ts is None:
        sent = [(k, v) for k, (v, _) in candidates.items()]
        removed = [k for k in deleted if k not in candidates]
        store.write(table.full_name, sent, removed, plan.version, full=False)
        return PublishResult(table.full_name, plan.version, "INCREMENTAL", len(sent), len(removed), time.perf_counter() - started)
    # Only keys with a deleted row need their published row looked at here; the others are sent
    # "if newer", compared by the store as it writes.
    dead_keys = list(deleted)
    published = dict(zip(dead_keys, store.read(table.full_name, dead_keys))) if dead_keys else {}
    writes: list[tuple[str, str]] = []
    unknown: list[str] = []
    for k in dead_keys:
        now = published[k]
        now_t = _loads(now).get(ts) if now is not None else None
        cand = candidates.get(k)
        if cand is not None and (now_t is None or cand[1] >= now_t):
            writes.append((k, cand[0]))
        elif now_t is not None and now_t in deleted[k]:
            unknown.append(k)  # the published row is gone and nothing newer changed: read the key
    newer = [(k, v, t) for k, (v, t) in candidates.items() if k not in deleted]
    gone: list[str] = []
    if unknown:
        found = _point_read(table, keys, plan, unknown)
        writes += list(found.items())
        gone = [k for k in unknown if k not in found]
    written = store.write_changes(table.full_name, writes, newer, ts, gone, plan.version)
    return PublishResult(table.full_name, plan.version, "INCREMENTAL", written, len(gone), time.perf_counter() - started, len(unknown))


def _point_read(table: Any, keys: list[str], plan: ScanPlan, wanted: list[str]) -> dict[str, str]:
    """The latest row now of each key in `wanted` (encoded keys), read from the snapshot of `plan`:
    only those keys, so DuckDB skips the row groups whose statistics exclude them."""
    import pyarrow as pa

    from catalog.sql import duck
    from pipelines.features.engine import local

    files = [local(f) for f in plan.files]
    if not files:
        return {}
    values = [_loads(k) for k in wanted]
    types = {c.name: c.type_text for c in table.columns}
    from catalog import delta

    want = pa.table({k: pa.array([v[i] for v in values], delta.arrow_type(types[k])) for i, k in enumerate(keys)})
    con = duck.database(frozenset(files))
    try:
        con.register("wanted", want)
        src = f"SELECT src.* FROM {plan.source()} AS src SEMI JOIN wanted USING ({', '.join(_q(k) for k in keys)})"
        return dict(con.execute(_encoded_sql(table, _latest_sql(table, src))).fetchall())
    finally:
        con.close()


def read_online(cairn: Any, name: str, keys: Any, feature_names: list[str] | None, online_store: OnlineStore | None) -> OnlineFeatures:
    """See FeatureEngineeringClient.read_online_features."""
    store = online_store or default_store(cairn)
    table = _authorize(cairn, name, store)
    ts = table.timestamp_keys[0] if table.timestamp_keys else None
    pks = [k for k in table.primary_keys if k != ts]
    if hasattr(keys, "to_dict"):
        keys = keys.to_dict("records")
    encoded = []
    for k in keys:
        if not isinstance(k, dict):
            k = dict(zip(pks, k if isinstance(k, (list, tuple)) else [k]))
        missing = [p for p in pks if p not in k]
        if missing:
            raise InvalidArgument(f"key {k} lacks primary key column(s) {missing} of '{table.full_name}'")
        encoded.append(encode_key([k[p] for p in pks]))
    known = {c.name for c in table.columns}
    wanted = [f.lower() for f in feature_names] if feature_names else [c.name for c in table.columns if c.name not in pks]
    for f in wanted:
        if f not in known:
            raise InvalidArgument(f"feature '{f}' is not a column of '{table.full_name}'")
    raw = store.read(table.full_name, encoded)
    rows = []
    for key_json, value in zip(encoded, raw):
        row = dict(zip(pks, _loads(key_json)))
        got = _loads(value) if value is not None else {}
        row.update({f: got.get(f) for f in wanted})
        rows.append(row)
    st = store.state(table.full_name)
    return OnlineFeatures(rows, st[0] if st else None, st[1] if st else None)


def _authorize(cairn: Any, name: str, store: OnlineStore) -> Any:
    """SELECT on the feature table, checked and audited, without reading its data: an empty scan
    plan of the latest version. A table that gained a row filter or masks since it was published
    is refused, as publishing it would be; so are online rows published from another table of that
    name (since dropped or renamed), which SELECT on this one does not cover."""
    plan = cairn.data.plan_scan(name)
    if not plan.policy.empty:
        raise FailedPrecondition(f"'{plan.table}' has a row filter or column masks now; its online features cannot be served")
    table = _feature_table(cairn, plan.table)
    if not _published_from(store, table):
        raise FailedPrecondition(f"the online rows of '{table.full_name}' were published from another table of that name "
                                 "(dropped or renamed since); publish this one to replace them")
    return table


def _published_from(store: OnlineStore, table: Any) -> bool:
    """Whether the store's rows under the table's name (if any) were published from this very table.
    Rows are kept by name; the id of the table they came from is kept beside them (TABLE_ID_KEY)."""
    if store.state(table.full_name) is None:
        return True
    return store.read(table.full_name, [TABLE_ID_KEY])[0] == str(table.id)


class OnlineReader:
    """Batch lookups of one feature table for a serving loop. SELECT is checked and audited when the
    reader opens, then renewed in the background every `ttl_seconds` rather than on every call, so a
    lookup costs a store read (well under a millisecond). A revoked grant, or a row filter or mask set
    since, takes effect at the next renewal: at most `ttl_seconds` later, lookups fail with its error.
    With `ttl_seconds=0` every lookup is checked and audited."""

    def __init__(self, cairn: Any, name: str, feature_names: list[str] | None = None, online_store: OnlineStore | None = None,
                 ttl_seconds: float = 1.0) -> None:
        self.cairn, self.name, self.ttl = cairn, name, ttl_seconds
        self.store = online_store or default_store(cairn)
        self._lease = Lease(lambda: _authorize(self.cairn, self.name, self.store), ttl_seconds, f"cairn-online-lease-{name}")
        ts = self.table.timestamp_keys[0] if self.table.timestamp_keys else None
        self.pks = [k for k in self.table.primary_keys if k != ts]
        known = {c.name for c in self.table.columns}
        self.features = [f.lower() for f in feature_names] if feature_names else [c.name for c in self.table.columns if c.name not in self.pks]
        for f in self.features:
            if f not in known:
                raise InvalidArgument(f"feature '{f}' is not a column of '{self.table.full_name}'")

    @property
    def table(self) -> Any:
        """The feature table as the last renewal saw it."""
        return self._lease.value

    def close(self) -> None:
        self._lease.close()

    def lookup(self, keys: list[Any]) -> list[dict[str, Any]]:
        """Feature values for each key (a dict of primary key values, or the values in key order)."""
        self._lease.ensure()
        encoded = []
        for k in keys:
            if type(k) is int:
                encoded.append(f"[{k}]")  # encode_key's fast path, inline
                continue
            if isinstance(k, dict):
                try:
                    k = [k[p] for p in self.pks]
                except KeyError as exc:
                    raise InvalidArgument(f"key lacks primary key column {exc} of '{self.table.full_name}'") from None
            elif not isinstance(k, (list, tuple)):
                k = [k]
            encoded.append(encode_key(list(k)))
        raw = self.store.read(self.table.full_name, encoded)
        # One parse for the whole batch: a json.loads per row costs several times more.
        values = _loads("[" + ",".join(v if v is not None else "null" for v in raw) + "]")
        features = self.features
        first = next((v for v in values if v is not None), None)
        if first is not None and len(first) == len(features) and list(first) == features:
            # Stored rows hold exactly the features asked for, in order: hand them out as parsed.
            return [got if got is not None else dict.fromkeys(features) for got in values]
        return [{f: got.get(f) for f in features} if got is not None else dict.fromkeys(features) for got in values]
