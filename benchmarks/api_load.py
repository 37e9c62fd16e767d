"""API load benchmark: N concurrent clients on loopback against `cairn serve`'s app.

Measures requests per second, p50 and p99 for a simple GraphQL query (a table by name with its
tags), a 3-hop lineage query over GraphQL, and a UC REST get-table; every request must succeed.
The server runs as users run it, `cairn serve --workers N` (default 2, one per core here), in
processes of its own; the clients are closed-loop keep-alive connections. Prints one JSON object.

    python benchmarks/api_load.py [--quick] [--clients 32] [--seconds 60] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def prepare(home: str, url: str | None) -> str:
    from catalog.client import Metastore

    ms = Metastore.open(home=home, url=url)
    ms.initialize("admin")
    c = ms.as_principal("admin")
    c.sql("CREATE CATALOG main; CREATE SCHEMA main.s")
    for i in range(20):
        c.tables.create_table(f"main.s.t{i}", [{"name": "id", "type": "bigint"}, {"name": "email", "type": "string"}])
        c.tags.set_tags("table", f"main.s.t{i}", {"tier": "gold"})
    for i in range(19):
        c.lineage.record([f"main.s.t{i}"], [f"main.s.t{i + 1}"])
    token, _ = c.tokens.create_token()
    ms.close()
    return token


async def load(url: str, method: str, body: dict | None, token: str, clients: int, seconds: float) -> dict:
    """Closed-loop clients, one keep-alive HTTP/1.1 connection each (a small wrk: the client shares the
    machine with the server, so it must cost little CPU; a full HTTP client library costs more per
    request than the server does). Runs on uvloop, reads each response head in one call."""
    parsed = urlsplit(url)
    payload = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
    request = head + payload
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                writer.write(request)
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
                at = head.find(b"\r\ncontent-length:")
                length = int(head[at + 17 : head.index(b"\r\n", at + 2)]) if at >= 0 else 0
                response = await reader.readexactly(length)
                latencies.append(time.perf_counter() - start)
                if head[9:12] != b"200" or (method == "POST" and b'"errors"' in response):
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    lat = sorted(latencies)
    return {"requests": len(lat), "rps": round(len(lat) / elapsed, 1), "p50_ms": round(statistics.median(lat) * 1000, 2),
            "p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 2), "errors": errors}


def run(coro):  # type: ignore[no-untyped-def]
    import uvloop

    return uvloop.run(coro)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--workers", type=int, default=2, help="server processes (cairn serve --workers)")
    ap.add_argument("--metastore-url", help="a fresh PostgreSQL database instead of the embedded SQLite")
    args = ap.parse_args()
    seconds = args.seconds or (4 if args.quick else 60)
    home = tempfile.mkdtemp(prefix="cairn-load-")
    token = prepare(home, args.metastore_url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The server as users run it: `cairn serve`, in processes of its own (clients and server share no GIL).
    env = {**os.environ, "CAIRN_HOME": home}
    env.pop("CAIRN_METASTORE_URL", None)
    if args.metastore_url:
        env["CAIRN_METASTORE_URL"] = args.metastore_url
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", str(args.workers)],
                            cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    import httpx

    for _ in range(400):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    simple = {"query": '{ table(name: "main.s.t3") { fullName owner tags { key value } } }'}
    lineage = {"query": '{ lineage(name: "main.s.t3", depth: 3) { truncated nodes { name depth } } }'}
    try:
        out = {"benchmark": "api_load", "quick": args.quick, "clients": args.clients, "seconds": seconds, "server_workers": args.workers, "metastore": "postgresql" if args.metastore_url else "sqlite"}
        out["graphql_simple"] = run(load(f"{base}/graphql", "POST", simple, token, args.clients, seconds))
        out["graphql_lineage_3hop"] = run(load(f"{base}/graphql", "POST", lineage, token, args.clients, seconds))
        out["rest_get_table"] = run(load(f"{base}/api/2.1/unity-catalog/tables/main.s.t3", "GET", None, token, args.clients, seconds))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
