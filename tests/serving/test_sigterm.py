"""A real `cairn serve` process: every request answered before a SIGTERM is in the inference table after it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalog.client import Metastore
from tests.serving.conftest import auth, entities
from tests.serving.helpers import register

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("workers", [1, 2])
def test_inference_rows_survive_a_sigterm(tmp_path: Path, models: dict[str, str], workers: int) -> None:
    home = tmp_path / "home"
    ms = Metastore.open(home=home)
    ms.initialize("admin")
    admin = ms.as_principal("admin")
    admin.catalogs.create_catalog("m")
    admin.schemas.create_schema("m.s")
    v = register(admin, "m.s.churn", models["plain"])
    admin.serving.create_endpoint("prod", entities(("m", v)),
                                  auto_capture_config={"catalog_name": "m", "schema_name": "s", "table_name_prefix": "prod"})
    token = admin.tokens.create_token()[0]
    ms.close()
    port = _port()
    env = {**os.environ, "CAIRN_HOME": str(home), "CAIRN_PRINCIPAL": "admin", "PYTHONPATH": str(ROOT),
           "CAIRN_SERVING_LOG_FLUSH_SECONDS": "3600"}  # nothing is written before the SIGTERM
    proc = subprocess.Popen([sys.executable, "-c", "from api.cli import main; main()", "serve", "--port", str(port), "--workers", str(workers)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        answered: list[dict[str, Any]] = []
        with httpx.Client(headers=auth(token), timeout=30) as c:
            for i in range(40):
                r = c.post(f"http://127.0.0.1:{port}/serving-endpoints/prod/invocations",
                           json={"dataframe_records": [{f"f{j}": i / 40 for j in range(5)}], "client_request_id": f"c{i}"})
                assert r.status_code == 200, r.text
                answered.append({"id": r.headers["x-request-id"], "prediction": r.json()["predictions"][0]})
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode in (0, -signal.SIGTERM), out  # uvicorn re-raises the signal once shut down
    ms = Metastore.open(home=home)
    rows = ms.as_principal("admin").data.read("m.s.prod_payload").to_pylist()
    assert sorted(r["request_id"] for r in rows) == sorted(a["id"] for a in answered)
    assert sorted(r["client_request_id"] for r in rows) == sorted(f"c{i}" for i in range(40))
    assert all(r["status_code"] == 200 and r["served_entity"] == "m" for r in rows)
    ms.close()
