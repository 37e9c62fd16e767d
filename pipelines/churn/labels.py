"""Churn labels and the point-in-time training set.

A user is labelled at a label time L when it was active in the 90 days up to L; `churned` is 1 when
it has no event in the 30 days after L (`L < ts <= L + 30 days`). Features come from the feature
table by `FeatureLookup(..., timestamp_lookup_key="label_ts")`: the latest feature row at or before
L, so nothing after the label time leaks into the features.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pipelines.churn.features import FEATURES, as_of_time

HORIZON = timedelta(days=30)
ACTIVE = timedelta(days=90)
LABEL_FEATURES = [f for f in FEATURES if f != "last_event_ts"]


def labels(cairn: Any, events: str, label_times: list[datetime], run_id: str | None = None) -> Any:
    """(user_id, label_ts, churned) for each label time whose 30-day horizon the data covers (governed read)."""
    import duckdb
    import pyarrow as pa

    times = sorted(as_of_time(t) for t in label_times)
    lo, hi = times[0] - ACTIVE, times[-1] + HORIZON
    ev = cairn.data.read(events, columns=["user_id", "ts"], filters=[("ts", ">", lo), ("ts", "<=", hi)], run_id=run_id)
    con = duckdb.connect()
    con.register("ev", ev)
    con.register("lt", pa.table({"label_ts": pa.array(times, pa.timestamp("us", tz="UTC"))}))
    return con.execute(f"""
        SELECT e.user_id, l.label_ts,
               CAST(CASE WHEN MAX(CASE WHEN e.ts > l.label_ts THEN 1 ELSE 0 END) = 1 THEN 0 ELSE 1 END AS INT) AS churned
        FROM lt l JOIN ev e ON e.ts > l.label_ts - INTERVAL {ACTIVE.days} DAYS AND e.ts <= l.label_ts + INTERVAL {HORIZON.days} DAYS
        GROUP BY e.user_id, l.label_ts
        HAVING MAX(CASE WHEN e.ts <= l.label_ts THEN 1 ELSE 0 END) = 1
        ORDER BY l.label_ts, e.user_id""").to_arrow_table()


def training_set(cairn: Any, features: str, label_rows: Any) -> Any:
    """The point-in-time training set over `label_rows` (a TrainingSet; `.load_df()` builds it)."""
    from pipelines.features import FeatureEngineeringClient, FeatureLookup

    return FeatureEngineeringClient(cairn).create_training_set(
        label_rows, [FeatureLookup(features, "user_id", timestamp_lookup_key="label_ts", feature_names=LABEL_FEATURES)],
        label="churned")


def backfill(cairn: Any, events: str, features: str, start: datetime, end: datetime, step: timedelta, run_id: str | None = None) -> list[Any]:
    """Feature history from `start` to `end`: a full recompute at `start`, then an incremental refresh
    every `step` (what the 15-minute schedule leaves behind), so label times in between find rows."""
    from pipelines.churn.incremental import refresh

    out = []
    t = as_of_time(start)
    while t <= end:
        out.append(refresh(cairn, events, features, t, run_id=run_id))
        t += step
    return out
