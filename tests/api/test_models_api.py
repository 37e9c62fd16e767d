"""The registry over GraphQL, the `cairn model` CLI (a real subprocess) and UC REST: gates, promotions,
gate results, version facts, webhooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.graphql import execute
from api.models_cli import parse_gate
from catalog.client import Cairn, Metastore
from catalog.errors import InvalidArgument

ROOT = Path(__file__).resolve().parents[2]
SPEC = {"label": ["y"], "label_source": {"table": None, "version": None}, "feature_tables": [], "lookups": [], "functions": [],
        "exclude_columns": [], "point_in_time": False, "input_columns": [], "feature_columns": ["x"], "training_set_table": None}


@pytest.fixture
def reg(admin: Cairn) -> Cairn:
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    admin.models.create_registered_model("main.ml.churn")
    for auc in (0.7, 0.9):
        v = admin.models.create_model_version("main.ml.churn", "file:///m", run_id="r1", metrics={"auc": auc}, feature_spec=SPEC,
                                              signature={"inputs": "[]"})
        admin.models.finalize_model_version("main.ml.churn", v.version)
    return admin


def test_graphql_gates_promotion_and_results(reg: Cairn) -> None:
    res = execute(reg, 'mutation { setModelGates(model: "main.ml.churn", gates: [{kind: "metric", metric: "auc", op: ">=", threshold: 0.8}, '
                       '{kind: "signature"}]) { kind metric op threshold } }')
    assert res["data"]["setModelGates"] == [{"kind": "metric", "metric": "auc", "op": ">=", "threshold": 0.8},
                                           {"kind": "signature", "metric": None, "op": None, "threshold": None}]
    refused = execute(reg, 'mutation { promoteModelVersion(model: "main.ml.churn", alias: "champion", version: 1) { promoted message results { gate passed detail } } }')
    out = refused["data"]["promoteModelVersion"]
    assert out["promoted"] is False and "auc >= 0.8" in out["message"]
    assert out["results"] == [{"gate": "auc >= 0.8", "passed": False, "detail": "auc = 0.7"},
                              {"gate": "signature present", "passed": True, "detail": "signature recorded"}]
    ok = execute(reg, 'mutation { promoteModelVersion(model: "main.ml.churn", alias: "champion", version: 2) { promoted } }')
    assert ok["data"]["promoteModelVersion"]["promoted"] is True
    q = execute(reg, '{ model(name: "main.ml.churn") { gates { kind } aliases { alias version } versions { edges { node { version runId '
                     'trainingSet featureSpec gateResults { gate passed } tags { key } } } } } }')
    model = q["data"]["model"]
    assert model["gates"] == [{"kind": "metric"}, {"kind": "signature"}] and model["aliases"] == [{"alias": "champion", "version": 2}]
    v2 = model["versions"]["edges"][1]["node"]
    assert v2["runId"] == "r1" and v2["trainingSet"] is None and json.loads(v2["featureSpec"])["feature_columns"] == ["x"]
    assert v2["gateResults"] == [{"gate": "auc >= 0.8", "passed": True}, {"gate": "signature present", "passed": True}]
    assert {t["key"] for t in v2["tags"]} == {"cairn.gate.champion.1", "cairn.gate.champion.2"}
    assert model["versions"]["edges"][0]["node"]["gateResults"] == []


def test_graphql_webhooks(reg: Cairn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_WEBHOOK_ALLOW_PRIVATE", "1")
    res = execute(reg, 'mutation { createWebhook(name: "ops", url: "http://127.0.0.1:9/h", events: ["model_version.created"], '
                       'model: "main.ml.churn", secret: "0123456789abcdef") { id model hasSecret events } }')
    hook = res["data"]["createWebhook"]
    assert hook["model"] == "main.ml.churn" and hook["hasSecret"] is True
    reg.models.create_model_version("main.ml.churn", "file:///m")
    q = execute(reg, "{ webhooks { id deliveries { event status attempts } } }")
    assert q["data"]["webhooks"] == [{"id": hook["id"], "deliveries": [{"event": "model_version.created", "status": "PENDING", "attempts": 0}]}]
    # Only its owner (and admins) see a webhook and its delivery log.
    reg.principals.create_user("eve")
    reg.grants.grant("catalog", "main", "eve", ["USE CATALOG", "USE SCHEMA"])
    reg.grants.grant("model", "main.ml.churn", "eve", ["EXECUTE"])
    eve = reg.metastore.as_principal("eve")
    assert execute(eve, "{ webhooks { id deliveries { event } } }")["data"]["webhooks"] == []
    assert execute(eve, '{ webhooks(model: "main.ml.churn") { id } }')["data"]["webhooks"] == []
    denied = execute(eve, f'mutation {{ deleteWebhook(id: "{hook["id"]}") }}')
    assert denied["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert execute(reg, f'mutation {{ deleteWebhook(id: "{hook["id"]}") }}')["data"]["deleteWebhook"] is True


def test_gate_words() -> None:
    assert parse_gate("auc beats current by 0.01") == {"kind": "beats_current", "metric": "auc", "op": ">", "margin": 0.01}
    assert parse_gate("signature") == {"kind": "signature"} and parse_gate("tag validated=true") == {"kind": "tags", "tag": "validated=true"}
    with pytest.raises(InvalidArgument, match="cannot read gate"):
        parse_gate("auc is great")


def test_cli(tmp_path: Path) -> None:
    ms = Metastore.open(home=tmp_path)
    ms.initialize("admin")
    admin = ms.as_principal("admin")
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    admin.models.create_registered_model("main.ml.churn")
    v = admin.models.create_model_version("main.ml.churn", "file:///m", run_id="r1", metrics={"auc": 0.85})
    admin.models.finalize_model_version("main.ml.churn", v.version)
    admin.principals.create_user("eve")
    admin.grants.grant("catalog", "main", "eve", ["USE CATALOG", "USE SCHEMA"])
    for t in ("raw", "feats", "labels"):
        admin.tables.create_table(f"main.ml.{t}", [{"name": "x", "type": "int"}])
    admin.lineage.record(["main.ml.raw"], ["main.ml.feats"])
    spec = {**SPEC, "label_source": {"table": "main.ml.labels", "version": 1}, "feature_tables": [{"table": "main.ml.feats", "version": 1}],
            "point_in_time": True}
    admin.models.create_registered_model("main.ml.traced")
    admin.models.create_model_version("main.ml.traced", "file:///m", run_id="r7", feature_spec=spec)
    ms.close()
    env = {**os.environ, "CAIRN_HOME": str(tmp_path), "CAIRN_PRINCIPAL": "admin"}
    env.pop("CAIRN_METASTORE_URL", None)

    def cairn(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert "2 gate(s) set" in cairn("model", "gates", "set", "main.ml.churn", "auc >= 0.9", "tag validated").stdout
    refused = cairn("--json", "model", "promote", "main.ml.churn", "1")
    assert refused.returncode == 1 and "2 gate(s) failed" in refused.stderr
    assert [r["passed"] for r in json.loads(refused.stdout)] == [False, False]
    assert cairn("model", "gates", "set", "main.ml.churn", "auc >= 0.8").returncode == 0
    ok = cairn("--json", "model", "promote", "main.ml.churn", "1", "--alias", "prod")
    assert ok.returncode == 0 and json.loads(ok.stdout)[0]["passed"] is True
    listed = json.loads(cairn("--json", "model", "list", "main.ml").stdout)
    assert listed[0] == {"name": "main.ml.churn", "owner": "admin", "aliases": ["prod=1"], "latest": 1}
    # `cairn lineage show` of a model version reaches the raw tables, through the training set's tables.
    up = json.loads(cairn("--json", "lineage", "show", "--upstream", "main.ml.traced/1").stdout)
    assert {r["node"] for r in up} >= {"main.ml.feats", "main.ml.labels", "main.ml.raw"}
    assert next(r for r in up if r["node"] == "main.ml.raw")["depth"] == 2  # version <- feats <- raw
    bad = cairn("model", "gates", "set", "main.ml.churn", "auc is great")
    assert bad.returncode == 2 and "cannot read gate" in bad.stderr
    # Webhooks and their delivery log, visible to the owner only.
    env.update(CAIRN_WEBHOOK_ALLOW_PRIVATE="1", HOOK_SECRET="0123456789abcdef0123")
    made = cairn("--json", "model", "webhooks", "create", "ops", "http://127.0.0.1:9/h", "--event", "model_version_alias.created",
                 "--model", "main.ml.churn", "--secret-env", "HOOK_SECRET")
    hook = json.loads(made.stdout)
    assert made.returncode == 0 and hook["signed"] is True and "secret" not in hook
    assert [w["id"] for w in json.loads(cairn("--json", "model", "webhooks", "list").stdout)] == [hook["id"]]
    assert cairn("model", "promote", "main.ml.churn", "1", "--alias", "canary").returncode == 0
    log = json.loads(cairn("--json", "model", "webhooks", "deliveries", hook["id"]).stdout)
    assert [(d["event"], d["status"], d["attempts"]) for d in log] == [("model_version_alias.created", "PENDING", 0)]
    env["CAIRN_PRINCIPAL"] = "eve"
    hidden = cairn("model", "webhooks", "deliveries", hook["id"])
    assert hidden.returncode != 0 and f"webhook '{hook['id']}' does not exist" in hidden.stderr and "Traceback" not in hidden.stderr
    assert json.loads(cairn("--json", "model", "webhooks", "list").stdout) == []


def test_uc_rest_shows_version_facts(reg: Cairn, metastore: Metastore, live) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from api.server import make_app

    token = reg.tokens.create_token()[0]
    with live(make_app(metastore)) as url:
        got = httpx.get(f"{url}/api/2.1/unity-catalog/models/main.ml.churn/versions/2", headers={"Authorization": f"Bearer {token}"}).json()
    assert got["run_id"] == "r1" and got["training_set"] is None and json.loads(got["signature"]) == {"inputs": "[]"}
    assert json.loads(got["feature_spec"])["feature_columns"] == ["x"]
