"""Delta I/O benchmark: the catalog's governed path against deltalake and Spark used directly.

Writes and reads N rows of 20 columns through `cairn.data` and through `deltalake` (the overhead
target is <= 1.1x), merges 1% changed rows into the N-row table (time, and its ratio to a full
overwrite), and reads the table with Spark through the governed data source against Spark reading
the same Parquet files directly. Prints one JSON object.

    python benchmarks/delta_io.py [--quick] [--rows N] [--no-spark]
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

import numpy as np
import pyarrow as pa


def make_table(rows: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    cols = {"user_id": pa.array(np.arange(rows, dtype=np.int64))}
    for i in range(9):
        cols[f"f{i}"] = pa.array(rng.random(rows))
    for i in range(9):
        cols[f"c{i}"] = pa.array(rng.integers(0, 1000, rows, dtype=np.int64))
    cols["bucket"] = pa.array(rng.integers(0, 100, rows, dtype=np.int32))
    return pa.table(cols)


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def best(fn, reps: int = 3) -> float:  # type: ignore[no-untyped-def]
    return min(timed(fn)[0] for _ in range(reps))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--no-spark", action="store_true")
    args = ap.parse_args()
    rows = args.rows or (200_000 if args.quick else 10_000_000)
    reps = 3 if args.quick else 2

    from deltalake import DeltaTable, write_deltalake

    from catalog.client import Metastore

    home = tempfile.mkdtemp(prefix="cairn-delta-")
    ms = Metastore.open(home=home)
    ms.initialize("admin")
    c = ms.as_principal("admin")
    c.catalogs.create_catalog("bench")
    c.schemas.create_schema("bench.io")
    data = make_table(rows)
    c.tables.create_table("bench.io.t", data=data.slice(0, 1))
    location = c.tables.get_table("bench.io.t").storage_location
    raw = str(Path(home) / "raw")
    write_deltalake(raw, data.slice(0, 1))

    # Writes: overwrite the whole table, governed against direct.
    cairn_write = best(lambda: c.data.write("bench.io.t", data, mode="overwrite"), reps)
    direct_write = best(lambda: write_deltalake(raw, data, mode="overwrite"), reps)
    # Reads: the whole snapshot as Arrow, interleaved so both see the same cache and memory state.
    cairn_reads, direct_reads = [], []
    for _ in range(7):
        cairn_reads.append(timed(lambda: c.data.read("bench.io.t"))[0])
        direct_reads.append(timed(lambda: DeltaTable(raw).to_pyarrow_table())[0])
    cairn_read, direct_read = statistics.median(cairn_reads), statistics.median(direct_reads)
    projected = best(lambda: c.data.read("bench.io.t", columns=["user_id", "f0"], filters=[("bucket", "=", 7)]), reps)

    # Merge 1% changed rows (half updates, half inserts) against a full overwrite.
    changed = max(1, rows // 100)
    rng = np.random.default_rng(2)
    upd_ids = rng.choice(rows, changed // 2, replace=False)
    src = make_table(changed, seed=3).set_column(0, "user_id", pa.array(np.concatenate([upd_ids, np.arange(rows, rows + changed - len(upd_ids))]).astype(np.int64)))
    merge_s, merged = timed(lambda: c.data.merge("bench.io.t", src, on=["user_id"]))
    overwrite_s = best(lambda: c.data.write("bench.io.t", data, mode="overwrite"), 1)
    assert merged.metrics["num_target_rows_updated"] == len(upd_ids)

    out = {
        "benchmark": "delta_io",
        "quick": args.quick,
        "rows": rows,
        "columns": data.num_columns,
        "cairn_write_s": round(cairn_write, 3),
        "deltalake_write_s": round(direct_write, 3),
        "write_overhead_x": round(cairn_write / direct_write, 3),
        "cairn_read_s": round(cairn_read, 3),
        "deltalake_read_s": round(direct_read, 3),
        "read_overhead_x": round(cairn_read / direct_read, 3),
        "projected_filtered_read_s": round(projected, 3),
        "merge_1pct_s": round(merge_s, 3),
        "merge_rows_updated": merged.metrics["num_target_rows_updated"],
        "merge_rows_inserted": merged.metrics["num_target_rows_inserted"],
        "full_overwrite_s": round(overwrite_s, 3),
        "merge_to_overwrite_ratio": round(merge_s / overwrite_s, 3),
    }

    if not args.no_spark:
        from pipelines.spark import local_session

        spark = local_session("cairn-bench")
        opts = {"home": home, "principal": "admin"}
        files = [f[len("file://"):] if f.startswith("file://") else f for f in DeltaTable(location).file_uris()]

        def via_cairn() -> int:
            return spark.read.format("cairn").options(**opts).load("bench.io.t").selectExpr("sum(f0)", "count(*)").collect()[0][1]

        def via_parquet() -> int:
            return spark.read.parquet(*files).selectExpr("sum(f0)", "count(*)").collect()[0][1]

        via_cairn(), via_parquet()  # warm up the JVM and Python workers
        out["spark_read_cairn_s"] = round(best(via_cairn, reps), 3)
        out["spark_read_parquet_s"] = round(best(via_parquet, reps), 3)
        out["spark_read_overhead_x"] = round(out["spark_read_cairn_s"] / out["spark_read_parquet_s"], 3)
        out["spark_rows"] = via_cairn()
        # Filter pushdown: eight files of disjoint user_id ranges; a filter on one range reads one file.
        c.tables.create_table("bench.io.ranges", data=data.slice(0, 0))
        step = rows // 8
        for i in range(8):
            c.data.write("bench.io.ranges", data.slice(i * step, step))
        # One load per DataFrame: Spark 4.3 shares a pushdown's planned read among a DataFrame's scans.
        ranges = spark.read.format("cairn").options(**opts).load("bench.io.ranges")
        one = spark.read.format("cairn").options(**opts, skipFiles="true").load("bench.io.ranges").where(f"user_id < {step}")
        out["spark_pushdown_files_read"] = f"{one.rdd.getNumPartitions()} of {ranges.rdd.getNumPartitions()}"
        out["spark_pushdown_read_s"] = round(best(lambda: one.selectExpr("sum(f0)").collect(), reps), 3)
        out["spark_full_read_8_files_s"] = round(best(lambda: ranges.selectExpr("sum(f0)").collect(), reps), 3)
        spark.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
