"""SQL shim benchmark: what the shim adds (parse, checks, audit, rewrite) and its query speed.

- GRANT through `cairn.sql` against the same grant through the Python service;
- a SELECT over three joined tables through the shim against DuckDB on the same Parquet files;
- an aggregate over an N-row table (10 million by default) through the shim against DuckDB
  directly over the same files (target <= 1.2x).
Prints one JSON object.

    python benchmarks/sql_shim.py [--quick] [--rows N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb
import numpy as np
import pyarrow as pa

from catalog.client import Metastore


def med_ms(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return round(statistics.median(out) * 1000, 3)


def files_of(c, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    plan = c.data.plan_scan(name)
    return [f[len("file://"):] if f.startswith("file://") else f for f in plan.files]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", type=int)
    args = ap.parse_args()
    rows = args.rows or (200_000 if args.quick else 10_000_000)
    reps = 30 if args.quick else 50

    ms = Metastore.open(home=tempfile.mkdtemp(prefix="cairn-sql-"))
    ms.initialize("admin")
    c = ms.as_principal("admin")
    c.principals.create_user("ana")
    c.sql("CREATE CATALOG main; USE CATALOG main; CREATE SCHEMA s; USE SCHEMA s")
    rng = np.random.default_rng(5)
    c.tables.create_table("main.s.users", data=pa.table({"user_id": np.arange(1000), "region": rng.choice(["US", "EU", "APAC"], 1000)}))
    c.tables.create_table("main.s.regions", data=pa.table({"region": ["US", "EU", "APAC"], "manager": ["a", "b", "c"]}))
    c.tables.create_table("main.s.orders", data=pa.table({"user_id": rng.integers(0, 1000, 10_000), "amount": rng.random(10_000)}))
    big = pa.table({"user_id": rng.integers(0, 100_000, rows), "amount": rng.random(rows), "qty": rng.integers(1, 10, rows),
                    "country": rng.choice(["US", "FR", "DE", "JP", "BR"], rows)})
    c.tables.create_table("main.s.events", data=big)
    del big

    # GRANT: the shim against the service call it makes.
    grant_sql = med_ms(lambda: c.sql("GRANT SELECT ON TABLE main.s.orders TO ana"), reps)
    grant_direct = med_ms(lambda: c.grants.grant("table", "main.s.orders", "ana", "SELECT"), reps)

    # SELECT over three joined tables: the shim against DuckDB on the same files.
    join = ("SELECT r.manager, count(*) AS n, sum(o.amount) AS total FROM orders o JOIN users u ON o.user_id = u.user_id "
            "JOIN regions r ON u.region = r.region GROUP BY r.manager ORDER BY r.manager")
    paths = {t: files_of(c, f"main.s.{t}") for t in ("orders", "users", "regions", "events")}
    con = duckdb.connect()

    def direct_join() -> None:
        q = join.replace("orders o", f"read_parquet({paths['orders']}) o").replace("users u", f"read_parquet({paths['users']}) u") \
            .replace("regions r", f"read_parquet({paths['regions']}) r")
        con.execute(q).fetchall()

    shim_rows = c.sql(join).rows
    direct_join()
    # Interleaved, so both see the same machine; the overhead is the median of per-pair differences.
    pairs = []
    for _ in range(reps * 4):
        start = time.perf_counter()
        c.sql(join)
        mid = time.perf_counter()
        direct_join()
        pairs.append((mid - start, time.perf_counter() - mid))
    join_sql = round(statistics.median(p[0] for p in pairs) * 1000, 3)
    join_direct = round(statistics.median(p[1] for p in pairs) * 1000, 3)
    join_overhead = round(statistics.median(p[0] - p[1] for p in pairs) * 1000, 3)

    # An aggregate over the big table.
    agg = "SELECT country, count(*) AS n, sum(amount * qty) AS revenue FROM events GROUP BY country ORDER BY country"
    agg_reps = 7 if not args.quick else 9
    c.sql(agg)
    agg_direct_fn = lambda: con.execute(agg.replace("FROM events", f"FROM read_parquet({paths['events']})")).fetchall()  # noqa: E731
    agg_direct_fn()
    shim_t, direct_t = [], []
    for _ in range(agg_reps):  # interleaved, so both see the same cache state
        start = time.perf_counter()
        c.sql(agg)
        shim_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        agg_direct_fn()
        direct_t.append(time.perf_counter() - start)
    agg_sql, agg_direct = statistics.median(shim_t) * 1000, statistics.median(direct_t) * 1000

    print(json.dumps({
        "benchmark": "sql_shim",
        "quick": args.quick,
        "rows": rows,
        "grant_via_sql_ms": grant_sql,
        "grant_via_service_ms": grant_direct,
        "grant_shim_overhead_ms": round(grant_sql - grant_direct, 3),
        "join3_via_sql_ms": join_sql,
        "join3_duckdb_direct_ms": join_direct,
        "join3_shim_overhead_ms": join_overhead,
        "join3_rows": len(shim_rows),
        "aggregate_via_sql_ms": round(agg_sql, 1),
        "aggregate_duckdb_direct_ms": round(agg_direct, 1),
        "aggregate_ratio": round(agg_sql / agg_direct, 3),
    }))


if __name__ == "__main__":
    main()
