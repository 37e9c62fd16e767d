"""Model serving: Cairn's endpoint (online feature lookup + inference logging) against `mlflow models serve`.

    .venv/bin/python benchmarks/serving.py [--quick] [--seconds S] [--mlflow-python PATH] [--skip-mlflow]

The same xgboost model (20 features) is served by
  - `cairn serve` (one worker): the request carries only `user_id`; the 20 features come from the
    online store (SQLite under CAIRN_HOME, published from a governed feature table), every request
    is authorized (CAN QUERY) and appended to the endpoint's inference table;
  - `mlflow models serve --env-manager local` (its defaults): the request carries the 20 features.
Both are real HTTP servers on 127.0.0.1, driven by the same closed-loop client (each client sends a
1-record `dataframe_records` request on its own keep-alive connection and waits for the answer), at
8 and 32 clients. Also measured: the cold start of a scaled-to-zero entity (the first request after
it was unloaded), errors, and inference rows against requests answered (after a SIGTERM of the
server, which flushes the log).

Full MLflow (its scoring server) lives in its own virtualenv so the main one keeps mlflow-skinny:
`make mlflow-bench` (./.venv-mlflow, found there by default). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
N_FEATURES = 20
FEATURES = [f"f{i}" for i in range(N_FEATURES)]
TARGETS = {"cairn_p99_ms_at_8": 5.0, "speedup_at_32": 3.0, "cold_start_ms": 1000.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str, timeout: float, proc: subprocess.Popen[Any]) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on {port} exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not answer {path} within {timeout} s")


# setup -----------------------------------------------------------------------------------
def setup(work: Path, keys: int) -> dict[str, Any]:
    """Metastore, feature table published online, an xgboost model logged with MLflow and its spec."""
    import mlflow
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    sys.path.insert(0, str(ROOT))
    from catalog.client import Metastore
    from pipelines.features import FeatureEngineeringClient

    home = work / "home"
    ms = Metastore.open(home=home)
    ms.initialize("admin")
    admin = ms.as_principal("admin")
    admin.catalogs.create_catalog("bench")
    admin.schemas.create_schema("bench.s")
    rng = np.random.default_rng(7)
    values = rng.random((keys, N_FEATURES)).round(6)
    frame = pd.DataFrame(values, columns=FEATURES)
    frame.insert(0, "user_id", np.arange(keys, dtype=np.int64))
    fe = FeatureEngineeringClient(admin)
    fe.create_table("bench.s.users", "user_id", df=frame)
    fe.publish_table("bench.s.users")

    mlflow.set_tracking_uri(f"sqlite:///{work}/mlflow.db")
    exp = mlflow.create_experiment("serving", artifact_location=f"file://{work}/artifacts")
    train = pd.DataFrame(rng.random((5000, N_FEATURES)), columns=FEATURES)
    label = (train.f0 + train.f1 * train.f2 > 0.8).astype(int)
    model = xgb.XGBClassifier(n_estimators=100, max_depth=6).fit(train, label)
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.xgboost.log_model(model, name="model", input_example=train.head(2))
    source = mlflow.get_logged_model(info.model_id).artifact_location
    spec = {"label": "y", "label_source": {"table": None, "version": None}, "feature_tables": [{"table": "bench.s.users", "version": 1}],
            "lookups": [{"table_name": "bench.s.users", "lookup_key": ["user_id"], "timestamp_lookup_key": None, "lookback_window_us": None,
                         "feature_names": FEATURES, "rename_outputs": {}, "default_values": {}}],
            "functions": [], "exclude_columns": [], "point_in_time": False, "input_columns": ["user_id"], "feature_columns": FEATURES}
    (Path(source.removeprefix("file://")) / "feature_spec.json").write_text(json.dumps(spec))
    admin.models.create_registered_model("bench.s.clf")
    admin.models.create_model_version("bench.s.clf", source)
    admin.models.finalize_model_version("bench.s.clf", 1)
    served = [{"name": "clf-1", "entity_name": "bench.s.clf", "entity_version": 1}]
    admin.serving.create_endpoint("bench", served, auto_capture_config={"catalog_name": "bench", "schema_name": "s", "table_name_prefix": "bench"})
    admin.serving.create_endpoint("cold", [{**served[0], "scale_to_zero_enabled": True}])
    token = admin.tokens.create_token()[0]
    ms.close()
    return {"home": home, "source": source, "token": token, "values": values}


def once(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
    """One request on a fresh connection: (status, milliseconds)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
    resp = conn.getresponse()
    resp.read()
    ms = round((time.perf_counter() - t0) * 1e3, 1)
    conn.close()
    return resp.status, ms


# the closed-loop client ------------------------------------------------------------------------
def drive(port: int, path: str, headers: dict[str, str], bodies: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` threads, each on its own keep-alive connection, sending one request after another."""
    stop = time.perf_counter() + seconds
    lat: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_gate = threading.Barrier(clients + 1)

    def one(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        r = random.Random(i)
        mine = lat[i]
        h = {"Content-Type": "application/json", **headers}
        start_gate.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                break
            try:
                conn.request("POST", path, body=bodies[r.randrange(len(bodies))], headers=h)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine.append(time.perf_counter() - t0)
            if not ok:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    every = sorted(x for xs in lat for x in xs)
    n = len(every)

    def pct(p: float) -> float:
        return round(every[min(n - 1, int(n * p))] * 1e3, 3) if n else 0.0

    return {"clients": clients, "requests": n, "errors": sum(errors), "rps": round(n / elapsed, 1),
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(every[-1] * 1e3, 3) if n else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, about 25 s")
    ap.add_argument("--seconds", type=float, default=None, help="measured seconds per load level")
    ap.add_argument("--mlflow-python", default=str(ROOT / ".venv-mlflow" / "bin" / "python"))
    ap.add_argument("--skip-mlflow", action="store_true")
    args = ap.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    keys = 2_000 if args.quick else 100_000
    with_mlflow = not args.skip_mlflow and os.path.exists(args.mlflow_python)
    work = Path(tempfile.mkdtemp(prefix="cairn-bench-serving-"))
    started = time.perf_counter()
    world = setup(work, keys)
    env = {**os.environ, "CAIRN_HOME": str(world["home"]), "PYTHONPATH": str(ROOT), "CAIRN_PRINCIPAL": "admin",
           "CAIRN_SERVING_IDLE_SECONDS": "1", "CAIRN_SERVING_PRELOAD": "1"}
    cairn_port, mlflow_port = free_port(), free_port()
    cairn = subprocess.Popen([sys.executable, "-c", "from api.cli import main; main()", "serve", "--port", str(cairn_port)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peer = None
    if with_mlflow:
        model_dir = world["source"].removeprefix("file://")
        peer = subprocess.Popen([args.mlflow_python, "-m", "mlflow", "models", "serve", "-m", model_dir, "--env-manager", "local",
                                 "-h", "127.0.0.1", "-p", str(mlflow_port)],
                                env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db",
                                     "PATH": f"{os.path.dirname(args.mlflow_python)}:{os.environ.get('PATH', '')}"},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out: dict[str, Any] = {"benchmark": "serving", "quick": args.quick, "seconds_per_level": seconds, "online_keys": keys,
                           "features": N_FEATURES, "model": "xgboost classifier, 100 trees, depth 6"}
    answered = 0
    try:
        wait_http(cairn_port, "/healthz", 60, cairn)
        if peer is not None:  # both up before anything is measured: a server starting steals the CPU
            wait_http(mlflow_port, "/ping", 120, peer)
        auth = {"Authorization": f"Bearer {world['token']}"}
        cairn_bodies = [json.dumps({"dataframe_records": [{"user_id": k}]}).encode() for k in range(keys)]
        path = "/serving-endpoints/bench/invocations"
        # cold start: the first load (imports MLflow), then from zero once the entity was unloaded
        cold_path = "/serving-endpoints/cold/invocations"
        status, out["first_load_ms"] = once(cairn_port, cold_path, cairn_bodies[0], auth)
        assert status == 200, status
        time.sleep(2.5)  # idle past CAIRN_SERVING_IDLE_SECONDS: scaled to zero
        out["cold_start_status"], out["cold_start_ms"] = once(cairn_port, cold_path, cairn_bodies[0], auth)
        warm = drive(cairn_port, path, auth, cairn_bodies, 8, min(1.0, seconds))
        answered += warm["requests"] - warm["errors"]
        out["cairn"] = {}
        for clients in (8, 32):
            res = drive(cairn_port, path, auth, cairn_bodies, clients, seconds)
            answered += res["requests"] - res["errors"]
            out["cairn"][f"c{clients}"] = res
        if peer is not None:
            vals = world["values"]
            peer_bodies = [json.dumps({"dataframe_records": [dict(zip(FEATURES, map(float, vals[k])))]}).encode() for k in range(min(keys, 5000))]
            drive(mlflow_port, "/invocations", {}, peer_bodies, 8, min(1.0, seconds))
            out["mlflow"] = {f"c{c}": drive(mlflow_port, "/invocations", {}, peer_bodies, c, seconds) for c in (8, 32)}
    finally:
        cairn.send_signal(signal.SIGTERM)
        cairn.wait(60)
        if peer is not None:
            peer.send_signal(signal.SIGTERM)
            try:
                peer.wait(20)
            except subprocess.TimeoutExpired:
                peer.kill()
    from catalog.client import Metastore

    ms = Metastore.open(home=world["home"])
    rows = ms.as_principal("admin").data.read("bench.s.bench_payload").num_rows
    ms.close()
    out["inference_rows"] = rows
    out["requests_answered"] = answered
    if "mlflow" in out:
        out["speedup_at_32"] = round(out["cairn"]["c32"]["rps"] / max(out["mlflow"]["c32"]["rps"], 1e-9), 2)
        out["speedup_at_8"] = round(out["cairn"]["c8"]["rps"] / max(out["mlflow"]["c8"]["rps"], 1e-9), 2)
    errors = sum(v["errors"] for side in ("cairn", "mlflow") for v in out.get(side, {}).values())
    out["errors"] = errors
    out["targets"] = TARGETS
    out["met"] = {
        "cairn_p99_ms_at_8": out["cairn"]["c8"]["p99_ms"] <= TARGETS["cairn_p99_ms_at_8"],
        "speedup_at_32": out.get("speedup_at_32", 0) >= TARGETS["speedup_at_32"] if "mlflow" in out else None,
        "cold_start_ms": out["cold_start_ms"] <= TARGETS["cold_start_ms"] and out["cold_start_status"] == 200,
        "zero_errors": errors == 0,
        "inference_rows_equal_answered": rows == answered,
    }
    if not with_mlflow:
        out["mlflow"] = f"skipped: no full MLflow at {args.mlflow_python} (make mlflow-bench)"
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
