"""Serving endpoints through GraphQL and the CLI: the same governed service, the same answers."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from api.cli import cli
from api.graphql import execute
from catalog.client import Cairn, Metastore


def _world(admin: Cairn) -> None:
    admin.catalogs.create_catalog("m")
    admin.schemas.create_schema("m.s")
    admin.models.create_registered_model("m.s.churn")
    for _ in range(2):
        v = admin.models.create_model_version("m.s.churn", "file:///nowhere")
        admin.models.finalize_model_version("m.s.churn", v.version)


def test_graphql_creates_updates_reads_and_deletes_endpoints(admin: Cairn) -> None:
    _world(admin)
    res = execute(admin, '''mutation { createServingEndpoint(name: "Churn", servedEntities: [{name: "a", entityName: "m.s.churn", entityVersion: 1}],
        inferenceTable: {catalogName: "m", schemaName: "s", tableNamePrefix: "churn"}) { name configVersion inferenceTable } }''')
    assert res["data"]["createServingEndpoint"] == {"name": "churn", "configVersion": 1, "inferenceTable": "m.s.churn_payload"}
    res = execute(admin, '''mutation { updateServingEndpointConfig(name: "churn", servedEntities: [
        {name: "a", entityName: "m.s.churn", entityVersion: 1}, {name: "b", entityName: "m.s.churn", entityVersion: 2, scaleToZeroEnabled: true}],
        routes: [{servedModelName: "a", trafficPercentage: 90}, {servedModelName: "b", trafficPercentage: 10}]) { configVersion } }''')
    assert res["data"]["updateServingEndpointConfig"] == {"configVersion": 2}
    res = execute(admin, '''{ servingEndpoints { name state inferenceTable
        servedEntities { name entityName entityVersion workloadSize scaleToZeroEnabled state } routes { servedModelName trafficPercentage } } }''')
    assert res["data"]["servingEndpoints"] == [{
        "name": "churn", "state": "READY", "inferenceTable": "m.s.churn_payload",
        "servedEntities": [
            {"name": "a", "entityName": "m.s.churn", "entityVersion": 1, "workloadSize": "Small", "scaleToZeroEnabled": False, "state": "READY"},
            {"name": "b", "entityName": "m.s.churn", "entityVersion": 2, "workloadSize": "Small", "scaleToZeroEnabled": True, "state": "READY"}],
        "routes": [{"servedModelName": "a", "trafficPercentage": 90}, {"servedModelName": "b", "trafficPercentage": 10}]}]
    bad = execute(admin, '''mutation { updateServingEndpointConfig(name: "churn", servedEntities: [{name: "a", entityName: "m.s.churn", entityVersion: 1}],
        routes: [{servedModelName: "a", trafficPercentage: 90}]) { configVersion } }''')
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT" and "sum to 90" in bad["errors"][0]["message"]
    assert execute(admin, 'mutation { deleteServingEndpoint(name: "churn") }')["data"] == {"deleteServingEndpoint": True}
    assert execute(admin, '{ servingEndpoint(name: "churn") { name } }')["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_cli_creates_updates_lists_and_deletes_endpoints(metastore: Metastore, admin: Cairn, tmp_path: Path) -> None:
    _world(admin)
    base = ["--home", str(metastore.settings.home), "--as", "admin", "--json"]
    if metastore.settings.metastore_url.startswith("postgresql"):
        base = ["--url", metastore.settings.metastore_url, *base]
    run = CliRunner().invoke
    r = run(cli, [*base, "endpoints", "create", "churn", "--model", "m.s.churn", "--version", "1"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["served"] == ["churn-1=m.s.churn/1"]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"served_entities": [{"name": "b", "entity_name": "m.s.churn", "entity_version": 2}]}))
    r = run(cli, [*base, "endpoints", "update", "churn", "--config", f"@{config}"])
    assert r.exit_code == 0 and json.loads(r.output)["config_version"] == 2, r.output
    r = run(cli, [*base, "endpoints", "list"])
    assert [e["routes"] for e in json.loads(r.output)] == [["b:100%"]]
    r = run(cli, [*base, "endpoints", "update", "churn", "--model", "m.s.churn"])
    assert r.exit_code == 2 and "--version" in r.output
    admin.principals.create_user("bob")
    r = run(cli, ["--home", str(metastore.settings.home), *(["--url", metastore.settings.metastore_url] if "postgresql" in metastore.settings.metastore_url else []),
                  "--as", "bob", "endpoints", "delete", "churn"])
    assert r.exit_code == 1 and "NOT_FOUND" in r.output
    assert run(cli, [*base, "endpoints", "delete", "churn"]).exit_code == 0
    assert list(admin.serving.list_endpoints()) == []


def test_sql_grants_and_shows_grants_on_an_endpoint(admin: Cairn, metastore: Metastore) -> None:
    _world(admin)
    admin.serving.create_endpoint("churn-prod", [{"entity_name": "m.s.churn", "entity_version": 1}])
    admin.principals.create_group("analysts")
    admin.principals.create_user("ann")
    admin.principals.add_member("analysts", "ann")
    assert admin.sql("GRANT CAN QUERY ON SERVING ENDPOINT `churn-prod` TO analysts").message == \
        "granted CAN QUERY on serving endpoint churn-prod to analysts"
    assert admin.sql("SHOW GRANTS ON SERVING ENDPOINT `churn-prod`").rows == [("analysts", "CAN QUERY", "SERVING_ENDPOINT", "churn-prod")]
    assert metastore.as_principal("ann").serving.authorize_query("churn-prod").endpoint.name == "churn-prod"
    admin.sql("REVOKE CAN QUERY ON SERVING ENDPOINT `churn-prod` FROM analysts")
    assert admin.sql("SHOW GRANTS ON SERVING ENDPOINT `churn-prod`").rows == []


def test_every_serving_rest_route_is_governed(metastore: Metastore, admin: Cairn) -> None:
    from starlette.testclient import TestClient

    from api.server import make_app

    _world(admin)
    admin.serving.create_endpoint("ep", [{"entity_name": "m.s.churn", "entity_version": 1}])
    admin.principals.create_user("nobody")
    token = admin.tokens.create_token("nobody")[0]
    served = {"served_entities": [{"entity_name": "m.s.churn", "entity_version": 1}]}
    calls = [("POST", "/api/2.0/serving-endpoints", {"name": "x", "config": served}), ("GET", "/api/2.0/serving-endpoints/ep", None),
             ("DELETE", "/api/2.0/serving-endpoints/ep", None), ("PUT", "/api/2.0/serving-endpoints/ep/config", served),
             ("GET", "/api/2.0/serving-endpoints/ep/metrics", None), ("POST", "/serving-endpoints/ep/invocations", {"inputs": [[1]]}),
             ("POST", "/serving-endpoints/ep/served-models/churn-1/invocations", {"inputs": [[1]]})]
    with TestClient(make_app(metastore)) as client:
        for method, path, body in calls:
            assert client.request(method, path, json=body).status_code == 401, path
            before = len(list(admin.audit.list_events(principal="nobody", max_results=1000)))
            r = client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code in (403, 404) and "Traceback" not in r.text, (method, path, r.status_code, r.text)
            events = list(admin.audit.list_events(principal="nobody", max_results=1000))
            assert len(events) == before + 1 and events[0].result.value == "DENIED", (method, path)
        listed = client.get("/api/2.0/serving-endpoints", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200 and listed.json() == {"endpoints": []}
    assert [e.name for e in admin.serving.list_endpoints()] == ["ep"]
