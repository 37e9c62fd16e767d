"""Point-in-time joins on DuckDB over governed Delta snapshots (the embedded engine).

The training rows are handed in as Arrow; each feature table is read from the Parquet files of the
snapshot its ScanPlan names, on a DuckDB database whose `allowed_paths` are exactly those files
(external access off, configuration locked; see catalog/sql/duck.py), with the reader's row filter
and masks applied on top. Nothing is loaded into pandas first: DuckDB streams the files.

Semantics, for a lookup with a timestamp lookup key (ASOF LEFT JOIN):
- a feature row matches a training row when every key is equal and `feature_ts <= lookup_ts`;
  the latest such row wins; a null key or null lookup time matches nothing;
- with `lookback_window` w, the winning row must also satisfy `feature_ts >= lookup_ts - w`
  (inclusive; w = 0 means the exact time); when it does not, there is no match (an older row
  would be older still);
- a null value in the winning row stays null: it does not fall back to an older row;
- no match gives the lookup's default value for that feature, else null;
- ties (several rows with the same keys and timestamp) go to the later Delta commit, then to the
  later row of the same file. Tables written only by `FeatureEngineeringClient.write_table` never
  hold ties (it upserts by the whole primary key); the client records that fact per Delta version
  so the tie-break, a window over the whole table, only runs when it may be needed.
Without a timestamp lookup key, the latest row per key of the snapshot is used.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from catalog import delta
from catalog.policies import render_function
from catalog.scan import ScanPlan, policy_sql
from catalog.sql import duck
from pipelines.features.spec import ResolvedLookup, _micros

ROW = "__cairn_row"


@dataclass(frozen=True)
class TableRead:
    """One feature table as a training set reads it: its governed snapshot and what is known of it."""

    plan: ScanPlan
    location: str
    unique: bool  # at most one row per primary key (timestamp included) in this snapshot


def local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


duck_type = delta.duck_type  # a Databricks type as DuckDB's


def literal(value: Any, type_text: str) -> str:
    """A default value as a typed DuckDB literal.

    >>> literal(1.5, "double"), literal("a'b", "string"), literal(None, "int")
    ('CAST(1.5 AS DOUBLE)', "CAST('a''b' AS TEXT)", 'CAST(NULL AS INT)')
    """
    if value is None:
        text = "NULL"
    elif isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    elif isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = "'" + str(value).replace("'", "''") + "'"
    return f"CAST({text} AS {duck_type(type_text)})"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def commit_versions(location: str, version: int) -> dict[str, int]:
    """The Delta version that added each data file, from the JSON commits of the log (files added
    before the oldest JSON commit kept, i.e. only in a checkpoint, get -1: older than any other)."""
    log = os.path.join(local(location), "_delta_log")
    out: dict[str, int] = {}
    for v in range(version + 1):
        path = os.path.join(log, f"{v:020d}.json")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                action = json.loads(line)
                if "add" in action:
                    out[_unquote(action["add"]["path"])] = v
    return out


def _unquote(path: str) -> str:
    from urllib.parse import unquote

    return unquote(path)


def feature_source(read: TableRead, columns: list[str], con: Any, registered: list[str]) -> str:
    """SQL reading `columns` of one snapshot as the reader may see them, one row per key when the
    snapshot might hold ties (see the module docstring)."""
    plan = read.plan
    names = [c.name for c in plan.columns]
    files = [local(f) for f in plan.files]
    pks = list(dict.fromkeys(columns))
    if read.unique or not files:
        return policy_sql(plan.policy, f"{plan.source()} AS src", names, pks)
    # Possible ties: rank each row by the commit that added its file, then its place in the file.
    root = local(read.location).rstrip("/") + "/"
    versions = commit_versions(read.location, plan.version)
    order = {f: versions.get(f[len(root):] if f.startswith(root) else f, -1) for f in files}
    name = f"__cairn_commits_{len(registered)}"
    import pyarrow as pa

    con.register(name, pa.table({"f": list(order), "v": list(order.values())}))
    registered.append(name)
    inner = (f"SELECT src.*, c.v AS __cairn_commit FROM {plan.source(', filename = true, file_row_number = true')} AS src "
             f"JOIN {name} AS c ON c.f = src.filename")
    return policy_sql(plan.policy, f"({inner}) AS src", names + ["__cairn_commit", "file_row_number"],
                      pks + ["__cairn_commit", "file_row_number"])


def tie_break(source: str, partition: list[str], by_time: str | None) -> str:
    """One row per `partition` (the latest by `by_time` first when given), ties to the later commit."""
    order = ([f"{q(by_time)} DESC NULLS LAST"] if by_time else []) + ["__cairn_commit DESC", "file_row_number DESC"]
    return (f"SELECT * EXCLUDE (__cairn_commit, file_row_number) FROM ({source}) AS t "
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(q(c) for c in partition)} ORDER BY {', '.join(order)}) = 1")


def latest(source: str, partition: list[str], by_time: str) -> str:
    """The latest row per key of a snapshot without ties."""
    return (f"SELECT * FROM ({source}) AS t QUALIFY row_number() OVER (PARTITION BY {', '.join(q(c) for c in partition)} "
            f"ORDER BY {q(by_time)} DESC) = 1")


def stage_match(con: Any, source: str, keys: list[tuple[str, str]], ts: str, lts: str, lookback: Any, i: int) -> str:
    """Create the temporary table `__cairn_match_{i}` holding, for each training row with a point-in-
    time match, its row number (`__cairn_r`) and the keys and time of its match (`__k0..`, `__cairn_t`):
    the latest feature row at or before its time, within the lookback window. Returns its name.
    `source` must hold at most one row per key and time.

    The ASOF join sorts its build side, so it gets only the keys and the time, not every feature.
    Its result is a table rather than a subquery because DuckDB cannot estimate an ASOF join's
    output (it assumes the size of its build side, the whole feature table), so the fetch join
    after it would hash the wrong side; a table it knows the size of."""
    name = f"__cairn_match_{i}"
    on = " AND ".join(f"l.{q(lk)} = f.{q(pk)}" for lk, pk in keys)
    cols = ", ".join(q(pk) for _, pk in keys)
    window = f" WHERE f.{q(ts)} >= {lts} - to_microseconds({_micros(lookback)}::BIGINT)" if lookback is not None else ""
    out = ", ".join(f"f.{q(pk)} AS {q('__k' + str(j))}" for j, (_, pk) in enumerate(keys))
    con.execute(f"CREATE TEMP TABLE {name} AS SELECT l.{ROW} AS __cairn_r, {out}, f.{q(ts)} AS __cairn_t FROM labels AS l "
                f"ASOF JOIN (SELECT {cols}, {q(ts)} FROM ({source}) AS s) AS f ON {on} AND {lts} >= f.{q(ts)}{window}")
    return name


def fetch_join(source: str, match: str, keys: list[tuple[str, str]], ts: str, features: list[str], alias: str) -> str:
    """A LEFT JOIN adding to each training row the `features` of its match in `match` (see
    stage_match), by a hash join on the matches (the smaller side) that streams `source` once;
    `{alias}.__cairn_r` is NULL where there is no match."""
    on = " AND ".join(f"f.{q(pk)} = m.{q('__k' + str(j))}" for j, (_, pk) in enumerate(keys)) + f" AND f.{q(ts)} = m.__cairn_t"
    cols = "".join(f", f.{q(c)}" for c in dict.fromkeys(features))
    return (f"LEFT JOIN (SELECT m.__cairn_r{cols} FROM {match} AS m JOIN ({source}) AS f ON {on}) AS {alias} "
            f"ON {alias}.__cairn_r = l.{ROW}")


def build_query(label_columns: list[str], lookups: list[ResolvedLookup], reads: dict[str, TableRead], con: Any,
                registered: list[str], ts_columns: dict[int, str]) -> tuple[str, list[str]]:
    """The SELECT joining every lookup to the training rows (registered as `labels`); the caller
    orders the outermost query by ROW (an ORDER BY in a subquery promises nothing).

    `ts_columns[i]` is the label column holding lookup i's time, already cast to its table's type.
    Returns the SQL and the output feature columns in order."""
    selects = [f"l.{q(c)}" for c in label_columns]
    joins: list[str] = []
    outputs: list[str] = []
    for i, r in enumerate(lookups):
        if not r.features:
            continue  # every feature is overridden by the training set's own column
        read = reads[r.table]
        alias = f"f{i}"
        keys = list(zip([k.lower() for k in r.lookup.lookup_key], r.primary_keys))  # type: ignore[union-attr]
        cols = [pk for _, pk in keys] + ([r.timestamp_key] if r.timestamp_key else []) + [c for c, _ in r.features]
        source = feature_source(read, cols, con, registered)
        on = " AND ".join(f"l.{q(lk)} = {alias}.{q(pk)}" for lk, pk in keys)
        if r.point_in_time:
            ts = r.timestamp_key
            assert ts is not None
            lts = f"l.{q(ts_columns[i])}"
            if read.unique:
                # Narrow ASOF, then fetch: the winning (key, time) of each training row, unique in
                # this snapshot, fetches its features by a hash join. About two thirds of the work of
                # an ASOF join carrying every feature column (1M labels x 10M rows, 20 features).
                match = stage_match(con, source, keys, ts, lts, r.lookup.lookback_window, i)
                joins.append(fetch_join(source, match, keys, ts, [c for c, _ in r.features], alias))
                matched = f"{alias}.__cairn_r IS NOT NULL"
            else:
                source = tie_break(source, [pk for _, pk in keys] + [ts], None)
                joins.append(f"ASOF LEFT JOIN ({source}) AS {alias} ON {on} AND {lts} >= {alias}.{q(ts)}")
                matched = f"{alias}.{q(ts)} IS NOT NULL"
                if r.lookup.lookback_window is not None:
                    matched += f" AND {alias}.{q(ts)} >= {lts} - to_microseconds({_micros(r.lookup.lookback_window)}::BIGINT)"
        else:
            if r.timestamp_key:
                source = tie_break(source, [pk for _, pk in keys], r.timestamp_key) if not read.unique \
                    else latest(source, [pk for _, pk in keys], r.timestamp_key)
            elif not read.unique:
                source = tie_break(source, [pk for _, pk in keys], None)
            joins.append(f"LEFT JOIN ({source}) AS {alias} ON {on}")
            matched = f"{alias}.{q(r.primary_keys[0])} IS NOT NULL"
        defaults = {k.lower(): v for k, v in (r.lookup.default_values or {}).items()}
        for col, out in r.features:
            value = f"{alias}.{q(col)}"
            if col in defaults:
                selects.append(f"CASE WHEN {matched} THEN {value} ELSE {literal(defaults[col], r.types[col])} END AS {q(out)}")
            elif r.point_in_time and read.unique:
                selects.append(f"{value} AS {q(out)}")  # the fetch join matched only the winning row: null otherwise
            else:
                selects.append(f"CASE WHEN {matched} THEN {value} ELSE CAST(NULL AS {duck_type(r.types[col])}) END AS {q(out)}")
            outputs.append(out)
    sql = f"SELECT {', '.join(selects)} FROM labels AS l {' '.join(joins)}"  # ordered by the caller, outermost
    return sql, outputs


def function_sql(inner: str, functions: list[tuple[str, list[str], list[str], str]], principal: str, groups: set[str]) -> str:
    """SQL feature functions on top of the joined rows: (body, parameters, bound columns, output)."""
    if not functions:
        return inner
    cols = ", ".join(f"({render_function(body, params, ['`' + c + '`' for c in args], principal, groups)}) AS {q(out)}"
                     for body, params, args, out in functions)
    return f"SELECT t.*, {cols} FROM ({inner}) AS t"


def run(labels: Any, sql: str, files: list[str], setup: Any) -> Any:
    """Run the query on a database that may read exactly `files`; `setup(con, registered)` builds
    the SQL and registers what it needs. Returns Arrow."""
    con = duck.database(frozenset(files))
    registered: list[str] = []
    try:
        con.register("labels", labels)
        query = setup(con, registered) if setup else sql
        return con.execute(query).to_arrow_table()
    finally:
        con.close()
