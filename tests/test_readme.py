"""The README's examples, run as written: its shell blocks after the demo (`make run`; the training and
jobs sections after a smaller churn chain), its Python blocks in one interpreter. Only what needs what a test cannot have is left out, and says why."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def shell(folder: Path, command: str, extra: dict[str, str] | None = None, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    """Run one README line in `folder` (where `make run` would have made .venv and .cairn): a fresh
    shell without CAIRN_* variables, `.venv/bin/cairn` being this checkout's CLI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update(extra or {})
    return subprocess.run(["bash", "-c", command], cwd=folder, capture_output=True, text=True, env=env, timeout=timeout)


def made(here: Path) -> Path:
    """`here` as `make run` leaves it after `cairn demo`: .venv/bin/cairn (this checkout's CLI), the demo's .cairn."""
    (here / ".venv" / "bin").mkdir(parents=True)
    cairn = here / ".venv" / "bin" / "cairn"
    cairn.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m api.cli "$@"\n')
    cairn.chmod(0o755)
    demo = shell(here, ".venv/bin/cairn --home .cairn --as admin demo")
    assert demo.returncode == 0, demo.stderr
    return here


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as `make run` leaves it: .venv/bin/cairn (here: this checkout's CLI) and the demo's .cairn."""
    return made(tmp_path_factory.mktemp("readme"))


@pytest.fixture(scope="module")
def churn_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same with the churn chain `make run` builds, smaller (`cairn churn demo --users 2000 --events 100000`, about a minute)."""
    here = made(tmp_path_factory.mktemp("readme-churn"))
    churn = shell(here, ".venv/bin/cairn --home .cairn --as admin churn demo --users 2000 --events 100000", timeout=900)
    assert churn.returncode == 0, churn.stderr
    assert "champion main.churn.churn_model/1" in churn.stdout
    return here


@contextmanager
def served(folder: Path) -> Iterator[int]:
    """`cairn serve` (as admin, as `make run` serves) on a free port of 127.0.0.1 in `folder`; yields the port once it is ready."""
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
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def json_values(text: str) -> list[Any]:
    """The JSON documents printed one after another (curl adds no newline)."""
    out, i, decoder = [], 0, json.JSONDecoder()
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        value, i = decoder.raw_decode(text, i)
        out.append(value)
    return out


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
    with served(folder) as port:
        res = shell(folder, block.replace("127.0.0.1:8080", f"127.0.0.1:{port}"))
    assert res.returncode == 0, res.stderr
    catalogs, graphql = json_values(res.stdout)
    assert [c["name"] for c in catalogs["catalogs"]] == ["main"]
    assert graphql["data"]["table"]["owner"] == "admin"
    assert {"key": "pii", "value": "true", "column": "email"} in graphql["data"]["table"]["tags"]


@pytest.mark.slow
def test_the_training_and_registry_examples(churn_folder: Path) -> None:
    (block,) = blocks("sh", "## Training and the model registry")
    outputs = []
    for cmd in commands(block):
        res = shell(churn_folder, cmd)
        assert res.returncode == 0 and "Traceback" not in res.stderr, (cmd, res.stdout, res.stderr)
        outputs.append(res.stdout)
    listed, versions, shown, gates, promote = outputs[1:]
    assert "main.churn.churn_model" in listed and "champion=1" in listed
    assert "READY" in versions and "main.churn.training_set" in shown
    assert all(kind in gates for kind in ("metric", "signature", "provenance"))
    assert "(dry run)" in promote and "False" not in promote  # every gate passed; nothing moved


@pytest.mark.slow
def test_the_jobs_examples(churn_folder: Path) -> None:
    cli, api = blocks("sh", "## Jobs")
    outputs = []
    for cmd in commands(cli):
        res = shell(churn_folder, "export CAIRN_HOME=$PWD/.cairn\n" + cmd)
        assert res.returncode == 0 and "Traceback" not in res.stderr, (cmd, res.stdout, res.stderr)
        outputs.append(res.stdout)
    listed, run, runs, _, created, hello, timeline = outputs[1:]
    assert "churn-features" in listed and "churn-train" in listed and "churn-pipeline" in listed
    assert "SUCCESS" in run and "refresh_features" in run and "churn-features" in runs
    assert "hello" in created and "SUCCESS" in hello and "greet" in hello
    assert {"churn-features", "churn-train", "hello"} <= set(re.findall(r"[a-z-]+(?= +│ SUCCESS)", timeline))
    with served(churn_folder) as port:
        res = shell(churn_folder, api.replace("127.0.0.1:8080", f"127.0.0.1:{port}"))
    assert res.returncode == 0, res.stderr
    run_json, graphql = json_values(res.stdout)
    assert (run_json["run_name"], run_json["state"]["life_cycle_state"], run_json["state"]["result_state"]) == ("hello", "TERMINATED", "SUCCESS")
    assert run_json["status"]["termination_details"]["code"] == "SUCCESS"
    assert run_json["job_parameters"] == [{"name": "who", "default": "world", "value": "rest"}]
    assert [(t["task_key"], t["state"]["result_state"]) for t in run_json["tasks"]] == [("greet", "SUCCESS")]
    job = graphql["data"]["job"]
    assert (job["runAs"], job["tasks"], job["permissions"]) == \
        ("admin", [{"taskKey": "greet", "entryPoint": "pipelines.jobs.samples:echo"}], [{"principal": "admin", "level": "IS_OWNER"}])
    newest = graphql["data"]["jobRuns"]["edges"][0]["node"]
    assert (newest["runId"], newest["resultState"], newest["parameters"]) == (run_json["run_id"], "SUCCESS", [{"name": "who", "value": "rest"}])
    assert [e["node"]["parameters"] for e in graphql["data"]["jobRuns"]["edges"]][1] == [{"name": "who", "value": "cli"}]


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
