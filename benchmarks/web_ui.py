"""Web UI benchmark: the lineage graph of a large fan-out, drawn by the page at `/` in headless
Chromium (Debian's), through a real `cairn serve` app on 127.0.0.1.

A table feeds F datasets which feed L datasets each (OpenLineage job events): 1 + F + F*L nodes.
For each graph, medians over the repetitions of: the GraphQL fetch as the page sees it, the first
paint (wide fan-outs folded), and unfolding every node to the painted frame. Prints one JSON object.

    python benchmarks/web_ui.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402

from api.server import make_app  # noqa: E402
from catalog.client import Metastore  # noqa: E402

SIZES = {"quick": [(40, 49)], "full": [(40, 49), (100, 99)]}  # 2,001 and 10,001 nodes


def fan_out(admin, table: str, fan: int, leaves: int) -> None:  # type: ignore[no-untyped-def]
    event = {"eventTime": "2026-01-01T00:00:00Z", "producer": "bench", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json"}
    tag = table.rsplit(".", 1)[1]
    admin.lineage.ingest_openlineage({**event, "job": {"namespace": "bench", "name": tag}, "inputs": [{"namespace": "cairn", "name": table}],
                                      "outputs": [{"namespace": "s3://lake", "name": f"{tag}/mid/{i}"} for i in range(fan)]})
    for i in range(fan):
        admin.lineage.ingest_openlineage({**event, "job": {"namespace": "bench", "name": f"{tag}{i}"},
                                          "inputs": [{"namespace": "s3://lake", "name": f"{tag}/mid/{i}"}],
                                          "outputs": [{"namespace": "s3://lake", "name": f"{tag}/leaf/{i}/{j}"} for j in range(leaves)]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args()
    if not (ROOT / "api" / "web" / "node_modules" / "playwright-core").is_dir() or not shutil.which("node") or not Path("/usr/bin/chromium").exists():
        raise SystemExit("needs node, playwright-core (make install) and Debian's chromium (make test installs it)")
    sizes, reps = SIZES["quick" if args.quick else "full"], args.reps or (3 if args.quick else 5)
    with tempfile.TemporaryDirectory() as home:
        ms = Metastore.open(home=home)
        ms.initialize("admin")
        admin = ms.as_principal("admin")
        admin.sql("CREATE CATALOG main; CREATE SCHEMA main.raw")
        refs = {}
        for fan, leaves in sizes:
            table = f"main.raw.big_{fan}"
            admin.sql(f"CREATE TABLE {table} (id BIGINT)")
            fan_out(admin, table, fan, leaves)
            refs[table] = 1 + fan + fan * leaves
        server = uvicorn.Server(uvicorn.Config(make_app(ms), host="127.0.0.1", port=0, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        plan = {"url": f"http://127.0.0.1:{port}", "token": admin.tokens.create_token()[0], "refs": list(refs), "reps": reps}
        run = subprocess.run(["node", "bench_ui.mjs", json.dumps(plan)], cwd=ROOT / "api" / "web", capture_output=True, text=True, timeout=900)
        server.should_exit = True
        if run.returncode != 0:
            raise SystemExit(run.stderr[-2000:])
        got = json.loads(run.stdout.strip().splitlines()[-1])
    med = lambda runs, k: round(statistics.median(r[k] for r in runs), 1)  # noqa: E731
    graphs = [{"nodes": refs[t], "laid_out": runs[-1]["laidOut"], "fetch_ms": med(runs, "fetchMs"), "first_paint_ms": med(runs, "renderMs"),
               "expand_all_ms": med(runs, "expandMs")} for t, runs in got["runs"].items()]
    print(json.dumps({"bench": "web_ui", "quick": args.quick, "reps": reps, "browser": "chromium (Debian), headless",
                      "graphs": graphs, "page_errors": got["errors"]}))


if __name__ == "__main__":
    main()
