"""`cairn table get` and `table list` show a table's partition columns (from its Delta log)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(home: Path, *args: str, principal: str = "root") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CAIRN_HOME": str(home), "CAIRN_PRINCIPAL": principal}
    env.pop("CAIRN_METASTORE_URL", None)
    return subprocess.run(cwd=ROOT, args=[sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, env=env, timeout=60)


def test_table_get_and_list_show_partition_columns(tmp_path: Path) -> None:
    assert run(tmp_path, "init", "--admin", "root").returncode == 0
    made = run(tmp_path, "sql", "CREATE CATALOG main; CREATE SCHEMA main.s; CREATE TABLE main.s.t (id BIGINT, day DATE, region STRING) "
                                "PARTITIONED BY (region, day); CREATE TABLE main.s.u (id BIGINT)")
    assert made.returncode == 0, made.stderr
    assert run(tmp_path, "principal", "create", "bob").returncode == 0
    got = json.loads(run(tmp_path, "--json", "table", "get", "main.s.t").stdout)
    assert got["partition_columns"] == ["region", "day"]
    assert [(c["name"], c.get("partition_index")) for c in got["columns"]] == [("id", None), ("day", 1), ("region", 0)]
    listed = json.loads(run(tmp_path, "--json", "table", "list", "main.s").stdout)
    assert listed[0] == got and listed[1]["partition_columns"] == []  # one shape for get and list
    text = run(tmp_path, "table", "get", "main.s.t").stdout
    assert "partition_columns" in text and "region, day" in text
    hidden = run(tmp_path, "--json", "table", "get", "main.s.t", principal="bob")
    assert hidden.returncode == 1 and json.loads(hidden.stderr)["error"]["code"] == "NOT_FOUND"
