"""Invocations on a real server: the four request formats, feature lookup with overrides and defaults,
error statuses, the answering entity's header, and the inference table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalog.client import Cairn, Metastore
from tests.serving.conftest import auth, entities
from tests.serving.helpers import feature_spec, log_model, register

pytestmark = pytest.mark.slow
CAPTURE = {"catalog_name": "m", "schema_name": "s", "table_name_prefix": "churn"}


def _create(url: str, token: str, name: str, config: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{url}/api/2.0/serving-endpoints", json={"name": name, "config": config}, headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


def test_every_request_format_answers_the_same_predictions(server: str, world: dict[str, Any]) -> None:
    token, v = world["token"], world["versions"]["plain"]
    body = _create(server, token, "plain", {"served_entities": entities(("plain", v))})
    assert body["config"]["served_entities"][0]["entity_version"] == str(v)
    row = {f"f{i}": 0.1 * (i + 1) for i in range(5)}
    payloads = [
        {"dataframe_records": [row, row]},
        {"dataframe_split": {"columns": list(row), "data": [list(row.values())] * 2}},
        {"instances": [row, row]},
        {"instances": [list(row.values())] * 2},
        {"inputs": {k: [x, x] for k, x in row.items()}},
    ]
    answers = []
    for p in payloads:
        r = httpx.post(f"{server}/serving-endpoints/plain/invocations", json=p, headers=auth(token))
        assert r.status_code == 200, r.text
        assert r.headers["served-entity"] == "plain"
        answers.append(r.json()["predictions"])
    assert all(a == answers[0] for a in answers) and len(answers[0]) == 2
    assert abs(answers[0][0] - 1.0) < 1.5  # trained on f0 * 10


def test_errors_name_what_is_wrong(server: str, world: dict[str, Any]) -> None:
    token, v = world["token"], world["versions"]["plain"]
    _create(server, token, "plain", {"served_entities": entities(("plain", v))})
    url = f"{server}/serving-endpoints/plain/invocations"
    r = httpx.post(url, json={"records": []}, headers=auth(token))
    assert r.status_code == 400 and "dataframe_records" in r.json()["message"]
    r = httpx.post(url, json={"dataframe_records": [{"f0": 1}]}, headers=auth(token))
    assert r.status_code == 400 and "f1" in r.json()["message"]
    r = httpx.post(url, json={"dataframe_records": [{f"f{i}": "x" for i in range(5)}]}, headers=auth(token))
    assert r.status_code == 400 and "number" in r.json()["message"]
    r = httpx.post(url, content=b"{", headers=auth(token))
    assert r.status_code == 400 and "JSON" in r.json()["message"]
    r = httpx.post(url, content=b"x" * (16 * 1024 * 1024 + 1), headers=auth(token))
    assert r.status_code == 413
    r = httpx.post(f"{server}/serving-endpoints/nope/invocations", json={"inputs": [[1]]}, headers=auth(token))
    assert r.status_code == 404
    r = httpx.post(url, json={"inputs": [[1]]})
    assert r.status_code == 401


def test_feature_lookup_overrides_and_defaults_and_the_inference_table(server: str, world: dict[str, Any], admin: Cairn) -> None:
    token, v = world["token"], world["versions"]["spec"]
    _create(server, token, "spec", {"served_entities": entities(("spec", v)), "auto_capture_config": CAPTURE})
    url = f"{server}/serving-endpoints/spec/invocations"
    looked = httpx.post(url, json={"dataframe_records": [{"user_id": 3}]}, headers=auth(token)).json()["predictions"][0]
    # user 3's features from the online store: f0 = (3 * 7 + 0) % 10 / 10 = 0.1
    direct = httpx.post(f"{server}/serving-endpoints/spec/invocations",
                        json={"dataframe_records": [{"user_id": 3, "f0": 0.1, "f1": 0.2, "f2": 0.3, "f3": 0.4, "f4": 0.5}]},
                        headers=auth(token)).json()["predictions"][0]
    assert looked == pytest.approx(direct, abs=1e-6)
    overridden = httpx.post(url, json={"dataframe_records": [{"user_id": 3, "f0": 0.95}]}, headers=auth(token)).json()["predictions"][0]
    assert overridden > looked + 5  # f0 drives the model: 0.95 against 0.1
    missing = httpx.post(url, json={"dataframe_records": [{"user_id": 10_000}]}, headers=auth(token)).json()["predictions"][0]
    default = httpx.post(url, json={"dataframe_records": [{"user_id": 3, "f0": 0.9, "f1": 0.0, "f2": 0.0, "f3": 0.0, "f4": 0.0}]},
                         headers=auth(token)).json()["predictions"][0]
    assert missing == pytest.approx(default, abs=1e-6)  # the spec's defaults
    r = httpx.post(url, json={"dataframe_records": [{"customer": 3}]}, headers=auth(token))
    assert r.status_code == 400 and "user_id" in r.json()["message"]
    deadline = time.time() + 15
    rows: list[dict[str, Any]] = []
    while time.time() < deadline and len(rows) < 6:
        rows = admin.data.read("m.s.churn_payload").to_pylist()
        time.sleep(0.2)
    assert len(rows) == 6
    assert sorted(r["status_code"] for r in rows) == [200, 200, 200, 200, 200, 400]
    assert {r["served_entity"] for r in rows} == {"spec"} and {r["requester"] for r in rows} == {"admin"}
    assert all(r["model_version"] == f"m.s.churn/{v}" and r["execution_time_ms"] > 0 for r in rows)
    lineage = admin.lineage.get_downstream(f"model:m.s.churn/{v}")
    assert [(n.kind, n.name) for n in lineage.nodes] == [("ENDPOINT", "spec"), ("TABLE", "m.s.churn_payload")]


def test_on_demand_python_functions_are_computed_from_the_request(server: str, world: dict[str, Any], admin: Cairn, tmp_path: Path) -> None:
    admin.functions.create_function("m.s.tenth", "return None if score is None else score / 10", "double",
                                    [{"name": "score", "type": "double"}], language="PYTHON")
    spec = feature_spec("m.s.users")  # f1..f4 looked up, f0 computed from the request's `score`
    spec["lookups"][0]["feature_names"] = ["f1", "f2", "f3", "f4"]
    spec["functions"] = [{"udf_name": "m.s.tenth", "input_bindings": {"score": "score"}, "output_name": "f0"}]
    spec["input_columns"] = ["user_id", "score"]
    v = register(admin, "m.s.churn", log_model(tmp_path / "mlflow", spec=spec))
    token = world["token"]
    _create(server, token, "fn", {"served_entities": entities(("fn", v))})
    url = f"{server}/serving-endpoints/fn/invocations"

    def predict(record: dict[str, Any]) -> float:
        r = httpx.post(url, json={"dataframe_records": [record]}, headers=auth(token))
        assert r.status_code == 200, r.text
        return float(r.json()["predictions"][0])

    user3 = {"f1": 0.2, "f2": 0.3, "f3": 0.4, "f4": 0.5}  # user 3's features in the online store
    assert predict({"user_id": 3, "score": 9.5}) == pytest.approx(predict({"user_id": 3, "f0": 0.95, **user3}), abs=1e-6)
    assert predict({"user_id": 3, "score": 9.5, "f0": 0.1}) == pytest.approx(predict({"user_id": 3, "f0": 0.1, **user3}), abs=1e-6)
    assert predict({"user_id": 3, "score": 9.5}) > predict({"user_id": 3, "score": 1.0}) + 5  # f0 drives the model
    r = httpx.post(url, json={"dataframe_records": [{"user_id": 3}]}, headers=auth(token))
    assert r.status_code == 400 and "score" in r.json()["message"] and "m.s.tenth" in r.json()["message"]
    r = httpx.post(url, json={"dataframe_records": [{"user_id": 3, "score": "high"}]}, headers=auth(token))
    assert r.status_code == 400 and "m.s.tenth failed" in r.json()["message"]
    executed = [e for e in admin.audit.list_events(principal="admin", max_results=1000) if e.action == "execute_function"]
    assert executed and {e.result.value for e in executed} == {"ALLOWED"}


def test_the_routes_answer_as_the_middleware_does_and_other_methods_get_405(metastore: Metastore, live, world: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """Invocations are answered by the `Invocations` middleware ahead of routing; the routes behind
    it (an app used without the middleware: its bare router) answer the same, and refuse GET."""
    from api.server import make_app

    token, v = world["token"], world["versions"]["plain"]
    row = {"dataframe_records": [{f"f{i}": 0.1 * (i + 1) for i in range(5)}]}
    answers = []
    for asgi in (make_app(metastore), make_app(metastore).router):  # each its own runtime: a stopped app's is closed
        with live(asgi) as url:
            if not answers:
                _create(url, token, "plain", {"served_entities": entities(("plain", v))})
            r = httpx.post(f"{url}/serving-endpoints/plain/invocations", json=row, headers=auth(token))
            assert r.status_code == 200 and r.headers["served-entity"] == "plain" and len(r.headers["x-request-id"]) == 32
            answers.append(r.json())
            assert httpx.post(f"{url}/serving-endpoints/plain/invocations", json=row).status_code == 401
            assert httpx.get(f"{url}/serving-endpoints/plain/invocations", headers=auth(token)).status_code == 405
    assert answers[0] == answers[1] and len(answers[0]["predictions"]) == 1
