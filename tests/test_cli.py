"""The real `cairn` console script, in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# This checkout's CLI, whichever venv runs the tests (an installed `cairn` script may point at another checkout).
CAIRN = [sys.executable, "-m", "api.cli"]


def run(home: Path, *args: str, principal: str = "admin") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CAIRN_HOME": str(home), "CAIRN_PRINCIPAL": principal}
    env.pop("CAIRN_METASTORE_URL", None)
    return subprocess.run(cwd=ROOT, args=[*CAIRN, *args], capture_output=True, text=True, env=env, timeout=60)


def test_help_is_fast() -> None:
    start = time.perf_counter()
    out = subprocess.run(cwd=ROOT, args=[*CAIRN, "--help"], capture_output=True, text=True, timeout=30)
    elapsed = time.perf_counter() - start
    assert out.returncode == 0 and "governance catalog" in out.stdout
    assert elapsed < 0.5, f"cairn --help took {elapsed:.2f}s"


def test_init_grant_why_and_audit(tmp_path: Path) -> None:
    assert "with admin 'root'" in run(tmp_path, "init", "--admin", "root").stdout
    again = run(tmp_path, "init", "--admin", "root")
    assert again.returncode == 1 and "FAILED_PRECONDITION" in again.stderr
    for args in (["principal", "create", "alice"], ["principal", "create", "eng", "--kind", "group"],
                 ["principal", "add-member", "eng", "alice"], ["catalog", "create", "main"], ["schema", "create", "main.s"],
                 ["table", "create", "main.s.t", "--column", "id:bigint:not null", "--column", "email:string"],
                 ["grant", "USE CATALOG,USE SCHEMA,SELECT", "catalog", "main", "eng"],
                 ["tag", "set", "table", "main.s.t", "pii=true", "--column", "email"]):
        res = run(tmp_path, *args, principal="root")
        assert res.returncode == 0, (args, res.stderr)
    why = json.loads(run(tmp_path, "--json", "why", "table", "main.s.t", principal="alice").stdout)
    assert why == [{"privilege": "SELECT", "because": "SELECT inherited from catalog main to eng through group eng"}]
    tables = json.loads(run(tmp_path, "--json", "table", "list", "main", principal="alice").stdout)
    assert [t["name"] for t in tables] == ["main.s.t"]
    denied = run(tmp_path, "table", "drop", "main.s.t", principal="alice")
    assert denied.returncode == 1 and "PERMISSION_DENIED" in denied.stderr and "Traceback" not in denied.stderr
    bad = run(tmp_path, "table", "get", "main..t", principal="alice")
    assert bad.returncode == 2 and "part 2 is empty" in bad.stderr
    events = json.loads(run(tmp_path, "--json", "audit", "log", "--result", "DENIED", principal="root").stdout)
    assert [(e["principal"], e["action"], e["source"]) for e in events] == [("alice", "delete_table", "cli")]


@pytest.mark.slow
def test_demo_runs_twice(tmp_path: Path) -> None:
    first = run(tmp_path, "demo")
    assert first.returncode == 0, first.stderr
    assert "alice: sees main.features.user_activity; SELECT allowed: True" in first.stdout
    assert "bob: NOT_FOUND" in first.stdout
    second = run(tmp_path, "demo")
    assert second.returncode == 0 and "initialized" not in second.stdout


def test_lineage_sql_command(tmp_path: Path) -> None:
    script = tmp_path / "job.sql"
    script.write_text("INSERT INTO gold.spend SELECT user_id, sum(amount) AS total FROM raw.orders GROUP BY user_id;\n")
    res = run(tmp_path, "lineage", "sql", str(script), "--dialect", "databricks", "--json")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert (got["sources"], got["targets"]) == (["raw.orders"], ["gold.spend"])
    assert {"source": "raw.orders.amount", "target": "gold.spend.total", "kind": "DIRECT", "subtype": "AGGREGATION"} in got["columns"]
    bad = tmp_path / "bad.sql"
    bad.write_text("SELECT a\nFROM t WHERE (")
    res = run(tmp_path, "lineage", "sql", str(bad))
    assert res.returncode == 1 and "line 2, column 14" in res.stderr


def test_sql_command_and_shell(tmp_path: Path) -> None:
    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    res = run(tmp_path, "--json", "sql", "CREATE CATALOG main; USE CATALOG main; CREATE SCHEMA s; USE SCHEMA s; "
              "CREATE TABLE t AS SELECT 1 AS id, 'a' AS name; SELECT * FROM t", principal="root")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1] if False else res.stdout[res.stdout.rindex("["):]) == [{"id": 1, "name": "a"}]
    bad = run(tmp_path, "sql", "SELECT * FROM main.s.nope", principal="root")
    assert bad.returncode == 1 and "NOT_FOUND" in bad.stderr and "Traceback" not in bad.stderr
    env = {**os.environ, "CAIRN_HOME": str(tmp_path), "CAIRN_PRINCIPAL": "root"}
    shell = subprocess.run(cwd=ROOT, args=[*CAIRN, "sql"], input="USE CATALOG main;\nSELECT count(*) AS n\nFROM s.t;\nSELECT * FROM;\n",
                           capture_output=True, text=True, env=env, timeout=60)
    assert shell.returncode == 0
    assert "using catalog main" in shell.stdout and "│ 1 │" in shell.stdout
    assert "INVALID_ARGUMENT" in shell.stderr  # the bad statement is reported and the shell goes on


def test_token_commands(tmp_path: Path) -> None:
    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    assert run(tmp_path, "principal", "create", "alice", principal="root").returncode == 0
    raw = run(tmp_path, "token", "create", "--principal", "alice", "--expires", "30d", "--quiet", principal="root").stdout.strip()
    assert raw.startswith("cairn_") and len(raw) > 40
    listed = json.loads(run(tmp_path, "--json", "token", "list", principal="root").stdout)
    assert [t["principal"] for t in listed] == ["alice"] and "token" not in listed[0]
    assert run(tmp_path, "token", "create", "--principal", "root", principal="alice").returncode == 1  # only admins mint for others
    assert run(tmp_path, "token", "revoke", listed[0]["token_id"], principal="alice").returncode == 0
    assert json.loads(run(tmp_path, "--json", "token", "list", principal="root").stdout)[0]["revoked_at"] is not None


def test_serve_with_workers_balances_connections_and_stops_cleanly(tmp_path: Path) -> None:
    import signal
    import socket

    import httpx

    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    raw = run(tmp_path, "token", "create", "--quiet", principal="root").stdout.strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CAIRN_HOME": str(tmp_path), "CAIRN_PRINCIPAL": "root"}
    env.pop("CAIRN_METASTORE_URL", None)
    proc = subprocess.Popen(cwd=ROOT, args=[*CAIRN, "serve", "--port", str(port), "--workers", "2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    clients: list[httpx.Client] = []
    try:
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        time.sleep(0.3)  # the probe's closed connection is reported back to the balancer
        for i in range(10):  # ten keep-alive connections held open: five go to each worker
            clients.append(httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {raw}"}))
            r = clients[-1].post("/graphql", json={"query": "mutation { createCatalog(name: \"c%d\") { name } }" % i})
            assert r.json() == {"data": {"createCatalog": {"name": f"c{i}"}}}
        names = json.loads(run(tmp_path, "--json", "catalog", "list", principal="root").stdout)
        assert sorted(c["name"] for c in names) == sorted(f"c{i}" for i in range(10))
        counts = []  # two more connections, one to each worker: each counts only the requests it served
        for _ in range(2):
            clients.append(httpx.Client(base_url=f"http://127.0.0.1:{port}"))
            text = clients[-1].get("/metrics").text
            counts.append(next(int(x.rsplit(" ", 1)[1]) for x in text.splitlines()
                               if x.startswith('cairn_requests_total{route="/graphql",method="POST",status="200"}')))
        assert counts == [5, 5]
    finally:
        for c in clients:
            c.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    assert proc.returncode == 0
    time.sleep(0.2)
    with socket.socket() as s:  # every worker is gone: the port is free again
        s.bind(("127.0.0.1", port))


def test_serve_names_a_port_already_in_use(tmp_path: Path) -> None:
    import socket

    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {**os.environ, "CAIRN_HOME": str(tmp_path), "CAIRN_PRINCIPAL": "root"}
        env.pop("CAIRN_METASTORE_URL", None)
        r = subprocess.run(cwd=ROOT, args=[*CAIRN, "serve", "--port", str(port), "--workers", "2"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in r.stderr
