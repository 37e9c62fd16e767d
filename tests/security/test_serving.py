"""Attacks on serving endpoints: serving a model one may not execute, logging into a schema one may
not create tables in, querying without CAN QUERY (or after a revoke), managing with only CAN QUERY,
reading the inference table through the endpoint. Each refusal leaves a DENIED audit row and no change."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.server import make_app
from catalog.client import Cairn, Metastore
from catalog.entities import AuditResult
from catalog.errors import InvalidArgument, NotFound, PermissionDenied
from tests.serving.helpers import log_model, register

CAPTURE = {"catalog_name": "m", "schema_name": "logs", "table_name_prefix": "ep"}


def served(version: int = 1, name: str = "m-1") -> list[dict[str, Any]]:
    return [{"name": name, "entity_name": "m.s.churn", "entity_version": version}]


@pytest.fixture
def setup(admin: Cairn, metastore: Metastore) -> dict[str, Any]:
    admin.catalogs.create_catalog("m")
    admin.schemas.create_schema("m.s")
    admin.schemas.create_schema("m.logs")
    admin.models.create_registered_model("m.s.churn")
    for _ in range(2):
        v = admin.models.create_model_version("m.s.churn", "file:///nowhere")
        admin.models.finalize_model_version("m.s.churn", v.version)
    for user in ("bob", "eve"):
        admin.principals.create_user(user)
    admin.grants.grant("catalog", "m", "bob", ["USE CATALOG"])
    admin.grants.grant("schema", "m.s", "bob", ["USE SCHEMA"])
    admin.grants.grant("schema", "m.logs", "bob", ["USE SCHEMA"])
    return {"bob": metastore.as_principal("bob"), "eve": metastore.as_principal("eve")}


def denials(admin: Cairn, who: str, action: str) -> list[Any]:
    return [e for e in admin.audit.list_events(principal=who, max_results=1000) if e.action == action and e.result is AuditResult.DENIED]


def test_serving_a_model_needs_execute_and_logging_needs_create_table(admin: Cairn, setup: dict[str, Any]) -> None:
    bob = setup["bob"]
    with pytest.raises(NotFound):  # bob holds nothing on the model: it does not exist for him
        bob.serving.create_endpoint("ep", served())
    admin.grants.grant("model", "m.s.churn", "bob", "EXECUTE")
    with pytest.raises(PermissionDenied, match="CREATE TABLE"):
        bob.serving.create_endpoint("ep", served(), auto_capture_config=CAPTURE)
    assert len(denials(admin, "bob", "create_serving_endpoint")) == 2
    assert list(admin.serving.list_endpoints()) == [] and [t.name for t in admin.tables.list_tables("m", "logs")] == []
    ep = bob.serving.create_endpoint("ep", served())
    assert ep.owner == "bob" and ep.inference_table is None


def test_bad_configs_are_refused_whole(admin: Cairn, setup: dict[str, Any]) -> None:
    bad = [
        (served() + served(2, "m-2"), [{"served_model_name": "m-1", "traffic_percentage": 50},
                                       {"served_model_name": "m-2", "traffic_percentage": 49}], "sum to 99"),
        (served(), [{"served_model_name": "other", "traffic_percentage": 100}], "'other' is not a served entity"),
        (served(3), None, "m.s.churn/3' does not exist"),
        ([{"entity_name": "m.s.churn", "entity_version": -1}], None, "positive integer"),
        (served() + served(), None, "names repeat"),
    ]
    for entities, routes, message in bad:
        with pytest.raises((InvalidArgument, NotFound), match=message):
            admin.serving.create_endpoint("ep", entities, routes)
    with pytest.raises(InvalidArgument, match="invalid endpoint name"):
        admin.serving.create_endpoint("ep/../x", served())
    assert list(admin.serving.list_endpoints()) == []


def test_manage_needs_can_manage_and_cannot_smuggle_in_an_unexecutable_model(admin: Cairn, setup: dict[str, Any]) -> None:
    bob, eve = setup["bob"], setup["eve"]
    admin.serving.create_endpoint("ep", served())
    admin.grants.grant("serving_endpoint", "ep", "bob", "CAN QUERY")
    with pytest.raises(PermissionDenied, match="needs ownership or MANAGE"):
        bob.serving.update_config("ep", served(2, "m-2"))
    with pytest.raises(PermissionDenied):
        bob.serving.delete_endpoint("ep")
    with pytest.raises(PermissionDenied):
        bob.grants.grant("serving_endpoint", "ep", "eve", "CAN QUERY")
    with pytest.raises(NotFound):  # eve holds nothing on it: it does not exist for her
        eve.serving.get_endpoint("ep")
    admin.grants.grant("serving_endpoint", "ep", "eve", "CAN MANAGE")
    with pytest.raises(NotFound, match="m.s.churn"):  # managing an endpoint does not let one serve what one may not execute
        eve.serving.update_config("ep", served(2, "m-2"))
    assert admin.serving.get_endpoint("ep").config_version == 1
    assert len(denials(admin, "bob", "update_serving_endpoint_config")) == 1
    assert len(denials(admin, "bob", "delete_serving_endpoint")) == 1
    assert len(denials(admin, "eve", "get_serving_endpoint")) == 1
    assert len(denials(admin, "eve", "update_serving_endpoint_config")) == 1
    eve.serving.update_config("ep", [{"name": "m-1", "entity_name": "m.s.churn", "entity_version": 1, "scale_to_zero_enabled": True}])
    assert admin.serving.get_endpoint("ep").config_version == 2


@pytest.mark.slow
def test_queries_need_can_query_revokes_take_effect_and_the_inference_table_stays_closed(
        admin: Cairn, setup: dict[str, Any], metastore: Metastore, live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v = register(admin, "m.s.churn", log_model(tmp_path / "mlflow"))
    admin.serving.create_endpoint("ep", served(v, "real"), auto_capture_config=CAPTURE)
    tokens = {p: admin.tokens.create_token(p)[0] for p in ("bob", "eve")}
    row = {"dataframe_records": [{f"f{i}": 0.5 for i in range(5)}]}
    with live(make_app(metastore)) as url:
        def ask(who: str, path: str = "/serving-endpoints/ep/invocations") -> httpx.Response:
            return httpx.post(url + path, json=row, headers={"Authorization": f"Bearer {tokens[who]}"})

        r = ask("bob")
        assert r.status_code == 404 and "Traceback" not in r.text
        assert httpx.post(url + "/serving-endpoints/ep/invocations", json=row, headers={"Authorization": "Bearer cairn_forged"}).status_code == 401
        admin.grants.grant("serving_endpoint", "ep", "bob", "CAN QUERY")
        assert ask("bob").status_code == 200
        assert httpx.put(url + "/api/2.0/serving-endpoints/ep/config", json={"served_entities": served(v, "real")},
                         headers={"Authorization": f"Bearer {tokens['bob']}"}).status_code == 403
        admin.grants.revoke("serving_endpoint", "ep", "bob", "CAN QUERY")
        time.sleep(1.2)  # the decision is reused for at most a second
        assert ask("bob").status_code == 404
        assert httpx.get(url + "/api/2.0/serving-endpoints/ep/metrics", headers={"Authorization": f"Bearer {tokens['bob']}"}).status_code == 404
    assert len(denials(admin, "bob", "query_serving_endpoint")) >= 3
    with pytest.raises((PermissionDenied, NotFound)):  # querying the endpoint gives no access to what it logs
        setup["bob"].data.read("m.logs.ep_payload")
    assert [r["requester"] for r in admin.data.read("m.logs.ep_payload").to_pylist()] == ["bob"]


@pytest.mark.slow
def test_an_on_demand_function_the_owner_may_not_execute_is_never_run(
        admin: Cairn, setup: dict[str, Any], metastore: Metastore, live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.serving.helpers import FEATURES

    admin.functions.create_function("m.s.leak", "return 0.5", "double", [{"name": "x", "type": "double"}], language="PYTHON")
    spec = {"lookups": [], "functions": [{"udf_name": "m.s.leak", "input_bindings": {}, "output_name": "f0"}],
            "input_columns": ["x", *FEATURES[1:]], "feature_columns": FEATURES}
    v = register(admin, "m.s.churn", log_model(tmp_path / "mlflow", spec=spec))
    admin.grants.grant("model", "m.s.churn", "bob", "EXECUTE")
    setup["bob"].serving.create_endpoint("ep", served(v, "fn"))  # bob owns it, and holds no EXECUTE on m.s.leak
    token = admin.tokens.create_token("bob")[0]
    with live(make_app(metastore)) as url:
        r = httpx.post(url + "/serving-endpoints/ep/invocations", json={"dataframe_records": [{"x": 1.0, **{f: 0.5 for f in FEATURES[1:]}}]},
                       headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 503 and "m.s.leak" in r.json()["message"] and "Traceback" not in r.text
    assert len(denials(admin, "bob", "execute_function")) >= 1


def test_a_failed_load_tells_callers_what_failed_not_where_the_server_keeps_files(
        admin: Cairn, setup: dict[str, Any], metastore: Metastore, live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "secret-model").mkdir()
    (tmp_path / "secret-model" / "notes.txt").write_text("not a model")  # a version whose files are no MLflow model
    v = register(admin, "m.s.churn", f"file://{tmp_path / 'secret-model'}")
    admin.serving.create_endpoint("ep", served(v, "gone"))
    admin.grants.grant("serving_endpoint", "ep", "bob", "CAN QUERY")
    token = admin.tokens.create_token("bob")[0]
    storage = admin.models.get_model_version("m.s.churn", v).storage_location
    with live(make_app(metastore)) as url:
        r = httpx.post(url + "/serving-endpoints/ep/invocations", json={"dataframe_records": [{"f0": 1.0}]},
                       headers={"Authorization": f"Bearer {token}"}, timeout=60)
    message = r.json()["message"]
    assert r.status_code == 503 and message.startswith("served entity 'gone' failed to load: ") and "<path>" in message
    home = storage.removeprefix("file://").split("/warehouse")[0]
    assert home not in message and "warehouse" not in message and "secret-model" not in message and "Traceback" not in r.text


XGB_MLMODEL = """flavors:
  python_function:
    loader_module: mlflow.xgboost
    data: model.xgb
    env: {}
  xgboost:
    xgb_version: 2.0.0
    data: model.xgb
    model_class: xgboost.core.Booster
    model_format: xgb
"""


def test_a_failed_load_tells_callers_no_native_stack_trace(
        admin: Cairn, setup: dict[str, Any], metastore: Metastore, live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """xgboost's errors carry a native stack trace (`Stack trace: [bt] (0) /lib/...so(+0x..) [0x7f..]`):
    the library's load addresses in the server's memory, a traceback no caller gets."""
    model = tmp_path / "secret-model"
    model.mkdir()
    (model / "MLmodel").write_text(XGB_MLMODEL)
    (model / "model.xgb").write_bytes(b"not a booster" * 10)
    v = register(admin, "m.s.churn", f"file://{model}")
    admin.serving.create_endpoint("ep", served(v, "broken"))
    admin.grants.grant("serving_endpoint", "ep", "bob", "CAN QUERY")
    token = admin.tokens.create_token("bob")[0]
    with live(make_app(metastore)) as url:
        r = httpx.post(url + "/serving-endpoints/ep/invocations", json={"dataframe_records": [{"f0": 1.0}]},
                       headers={"Authorization": f"Bearer {token}"}, timeout=60)
    message = r.json()["message"]
    assert r.status_code == 503 and message.startswith("served entity 'broken' failed to load: XGBoostError: ")
    assert "Invalid model format" in message  # what failed is told
    assert "Stack trace" not in message and "[bt]" not in message and "0x7" not in message and ".so" not in message
    assert str(tmp_path) not in message and "secret-model" not in message and "Traceback" not in r.text


def test_load_failure_messages_hide_relative_and_windows_paths_and_tracebacks() -> None:
    from pipelines.serving.runtime import public_error

    for where in ("./warehouse/m/1/MLmodel", "../cairn/m/1", "~/cairn/m/1", r"C:\srv\cairn\m\1", r"\\fs01\cairn\m\1"):
        assert public_error(OSError(f"cannot read {where} now")) == "OSError: cannot read <path> now"
    told = public_error(RuntimeError("load failed\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nboom"))
    assert told == "RuntimeError: load failed"


def test_a_long_crafted_load_failure_message_is_told_in_its_first_characters() -> None:
    """A model's files choose what its loader's errors quote: an unclosed quote before many slashes
    (or a long run of spaces) cost the patterns quadratic time (100 KB: 17 s of CPU, the serving
    process stalled). Only a message's start is read; this checks what is told, not how fast."""
    from pipelines.serving.runtime import public_error

    assert public_error(OSError("'" + "/a" * 30_000)) == "OSError: '<path>"
    assert public_error(OSError("bad" + " " * 30_000 + "/srv/x")) == "OSError: bad" + " " * 488
