"""The seed's churn chain end to end, through the job runner as the service principal: features →
point-in-time training set → xgboost search → registered → gates → champion → online features →
endpoint with an inference table → predictions; then a real `cairn serve` app scores a user by id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.churn_cli import graphql_query
from api.server import make_app
from catalog.client import Metastore
from pipelines.churn.setup import SP, build_world, model_lineage
from pipelines.jobs.runner import run_job


@pytest.fixture
def ms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Metastore]:
    monkeypatch.setenv("CAIRN_HOME", str(tmp_path / "home"))  # task subprocesses open the same metastore
    m = Metastore.open(home=tmp_path / "home")
    m.initialize("admin")
    yield m
    m.close()


def upstream_versions(c, model: str, version: int) -> dict[str, set[int]]:  # type: ignore[no-untyped-def]
    """Every table upstream of the model version, with the versions its lineage edges name."""
    up = {n.name for n in c.lineage.get_upstream(f"model:{model}/{version}", depth=20).nodes}
    out: dict[str, set[int]] = {}
    for e in c.lineage.list_edges():
        if e["source"] in up and e["source_version"] is not None:
            out.setdefault(e["source"], set()).add(e["source_version"])
    return out


@pytest.mark.slow
def test_the_churn_chain_runs_end_to_end_as_its_service_principal(ms: Metastore, live) -> None:  # type: ignore[no-untyped-def]
    names = build_world(ms, "admin", users=400, events=30_000, days=120, seed=3)
    run = run_job(ms, "admin", "churn-train", {"max_evals": "2", "parallelism": "1"})
    states = {t.task_key: (t.result_state, t.state_message) for t in run.tasks}
    assert run.result_state == "SUCCESS", states
    assert states["report_failure"][0] == "EXCLUDED"
    admin = ms.as_principal("admin")
    model = names["model"]
    champion = admin.models.get_version_by_alias(model, "champion")
    assert champion.version == 1 and champion.status == "READY"
    assert champion.created_by == SP
    # the gates passed and left their results on the version
    assert [r["passed"] for r in admin.models.get_gate_results(model, 1)] == [True, True, True]
    # lineage: the champion reaches the raw events table, with the raw table versions it was built from
    up = {n.name for n in admin.lineage.get_upstream(f"model:{model}/1", depth=20).nodes}
    assert {names["events"], names["features"], names["training_set"]} <= up
    versions = upstream_versions(admin, model, 1)
    assert versions[names["events"]] and min(versions[names["events"]]) >= 1 and versions[names["features"]]
    edges = model_lineage(admin, model, 1)
    assert edges[0]["target"] == f"{model}/1" and edges[-1]["source"] == names["events"] and edges[-1]["source_version"] is not None
    # predictions through score_batch, governed and linked to the model version
    preds = admin.data.read(names["predictions"])
    assert preds.num_rows > 100 and set(preds.column("model_version").to_pylist()) == {1}
    down = {n.name for n in admin.lineage.get_downstream(f"model:{model}/1").nodes}
    assert names["predictions"] in down
    ep = admin.serving.get_endpoint("churn")
    assert {r.served_model_name: r.traffic_percentage for r in ep.routes} == {"churn_model-1": 100}
    # a second week trains version 2: promoted, it serves 90% with the previous champion as the 10% canary;
    # refused, the alias and the endpoint stay where they were
    second = run_job(ms, "admin", "churn-train", {"max_evals": "1", "parallelism": "1"})
    assert second.result_state == "SUCCESS", [(t.task_key, t.state_message) for t in second.tasks]
    ep = admin.serving.get_endpoint("churn")
    now = admin.models.get_version_by_alias(model, "champion").version
    assert now in (1, 2) and admin.models.get_model_version(model, 2).status == "READY"
    want = {"churn_model-2": 90, "churn_model-1": 10} if now == 2 else {"churn_model-1": 100}
    assert {r.served_model_name: r.traffic_percentage for r in ep.routes} == want
    assert ep.inference_table == "main.churn.churn_payload"
    # a refused promotion (an AUC no model reaches) leaves the alias and the endpoint where they were
    from types import SimpleNamespace

    from pipelines.churn.chain import deploy

    ctx = SimpleNamespace(cairn=ms.as_principal(SP), lineage_run_id=None)
    out = deploy(ctx, model, version=1 if now == 2 else 2, gates='[{"kind": "metric", "metric": "auc", "op": ">", "threshold": 1.0}]')
    assert out["promoted"] is False and "auc" in out["refused"]
    assert admin.models.get_version_by_alias(model, "champion").version == now
    assert {r.served_model_name: r.traffic_percentage for r in admin.serving.get_endpoint("churn").routes} == want
    # a real server: the endpoint scores a user from `user_id` alone (features from the online store)
    token = ms.as_principal(SP).tokens.create_token()[0]
    user = preds.column("user_id")[0].as_py()
    with live(make_app(ms)) as url:
        r = httpx.post(f"{url}/serving-endpoints/churn/invocations", json={"dataframe_records": [{"user_id": user}]},
                       headers={"Authorization": f"Bearer {token}"}, timeout=60)
        q = httpx.post(f"{url}/graphql", json={"query": graphql_query(model, now, "churn")}, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert r.status_code == 200, r.text
    chain = q.json()["data"]
    assert {"alias": "champion", "version": now} in chain["model"]["aliases"]
    assert names["events"] in {n["name"] for n in chain["lineage"]["nodes"]}
    assert chain["servingEndpoint"]["inferenceTable"] == "main.churn.churn_payload"
    pred = r.json()["predictions"][0]
    assert pred in (0, 1)
