"""The incremental refresh's state: one compact row per user, in a governed Delta table beside the
feature table (`<features>_state`), so that a refresh finds the users it must touch by range
predicates instead of scanning every user's history.

A row holds a user's last event time (epoch seconds), its second of the day `tod`, the 7/30/90-day
counts, and the refresh that wrote it: its time `as_of`, the raw table version `source_version`, and
the feature table version `features_version` committed with it (the order of rows: a user's latest
row has the highest `features_version`). A refresh appends the rows of the users it changed; every
`compact_after` files the table is rewritten as one file with the latest row per user, sorted by
`tod`.

Why `tod`: a user's whole-day recency ticks over between T1 and T2 (less than a day apart) exactly
when `last_event_ts + k days` falls in (T1, T2] for some k, i.e. when `tod` lies in the range
(T1 mod 1 day, T2 mod 1 day] (wrapping at midnight). On the sorted base DuckDB skips every row group
outside that range by its statistics (zone maps): a 15-minute refresh reads about 1/96 of it.

The state is checked against the feature table before each refresh: its newest `features_version`
must be the feature table's current version. Any other writer of the feature table (a full
recompute, a crash between the two commits) makes the next refresh rebuild the state from the
feature table's latest rows first (`rebuild`), so the state never has to be trusted blindly.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from catalog.errors import FailedPrecondition, NotFound

DAY = 86_400
COLUMNS: list[dict[str, Any]] = [
    {"name": "user_id", "type": "bigint", "nullable": False},
    {"name": "last_event_ts", "type": "bigint"},
    {"name": "tod", "type": "int"},
    {"name": "freq_7d", "type": "bigint"},
    {"name": "freq_30d", "type": "bigint"},
    {"name": "freq_90d", "type": "bigint"},
    {"name": "as_of", "type": "timestamp"},
    {"name": "source_version", "type": "bigint"},
    {"name": "features_version", "type": "bigint"},
]
NAMES = [str(c["name"]) for c in COLUMNS]


def state_table(features: str) -> str:
    return f"{features}_state"


def plan(cairn: Any, name: str, features: str) -> Any:
    """The state's scan plan; the state table is created first (as the refreshing principal, which
    needs CREATE TABLE on the schema) if missing. A refresh copies the feature table's values into
    the state and computes features from it, so a state owned by anyone but the refreshing principal
    or the feature table's owner is refused: whoever made a table of that name first would read
    every user's features, and write the ones the refresh computes."""
    try:
        found = cairn.data.plan_scan(name)
    except NotFound:
        cairn.tables.create_table(name, COLUMNS, comment=f"incremental refresh state of {features} (one row per user; internal)")
        return cairn.data.plan_scan(name)
    owner = cairn.tables.get_table(name).owner
    if owner != cairn.ctx.principal and owner != cairn.tables.get_table(features).owner:
        raise FailedPrecondition(f"the refresh state '{name}' is owned by {owner}, neither the refreshing principal nor the owner of "
                                 f"'{features}'; its owner must drop it or transfer it before a refresh writes into it")
    return found


def ticking(t1: int, t2: int) -> list[str]:
    """SQL ranges over `tod` (any of them): the rows whose whole-day recency ticks over between the
    epoch seconds t1 and t2 (none when t2 <= t1, every row a day or more apart)."""
    if t2 <= t1:
        return []
    if t2 - t1 >= DAY:
        return ["true"]
    a, b = t1 % DAY, t2 % DAY
    return [f"tod > {a} AND tod <= {b}"] if a < b else [f"tod > {a}", f"tod <= {b}"]


def watermark(plan: Any) -> tuple[Any, int | None, int | None]:
    """The newest `as_of`, `source_version` and `features_version` of a state snapshot, from its
    Parquet footers' statistics (a file without them is read). The refresh needs the state whole: a
    row filter or mask on it for the reader is refused rather than giving wrong features."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipelines.features.engine import local

    if not plan.policy.empty:
        raise FailedPrecondition(f"the refresh state '{plan.table}' has a row filter or column mask for this reader; a refresh reads it whole")
    cols = ("as_of", "source_version", "features_version")
    best: list[Any] = [None, None, None]
    for f in plan.files:
        md = pq.read_metadata(local(f))
        index = {md.schema.column(i).name: i for i in range(md.num_columns)}
        stats = [md.row_group(g).column(index[c]).statistics for g in range(md.num_row_groups) for c in cols]
        if all(st is not None and st.has_min_max for st in stats):
            highs = [[stats[g * 3 + k].max for g in range(md.num_row_groups)] for k in range(3)]
        else:
            table = pq.read_table(local(f), columns=list(cols))
            highs = [[pc.max(table.column(c)).as_py()] for c in cols]
        for k in range(3):
            for v in highs[k]:
                if v is not None and (best[k] is None or v > best[k]):
                    best[k] = v
    return best[0], best[1], best[2]


def latest_sql(relation: str, where: str = "true") -> str:
    """The latest state row per user of `relation` (rows matching `where`)."""
    return (f"SELECT * FROM {relation} WHERE {where} "
            "QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY features_version DESC) = 1")


def scan_sql(plan: Any, columns: list[str]) -> str:
    """A governed snapshot (with the reader's row filter and masks, partition columns restored from
    the log) as a DuckDB relation."""
    from catalog.scan import policy_sql

    return f"({policy_sql(plan.policy, f'{plan.source()} AS src', [c.name for c in plan.columns], columns)})"


def write_base(cairn: Any, name: str, rows: Any) -> None:
    """Replace the state with `rows` (one per user) sorted by `tod`, in row groups of the size every
    Cairn write uses, uncompressed (its columns are ids, times and counts that compress little, and
    a refresh decodes every `user_id`): one governed overwrite commit of one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from catalog.delta import ROW_GROUP_ROWS
    from catalog.scan import DataFile
    from pipelines.features.engine import local

    plan = cairn.data.prepare_write(name, "overwrite")
    schema = pa.schema([(f.name, f.type) for f in rows.schema])
    rows = rows.sort_by([("tod", "ascending"), ("user_id", "ascending")]).cast(schema)
    path = os.path.join(local(plan.files[0]), f"part-state-{uuid.uuid4().hex}.parquet")
    pq.write_table(rows, path, row_group_size=ROW_GROUP_ROWS, compression="none")
    st = os.stat(path)
    cairn.data.commit_files(name, [DataFile(path, st.st_size, rows.num_rows, int(time.time() * 1000))], "overwrite")


def whole(cairn: Any, features: str, version: int | None = None, run_id: str | None = None) -> Any:
    """The feature table's scan plan, refused when the reader has a row filter or column mask on it:
    a state of the rows this reader sees would make the refresh write wrong features for the others.
    A full recompute checks it before writing, so a refusal leaves the feature table as it was."""
    plan = cairn.data.plan_scan(features, version=version, run_id=run_id)
    if not plan.policy.empty:
        raise FailedPrecondition(f"'{features}' has a row filter or column mask for this reader; a refresh rebuilds its state from it whole")
    return plan


def rebuild(cairn: Any, features: str, name: str, run_id: str | None) -> int:
    """The state from the feature table's latest row per user; returns the number of users."""
    from pipelines.churn.features import latest_version
    from pipelines.features.engine import duck, local

    fv = latest_version(cairn, features)
    plan = whole(cairn, features, fv, run_id)
    con = duck.database(frozenset(local(f) for f in plan.files))
    try:
        src = scan_sql(plan, ["user_id", "ts", "last_event_ts", "freq_7d", "freq_30d", "freq_90d", "source_version"])
        rows = con.execute(
            f"SELECT user_id, epoch_us(last_event_ts) // 1000000 AS last_event_ts, "
            f"CAST((epoch_us(last_event_ts) // 1000000) % {DAY} AS INT) AS tod, freq_7d, freq_30d, freq_90d, "
            f"ts AS as_of, source_version, CAST({fv} AS BIGINT) AS features_version FROM {src} WHERE last_event_ts IS NOT NULL "
            "QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY ts DESC) = 1").to_arrow_table()
    finally:
        con.close()
    write_base(cairn, name, rows)
    return rows.num_rows


def compact(cairn: Any, name: str) -> int:
    """Rewrite the state as its latest row per user, sorted by `tod`; returns the number of users."""
    from pipelines.features.engine import duck, local

    plan = cairn.data.plan_scan(name)
    con = duck.database(frozenset(local(f) for f in plan.files))
    try:
        rows = con.execute(latest_sql(scan_sql(plan, NAMES))).to_arrow_table()
    finally:
        con.close()
    write_base(cairn, name, rows)
    return rows.num_rows
