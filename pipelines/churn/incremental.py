"""Incremental refresh of the user activity features: only the users whose features can have changed.

The previous refresh left, committed with its rows, its time `T1` (the newest `ts`) and the raw
table version it had read, `v1` (the newest `source_version`). At `T2` with raw version `v2`, a
user's features can differ from the ones it had at `T1` only through

- N: events new since `v1` (the raw table's change data feed `v1+1..v2`), late and out-of-order ones included;
- X: events already there at `v1` but then in the future, with `T1 < ts <= T2`;
- Y_w: events leaving the window w, `T1 - w < ts <= min(T1, T2 - w)` (read at version `v1`);
- the day count of `recency_days` ticking over (from the previous state alone).

From these few rows (narrow `ts` slices that a Delta reader finds by file statistics, and the change
feed), each affected user's new counts are the old ones plus the events entering minus those
leaving, and the last event time is the later of the old one and the newest new one. Only those
users get rows, at `ts = T2`, added to the feature table in one commit together with the new
watermark (their keys `(user_id, T2)` are all new, since `T2` is later than every `ts` there: the MERGE
by key only inserts, so by default it is written as the append it amounts to, which unlike delta-rs'
MERGE does not scan the whole table; `merge=True` runs the MERGE); the latest row per user then equals a full recompute at `T2` (tests/pipelines/test_churn.py
checks it over many cycles of late and out-of-order events).

Raw events are append-only; a change feed holding updates or deletes makes the refresh fall back to
a full recompute (said in the result).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from catalog.errors import InvalidArgument
from pipelines.churn.features import WINDOWS, as_of_time, full_sql, latest_version

_STATE_COLUMNS = ["user_id", "ts", "last_event_ts", "freq_7d", "freq_30d", "freq_90d", "source_version"]


@dataclass(frozen=True)
class Refresh:
    mode: str  # INCREMENTAL, FULL, NOOP
    as_of: datetime
    previous_as_of: datetime | None
    source_version: int
    previous_source_version: int | None
    users_written: int
    new_events: int
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


def _seconds(table: Any, column: str = "ts") -> Any:
    """An Arrow table with `column` (a timestamp) as whole epoch seconds (int64): portable SQL."""
    import pyarrow as pa
    import pyarrow.compute as pc

    i = table.schema.get_field_index(column)
    secs = pc.divide(pc.cast(pc.cast(table.column(column), pa.timestamp("us", tz="UTC")), pa.int64()), 1_000_000)
    return table.set_column(i, column, secs)


def delta_sql(t1: int, t2: int) -> str:
    """The new features of the affected users, from `state` (every row of the feature table), `n`,
    `x`, `y` (all with epoch-second `ts`), in SQL both DuckDB and Spark run.

    The latest state is looked up only for the users touched: those with events in n, x or y, and
    those with a row whose day count ticks over (a cheap filter over all rows; a user whose older
    row ticks but whose latest does not is dropped again by the same test on its latest row)."""
    def enter(w: int, src: str) -> str:
        low = max(t1, t2 - w * 86400) if src == "x" else t2 - w * 86400
        return f"CASE WHEN ts > {low} THEN 1 ELSE 0 END"

    def ticks(col: str) -> str:
        return f"FLOOR(({t2} - {col}) / 86400) <> FLOOR(({t1} - {col}) / 86400)"

    cols = ", ".join(f"{enter(w, 'n')} AS e{w}" for w in WINDOWS)
    xcols = ", ".join(f"{enter(w, 'x')} AS e{w}" for w in WINDOWS)
    ycols = ", ".join(f"CASE WHEN w = {w} THEN -1 ELSE 0 END AS e{w}" for w in WINDOWS)
    zero = ", ".join(f"0 AS e{w}" for w in WINDOWS)
    sums = ", ".join(f"SUM(e{w}) AS d{w}" for w in WINDOWS)
    return f"""
WITH touched AS (
  SELECT user_id FROM n WHERE ts <= {t2} UNION SELECT user_id FROM x UNION SELECT user_id FROM y
  UNION SELECT user_id FROM state WHERE {ticks('last_event_ts')}
),
prev AS (
  SELECT user_id, MAX_BY(last_event_ts, ts) AS last1, MAX_BY(freq_7d, ts) AS f7, MAX_BY(freq_30d, ts) AS f30,
    MAX_BY(freq_90d, ts) AS f90
  FROM state WHERE user_id IN (SELECT user_id FROM touched) GROUP BY user_id
),
contrib AS (
  SELECT user_id, ts AS newest, {cols} FROM n WHERE ts <= {t2}
  UNION ALL SELECT user_id, ts AS newest, {xcols} FROM x
  UNION ALL SELECT user_id, CAST(NULL AS BIGINT) AS newest, {ycols} FROM y
  UNION ALL SELECT user_id, CAST(NULL AS BIGINT) AS newest, {zero} FROM prev WHERE {ticks('last1')}
),
d AS (SELECT user_id, MAX(newest) AS newest, {sums} FROM contrib GROUP BY user_id),
j AS (
  SELECT d.user_id, GREATEST(COALESCE(p.last1, d.newest), COALESCE(d.newest, p.last1)) AS last2,
    COALESCE(p.f7, 0) + d.d7 AS f7, COALESCE(p.f30, 0) + d.d30 AS f30, COALESCE(p.f90, 0) + d.d90 AS f90
  FROM d LEFT JOIN prev p ON p.user_id = d.user_id
)
SELECT user_id, last2 AS last_event_ts, CAST(FLOOR(({t2} - last2) / 86400) AS INT) AS recency_days,
  CAST(f7 AS BIGINT) AS freq_7d, CAST(f30 AS BIGINT) AS freq_30d, CAST(f90 AS BIGINT) AS freq_90d,
  CASE WHEN f30 = 0 THEN NULL ELSE CAST(f7 AS DOUBLE) * 30.0 / (CAST(f30 AS DOUBLE) * 7.0) END AS activity_trend
FROM j WHERE last2 IS NOT NULL"""


def _inputs(cairn: Any, events: str, features: str, as_of: datetime, run_id: str | None) -> tuple[Any, ...] | Refresh:
    """Read what a refresh needs (governed reads), or the Refresh that says none is needed."""
    import pyarrow as pa

    t2 = as_of_time(as_of)
    state = cairn.data.read(features, columns=_STATE_COLUMNS, run_id=run_id)
    v2 = latest_version(cairn, events)
    if state.num_rows == 0:
        return Refresh("FULL", t2, None, full_sql(cairn, events, features, t2, run_id), None, -1, -1, "the feature table is empty")
    import pyarrow.compute as pc

    t1 = pc.max(state.column("ts")).as_py().astimezone(UTC)
    v1 = int(pc.max(state.column("source_version")).as_py())
    if t2 < t1:
        raise InvalidArgument(f"the feature table is already at {t1.isoformat()}; a refresh goes forward, not to {t2.isoformat()}")
    if t2 == t1 and v2 == v1:
        return Refresh("NOOP", t2, t1, v2, v1, 0, 0, "nothing new")
    empty = pa.table({"user_id": pa.array([], pa.int64()), "ts": pa.array([], pa.timestamp("us", tz="UTC"))})
    if v2 > v1:
        changes = pa.table(cairn.data.read_changes(events, v1 + 1, v2))  # an Arrow C stream (arro3) from delta-rs
        kinds = set(changes.column("_change_type").to_pylist()) if changes.num_rows else set()
        if kinds - {"insert"}:
            version = full_sql(cairn, events, features, t2, run_id)
            return Refresh("FULL", t2, t1, version, v1, -1, changes.num_rows, f"the raw table had {sorted(kinds - {'insert'})} changes")
        n = changes.select(["user_id", "ts"])
    else:
        n = empty

    def read(lo: datetime, hi: datetime) -> Any:
        if hi <= lo:
            return empty
        return cairn.data.read(events, columns=["user_id", "ts"], filters=[("ts", ">", lo), ("ts", "<=", hi)], version=v1, run_id=run_id)

    x = read(t1, t2)
    ys = []
    for w in WINDOWS:
        y = read(t1 - timedelta(days=w), min(t1, t2 - timedelta(days=w)))
        ys.append(y.append_column("w", pa.array([w] * y.num_rows, pa.int64())))
    y = pa.concat_tables(ys)
    return t1, t2, v1, v2, state, n, x, y


def _finish(cairn: Any, features: str, rows: Any, t1: datetime, t2: datetime, v1: int, v2: int, n: Any, run_id: str | None,
            merge: bool) -> Refresh:
    import pyarrow as pa
    import pyarrow.compute as pc

    out = rows.set_column(rows.schema.get_field_index("last_event_ts"), "last_event_ts",
                          pc.cast(pc.multiply(pc.cast(rows.column("last_event_ts"), pa.int64()), 1_000_000), pa.timestamp("us", tz="UTC")))
    k = out.num_rows
    out = out.add_column(1, "ts", pa.array([t2] * k, pa.timestamp("us", tz="UTC"))).append_column(
        "source_version", pa.array([v2] * k, pa.int64()))
    if k:
        if merge or t2 == t1:  # at the same time again (new events, no time passed) the keys exist: update them
            cairn.data.merge(features, out, on=["user_id", "ts"], when_matched_update="*", run_id=run_id)
        else:
            cairn.data.write(features, out, run_id=run_id)
    return Refresh("INCREMENTAL", t2, t1, v2, v1, k, n.num_rows)


def _scan_sql(plan: Any, columns: list[str]) -> str:
    """A governed snapshot (its files, with the reader's row filter and masks) as a DuckDB relation."""
    from catalog.scan import policy_sql

    names = [c.name for c in plan.columns]
    return f"({policy_sql(plan.policy, f'{plan.source()} AS src', names, columns)})"


def refresh(cairn: Any, events: str, features: str, as_of: datetime, run_id: str | None = None, merge: bool = False) -> Refresh:
    """Bring the feature table to `as_of` (DuckDB embedded), writing rows only for users whose
    features changed. An empty feature table gets a full recompute.

    Both snapshots are planned by the governed data service (checked, audited, with the reader's row
    filter and masks) and read straight from their Parquet files by a DuckDB that may read only those
    files; the `ts` slices skip every row group outside them by the files' statistics."""
    import pyarrow as pa

    from pipelines.features.engine import duck, local

    t2 = as_of_time(as_of)
    fplan = cairn.data.plan_scan(features, run_id=run_id)
    v2 = latest_version(cairn, events)
    con = duck.database(frozenset(local(f) for f in fplan.files))
    state = _scan_sql(fplan, _STATE_COLUMNS)
    t1, v1 = con.execute(f"SELECT MAX(ts), MAX(source_version) FROM {state}").fetchone()
    if t1 is None:
        con.close()
        return Refresh("FULL", t2, None, full_sql(cairn, events, features, t2, run_id), None, -1, -1, "the feature table is empty")
    t1, v1 = t1.astimezone(UTC), int(v1)
    if t2 < t1:
        raise InvalidArgument(f"the feature table is already at {t1.isoformat()}; a refresh goes forward, not to {t2.isoformat()}")
    if t2 == t1 and v2 == v1:
        return Refresh("NOOP", t2, t1, v2, v1, 0, 0, "nothing new")
    n = pa.table({"user_id": pa.array([], pa.int64()), "ts": pa.array([], pa.int64())})
    if v2 > v1:
        changes = pa.table(cairn.data.read_changes(events, v1 + 1, v2))  # an Arrow C stream (arro3) from delta-rs
        kinds = set(changes.column("_change_type").to_pylist()) if changes.num_rows else set()
        if kinds - {"insert"}:
            con.close()
            version = full_sql(cairn, events, features, t2, run_id)
            return Refresh("FULL", t2, t1, version, v1, -1, changes.num_rows, f"the raw table had {sorted(kinds - {'insert'})} changes")
        n = _seconds(changes.select(["user_id", "ts"]))
    eplan = cairn.data.plan_scan(events, version=v1, run_id=run_id)
    con.close()
    con = duck.database(frozenset(local(f) for f in fplan.files + eplan.files))

    def secs(col: str) -> str:
        return f"epoch_us({col}) // 1000000"

    def lit(t: datetime) -> str:
        return f"TIMESTAMPTZ '{t.isoformat()}'"

    ev = _scan_sql(eplan, ["user_id", "ts"])
    slices = [f"SELECT user_id, {secs('ts')} AS ts FROM {ev} WHERE ts > {lit(t1)} AND ts <= {lit(t2)}"] if t2 > t1 else []
    ys = []
    for w in WINDOWS:
        lo, hi = t1 - timedelta(days=w), min(t1, t2 - timedelta(days=w))
        if hi > lo:
            ys.append(f"SELECT user_id, {secs('ts')} AS ts, {w} AS w FROM {ev} WHERE ts > {lit(lo)} AND ts <= {lit(hi)}")
    con.execute(f"CREATE TEMP TABLE x AS {' UNION ALL '.join(slices) or 'SELECT 0::BIGINT AS user_id, 0::BIGINT AS ts WHERE false'}")
    con.execute(f"CREATE TEMP TABLE y AS {' UNION ALL '.join(ys) or 'SELECT 0::BIGINT AS user_id, 0::BIGINT AS ts, 0 AS w WHERE false'}")
    # Only the rows of users that can have changed are decoded: those a day count ticks over for (two
    # columns of every row), and those with events in n, x or y.
    t1us, t2us, day = int(t1.timestamp()) * 10**6, int(t2.timestamp()) * 10**6, 86_400 * 10**6
    con.register("n", n)
    con.execute(f"CREATE TEMP TABLE ticking AS SELECT DISTINCT user_id FROM {state} "
                f"WHERE ({t2us} - epoch_us(last_event_ts)) // {day} <> ({t1us} - epoch_us(last_event_ts)) // {day}")
    con.execute(f"CREATE TEMP TABLE state AS SELECT user_id, ts, epoch_us(last_event_ts) // 1000000 AS last_event_ts, freq_7d, freq_30d, "
                f"freq_90d FROM {state} WHERE user_id IN (SELECT user_id FROM ticking UNION SELECT user_id FROM n "
                f"UNION SELECT user_id FROM x UNION SELECT user_id FROM y)")
    rows = con.execute(delta_sql(int(t1.timestamp()), int(t2.timestamp()))).to_arrow_table()
    con.close()
    return _finish(cairn, features, rows, t1, t2, v1, v2, n, run_id, merge)


def refresh_spark(spark: Any, cairn: Any, events: str, features: str, as_of: datetime, run_id: str | None = None,
                  merge: bool = False) -> Refresh:
    """The same refresh computed on Spark (the same SQL), from the same governed reads."""
    got = _inputs(cairn, events, features, as_of, run_id)
    if isinstance(got, Refresh):
        return got
    import pyarrow as pa

    t1, t2, v1, v2, state, n, x, y = got
    for name, table in (("state", _seconds(_seconds(state), "last_event_ts")), ("n", _seconds(n)), ("x", _seconds(x)), ("y", _seconds(y))):
        ddl = ", ".join(f"{f.name} {'bigint' if pa.types.is_integer(f.type) else 'string'}" for f in table.schema)
        df = spark.createDataFrame([], ddl) if table.num_rows == 0 else spark.createDataFrame(table)
        df.createOrReplaceTempView(f"cairn_refresh_{name}")
    sql = re.sub(r"\bFROM (state|n|x|y)\b", r"FROM cairn_refresh_\1", delta_sql(int(t1.timestamp()), int(t2.timestamp())))
    rows = spark.sql(sql).toArrow()
    return _finish(cairn, features, rows, t1, t2, v1, v2, n, run_id, merge)
