"""Feature refresh: a full recompute against an incremental refresh, on DuckDB (the shim) and on Spark.

    .venv/bin/python benchmarks/feature_refresh.py [--quick] [--users N] [--events N] [--cycles K] [--no-spark]

U users with E raw events over 120 days (pipelines/churn/data.py) in a governed Delta table with the
change data feed on, one commit (file, sorted by `ts`) per day; the seed's features (recency,
7/30/90-day frequency, trend) as of T1 = day 120, by the first refresh of the empty feature table (a
full recompute that also builds the refresh state, pipelines/churn/refresh_state.py). Then, in each
of `--cycles` (4) cycles, 1% of the users get new events (5% of them late, up to 10 days back) and
the features are brought 15 minutes further, both ways (each cycle in `*_runs`; medians of all but
the first, which warms each engine's code for these queries (the JVM's JIT, DuckDB's first use) as a
refresh job running every 15 minutes is warm; the first is also reported, `first_cycle_incremental_s`):
  - full: every user recomputed from all events: SQL through the shim (DuckDB), and the PySpark job
    reading and writing through `format("cairn")` (pipelines/churn/features.py);
  - incremental: only the users whose features can have changed (new events from the change data
    feed, events crossing a window edge found by `ts` slices of the raw files, day counts ticking
    over found by a `tod` range of the state sorted by it), appended to the feature table and the
    state (pipelines/churn/incremental.py); the rows read the same way, the new features computed
    by DuckDB or by Spark SQL.
Each incremental result is checked equal to its engine's full recompute (latest row per user).
Times are wall clock of the governed calls (checks, audit rows, Delta reads and commits included);
`*_cpu_s` are the CPU seconds of this process's threads and of Spark's JVM in the same call: on a
shared machine the wall clock is inflated by others, the CPU less. `state_compaction_s` is the
rewrite of the state that happens once every 32 refreshes (amortized: under 0.1 s a refresh at 1M).
`--quick`: 20,000 users and 600,000 events, 2 cycles, DuckDB only. Prints one JSON object.

80,000,000 users every 15 minutes (the seed's target), from these figures: the incremental work is
proportional to the users touched (1% with new events, ~1/96 whose recency ticks over, those with
events crossing a window edge: ~3% of the users per 15 minutes), plus one pass over the state's
`user_id` column (8 bytes a user) to find their state rows; the full recompute reads every event
(80x the 30M here: 2.4 billion). At 1M users the incremental refresh costs about 0.18 CPU-seconds
against about 4.7 for the full one; scaled by 80 that is ~15 CPU-seconds against ~380 CPU-seconds
(plus the full's read of ~23 GB of Parquet), i.e. one 2-core machine keeps 80M users fresh every
15 minutes with the incremental refresh (seconds of work per cycle), where the full recompute
would take a few minutes of the same machine every cycle. The state at 80M users is ~1.7 GB of
uncompressed Parquet (21 MB at 1M), compacted every 32 refreshes (~1 minute of a core at that size,
amortized to a few seconds a cycle); the feature table grows by ~2.4M rows a refresh (appended,
never re-read by the refresh). Spark computes the delta as one task (one input partition of the
touched users' rows, one aggregation, no shuffle, generated code compiled once per schedule): its
fixed cost per refresh (handing the rows over as Arrow, planning, one task) is ~0.4-0.5 s warm at these
sizes; at 80M its delta is ~5M input rows, split by user into a few partitions, seconds on a cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

EV, FULL, INC = "main.churn.events", "main.churn.features_full", "main.churn.features_inc"


def peak_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_s() -> float:
    """CPU seconds (user + system) of this process and its live descendants (Spark's JVM)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(pid)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)  # ppid, utime + stime
    mine, total, grew = {os.getpid()}, 0.0, True
    while grew:
        more = {p for p, (pp, _) in stats.items() if pp in mine} - mine
        grew = bool(more)
        mine |= more
    for p in mine:
        total += stats.get(p, (0, 0.0))[1]
    return total


CPU: dict[str, float] = {}


def timed(fn, *args, label: str = "", **kwargs):  # type: ignore[no-untyped-def]
    """Wall seconds of a call; its CPU seconds (all threads, Spark's JVM included) kept in CPU[label]."""
    c0, start = cpu_s(), time.perf_counter()
    out = fn(*args, **kwargs)
    wall = round(time.perf_counter() - start, 3)
    if label:
        CPU[label] = round(cpu_s() - c0, 2)
    return out, wall


def new_events(users: int, share: float, t1, seed: int = 99):  # type: ignore[no-untyped-def]
    """Events of `share` of the users in (T1, T2], 5% of them late (up to 10 days back)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    who = rng.choice(users, int(users * share), replace=False)
    counts = rng.integers(1, 6, len(who))
    uid = np.repeat(who, counts).astype(np.int64)
    n = len(uid)
    offset = rng.integers(1, 15 * 60 + 1, n)  # seconds after T1
    late = rng.random(n) < 0.05
    offset = np.where(late, -rng.integers(0, 10 * 86400, n), offset)
    base = int(t1.timestamp())
    return pa.table({"user_id": pa.array(uid, pa.int64()), "event_type": pa.array(["page_view"] * n, pa.string()),
                     "ts": pa.array((base + offset) * 1_000_000, pa.timestamp("us", tz="UTC")),
                     "amount": pa.array([None] * n, pa.float64())})


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=30_000_000)
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--share", type=float, default=0.01, help="share of users with new events")
    ap.add_argument("--cycles", type=int, default=4, help="refresh cycles (medians of all but the first, which warms the engines)")
    args = ap.parse_args(argv)
    if args.quick:
        args.users, args.events, args.no_spark, args.cycles = 20_000, 600_000, True, 2

    # the full recompute is a batch job: on a busy machine it may run past the shim's interactive timeout
    os.environ.setdefault("CAIRN_SQL_TIMEOUT_SECONDS", "1800")
    from catalog.client import Metastore
    from pipelines.churn import data
    from pipelines.churn import features as F
    from pipelines.churn.incremental import refresh, refresh_spark
    from pipelines.churn.refresh_state import compact

    out: dict = {"benchmark": "feature_refresh", "users": args.users, "target_events": args.events, "share_with_new_events": args.share,
                 "machine": f"{os.cpu_count()} cores", "quick": args.quick}
    home = tempfile.mkdtemp(prefix="cairn-bench-refresh-")
    ms = Metastore.open(home=home)
    ms.initialize("admin")
    admin = ms.as_principal("admin")
    admin.sql("CREATE CATALOG main; CREATE SCHEMA main.churn")
    events, out["generate_s"] = timed(data.generate, args.users, args.events, 120, 7)
    out["events"] = events.num_rows
    _, out["load_raw_s"] = timed(data.create_raw_table, admin, EV, events, batch_days=1)  # one commit per day, as ingestion lands it
    del events
    t1 = data.end_of(120)
    spark_names = ("main.churn.features_inc_spark", "main.churn.features_full_spark")
    for name in (FULL, INC) + (() if args.no_spark else spark_names):
        F.create_feature_table(admin, name)
    # the state at T1: the first refresh of an empty feature table is a full recompute, which also
    # builds the refresh state (pipelines/churn/refresh_state.py)
    _, out["initial_full_duckdb_s"] = timed(refresh, admin, EV, INC, t1)
    if not args.no_spark:
        refresh(admin, EV, spark_names[0], t1)
    # the state table is compacted every 32 refreshes (one file per refresh until then): its cost, once
    _, out["state_compaction_s"] = timed(compact, admin, INC + "_state")
    spark = None
    if not args.no_spark:
        from pipelines.spark import local_session

        spark = local_session("cairn-bench-refresh", cores="2")
        spark.conf.set("spark.sql.shuffle.partitions", "8")
        for _ in range(2):  # the JVM warmed up (its start and first code generation are no part of either)
            spark.sql("SELECT a.id % 7 AS k, count(*), max(b.id) FROM range(1000) a LEFT JOIN range(100) b ON a.id = b.id "
                      "GROUP BY 1 UNION ALL SELECT 1, 2, 3").collect()
    opts = {"principal": "admin", "home": home}
    runs: dict[str, dict[str, list]] = {e: {k: [] for k in ("incremental_s", "incremental_cpu_s", "full_s", "full_cpu_s", "users_written", "identical")}
                                        for e in ("duckdb", "spark") if e == "duckdb" or spark is not None}
    t, out["new_events"] = t1, []
    for cycle in range(args.cycles):  # each: 1% of the users get events, 15 minutes pass, both refreshes
        fresh = new_events(args.users, args.share, t, seed=99 + cycle)
        out["new_events"].append(fresh.num_rows)
        admin.data.write(EV, fresh)
        t += timedelta(minutes=15)
        for engine, rec in runs.items():
            if engine == "duckdb":
                r, inc = timed(refresh, admin, EV, INC, t, label="inc")
                _, full = timed(F.full_sql, admin, EV, FULL, t, label="full")
                a, b = INC, FULL
            else:
                r, inc = timed(refresh_spark, spark, admin, EV, spark_names[0], t, label="inc")
                _, full = timed(F.full_spark, spark, EV, spark_names[1], t, opts, label="full")
                a, b = spark_names
            for k, v in (("incremental_s", inc), ("incremental_cpu_s", CPU["inc"]), ("full_s", full), ("full_cpu_s", CPU["full"]),
                         ("users_written", r.users_written)):
                rec[k].append(v)
            rec["identical"].append(bool(F.latest_rows(admin.data.read(a)).equals(F.latest_rows(admin.data.read(b)))))
    for engine, rec in runs.items():
        res: dict = {f"{k}_runs": v for k, v in rec.items()}
        res["first_cycle_incremental_s"] = rec["incremental_s"][0]
        for k in ("incremental_s", "incremental_cpu_s", "full_s", "full_cpu_s"):
            res[k] = round(statistics.median(rec[k][1:] or rec[k]), 3)  # the first cycle warms the engine for these queries
        res["identical"] = all(rec["identical"])
        res["speedup"] = round(res["full_s"] / res["incremental_s"], 1)
        res["cpu_speedup"] = round(res["full_cpu_s"] / max(res["incremental_cpu_s"], 0.01), 1)
        out[engine] = res
    if spark is not None:
        out["spark"]["identical_to_duckdb"] = bool(F.latest_rows(admin.data.read(spark_names[1])).equals(F.latest_rows(admin.data.read(FULL))))
        spark.stop()
    out["target"] = "incremental >= 20x faster than full, identical results"
    out["met"] = {e: out[e]["identical"] and out[e]["speedup"] >= 20 for e in runs}
    out["peak_mb"] = peak_mb()
    ms.close()
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
