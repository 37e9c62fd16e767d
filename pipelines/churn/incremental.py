"""Incremental refresh of the user activity features: only the users whose features can have changed.

The previous refresh left its time `T1` and the raw table version it had read, `v1`, in the refresh
state (refresh_state.py: one compact row per user beside the feature table). At `T2` with raw
version `v2`, a user's features can differ from the ones it had at `T1` only through

- N: events new since `v1` (the raw table's change data feed `v1+1..v2`), late and out-of-order ones included;
- X: events already there at `v1` but then in the future, with `T1 < ts <= T2`;
- Y_w: events leaving the window w, `T1 - w < ts <= min(T1, T2 - w)` (read at version `v1`);
- the day count of `recency_days` ticking over: the state rows whose second of the day `tod` lies in
  `(T1, T2]` modulo a day, a range of the state sorted by `tod` (row groups outside it skipped).

X and Y are narrow `ts` slices of the raw table (files outside them skipped by their `ts` range in
the Delta log, row groups by their Parquet statistics); N is the change feed. Only the touched users' latest state rows are decoded (one
pass over the state's `user_id` column finds them). Each touched user's new counts are the old ones
plus the events entering minus those leaving, and the last event time is the later of the old one and
the newest new one. Only the users whose values changed get rows, at `ts = T2`, appended to the
feature table in one commit (their keys `(user_id, T2)` are all new, since `T2` is later than every
`ts` there: the MERGE by key only inserts, so by default it is written as the append it amounts to,
which unlike delta-rs' MERGE does not scan the whole table; `merge=True`, or a rerun at the same
time, runs the MERGE); then their new state rows are appended to the state. The latest row per user
then equals a full recompute at `T2` (tests/pipelines/test_churn.py checks it over many cycles of
late, out-of-order and future-dated events, with and without compaction of the state).

Raw events are append-only; a change feed holding updates or deletes makes the refresh fall back to
a full recompute (said in the result). A feature table written by anything else since the last
refresh (its version is not the state's) gets its state rebuilt from its latest rows first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from catalog.errors import InvalidArgument
from catalog.sql import duck
from pipelines.churn import refresh_state as S
from pipelines.churn.features import WINDOWS, as_of_time, full_sql, latest_version

COMPACT_AFTER = 32  # state files (one per refresh) before the state is rewritten compact
SPARK_PARTITION_ROWS = 1_000_000  # input rows per Spark partition: up to this many are one task, no shuffle


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


def delta_sql(span: int) -> str:
    """The new features of the affected users from `inputs`, one row per piece of what the refresh
    read (`src` 0: the latest state row of a touched user, `last1`, `f7`, `f30`, `f90`; 1: a new
    event `n` (from the change feed, up to T2); 2: an event `x` already there but then in the
    future; 3: an event `y` leaving the window `w`), in SQL both DuckDB and Spark run: one
    aggregation by user and no join, so one stage on Spark when the input is one partition.

    Every time is in seconds relative to T2 (T2 is 0, T1 is `-span`), and so is the `last_event_ts`
    returned: the SQL depends only on the time between refreshes, so an engine that compiles its
    queries (Spark's generated code inlines literals) compiles it once for a schedule, not each time.

    A user is written when it has events in n, x or y, or when its latest state row's recency ticks
    over (a touched user whose stale state row was in the `tod` range but whose latest is not, and
    who has no events, is dropped by that test)."""
    def delta(w: int) -> str:
        return (f"CASE src WHEN 1 THEN CASE WHEN ts > {-w * 86400} THEN 1 ELSE 0 END "
                f"WHEN 2 THEN CASE WHEN ts > {max(-span, -w * 86400)} THEN 1 ELSE 0 END "
                f"WHEN 3 THEN CASE WHEN w = {w} THEN -1 ELSE 0 END ELSE 0 END AS e{w}")

    deltas = ", ".join(delta(w) for w in WINDOWS)
    sums = ", ".join(f"COALESCE(MAX(f{w}), 0) + SUM(e{w}) AS f{w}" for w in WINDOWS)
    return f"""
WITH c AS (
  SELECT user_id, last1, f7, f30, f90, CASE WHEN src IN (1, 2) THEN ts END AS newest,
    CASE WHEN src = 0 THEN 0 ELSE 1 END AS hit, {deltas}
  FROM inputs
),
d AS (
  SELECT user_id, MAX(last1) AS last1, MAX(newest) AS newest, {sums}
  FROM c GROUP BY user_id HAVING SUM(hit) > 0 OR FLOOR(-MAX(last1) / 86400) <> FLOOR((-{span} - MAX(last1)) / 86400)
),
j AS (SELECT user_id, GREATEST(COALESCE(last1, newest), COALESCE(newest, last1)) AS last2, f7, f30, f90 FROM d)
SELECT user_id, last2 AS last_event_ts, CAST(FLOOR(-last2 / 86400) AS INT) AS recency_days,
  CAST(f7 AS BIGINT) AS freq_7d, CAST(f30 AS BIGINT) AS freq_30d, CAST(f90 AS BIGINT) AS freq_90d,
  CASE WHEN f30 = 0 THEN NULL ELSE CAST(f7 AS DOUBLE) * 30.0 / (CAST(f30 AS DOUBLE) * 7.0) END AS activity_trend
FROM j WHERE last2 IS NOT NULL"""


@dataclass
class _Work:
    """What one refresh computes from: the watermarks, and a DuckDB database (allowed to read only
    the state's files and the raw files the slices meet) holding the temp view `inputs` (delta_sql's
    input: the touched users' latest state rows and their events in `n`, `x` and `y`)."""
    t1: datetime
    t2: datetime
    v1: int
    v2: int
    new_events: int
    con: Any
    state_files: int  # the state's files when read: one more after this refresh's append


def _full(cairn: Any, events: str, features: str, state: str, t2: datetime, t1: datetime | None, v1: int | None, run_id: str | None,
          reason: str, new_events: int = -1) -> Refresh:
    S.whole(cairn, features)  # the state is rebuilt from the table whole after: refused now, before anything is written
    version = full_sql(cairn, events, features, t2, run_id)
    S.rebuild(cairn, features, state, run_id)
    return Refresh("FULL", t2, t1, version, v1, -1, new_events, reason)


def _prepare(cairn: Any, events: str, features: str, state: str, as_of: datetime, run_id: str | None) -> _Work | Refresh:
    """Check the state against the feature table (rebuilding it if another writer came between),
    read the watermarks, and load what the refresh needs into a DuckDB database: the change feed,
    the `ts` slices of the raw table, and the latest state rows of the touched users."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipelines.features.engine import local

    t2 = as_of_time(as_of)
    v2, fv = latest_version(cairn, events), latest_version(cairn, features)
    for attempt in (0, 1):
        splan = S.plan(cairn, state, features)
        got = S.watermark(splan)
        if got[0] is not None and got[2] == fv:
            break
        if attempt or not S.rebuild(cairn, features, state, run_id):  # the state from the feature table's latest rows
            why = "the feature table changed while its refresh state was rebuilt" if attempt else "the feature table is empty"
            return _full(cairn, events, features, state, t2, None, None, run_id, why)
    t1, v1 = got[0].astimezone(UTC), int(got[1] or 0)
    if t2 < t1:
        raise InvalidArgument(f"the feature table is already at {t1.isoformat()}; a refresh goes forward, not to {t2.isoformat()}")
    if t2 == t1 and v2 == v1:
        return Refresh("NOOP", t2, t1, v2, v1, 0, 0, "nothing new")
    n = pa.table({"user_id": pa.array([], pa.int64()), "ts": pa.array([], pa.int64())})
    if v2 > v1:
        changes = pa.table(cairn.data.read_changes(events, v1 + 1, v2))  # an Arrow C stream (arro3) from delta-rs
        kinds = set(pc.unique(changes.column("_change_type")).to_pylist())
        if kinds - {"insert"}:
            return _full(cairn, events, features, state, t2, t1, v1, run_id, f"the raw table had {sorted(kinds - {'insert'})} changes",
                         changes.num_rows)
        n = _seconds(changes.select(["user_id", "ts"]))
    eplan = cairn.data.plan_scan(events, version=v1, run_id=run_id, stats=True)

    s1, s2 = int(t1.timestamp()), int(t2.timestamp())

    def secs(col: str) -> str:  # seconds relative to T2 (delta_sql)
        return f"epoch_us({col}) // 1000000 - {s2}"

    def lit(t: datetime) -> str:
        return f"TIMESTAMPTZ '{t.isoformat()}'"

    reading = list(splan.files)  # the files the database may read: the state's, and the raw files the slices meet

    def ev(lo: datetime, hi: datetime) -> str:  # only the files whose `ts` range (the Delta log's statistics) meets (lo, hi]
        meets = eplan.meeting("ts", lo, hi)
        reading.extend(meets.files)
        return S.scan_sql(meets, ["user_id", "ts"])

    slices = [f"SELECT user_id, {secs('ts')} AS ts FROM {ev(t1, t2)} WHERE ts > {lit(t1)} AND ts <= {lit(t2)}"] if t2 > t1 else []
    ys = []
    for w in WINDOWS:
        lo, hi = t1 - timedelta(days=w), min(t1, t2 - timedelta(days=w))
        if hi > lo:
            ys.append(f"SELECT user_id, {secs('ts')} AS ts, {w} AS w FROM {ev(lo, hi)} WHERE ts > {lit(lo)} AND ts <= {lit(hi)}")
    con = duck.database(frozenset(local(f) for f in reading))
    none = "SELECT 0::BIGINT AS user_id, 0::BIGINT AS ts, 0::BIGINT AS w WHERE false"
    con.execute(f"CREATE TEMP TABLE x AS SELECT user_id, ts, NULL::BIGINT AS w FROM ({' UNION ALL '.join(slices) or none})")
    con.execute(f"CREATE TEMP TABLE y AS {' UNION ALL '.join(ys) or none}")
    con.register("n_arrow", n)
    con.execute(f"CREATE TEMP TABLE n AS SELECT user_id, ts - {s2} AS ts, NULL::BIGINT AS w FROM n_arrow WHERE ts <= {s2}")  # later ones wait
    con.unregister("n_arrow")
    st = S.scan_sql(splan, S.NAMES)
    ticking = [f"SELECT user_id FROM {st} WHERE {part}" for part in S.ticking(s1, s2)]  # each a range: zone maps skip
    # the latest state row (by features_version) of each touched user (a join, `touched` being
    # distinct, builds its hash on the few touched users: cheaper than IN; arg_max by user is about
    # half the cost of a window's QUALIFY), then the events, as one table
    con.execute("CREATE TEMP TABLE touched AS " + " UNION ".join([*ticking, *(f"SELECT user_id FROM {e}" for e in "nxy")]))
    latest = ", ".join(f"arg_max_null({c}, features_version){f' - {s2}' if c == 'last_event_ts' else ''} AS {a}"
                       for c, a in (("last_event_ts", "last1"), ("freq_7d", "f7"), ("freq_30d", "f30"), ("freq_90d", "f90")))
    state = f"SELECT user_id, 0::BIGINT AS src, NULL::BIGINT AS ts, NULL::BIGINT AS w, {latest} FROM {st} AS s JOIN touched USING (user_id) GROUP BY user_id"
    events = " UNION ALL ".join(f"SELECT user_id, {i}::BIGINT, ts, w, NULL, NULL, NULL, NULL FROM {e}" for i, e in ((1, "n"), (2, "x"), (3, "y")))
    con.execute(f"CREATE TEMP VIEW inputs AS SELECT * FROM ({state}) UNION ALL {events}")
    return _Work(t1, t2, v1, v2, n.num_rows, con, len(splan.files))


def _finish(cairn: Any, features: str, state: str, rows: Any, w: _Work, run_id: str | None, merge: bool, compact_after: int) -> Refresh:
    """Commit the changed users' rows to the feature table, then their state rows to the state."""
    import pyarrow as pa
    import pyarrow.compute as pc

    k = rows.num_rows
    if not k:
        return Refresh("INCREMENTAL", w.t2, w.t1, w.v2, w.v1, 0, w.new_events)
    secs = pc.add(pc.cast(rows.column("last_event_ts"), pa.int64()), int(w.t2.timestamp()))  # delta_sql's are relative to T2
    out = rows.set_column(rows.schema.get_field_index("last_event_ts"), "last_event_ts",
                          pc.cast(pc.multiply(secs, 1_000_000), pa.timestamp("us", tz="UTC")))
    at = pa.repeat(pa.scalar(w.t2, pa.timestamp("us", tz="UTC")), k)
    out = out.add_column(1, "ts", at).append_column("source_version", pa.repeat(pa.scalar(w.v2, pa.int64()), k))
    if merge or w.t2 == w.t1:  # at the same time again (new events, no time passed) the keys exist: update them
        written = cairn.data.merge(features, out, on=["user_id", "ts"], when_matched_update="*", run_id=run_id)
    else:
        written = cairn.data.write(features, out, run_id=run_id)
    rows_state = pa.table({
        "user_id": rows.column("user_id"), "last_event_ts": secs, "tod": pc.cast(pc.subtract(secs, pc.multiply(pc.divide(secs, S.DAY), S.DAY)), pa.int32()),
        "freq_7d": rows.column("freq_7d"), "freq_30d": rows.column("freq_30d"), "freq_90d": rows.column("freq_90d"),
        "as_of": at, "source_version": pa.repeat(pa.scalar(w.v2, pa.int64()), k),
        "features_version": pa.repeat(pa.scalar(written.version, pa.int64()), k)})
    cairn.data.write(state, rows_state.sort_by("tod"))
    if w.state_files + 1 > compact_after:
        S.compact(cairn, state)
    return Refresh("INCREMENTAL", w.t2, w.t1, w.v2, w.v1, k, w.new_events)


def refresh(cairn: Any, events: str, features: str, as_of: datetime, run_id: str | None = None, merge: bool = False,
            state: str | None = None, compact_after: int = COMPACT_AFTER) -> Refresh:
    """Bring the feature table to `as_of` (DuckDB embedded), writing rows only for users whose
    features changed. An empty feature table gets a full recompute. The refresh state lives in
    `state` (default `<features>_state`, created by the refreshing principal if missing).

    Every snapshot is planned by the governed data service (checked, audited, with the reader's row
    filter and masks) and read straight from its Parquet files by a DuckDB that may read only those
    files; the `ts` slices and the `tod` range skip every row group outside them by their statistics."""
    state = state or S.state_table(features)
    work = _prepare(cairn, events, features, state, as_of, run_id)
    if isinstance(work, Refresh):
        return work
    try:
        rows = work.con.execute(delta_sql(int((work.t2 - work.t1).total_seconds()))).to_arrow_table()
    finally:
        work.con.close()
    return _finish(cairn, features, state, rows, work, run_id, merge, compact_after)


def refresh_spark(spark: Any, cairn: Any, events: str, features: str, as_of: datetime, run_id: str | None = None,
                  merge: bool = False, state: str | None = None, compact_after: int = COMPACT_AFTER) -> Refresh:
    """The same refresh computed on Spark (the same SQL), from the same governed reads: the few rows
    the touched users need are read as in `refresh` and handed to Spark as one Arrow table, the new
    features computed by Spark SQL."""
    state = state or S.state_table(features)
    work = _prepare(cairn, events, features, state, as_of, run_id)
    if isinstance(work, Refresh):
        return work
    try:
        inputs = work.con.execute("SELECT * FROM inputs").to_arrow_table()
    finally:
        work.con.close()
    saved = {k: spark.conf.get(k) for k in ("spark.sql.execution.arrow.pyspark.enabled", "spark.sql.adaptive.enabled")}
    try:
        spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")  # the input goes over as Arrow, not row by row
        spark.conf.set("spark.sql.adaptive.enabled", "false")  # one stage: nothing to re-plan
        df = spark.createDataFrame(inputs) if inputs.num_rows else spark.createDataFrame([], ", ".join(f"{n} bigint" for n in inputs.column_names))
        # a few rows per touched user: up to a million rows are one partition, so the aggregation by user
        # needs no shuffle and the query is one task; more are split by user (one shuffle)
        parts = -(-inputs.num_rows // SPARK_PARTITION_ROWS)
        df = df.repartition(parts, "user_id") if parts > 1 else df.coalesce(1)
        sql = delta_sql(int((work.t2 - work.t1).total_seconds())).replace("FROM inputs", "FROM {inputs}")
        rows = spark.sql(sql, inputs=df).toArrow()
    finally:
        for k, v in saved.items():
            spark.conf.set(k, v)
    return _finish(cairn, features, state, rows, work, run_id, merge, compact_after)
