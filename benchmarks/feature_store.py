"""Feature store: a point-in-time training set and online lookups, Cairn against Feast and DuckDB.

    .venv/bin/python benchmarks/feature_store.py [--quick] [--skip-feast] [--feast-file] [--no-online] [--feast-python PATH]

Offline: a training set of L labels x a feature table of R rows (K keys, 20 features), one timestamp
lookup with a lookback window, built by
  - Cairn (`FeatureEngineeringClient.create_training_set(...).load_df()`: governed planning, audit,
    DuckDB ASOF over the Delta snapshot's Parquet files),
  - a hand-written DuckDB ASOF JOIN over the same Parquet files (no governance),
  - Feast `get_historical_features` on its DuckDB offline store (its fastest here; its file/dask
    store with --feast-file),
each in its own process (so peak memory is its own), answers compared row by row.
Online: publish K_online keys to SQLite, an incremental re-publish after 1% of keys change, and
lookups of 1 and 100 keys (p50/p99) in process, against Feast's SQLite online store.

Feast pins starlette>=1, which Cairn's server cannot use yet, so it lives in its own virtualenv:
`python -m venv .venv-feast && .venv-feast/bin/pip install 'feast[duckdb]==0.67.0'` (found at
./.venv-feast by default). Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_FEATURES = 20
LOOKBACK = timedelta(days=30)
START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_DAYS = 365
FEAST_ONLINE_KEYS = 100_000


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across fork+exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p))] * 1e3, 3)


# data -------------------------------------------------------------------------------------
def generate(work: str, labels: int, rows: int, keys: int) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    per_key = rows // keys
    user = np.repeat(np.arange(keys, dtype=np.int64), per_key)
    # Distinct timestamps per key (seconds apart over a year), sorted within the key.
    offs = np.sort(rng.choice(SPAN_DAYS * 86400, size=(keys, per_key), replace=True), axis=1).reshape(-1)
    offs = offs + np.tile(np.arange(per_key), keys)  # no two rows of a key share a timestamp
    base = int(START.timestamp()) * 1_000_000
    ts = pa.array(base + offs.astype(np.int64) * 1_000_000, pa.timestamp("us", "UTC"))
    cols = {"user_id": pa.array(user), "ts": ts}
    for i in range(N_FEATURES):
        values = rng.standard_normal(len(user))
        mask = rng.random(len(user)) < 0.01  # some nulls: a null latest value must stay null
        cols[f"f{i}"] = pa.array(values, mask=mask)
    features = pa.table(cols)
    # Labels: keys mostly known (some unknown), times anywhere in the year (some before any row).
    lu = rng.integers(0, int(keys * 1.05), labels, dtype=np.int64)
    lt = rng.integers(-5 * 86400, (SPAN_DAYS + 5) * 86400, labels, dtype=np.int64)
    lt = lt - (lt % 60)  # whole minutes, so some labels fall exactly on feature timestamps' minutes
    pairs = np.unique(np.stack([lu, lt], axis=1), axis=0)  # unique (key, time): Feast needs it
    rng.shuffle(pairs)
    lab = pa.table({"row_id": pa.array(np.arange(len(pairs), dtype=np.int64)), "user_id": pa.array(pairs[:, 0]),
                    "ts": pa.array(base + pairs[:, 1] * 1_000_000, pa.timestamp("us", "UTC")),
                    "y": pa.array(rng.integers(0, 2, len(pairs)))})
    pq.write_table(features, os.path.join(work, "features.parquet"))
    pq.write_table(lab, os.path.join(work, "labels.parquet"))
    return {"labels": lab.num_rows, "rows": features.num_rows, "keys": keys, "features": N_FEATURES}


def setup_cairn(work: str, online_keys: int, feast_online: int) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from catalog.client import Metastore
    from pipelines.features import FeatureEngineeringClient

    ms = Metastore.open(home=os.path.join(work, "cairn"))
    ms.initialize("admin")
    admin = ms.as_principal("admin")
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.bench")
    fe = FeatureEngineeringClient(admin)
    features = pq.read_table(os.path.join(work, "features.parquet"))
    fe.create_table("main.bench.users", ["user_id"], ["ts"], schema=features.schema)
    t0 = time.perf_counter()
    fe.write_table("main.bench.users", features, mode="overwrite")
    write_s = time.perf_counter() - t0
    plan = admin.data.plan_scan("main.bench.users")
    rng = np.random.default_rng(11)
    online = {"user_id": pa.array(np.arange(online_keys, dtype=np.int64)),
              "ts": pa.array(np.full(online_keys, int(START.timestamp()) * 1_000_000), pa.timestamp("us", "UTC"))}
    for i in range(N_FEATURES):
        online[f"f{i}"] = pa.array(rng.standard_normal(online_keys))
    online_t = pa.table(online)
    pq.write_table(online_t, os.path.join(work, "online.parquet"))
    # Feast materializes row by row in Python (~2,000 rows/s here): it gets at most 100,000 keys.
    pq.write_table(online_t.slice(0, min(online_keys, feast_online)), os.path.join(work, "online_feast.parquet"))
    fe.create_table("main.bench.online", ["user_id"], ["ts"], schema=online_t.schema)
    fe.write_table("main.bench.online", online_t, mode="overwrite")
    ms.close()
    return {"files": [f[len("file://"):] if f.startswith("file://") else f for f in plan.files], "write_seconds": round(write_s, 2)}


# workers ----------------------------------------------------------------------------------
def work_cairn(work: str) -> dict:
    import duckdb  # noqa: F401 - imported before the clock starts, as the hand-written worker does
    import pyarrow.parquet as pq

    import pipelines.features.training  # noqa: F401
    from catalog.client import Metastore
    from pipelines.features import FeatureEngineeringClient, FeatureLookup

    labels = pq.read_table(os.path.join(work, "labels.parquet"))
    fe = FeatureEngineeringClient(Metastore.open(home=os.path.join(work, "cairn")).as_principal("admin"))
    t0, c0 = time.perf_counter(), time.process_time()
    ts = fe.create_training_set(labels, [FeatureLookup("main.bench.users", "user_id", timestamp_lookup_key="ts", lookback_window=LOOKBACK)],
                                label="y")
    out = ts.load_df(format="arrow")
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    pq.write_table(out, os.path.join(work, "out_cairn.parquet"))
    return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "rows": out.num_rows, "peak_rss_mb": peak_mb()}


def work_asof(work: str, files: list[str]) -> dict:
    import duckdb
    import pyarrow.parquet as pq

    con = duckdb.connect()
    feats = ", ".join(f"f.f{i}" for i in range(N_FEATURES))
    listed = ", ".join(f"'{f}'" for f in files)
    lb = int(LOOKBACK.total_seconds())
    t0, c0 = time.perf_counter(), time.process_time()
    out = con.execute(f"""
        SELECT l.*, {', '.join(f'CASE WHEN f.ts >= l.ts - INTERVAL {lb} SECOND THEN f.f{i} END AS f{i}' for i in range(N_FEATURES))}
        FROM read_parquet('{os.path.join(work, "labels.parquet")}') l ASOF LEFT JOIN (SELECT user_id, ts, {feats.replace('f.', '')} FROM read_parquet([{listed}])) f
          ON l.user_id = f.user_id AND l.ts >= f.ts
        ORDER BY l.row_id
    """).to_arrow_table()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    pq.write_table(out, os.path.join(work, "out_asof.parquet"))
    return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "rows": out.num_rows, "peak_rss_mb": peak_mb()}


def _feast_repo(work: str, offline: str) -> object:
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    repo = os.path.join(work, f"feast_{offline}")
    os.makedirs(repo, exist_ok=True)
    with open(os.path.join(repo, "feature_store.yaml"), "w") as fh:
        fh.write(f"project: bench\nregistry: {repo}/registry.db\nprovider: local\nentity_key_serialization_version: 3\n"
                 f"offline_store:\n  type: {offline}\nonline_store:\n  type: sqlite\n  path: {repo}/online.db\n")
    store = FeatureStore(repo_path=repo)
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    fields = [Field(name=f"f{i}", dtype=Float64) for i in range(N_FEATURES)]
    users = FeatureView(name="users", entities=[user], ttl=LOOKBACK, schema=fields,
                        source=FileSource(path=os.path.join(work, "features.parquet"), timestamp_field="ts"))
    online = FeatureView(name="online", entities=[user], ttl=timedelta(days=3650), schema=fields,
                         source=FileSource(path=os.path.join(work, "online_feast.parquet"), timestamp_field="ts"))
    store.apply([user, users, online])
    return store


def work_feast(work: str, offline: str, online_keys: int) -> dict:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = _feast_repo(work, offline)
    entity = pq.read_table(os.path.join(work, "labels.parquet")).to_pandas().rename(columns={"ts": "event_timestamp"})
    refs = [f"users:f{i}" for i in range(N_FEATURES)]
    t0 = time.perf_counter()
    out = store.get_historical_features(entity_df=entity, features=refs).to_df()
    seconds = time.perf_counter() - t0
    out = out.rename(columns={"event_timestamp": "ts"}).sort_values("row_id")
    pq.write_table(pa.Table.from_pandas(out, preserve_index=False), os.path.join(work, f"out_feast_{offline}.parquet"))
    result = {"seconds": round(seconds, 3), "rows": len(out), "peak_rss_mb": peak_mb()}
    if offline == "duckdb" and online_keys > 0:
        t0 = time.perf_counter()
        store.materialize(START - timedelta(days=1), datetime.now(UTC), feature_views=["online"])
        result["online_materialize_seconds"] = round(time.perf_counter() - t0, 2)
        result["online_keys"] = online_keys
        online_refs = [f"online:f{i}" for i in range(N_FEATURES)]
        import random

        rnd = random.Random(3)
        for n in (1, 100):
            lat, cpu = [], []
            for _ in range(300 if n == 1 else 200):
                rows = [{"user_id": rnd.randrange(online_keys)} for _ in range(n)]
                t, c = time.perf_counter(), time.thread_time()
                store.get_online_features(features=online_refs, entity_rows=rows).to_dict()
                lat.append(time.perf_counter() - t)
                cpu.append(time.thread_time() - c)
            result[f"online_{n}_key_ms"] = {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "cpu_p50": pct(cpu, 0.5), "cpu_p99": pct(cpu, 0.99)}
    del pd
    return result


def online_cairn(work: str, online_keys: int) -> dict:
    import random

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from catalog.client import Metastore
    from pipelines.features import FeatureEngineeringClient

    fe = FeatureEngineeringClient(Metastore.open(home=os.path.join(work, "cairn")).as_principal("admin"))
    t0, c0 = time.perf_counter(), time.process_time()
    full = fe.publish_table("main.bench.online")
    full_s, full_cpu = time.perf_counter() - t0, time.process_time() - c0
    # 1% of the keys change.
    table = pq.read_table(os.path.join(work, "online.parquet"))
    rng = np.random.default_rng(5)
    idx = np.sort(rng.choice(online_keys, online_keys // 100, replace=False))
    changed = table.take(pa.array(idx))
    changed = changed.set_column(2, "f0", pa.array(rng.standard_normal(len(idx))))
    fe.write_table("main.bench.online", changed)
    t0, c0 = time.perf_counter(), time.process_time()
    inc = fe.publish_table("main.bench.online")
    inc_s, inc_cpu = time.perf_counter() - t0, time.process_time() - c0
    got = fe.read_online_features("main.bench.online", [{"user_id": int(idx[0])}], ["f0"]).rows[0]["f0"]
    assert abs(got - changed.column("f0")[0].as_py()) < 1e-12, "the incremental publish lost a change"
    out = {"keys": online_keys, "full_publish_seconds": round(full_s, 3), "full_keys_per_second": int(full.keys_written / full_s),
           "incremental_changed_keys": inc.keys_written, "incremental_point_reads": inc.keys_point_read,
           "incremental_publish_seconds": round(inc_s, 3),
           "incremental_speedup": round(full_s / inc_s, 1),
           # CPU time of this process (its threads included): less at the mercy of a loaded machine.
           "full_publish_cpu_seconds": round(full_cpu, 3), "incremental_publish_cpu_seconds": round(inc_cpu, 3),
           "incremental_speedup_cpu": round(full_cpu / inc_cpu, 1) if inc_cpu > 0 else None}
    rnd = random.Random(3)
    reader = fe.online_reader("main.bench.online")
    for n in (1, 100):
        lat, lat_gov, cpu = [], [], []
        for i in range((2000 if n == 1 else 500) // (2 if online_keys < 100_000 else 1)):
            keys = [rnd.randrange(online_keys) for _ in range(n)]
            t, c = time.perf_counter(), time.thread_time()
            reader.lookup(keys)
            lat.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)
            if i < 200:
                t = time.perf_counter()
                fe.read_online_features("main.bench.online", [{"user_id": k} for k in keys])
                lat_gov.append(time.perf_counter() - t)
        # Wall time, and this thread's CPU time: on a loaded machine the wall p99 is the scheduler's.
        out[f"{n}_key_ms"] = {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "cpu_p50": pct(cpu, 0.5), "cpu_p99": pct(cpu, 0.99)}
        out[f"{n}_key_checked_every_call_ms"] = {"p50": pct(lat_gov, 0.5), "p99": pct(lat_gov, 0.99)}
    return out


# comparison -------------------------------------------------------------------------------
def compare(work: str, a: str, b: str) -> dict:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    x = pq.read_table(os.path.join(work, f"out_{a}.parquet"))
    y = pq.read_table(os.path.join(work, f"out_{b}.parquet"))
    x = x.sort_by("row_id")
    y = y.sort_by("row_id")
    if x.num_rows != y.num_rows:
        return {"rows": [x.num_rows, y.num_rows], "differing_rows": None}
    differ = None
    for i in range(N_FEATURES):
        c1, c2 = x.column(f"f{i}"), y.column(f"f{i}")
        same = pc.or_(pc.and_(pc.is_null(c1), pc.is_null(c2)), pc.fill_null(pc.equal(c1, c2), False))
        d = pc.invert(same)
        differ = d if differ is None else pc.or_(differ, d)
    assert differ is not None
    return {"rows": x.num_rows, "differing_rows": pc.sum(differ).as_py() or 0,
            "row_ids_equal": x.column("row_id").equals(y.column("row_id"))}


def run_worker(args: list[str], python: str = sys.executable, timeout: float = 1800) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT)
    try:
        proc = subprocess.run([python, os.path.abspath(__file__), *args], capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1] if (proc.stderr or proc.stdout).strip() else f"exit {proc.returncode}",
                "stderr_tail": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    # Run as a script, this folder comes first on the path, and its lineage.py would shadow the package.
    sys.path[:] = [ROOT] + [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
    argv = sys.argv[1:]
    if argv and argv[0] == "--worker":
        kind, work = argv[1], argv[2]
        if kind == "cairn":
            print(json.dumps(work_cairn(work)))
        elif kind == "asof":
            print(json.dumps(work_asof(work, json.loads(argv[3]))))
        elif kind == "online":
            print(json.dumps(online_cairn(work, int(argv[3]))))
        else:
            print(json.dumps(work_feast(work, kind.split(":")[1], int(argv[3]))))
        return
    quick = "--quick" in argv
    skip_feast = "--skip-feast" in argv
    feast_python = argv[argv.index("--feast-python") + 1] if "--feast-python" in argv else os.path.join(ROOT, ".venv-feast", "bin", "python")
    labels, rows, keys, online_keys = (10_000, 100_000, 1_000, 10_000) if quick else (1_000_000, 10_000_000, 100_000, 1_000_000)
    feast_online = 5_000 if quick else FEAST_ONLINE_KEYS
    started = time.perf_counter()
    load_at_start = [round(x, 1) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="cairn-fs-bench-") as work:
        sizes = generate(work, labels, rows, keys)
        setup = setup_cairn(work, online_keys, feast_online)
        result: dict = {"benchmark": "feature_store", "quick": quick, "sizes": {**sizes, "online_keys": online_keys},
                        "lookback_days": LOOKBACK.days, "cores": os.cpu_count(), "cairn_write_seconds": setup["write_seconds"],
                        "load_average_at_start": load_at_start}
        # At the full size each twice, alternating, the faster run kept: the first reader of freshly
        # written files pays for the page cache, whichever it is.
        runs: dict[str, list[dict]] = {"cairn": [], "duckdb_asof_by_hand": []}
        for _ in range(1 if quick else 2):
            runs["cairn"].append(run_worker(["--worker", "cairn", work]))
            runs["duckdb_asof_by_hand"].append(run_worker(["--worker", "asof", work, json.dumps(setup["files"])]))
        for name, got in runs.items():
            ok = [r for r in got if "seconds" in r]
            result[name] = {**min(ok, key=lambda r: r["seconds"]), "runs_seconds": [r["seconds"] for r in ok]} if ok else got[0]
        if "seconds" in result["cairn"] and "seconds" in result["duckdb_asof_by_hand"]:
            result["cairn_vs_asof"] = compare(work, "cairn", "asof")
        if "seconds" in result["cairn"] and "seconds" in result["duckdb_asof_by_hand"]:
            result["cairn_over_asof"] = round(result["cairn"]["seconds"] / result["duckdb_asof_by_hand"]["seconds"], 2)
            # Process CPU time (DuckDB's threads included) of the kept runs: the machine's load weighs less on it.
            result["cairn_over_asof_cpu"] = round(result["cairn"]["cpu_seconds"] / result["duckdb_asof_by_hand"]["cpu_seconds"], 2)
        if skip_feast:
            result["feast"] = "skipped (--skip-feast)"
        elif not os.path.exists(feast_python):
            result["feast"] = f"not run: no Feast virtualenv at {feast_python} (see the docstring)"
        else:
            feast: dict = {}
            # Feast's file (dask) store took 20x longer than its DuckDB store (52 s for 50,000 labels x
            # 500,000 rows, 2.4 GB peak): it runs only when asked, with --feast-file.
            for offline in ("duckdb", "file") if "--feast-file" in argv else ("duckdb",):
                got = run_worker(["--worker", f"feast:{offline}", work, str(0 if "--no-online" in argv else feast_online)], python=feast_python)
                feast[offline] = got
                if "seconds" in got and "seconds" in result["cairn"]:
                    got["vs_cairn"] = compare(work, "cairn", f"feast_{offline}")
            result["feast"] = feast
            fastest = min((v["seconds"] for v in feast.values() if "seconds" in v), default=None)
            if fastest and "seconds" in result["cairn"]:
                result["cairn_speedup_over_fastest_feast"] = round(fastest / result["cairn"]["seconds"], 2)
        result["online"] = "skipped (--no-online)" if "--no-online" in argv else run_worker(["--worker", "online", work, str(online_keys)])
        result["total_seconds"] = round(time.perf_counter() - started, 1)
    result["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
    result["targets"] = targets(result)
    print(json.dumps(result))


def targets(result: dict) -> dict:
    """The issue's targets, each with the measured figure and whether it is met (None: not measured)."""
    online = result.get("online") if isinstance(result.get("online"), dict) else {}
    feast = result.get("feast", {}).get("duckdb", {}) if isinstance(result.get("feast"), dict) else {}

    def row(measured: float | None, op: str, bound: float) -> dict:
        met = None if measured is None else (measured >= bound if op == ">=" else measured <= bound)
        return {"measured": measured, "target": f"{op} {bound}", "met": met}

    return {
        "speedup_over_fastest_feast": row(result.get("cairn_speedup_over_fastest_feast"), ">=", 2.0),
        "cairn_over_hand_written_asof": row(result.get("cairn_over_asof"), "<=", 1.3),
        "differences_vs_feast": row((feast.get("vs_cairn") or {}).get("differing_rows"), "<=", 0),
        "online_1_key_p99_ms": row((online.get("1_key_ms") or {}).get("p99"), "<=", 1.0),
        "online_100_keys_p99_ms": row((online.get("100_key_ms") or {}).get("p99"), "<=", 5.0),
        "incremental_publish_speedup": row(online.get("incremental_speedup"), ">=", 20.0),
        # The same figures in CPU time, so a loaded machine's noise is visible (not targets themselves).
        "cpu_cairn_over_hand_written_asof": result.get("cairn_over_asof_cpu"),
        "cpu_online_1_key_p99_ms": (online.get("1_key_ms") or {}).get("cpu_p99"),
        "cpu_online_100_keys_p99_ms": (online.get("100_key_ms") or {}).get("cpu_p99"),
        "cpu_incremental_publish_speedup": online.get("incremental_speedup_cpu"),
        "feast_online_1_key_p99_ms": (feast.get("online_1_key_ms") or {}).get("p99"),
        "feast_online_100_keys_p99_ms": (feast.get("online_100_key_ms") or {}).get("p99"),
    }


if __name__ == "__main__":
    main()
