"""The seed's user activity features, as of a time T, over the raw events with `ts <= T`:

- `recency_days`: whole days since the user's last event (`floor((T - last_event_ts) / 1 day)`);
- `freq_7d`, `freq_30d`, `freq_90d`: events in the windows `(T - w, T]`;
- `activity_trend`: the 7-day rate against the 30-day rate, `(freq_7d / 7) / (freq_30d / 30)`
  (NULL without events in 30 days).

The feature table is keyed by `user_id` and the timestamp key `ts` (the time the row's values hold
from): a full recompute writes one row per user at `ts = T`; an incremental refresh (incremental.py)
adds rows only for the users whose values changed. `source_version` is the raw table's version the
row was computed from (the refresh watermark, committed with the rows).

The full recompute is written twice: as SQL run by the shim (DuckDB; `full_sql`) and as a PySpark job
reading and writing through `format("cairn")` (`full_spark`). Both produce the same table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

WINDOWS = (7, 30, 90)
FEATURES = ["last_event_ts", "recency_days", "freq_7d", "freq_30d", "freq_90d", "activity_trend"]
COLUMNS = [
    {"name": "user_id", "type": "bigint", "nullable": False},
    {"name": "ts", "type": "timestamp", "nullable": False},
    {"name": "last_event_ts", "type": "timestamp"},
    {"name": "recency_days", "type": "int"},
    {"name": "freq_7d", "type": "bigint"},
    {"name": "freq_30d", "type": "bigint"},
    {"name": "freq_90d", "type": "bigint"},
    {"name": "activity_trend", "type": "double"},
    {"name": "source_version", "type": "bigint"},
]
DAY_US = 86_400_000_000


def _lit(t: datetime) -> str:
    return "TIMESTAMP '" + t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "'"


def as_of_time(t: datetime) -> datetime:
    """Feature times are whole seconds, UTC (so every engine computes the same day boundaries)."""
    if t.tzinfo is None:
        raise ValueError("give an aware datetime")
    return t.astimezone(UTC).replace(microsecond=0)


def create_feature_table(cairn: Any, name: str) -> Any:
    """The feature table (primary keys user_id, ts; timestamp key ts; change data feed on)."""
    from pipelines.features.client import FeatureEngineeringClient

    return FeatureEngineeringClient(cairn).create_table(
        name, primary_keys=["user_id", "ts"], timestamp_keys="ts", schema=COLUMNS,
        description="user activity features: recency, 7/30/90-day frequency, activity trend")


def select_sql(events: str, as_of: datetime, version: int) -> str:
    """The features of every user as of `as_of`, over version `version` of `events` (Databricks SQL)."""
    t = as_of_time(as_of)
    counts = ",\n  ".join(
        f"SUM(CASE WHEN ts > {_lit(t - timedelta(days=w))} THEN 1 ELSE 0 END) AS freq_{w}d" for w in WINDOWS)
    return f"""
WITH agg AS (
  SELECT user_id, MAX(ts) AS last_event_ts,
  {counts}
  FROM {events} VERSION AS OF {int(version)}
  WHERE ts <= {_lit(t)}
  GROUP BY user_id
)
SELECT user_id, {_lit(t)} AS ts, last_event_ts,
  CAST(FLOOR(TIMESTAMPDIFF(SECOND, last_event_ts, {_lit(t)}) / 86400) AS INT) AS recency_days,
  CAST(freq_7d AS BIGINT) AS freq_7d, CAST(freq_30d AS BIGINT) AS freq_30d, CAST(freq_90d AS BIGINT) AS freq_90d,
  CASE WHEN freq_30d = 0 THEN NULL ELSE CAST(freq_7d AS DOUBLE) * 30.0 / (CAST(freq_30d AS DOUBLE) * 7.0) END AS activity_trend,
  CAST({int(version)} AS BIGINT) AS source_version
FROM agg"""


def latest_version(cairn: Any, table: str) -> int:
    history = cairn.data.history(table, limit=1)
    return int(history[0]["version"]) if history else 0


def full_sql(cairn: Any, events: str, features: str, as_of: datetime, run_id: str | None = None) -> int:
    """Recompute every user's features as of `as_of` with SQL through the shim (DuckDB) and replace
    the feature table's contents with them. Returns the raw table version used."""
    version = latest_version(cairn, events)
    session = cairn.sql_session
    session.run_id = run_id
    session.execute(f"INSERT OVERWRITE {features} {select_sql(events, as_of, version)}")
    return version


def full_spark(spark: Any, events: str, features: str, as_of: datetime, options: dict[str, str]) -> int:
    """The same recompute as a PySpark job: read the raw table with `format("cairn")` (checked and
    audited by the catalog), aggregate on Spark, write the feature table back through `format("cairn")`.
    `options` are the data source's (principal, home, url, run). Returns the raw table version used."""
    from pyspark.sql import functions as F

    from catalog.client import Metastore

    cairn = Metastore.open(options.get("home"), options.get("url")).as_principal(options.get("principal"))
    version = latest_version(cairn, events)
    t = as_of_time(as_of)
    lit_t = F.lit(t.strftime("%Y-%m-%d %H:%M:%S")).cast("timestamp")
    ev = spark.read.format("cairn").options(**options).option("versionAsOf", str(version)).load(events)
    ev = ev.where(F.col("ts") <= lit_t)
    counts = [F.sum(F.when(F.col("ts") > F.lit((t - timedelta(days=w)).strftime("%Y-%m-%d %H:%M:%S")).cast("timestamp"), 1)
                    .otherwise(0)).cast("bigint").alias(f"freq_{w}d") for w in WINDOWS]
    agg = ev.groupBy("user_id").agg(F.max("ts").alias("last_event_ts"), *counts)
    out = agg.select(
        F.col("user_id"), lit_t.alias("ts"), F.col("last_event_ts"),
        F.floor((F.unix_timestamp(lit_t) - F.unix_timestamp("last_event_ts")) / 86400).cast("int").alias("recency_days"),
        "freq_7d", "freq_30d", "freq_90d",
        F.when(F.col("freq_30d") == 0, F.lit(None).cast("double"))
         .otherwise(F.col("freq_7d").cast("double") * 30.0 / (F.col("freq_30d").cast("double") * 7.0)).alias("activity_trend"),
        F.lit(version).cast("bigint").alias("source_version"),
    )
    out.write.format("cairn").options(**options).mode("overwrite").save(features)
    return version


def latest_rows(table: Any) -> Any:
    """The latest row per user of a feature table read as Arrow, sorted by user (the state as of its last refresh)."""
    import duckdb

    con = duckdb.connect()
    con.register("t", table)
    return con.execute(
        "SELECT user_id, last_event_ts, recency_days, freq_7d, freq_30d, freq_90d, activity_trend FROM t "
        "QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY ts DESC) = 1 ORDER BY user_id").to_arrow_table()
