"""Model serving: Cairn's endpoint (online feature lookup + inference logging) against `mlflow models serve`.

    .venv/bin/python benchmarks/serving.py [--quick] [--seconds S] [--mlflow-python PATH] [--skip-mlflow] [--cache DIR]

The same xgboost model (20 features) is served by
  - `cairn serve` (one worker): the request carries only `user_id`; the 20 features come from the
    online store (SQLite under CAIRN_HOME, published from a governed feature table), every request
    is authorized (CAN QUERY) and appended to the endpoint's inference table;
  - `mlflow models serve --env-manager local` (its defaults, OMP_NUM_THREADS=1 as for Cairn: with
    OpenMP on both cores, one-row predictions from its thread pool stall for seconds under load):
    the request carries the 20 features.
Both are real HTTP servers on 127.0.0.1, driven by the same closed-loop client, run in a process of
its own (one uvloop event loop, one raw keep-alive connection per client: it shares no GIL with
anything and costs little CPU): 1-record `dataframe_records` requests at 8 and 32 clients, with
p50/p90/p99 and the server's CPU per request (from /proc). Also measured: the cold start of a
scaled-to-zero entity (the first request after it was unloaded), errors, and inference rows
against requests answered (after a SIGTERM of the server, which flushes the log).

Both servers start while the catalog is set up (the runtime finds endpoints made after it started),
and the logged model is built once and kept under --cache, keyed by its recipe and library versions.
Full MLflow (its scoring server) lives in its own virtualenv so the main one keeps mlflow-skinny:
`make mlflow-bench` (./.venv-mlflow, found there by default). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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


def wait_http(port: int, path: str, timeout: float, proc: subprocess.Popen[Any], output: Path | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            said = output.read_text(errors="replace")[-3000:] if output is not None and output.exists() else ""
            raise SystemExit(f"server on {port} exited with {proc.returncode}: {said}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not answer {path} within {timeout} s")


# setup -----------------------------------------------------------------------------------
MODEL_RECIPE = {"features": N_FEATURES, "rows": 5000, "n_estimators": 100, "max_depth": 6, "seed": 7, "recipe": 2}


def feature_spec() -> dict[str, Any]:
    return {"label": "y", "label_source": {"table": None, "version": None}, "feature_tables": [{"table": "bench.s.users", "version": 1}],
            "lookups": [{"table_name": "bench.s.users", "lookup_key": ["user_id"], "timestamp_lookup_key": None, "lookback_window_us": None,
                         "feature_names": FEATURES, "rename_outputs": {}, "default_values": {}}],
            "functions": [], "exclude_columns": [], "point_in_time": False, "input_columns": ["user_id"], "feature_columns": FEATURES}


def model_dir(cache: Path) -> tuple[Path, bool]:
    """The benchmark's xgboost model logged with MLflow (with its feature spec), built once and kept
    under `cache`, keyed by the recipe and the library versions: (directory, whether it was built now)."""
    from importlib.metadata import version

    key = hashlib.sha256(json.dumps([MODEL_RECIPE, feature_spec(), version("xgboost"), version("mlflow-skinny")]).encode()).hexdigest()[:16]
    final = cache / f"model-{key}"
    if (final / "MLmodel").is_file():
        return final, False
    import mlflow
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=cache))
    try:
        rng = np.random.default_rng(MODEL_RECIPE["seed"])
        train = pd.DataFrame(rng.random((MODEL_RECIPE["rows"], N_FEATURES)), columns=FEATURES)
        label = (train.f0 + train.f1 * train.f2 > 0.8).astype(int)
        model = xgb.XGBClassifier(n_estimators=MODEL_RECIPE["n_estimators"], max_depth=MODEL_RECIPE["max_depth"]).fit(train, label)
        mlflow.set_tracking_uri(f"sqlite:///{scratch}/mlflow.db")
        exp = mlflow.create_experiment("serving", artifact_location=f"file://{scratch}/artifacts")
        with mlflow.start_run(experiment_id=exp):
            info = mlflow.xgboost.log_model(model, name="model", input_example=train.head(2))
        built = Path(mlflow.get_logged_model(info.model_id).artifact_location.removeprefix("file://"))
        (built / "feature_spec.json").write_text(json.dumps(feature_spec()))
        try:
            os.replace(built, final)  # atomic: a concurrent run sees the whole model or none
        except OSError:
            if not (final / "MLmodel").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final, True


def start_cairn(home: Path, port: int, output: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CAIRN_HOME": str(home), "PYTHONPATH": str(ROOT), "CAIRN_PRINCIPAL": "admin",
           "CAIRN_SERVING_IDLE_SECONDS": "0.5", "CAIRN_SERVING_PRELOAD": "1"}
    # Output to a file: a pipe nobody reads fills up, and a server that logs blocks on it.
    with output.open("wb") as sink:
        return subprocess.Popen([sys.executable, "-c", "from api.cli import main; main()", "serve", "--port", str(port)],
                                env=env, stdout=sink, stderr=subprocess.STDOUT)


def start_mlflow(mlflow_python: str, model: Path, port: int, output: Path) -> subprocess.Popen[bytes]:
    # its defaults, as users run it; OMP_NUM_THREADS=1 as for Cairn (xgboost on one thread per call)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{os.path.dirname(mlflow_python)}:{os.environ.get('PATH', '')}"}
    # its access log (one line a request, its default) goes to a file, as a deployment's would
    with output.open("wb") as sink:
        return subprocess.Popen([mlflow_python, "-m", "mlflow", "models", "serve", "-m", str(model), "--env-manager", "local",
                                 "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def setup_catalog(home: Path, model: Path, keys: int) -> tuple[str, Any]:
    """The governed side, in a metastore initialized already: the feature table published online, the
    model version, the endpoints. Returns (token, feature values)."""
    import numpy as np
    import pandas as pd

    from catalog.client import Metastore
    from pipelines.features import FeatureEngineeringClient

    ms = Metastore.open(home=home)
    admin = ms.as_principal("admin")
    admin.catalogs.create_catalog("bench")
    admin.schemas.create_schema("bench.s")
    values = np.random.default_rng(7).random((keys, N_FEATURES)).round(6)
    frame = pd.DataFrame(values, columns=FEATURES)
    frame.insert(0, "user_id", np.arange(keys, dtype=np.int64))
    fe = FeatureEngineeringClient(admin)
    fe.create_table("bench.s.users", "user_id", df=frame)
    fe.publish_table("bench.s.users")
    admin.models.create_registered_model("bench.s.clf")
    admin.models.create_model_version("bench.s.clf", f"file://{model}")
    # upload to the version's storage, as registration does: serving reads only that copy
    target = admin.models.generate_temporary_credentials("bench.s.clf", 1, "READ_WRITE_MODEL_VERSION").url.removeprefix("file://")
    shutil.copytree(model, target, dirs_exist_ok=True)
    admin.models.finalize_model_version("bench.s.clf", 1)
    served = [{"name": "clf-1", "entity_name": "bench.s.clf", "entity_version": 1}]
    admin.serving.create_endpoint("bench", served, auto_capture_config={"catalog_name": "bench", "schema_name": "s", "table_name_prefix": "bench"})
    admin.serving.create_endpoint("cold", [{**served[0], "scale_to_zero_enabled": True}])
    token = admin.tokens.create_token()[0]
    ms.close()
    return token, values


def once(port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, float, bytes]:
    """One request on a fresh connection: (status, milliseconds, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    conn.request(method, path, body=body, headers={"Content-Type": "application/json", **headers})
    resp = conn.getresponse()
    data = resp.read()
    ms = round((time.perf_counter() - t0) * 1e3, 1)
    conn.close()
    return resp.status, ms, data


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants (from /proc; 0 where there is none)."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        stats = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stats[int(d)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
        total, todo = 0.0, [pid]
        while todo:
            p = todo.pop()
            total += stats.get(p, (0, 0.0))[1]
            todo.extend(c for c, (ppid, _s) in stats.items() if ppid == p)
        return total
    except (OSError, ValueError):
        return 0.0


# the closed-loop client ------------------------------------------------------------------------
async def _load(port: int, path: str, headers: dict[str, str], bodies: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` closed-loop clients, one keep-alive HTTP/1.1 connection each, on one event loop (a
    small wrk: the client shares the machine with the server, so it must cost little CPU)."""
    import asyncio

    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    requests = [(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Content-Type: application/json\r\n"
                 f"Content-Length: {len(b)}\r\n\r\n").encode() + b for b in bodies]
    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(i: int) -> None:
        nonlocal errors
        r = random.Random(i)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= deadline:
                    break
                writer.write(requests[r.randrange(len(requests))])
                try:  # every wait bounded: a stalled server shows as errors, never as a benchmark that hangs
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                    at = head.lower().find(b"\r\ncontent-length:")
                    await asyncio.wait_for(reader.readexactly(int(head[at + 17: head.index(b"\r\n", at + 2)]) if at >= 0 else 0), 30)
                    ok = head[9:12] == b"200"
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    ok = False
                    writer.close()
                    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
                lat.append(time.perf_counter() - t0)
                if not ok:
                    errors += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - began
    every = sorted(lat)
    n = len(every)

    def pct(p: float) -> float:
        return round(every[min(n - 1, int(n * p))] * 1e3, 3) if n else 0.0

    return {"clients": clients, "requests": n, "errors": errors, "rps": round(n / elapsed, 1),
            "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99), "max_ms": round(every[-1] * 1e3, 3) if n else 0.0}


def client_main(spec: str) -> None:
    """The client process (`--drive SPEC`): a warm-up, then each load level; prints JSON."""
    import gc

    import uvloop

    a = json.loads(spec)
    bodies = Path(a["bodies"]).read_bytes().split(b"\n")
    gc.disable()  # a collection in the client would show as server latency
    out: dict[str, Any] = {}
    if a["warmup"] > 0:
        out["warmup"] = uvloop.run(_load(a["port"], a["path"], a["headers"], bodies, 8, a["warmup"]))
    for c in a["levels"]:
        out[f"c{c}"] = uvloop.run(_load(a["port"], a["path"], a["headers"], bodies, c, a["seconds"]))
    print(json.dumps(out))


def drive(port: int, path: str, headers: dict[str, str], bodies: Path, levels: list[int], seconds: float, warmup: float,
          server_pid: int) -> dict[str, Any]:
    """Run the client in a process of its own (it shares no GIL with the benchmark); each level's
    server CPU per request is measured from /proc."""
    out: dict[str, Any] = {}
    for i, c in enumerate(levels):
        spec = {"port": port, "path": path, "headers": headers, "bodies": str(bodies), "levels": [c], "seconds": seconds,
                "warmup": warmup if i == 0 else 0}
        before = cpu_seconds(server_pid)
        done = subprocess.run([sys.executable, __file__, "--drive", json.dumps(spec)], capture_output=True, text=True, check=True,
                              timeout=seconds + warmup + 120)
        used = cpu_seconds(server_pid) - before
        got = json.loads(done.stdout)
        res = got[f"c{c}"]
        res["server_cpu_ms_per_request"] = round(used * 1e3 / max(res["requests"] + got.get("warmup", {}).get("requests", 0), 1), 3)
        if "warmup" in got:
            out["warmup"] = got["warmup"]
        out[f"c{c}"] = res
    return out


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--drive":
        client_main(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, under 30 s")
    ap.add_argument("--seconds", type=float, default=None, help="measured seconds per load level")
    ap.add_argument("--mlflow-python", default=str(ROOT / ".venv-mlflow" / "bin" / "python"))
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "cairn-bench-serving-cache"),
                    help="where the logged model is kept between runs")
    args = ap.parse_args()
    seconds = args.seconds or (1.0 if args.quick else 10.0)
    warmup = 0.3 if args.quick else 1.0
    keys = 2_000 if args.quick else 100_000
    with_mlflow = not args.skip_mlflow and os.path.exists(args.mlflow_python)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="cairn-bench-serving-"))
    home = work / "home"
    sys.path.insert(0, str(ROOT))
    from catalog.client import Metastore

    phases: dict[str, float] = {}

    def mark(name: str) -> None:
        phases[name] = round(time.perf_counter() - started - sum(phases.values()), 2)

    ms = Metastore.open(home=home)
    ms.initialize("admin")
    ms.close()
    mark("metastore")
    cairn_port, mlflow_port = free_port(), free_port()
    # Both servers start while the rest is set up: the runtime finds endpoints made after it started.
    cairn = start_cairn(home, cairn_port, work / "cairn.log")
    peer = None
    out: dict[str, Any] = {"benchmark": "serving", "quick": args.quick, "seconds_per_level": seconds, "online_keys": keys,
                           "features": N_FEATURES, "model": "xgboost classifier, 100 trees, depth 6"}
    answered = 0
    try:
        model, out["model_built"] = model_dir(Path(args.cache))
        mark("model")
        if with_mlflow:
            peer = start_mlflow(args.mlflow_python, model, mlflow_port, work / "mlflow.log")
        token, values = setup_catalog(home, model, keys)
        mark("catalog")
        wait_http(cairn_port, "/healthz", 60, cairn, work / "cairn.log")
        if peer is not None:  # both up before anything is measured: a server starting steals the CPU
            wait_http(mlflow_port, "/ping", 120, peer, work / "mlflow.log")
        mark("servers_up")
        auth = {"Authorization": f"Bearer {token}"}
        cairn_bodies = work / "cairn-bodies"
        cairn_bodies.write_bytes(b"\n".join(json.dumps({"dataframe_records": [{"user_id": k}]}).encode() for k in range(keys)))
        # the first load of a model (imports settled), then, later, from zero once the entity was unloaded
        cold_path = "/serving-endpoints/cold/invocations"
        status, out["first_load_ms"], _b = once(cairn_port, "POST", cold_path, b'{"dataframe_records": [{"user_id": 0}]}', auth)
        assert status == 200, status
        answered += 1
        mark("first_load")
        out["cairn"] = drive(cairn_port, "/serving-endpoints/bench/invocations", auth, cairn_bodies, [8, 32], seconds, warmup, cairn.pid)
        answered += sum(v["requests"] - v["errors"] for v in out["cairn"].values())
        out["cairn_warmup"] = out["cairn"].pop("warmup")
        mark("cairn_load")
        if peer is not None:
            peer_bodies = work / "mlflow-bodies"
            peer_bodies.write_bytes(b"\n".join(json.dumps({"dataframe_records": [dict(zip(FEATURES, map(float, values[k])))]}).encode()
                                               for k in range(min(keys, 5000))))
            out["mlflow"] = drive(mlflow_port, "/invocations", {}, peer_bodies, [8, 32], seconds, warmup, peer.pid)
            out["mlflow_warmup"] = out["mlflow"].pop("warmup")
            mark("mlflow_load")
        deadline = time.time() + 10  # idle past CAIRN_SERVING_IDLE_SECONDS: scaled to zero
        while time.time() < deadline:
            got = json.loads(once(cairn_port, "GET", "/api/2.0/serving-endpoints/cold", None, auth)[2])
            if got["config"]["served_entities"][0]["state"]["cairn_state"] == "SCALED_TO_ZERO":
                break
            time.sleep(0.05)
        out["cold_start_status"], out["cold_start_ms"], _b = once(cairn_port, "POST", cold_path, b'{"dataframe_records": [{"user_id": 1}]}', auth)
        answered += out["cold_start_status"] == 200
        mark("cold_start")
    finally:
        cairn.send_signal(signal.SIGTERM)
        if peer is not None:
            os.killpg(peer.pid, signal.SIGTERM)
        cairn.wait(60)
        if peer is not None:
            try:
                peer.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(peer.pid, signal.SIGKILL)
    mark("shutdown")
    ms = Metastore.open(home=home)
    rows = ms.as_principal("admin").data.read("bench.s.bench_payload").num_rows
    ms.close()
    shutil.rmtree(work, ignore_errors=True)
    out["inference_rows"] = rows
    out["requests_answered"] = answered - 2  # the two requests to the `cold` endpoint log nothing
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
        "inference_rows_equal_answered": rows == out["requests_answered"],
    }
    if not with_mlflow:
        out["mlflow"] = f"skipped: no full MLflow at {args.mlflow_python} (make mlflow-bench)"
    mark("rows")
    out["phase_seconds"] = phases
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
