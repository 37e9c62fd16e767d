"""The README's examples, run as written: its shell blocks after the demo (`make run`), its Python
blocks in one interpreter. Only what needs what a test cannot have is left out, and says why."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(lang: str, after: str) -> list[str]:
    """The ```lang blocks of the README section that starts with the heading `after`."""
    section = README.split(after, 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


def commands(block: str) -> list[str]:
    """One shell command per entry: continued lines and here-documents kept together."""
    out: list[str] = []
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        cmd = lines[i]
        if "<<'EOF'" in cmd:
            while lines[i] != "EOF":
                i += 1
                cmd += "\n" + lines[i]
        while cmd.endswith("\\"):
            i += 1
            cmd += "\n" + lines[i]
        if cmd.strip():
            out.append(cmd)
        i += 1
    return out


def shell(folder: Path, command: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run one README line in `folder` (where `make run` would have made .venv and .cairn): a fresh
    shell without CAIRN_* variables, `.venv/bin/cairn` being this checkout's CLI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update(extra or {})
    return subprocess.run(["bash", "-c", command], cwd=folder, capture_output=True, text=True, env=env, timeout=180)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as `make run` leaves it: .venv/bin/cairn (here: this checkout's CLI) and the demo's .cairn."""
    here = tmp_path_factory.mktemp("readme")
    (here / ".venv" / "bin").mkdir(parents=True)
    cairn = here / ".venv" / "bin" / "cairn"
    cairn.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m api.cli "$@"\n')
    cairn.chmod(0o755)
    demo = shell(here, ".venv/bin/cairn --home .cairn --as admin demo")
    assert demo.returncode == 0, demo.stderr
    return here


@pytest.mark.slow
def test_the_command_line_examples(folder: Path) -> None:
    (block,) = blocks("sh", "## The `cairn` command line")
    ran = 0
    for cmd in commands(block):
        res = shell(folder, "export CAIRN_HOME=$PWD/.cairn\n" + cmd)
        expected = 1 if "NOT_FOUND" in cmd else 0
        assert res.returncode == expected, (cmd, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr
        if "NOT_FOUND" in cmd:
            assert "NOT_FOUND" in res.stderr
        ran += 1
    assert ran == 10
    tags = shell(folder, "CAIRN_HOME=$PWD/.cairn .venv/bin/cairn --as admin --json tag list table main.features.user_activity")
    assert json.loads(tags.stdout) == [{"column": "email", "key": "pii", "value": "true"}]


@pytest.mark.slow
def test_the_policy_example(folder: Path) -> None:
    (block,) = blocks("sh", "## Lineage policies in CI: `cairn audit`")
    cmds = commands(block)
    claimed = re.search(r"The first prints `(cairn audit: [^`]*)`", README).group(1)  # type: ignore[union-attr]
    outputs = []
    for cmd in cmds:
        if "audit diff" in cmd:
            continue  # needs a git repository with origin/main; tests/lineage/test_audit_policies.py runs it on folders
        res = shell(folder, cmd)
        assert res.returncode == 0, (cmd, res.stdout, res.stderr)
        outputs.append(res.stdout)
    audit = next(o for o in outputs if o.startswith("cairn audit:"))
    assert audit.splitlines()[0] == claimed
    assert "principal 'svc-serving' does not exist" in audit
    assert (folder / "audit.xml").read_text().startswith('<?xml version="1.0"')


@pytest.mark.slow
def test_the_server_examples(folder: Path) -> None:
    (block,) = blocks("sh", "## The server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    proc = subprocess.Popen([str(folder / ".venv" / "bin" / "cairn"), "--home", ".cairn", "--as", "admin", "serve", "--port", str(port)],
                            cwd=folder, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.time() + 60
        while "ready:" not in (proc.stdout.readline() if proc.stdout else "") and time.time() < deadline:  # type: ignore[union-attr]
            pass
        script = block.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        res = shell(folder, script)
        assert res.returncode == 0, res.stderr
        catalogs, graphql = [json.loads(x) for x in res.stdout.replace("}{", "}\n{").splitlines() if x.strip()]
        assert [c["name"] for c in catalogs["catalogs"]] == ["main"]
        assert graphql["data"]["table"]["owner"] == "admin"
        assert {"key": "pii", "value": "true", "column": "email"} in graphql["data"]["table"]["tags"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


@pytest.mark.slow
def test_the_python_examples(tmp_path: Path) -> None:
    code = [b for b in blocks("python", "## Python") if "pipelines.spark" not in b]  # Spark: tests/pipelines/test_spark.py
    assert len(code) == 4
    program = "\n".join(code).replace('"/tmp/cairn-example"', repr(str(tmp_path / "example")))
    res = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "['main.features.user_activity']"
    assert lines[1] == "SELECT ['SELECT inherited from catalog main to ml-engineers through group ml-engineers']"
    assert "('main.features.events', 1)" in res.stdout  # lineage upstream of the daily table
