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
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cwd=ROOT, args=[*CAIRN, "--help"], capture_output=True, text=True, timeout=30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert out.returncode == 0 and "governance catalog" in out.stdout
    # CPU time, not wall time: what `cairn --help` costs is its imports, and a busy test machine
    # (xdist workers, servers, other suites) stretches wall time without changing them.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 0.5, f"cairn --help took {cpu:.2f}s of CPU"


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


# A newcomer's first hour (issue 14) -------------------------------------------------------------
def test_no_metastore_means_no_files_and_a_clear_hint(tmp_path: Path) -> None:
    home = tmp_path / "typo"
    res = run(home, "table", "list", "main")
    assert res.returncode == 1
    assert res.stderr.strip() == f"error: FAILED_PRECONDITION: no metastore at {home}; run `cairn init --admin NAME` or set CAIRN_HOME"
    assert not home.exists()  # nothing created
    url = f"sqlite:///{tmp_path / 'nowhere.db'}"
    res = run(tmp_path, "--url", url, "--json", "principal", "list")
    assert json.loads(res.stderr) == {"error": {"code": "FAILED_PRECONDITION",
                                                "message": f"no metastore at {url}; run `cairn init --admin NAME` or set CAIRN_HOME"}}
    assert not (tmp_path / "nowhere.db").exists()
    assert run(home, "init", "--admin", "root").returncode == 0 and (home / "metastore.db").exists()


def test_audit_log_is_newest_first_says_how_many_and_takes_a_time_window(tmp_path: Path) -> None:
    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    for name in ("a", "b", "c"):
        assert run(tmp_path, "catalog", "create", name, principal="root").returncode == 0
    events = json.loads(run(tmp_path, "--json", "audit", "log", "--action", "create_catalog", principal="root").stdout)
    assert [e["securable"] for e in events] == ["c", "b", "a"]
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    shown = run(tmp_path, "audit", "log", "--action", "create_catalog", "--limit", "2", principal="root")
    assert shown.returncode == 0 and "showing 2 of 3 events; older ones: " in shown.stdout
    assert "│ c " in shown.stdout and "│ a " not in shown.stdout
    older = shown.stdout.rsplit("older ones: ", 1)[1].strip()  # a command that works pasted into a shell
    rest = subprocess.run(["bash", "-c", older.replace(" audit log ", " --json audit log ")], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"]}, timeout=60)
    assert rest.returncode == 0, rest.stderr
    assert [e["securable"] for e in json.loads(rest.stdout)] == ["a"]
    future = json.loads(run(tmp_path, "--json", "audit", "log", "--since", "2999-01-01", principal="root").stdout)
    assert future == []
    recent = json.loads(run(tmp_path, "--json", "audit", "log", "--action", "create_catalog", "--since", "1h", "--until", "2999-01-01T00:00",
                            principal="root").stdout)
    assert len(recent) == 3
    bad = run(tmp_path, "audit", "log", "--since", "yesterday", principal="root")
    assert bad.returncode == 2 and "neither an ISO date/time" in bad.stderr


@pytest.mark.slow
def test_the_demos_hints_work_pasted_into_a_clean_shell(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    demo = subprocess.run(cwd=ROOT, args=[*CAIRN, "--home", str(tmp_path), "--as", "admin", "demo"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert demo.returncode == 0, demo.stderr
    assert "demo: set up" in demo.stdout and "7/7" in demo.stdout  # the progress bar's last state
    hints = demo.stdout.split("\ntry:\n", 1)[1].strip().splitlines()
    assert len(hints) == 2 and all(f"--home {tmp_path}" in h for h in hints)
    shell = {k: v for k, v in env.items() if k in ("PATH", "HOME", "LANG")}  # what a fresh terminal has, no CAIRN_*
    tables = subprocess.run(["bash", "-c", hints[0].strip()], cwd=ROOT, capture_output=True, text=True, env=shell, timeout=60)
    assert tables.returncode == 0 and "main.features.user_activity" in tables.stdout
    denied = subprocess.run(["bash", "-c", hints[1].strip()], cwd=ROOT, capture_output=True, text=True, env=shell, timeout=60)
    assert denied.returncode == 0, denied.stderr
    assert "bob" in denied.stdout and "DENIED" in denied.stdout and "showing 1 of 1 events" in denied.stdout


def test_values_are_never_cut_piped_or_on_a_narrow_terminal(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    assert run(tmp_path, "token", "create", "--comment", "a rather long comment that makes the table wide", principal="root").returncode == 0
    token_id = json.loads(run(tmp_path, "--json", "token", "list", principal="root").stdout)[0]["token_id"]
    piped = run(tmp_path, "token", "list", principal="root")
    assert token_id in piped.stdout and "…" not in piped.stdout
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))  # a 40-column terminal
    env = {**os.environ, "CAIRN_HOME": str(tmp_path), "CAIRN_PRINCIPAL": "root", "TERM": "xterm"}
    env.pop("COLUMNS", None)
    proc = subprocess.Popen([*CAIRN, "token", "list"], cwd=ROOT, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(30)
    os.close(leader)
    text = out.decode()
    assert proc.returncode == 0
    assert f"token_id: {token_id}" in text and "…" not in text  # one field per line instead of a cut table


def test_json_everywhere_with_one_shape_for_get_and_list(tmp_path: Path) -> None:
    assert run(tmp_path, "--json", "init", "--admin", "root").stdout.count('"admin": "root"') == 1
    for args in (["catalog", "create", "main"], ["schema", "create", "main.s"], ["table", "create", "main.s.t", "--column", "id:bigint"]):
        assert run(tmp_path, "--json", *args, principal="root").returncode == 0
    got = json.loads(run(tmp_path, "--json", "table", "get", "main.s.t", principal="root").stdout)
    listed = json.loads(run(tmp_path, "--json", "table", "list", "main", principal="root").stdout)
    assert listed == [got] and got["columns"] == [{"name": "id", "type": "bigint", "nullable": True, "comment": None}]
    dropped = json.loads(run(tmp_path, "--json", "table", "drop", "main.s.t", principal="root").stdout)
    assert dropped == {"message": "dropped table main.s.t", "dropped": "main.s.t"}
    missing = run(tmp_path, "--json", "table", "get", "main.s.t", principal="root")
    assert missing.returncode == 1 and json.loads(missing.stderr) == {"error": {"code": "NOT_FOUND", "message": "table 'main.s.t' does not exist"}}
    usage = run(tmp_path, "--json", "table", "get", principal="root")
    assert usage.returncode == 2 and json.loads(usage.stderr)["error"]["code"] == "INVALID_ARGUMENT"


def test_describe_history_has_columns_iso_times_and_user_names(tmp_path: Path) -> None:
    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    assert run(tmp_path, "sql", "CREATE CATALOG main; CREATE TABLE main.default.t AS SELECT 1 AS id" .replace("main.default", "main.s")
               .replace("CREATE TABLE", "CREATE SCHEMA main.s; CREATE TABLE"), principal="root").returncode == 0
    res = run(tmp_path, "--json", "sql", "DESCRIBE HISTORY main.s.t", principal="root")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert list(row)[:5] == ["version", "timestamp", "userName", "operation", "operationParameters"]
    assert (row["version"], row["userName"], row["operation"]) == (0, "root", "WRITE")
    assert row["timestamp"].endswith("+00:00") and row["timestamp"][:4].isdigit() and "T" in row["timestamp"]
    assert json.loads(row["operationParameters"]) == {"mode": "ErrorIfExists"}


def test_every_command_has_help_and_each_flag_one_meaning() -> None:
    import click

    from api.cli import cli

    def walk(cmd: click.Command, path: str) -> list[tuple[str, click.Command]]:
        out = [(path, cmd)]
        for name, sub in getattr(cmd, "commands", {}).items():
            out += walk(sub, f"{path} {name}")
        return out

    commands = walk(cli, "cairn")
    assert len(commands) >= 30
    assert [p for p, c in commands if not (c.help or "").strip()] == []
    serve = subprocess.run(cwd=ROOT, args=[*CAIRN, "serve", "--help"], capture_output=True, text=True, timeout=30).stdout
    assert "GraphQL" in serve and "GraphiQL" in serve
    audit_help = subprocess.run(cwd=ROOT, args=[*CAIRN, "audit", "--help"], capture_output=True, text=True, timeout=30).stdout
    assert "--server" in audit_help and "--url" not in audit_help  # --url is the metastore's, at the top level only


def test_grant_takes_the_sql_habit(tmp_path: Path) -> None:
    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    for args in (["principal", "create", "carol"], ["principal", "create", "ml-engineers", "--kind", "group"],
                 ["sql", "CREATE CATALOG main; CREATE SCHEMA main.s; CREATE TABLE main.s.t AS SELECT 1 AS id"]):
        assert run(tmp_path, *args, principal="root").returncode == 0
    res = run(tmp_path, "grant", "SELECT", "ON", "TABLE", "main.s.t", "TO", "carol", principal="root")
    assert res.returncode == 0 and res.stdout.strip() == "granted SELECT on table main.s.t to carol"
    res = run(tmp_path, "grant", "USE", "CATALOG", "ON", "CATALOG", "main", "TO", "ml-engineers", principal="root")
    assert res.returncode == 0, res.stderr
    grants = json.loads(run(tmp_path, "--json", "grants", "table", "main.s.t", principal="root").stdout)
    assert grants == [{"principal": "carol", "privilege": "SELECT"}]
    assert json.loads(run(tmp_path, "--json", "grants", "catalog", "main", principal="root").stdout) == [
        {"principal": "ml-engineers", "privilege": "USE CATALOG"}]
    assert run(tmp_path, "revoke", "SELECT", "ON", "TABLE", "main.s.t", "FROM", "carol", principal="root").returncode == 0
    assert json.loads(run(tmp_path, "--json", "grants", "table", "main.s.t", principal="root").stdout) == []
    wrong = run(tmp_path, "grant", "SELECT", "main.s.t", principal="root")
    assert wrong.returncode == 2 and "cairn grant SELECT ON TABLE main.s.t TO carol" in wrong.stderr


def test_serve_says_the_port_is_taken_before_anything_else(tmp_path: Path) -> None:
    import socket

    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        r = run(tmp_path, "serve", "--port", str(port), principal="root")
    assert r.returncode == 1 and r.stdout == ""  # no banner first
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use: the port is taken" in r.stderr
    assert f"--port {port + 1}" in r.stderr and f"make run PORT={port + 1}" in r.stderr


@pytest.mark.slow
def test_serve_prints_ready_once_it_answers(tmp_path: Path) -> None:
    import signal
    import socket

    import httpx

    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CAIRN_HOME": str(tmp_path), "CAIRN_PRINCIPAL": "root", "PYTHONUNBUFFERED": "1"}
    env.pop("CAIRN_METASTORE_URL", None)
    proc = subprocess.Popen([*CAIRN, "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
        assert lines[0].startswith(f"Cairn on http://127.0.0.1:{port}: GraphQL http://127.0.0.1:{port}/graphql")
        assert lines[1].startswith("try: curl")
        assert lines[2].strip() == f"ready: Cairn answers on http://127.0.0.1:{port} (Ctrl-C stops it)"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        mint = lines[1].split("$(", 1)[1].split(")", 1)[0]
        token = subprocess.run(["bash", "-c", mint], cwd=ROOT, capture_output=True, text=True, env={"PATH": os.environ["PATH"]}, timeout=60)
        assert token.stdout.startswith("cairn_")  # the printed hint works as pasted
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def test_sql_shell_quits_and_is_quiet_when_piped(tmp_path: Path) -> None:
    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    env = {**os.environ, "CAIRN_HOME": str(tmp_path), "CAIRN_PRINCIPAL": "root"}
    env.pop("CAIRN_METASTORE_URL", None)
    for word in ("exit", "quit", "\\q", "EXIT;"):
        shell = subprocess.run(cwd=ROOT, args=[*CAIRN, "sql"], input=f"CREATE CATALOG IF NOT EXISTS c1;\n{word}\nCREATE CATALOG c2;\n", capture_output=True,
                               text=True, env=env, timeout=60)
        assert shell.returncode == 0
        assert shell.stdout in ("created catalog c1\n", "catalog c1 already exists\n") and "> " not in shell.stdout
    names = [c["name"] for c in json.loads(run(tmp_path, "--json", "catalog", "list", principal="root").stdout)]
    assert names == ["c1"]  # nothing after `exit` ran


def test_errors_name_no_parser_internals(tmp_path: Path) -> None:
    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    for statement, expected in (("SELECT 2 * FROM x", "incomplete statement"), ("SELECT * FROM", "expected a table name")):
        res = run(tmp_path, "sql", statement, principal="root")
        assert res.returncode == 2 and expected in res.stderr
        assert "<class" not in res.stderr and "sqlglot" not in res.stderr and "<Token" not in res.stderr
    bad = tmp_path / "bad.sql"
    bad.write_text("SELECT a * FROM t")
    res = run(tmp_path, "lineage", "sql", str(bad))
    assert res.returncode == 1 and res.stdout == "" and "<class" not in res.stderr and res.stderr.startswith("error: line 1")
    missing = run(tmp_path, "lineage", "show", "main.s.nope", principal="root")
    assert missing.returncode == 1 and "table 'main.s.nope' does not exist" in missing.stderr


@pytest.mark.slow
def test_pg_script_stops_what_it_started(tmp_path: Path) -> None:
    import shutil
    import socket

    if not any(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or (shutil.which("runuser") is None and os.getuid() == 0):
        pytest.skip("needs PostgreSQL's binaries (make test installs them)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="cairn-pg-test-"))  # under /tmp: the postgres user must reach it when we are root
    top.chmod(0o777)
    data = top / "pg"
    env = {**os.environ, "CAIRN_PG_PORT": port, "CAIRN_PG_DATA": str(data)}
    pg = lambda *a: subprocess.run(["bash", str(ROOT / "tests" / "pg.sh"), *a], capture_output=True, text=True, env=env, timeout=120)  # noqa: E731
    try:
        assert pg("--running").returncode != 0
        started = pg()
        assert started.returncode == 0, started.stderr
        assert pg("--running").returncode == 0
        stopped = pg("--stop")
        assert stopped.returncode == 0 and f"stopped the PostgreSQL in {data}" in stopped.stderr
        assert pg("--running").returncode != 0
    finally:
        pg("--stop")
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.slow
def test_every_command_speaks_json(tmp_path: Path) -> None:
    """Each command's stdout under --json is one JSON document (SQL: one per statement)."""
    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    script = tmp_path / "q.sql"
    script.write_text("INSERT INTO main.s.t2 SELECT id FROM main.s.t;\n")
    steps = [
        ["catalog", "create", "main"], ["catalog", "list"], ["schema", "create", "main.s"], ["schema", "list", "main"],
        ["table", "create", "main.s.t", "--column", "id:bigint"], ["table", "create", "main.s.t2", "--column", "id:bigint"],
        ["table", "list", "main.s"], ["table", "get", "main.s.t"],
        ["principal", "create", "eng", "--kind", "group"], ["principal", "create", "ann"], ["principal", "list"],
        ["principal", "add-member", "eng", "ann"], ["principal", "remove-member", "eng", "ann"],
        ["grant", "SELECT", "table", "main.s.t", "ann"], ["grant", "SELECT", "ON", "TABLE", "main.s.t2", "TO", "ann"],
        ["grants", "table", "main.s.t"], ["why", "table", "main.s.t", "--principal", "ann"],
        ["revoke", "SELECT", "table", "main.s.t", "ann"], ["tag", "set", "table", "main.s.t", "tier=gold"], ["tag", "list", "table", "main.s.t"],
        ["audit", "log", "--limit", "5"], ["sql", "SHOW GROUPS"], ["lineage", "sql", str(script)],
        ["token", "create"], ["token", "list"], ["table", "drop", "main.s.t2"],
    ]
    for args in steps:
        res = run(tmp_path, "--json", *args, principal="root")
        assert res.returncode == 0, (args, res.stderr)
        json.loads(res.stdout)  # one document, nothing else on stdout
    shown = json.loads(run(tmp_path, "--json", "lineage", "show", "main.s.t", principal="root").stdout)
    assert shown == []
