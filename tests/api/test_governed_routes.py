"""Every REST route and every GraphQL field, called by a principal with no privileges, is refused
(or, for lists, shows nothing) and leaves an audit row; without a token every route is 401."""

from __future__ import annotations

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from api.graphql import execute, schema
from api.server import make_app
from catalog.client import Cairn, Metastore

UC = "/api/2.1/unity-catalog"
PARAMS = {"name": None, "type": "table", "version": "1"}
# route path -> name to use for {name} (depends on what the route addresses)
NAMES = {"/catalogs/{name}": "main", "/schemas/{name}": "main.s", "/tables/{name}": "main.s.t", "/functions/{name}": "main.s.f",
         "/models/{name}": "main.s.m", "/models/{name}/versions": "main.s.m", "/models/{name}/versions/{version:int}": "main.s.m",
         "/models/{name}/versions/{version:int}/finalize": "main.s.m", "/permissions/{type}/{name}": "main.s.t",
         "/models/{name}/aliases/{alias}": "main.s.m", "/external-locations/{name}": "loc", "/storage-credentials/{name}": "cred",
         "/credentials/{name}": "cred"}
QUERY = {"/schemas": "?catalog_name=main", "/tables": "?catalog_name=main&schema_name=s", "/functions": "?catalog_name=main&schema_name=s",
         "/models": "?catalog_name=main&schema_name=s"}
BODIES = {
    ("POST", "/catalogs"): {"name": "x"}, ("POST", "/schemas"): {"name": "x", "catalog_name": "main"},
    ("POST", "/tables"): {"name": "x", "catalog_name": "main", "schema_name": "s", "table_type": "MANAGED", "columns": [{"name": "a", "type_text": "int"}]},
    ("POST", "/functions"): {"function_info": {"name": "x", "catalog_name": "main", "schema_name": "s", "routine_definition": "1", "data_type": "INT"}},
    ("POST", "/models"): {"name": "x", "catalog_name": "main", "schema_name": "s"},
    ("POST", "/models/versions"): {"model_name": "m", "catalog_name": "main", "schema_name": "s", "source": "file:///x"},
    ("PATCH", "/catalogs/{name}"): {"comment": "x"}, ("PATCH", "/schemas/{name}"): {"comment": "x"}, ("PATCH", "/models/{name}"): {"comment": "x"},
    ("PATCH", "/models/{name}/versions/{version:int}"): {"comment": "x"},
    ("PATCH", "/permissions/{type}/{name}"): {"changes": [{"principal": "nobody", "add": ["SELECT"]}]},
    ("PUT", "/models/{name}/aliases/{alias}"): {"version_num": 1},
    ("POST", "/temporary-table-credentials"): {"table_id": "main.s.t", "operation": "READ"},
    ("POST", "/temporary-model-version-credentials"): {"catalog_name": "main", "schema_name": "s", "model_name": "m", "version": 1},
    ("POST", "/external-locations"): {"name": "x", "url": "s3://bucket/x"}, ("PATCH", "/external-locations/{name}"): {"comment": "x"},
    ("POST", "/storage-credentials"): {"name": "x"}, ("PATCH", "/storage-credentials/{name}"): {"comment": "x"},
    ("POST", "/credentials"): {"name": "x", "purpose": "STORAGE"}, ("PATCH", "/credentials/{name}"): {"comment": "x"},
}
# Lists open to every principal, filtered to what it may see: path -> the key of the (empty) list.
LISTS = {("GET", "/catalogs"): "catalogs", ("GET", "/external-locations"): "external_locations",
         ("GET", "/storage-credentials"): "storage_credentials", ("GET", "/credentials"): "credentials"}


@pytest.fixture
def world(admin: Cairn, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    admin.sql("CREATE CATALOG main; CREATE SCHEMA main.s; CREATE TABLE main.s.t (a INT)")
    admin.storage_credentials.create_storage_credential("cred")
    admin.external_locations.create_external_location("loc", str(tmp_path_factory.mktemp("loc")), "cred")
    admin.functions.create_function("main.s.f", "1", "int")
    admin.models.create_registered_model("main.s.m")
    admin.models.create_model_version("main.s.m", "file:///m")
    admin.models.finalize_model_version("main.s.m", 1)
    admin.serving.create_endpoint("ep", [{"entity_name": "main.s.m", "entity_version": 1}])
    admin.principals.create_user("nobody")
    admin.jobs.create_job({"name": "j", "tasks": [{"task_key": "a", "python_task": {"entry_point": "pipelines.jobs.samples:echo"}}]})
    admin.jobs.run_now("j")
    return {"nobody": admin.tokens.create_token("nobody")[0]}


def audit_count(metastore: Metastore) -> int:
    return len(list(metastore.as_principal("admin").audit.list_events(principal="nobody", max_results=1000)))


def test_every_rest_route_is_governed(metastore: Metastore, world: dict[str, str]) -> None:
    app = make_app(metastore)
    client = TestClient(app)
    routes = [(m, r.path[len(UC):]) for r in app.routes if isinstance(r, Route) and r.path.startswith(UC) for m in sorted(r.methods - {"HEAD"})]
    assert len(routes) == 51
    for method, path in routes:
        url = UC + path.replace("{name}", NAMES.get(path, "main")).replace("{version:int}", "1").replace("{type}", "table").replace("{alias}", "champion") + QUERY.get(path, "")
        body = BODIES.get((method, path))
        assert client.request(method, url, json=body).status_code == 401, (method, path)
        before = audit_count(metastore)
        r = client.request(method, url, json=body, headers={"Authorization": f"Bearer {world['nobody']}"})
        if (method, path) in LISTS:
            assert r.status_code == 200 and r.json()[LISTS[method, path]] == [], (method, path, r.text)
        else:
            assert r.status_code in (403, 404), (method, path, r.status_code, r.text)
            assert "Traceback" not in r.text
        assert audit_count(metastore) > before, f"{method} {path} left no audit row"


def test_every_graphql_field_is_governed(metastore: Metastore, world: dict[str, str]) -> None:
    nobody = metastore.as_principal("nobody")
    queries = {
        "catalogs": "{ catalogs { edges { node { name } } } }",
        "catalog": '{ catalog(name: "main") { name } }',
        "schema": '{ schema(name: "main.s") { name } }',
        "table": '{ table(name: "main.s.t") { name } }',
        "model": '{ model(name: "main.s.m") { name } }',
        "function": '{ function(name: "main.s.f") { name } }',
        "search": '{ search(text: "t", catalog: "main") { edges { node { fullName } } } }',
        "lineage": '{ lineage(name: "main.s.t") { truncated } }',
        "auditEvents": "{ auditEvents { edges { node { principal } } } }",
        "lineageEdges": "{ lineageEdges { source } }",
        "principals": "{ principals { edges { node { name } } } }",
        "externalLocations": "{ externalLocations { edges { node { name url } } } }",
        "externalLocation": '{ externalLocation(name: "loc") { url } }',
        "storageCredentials": "{ storageCredentials { edges { node { name } } } }",
        "storageCredential": '{ storageCredential(name: "cred") { name } }',
        "featureTable": '{ featureTable(name: "main.s.t") { name } }',
        "trainingSet": '{ trainingSet(name: "main.s.t") { name } }',
        "webhooks": "{ webhooks { id } }",
        "servingEndpoints": "{ servingEndpoints { name } }",
        "servingEndpoint": '{ servingEndpoint(name: "ep") { name } }',
        "viewer": "{ viewer { name isAdmin } }",
        "tablePolicy": '{ tablePolicy(name: "main.s.t") { columnMasks { column } } }',
        "jobs": "{ jobs { edges { node { name } } } }",
        "job": '{ job(name: "j") { name } }',
        "jobRuns": '{ jobRuns(job: "j") { edges { node { runId } } } }',
    }
    mutations = {
        "createCatalog": 'mutation { createCatalog(name: "x") { name } }',
        "createSchema": 'mutation { createSchema(name: "main.x") { name } }',
        "createTable": 'mutation { createTable(name: "main.s.x", columns: [{name: "a", type: "int"}]) { name } }',
        "drop": 'mutation { drop(kind: "table", name: "main.s.t") }',
        "grant": 'mutation { grant(kind: "table", name: "main.s.t", principal: "nobody", privileges: ["SELECT"]) { principal } }',
        "revoke": 'mutation { revoke(kind: "table", name: "main.s.t", principal: "nobody", privileges: ["SELECT"]) { principal } }',
        "setTags": 'mutation { setTags(kind: "table", name: "main.s.t", tags: [{key: "a", value: "b"}]) { key } }',
        "unsetTags": 'mutation { unsetTags(kind: "table", name: "main.s.t", keys: ["a"]) { key } }',
        "transferOwnership": 'mutation { transferOwnership(kind: "table", name: "main.s.t", owner: "nobody") }',
        "sql": 'mutation { sql(statement: "SELECT * FROM main.s.t") { rows } }',
        "createStorageCredential": 'mutation { createStorageCredential(name: "x") { name } }',
        "createExternalLocation": 'mutation { createExternalLocation(name: "x", url: "s3://bucket/x") { name } }',
        "setModelGates": 'mutation { setModelGates(model: "main.s.m", gates: [{kind: "signature"}]) { kind } }',
        "promoteModelVersion": 'mutation { promoteModelVersion(model: "main.s.m", alias: "champion", version: 1) { promoted } }',
        "createWebhook": 'mutation { createWebhook(name: "w", url: "https://example.com/h", events: ["model_version.created"], model: "main.s.m") { id } }',
        "deleteWebhook": 'mutation { deleteWebhook(id: "nope") }',
        "createServingEndpoint": 'mutation { createServingEndpoint(name: "x", servedEntities: [{entityName: "main.s.m", entityVersion: 1}]) { name } }',
        "updateServingEndpointConfig": 'mutation { updateServingEndpointConfig(name: "ep", servedEntities: [{entityName: "main.s.m", entityVersion: 1}]) { name } }',
        "deleteServingEndpoint": 'mutation { deleteServingEndpoint(name: "ep") }',
        "createJob": 'mutation { createJob(spec: "{name: x, run_as: admin, tasks: [{task_key: a, python_task: {entry_point: pipelines.jobs.samples:echo}}]}") { name } }',
        "runJob": 'mutation { runJob(job: "j") { runId } }',
        "cancelJobRun": 'mutation { cancelJobRun(runId: 1) { runId } }',
    }
    assert set(queries) == set(schema.graphql_schema.query_type.fields)
    assert set(mutations) == set(schema.graphql_schema.mutation_type.fields)
    for field, text in {**queries, **mutations}.items():
        before = audit_count(metastore)
        res = execute(nobody, text)
        if field in ("lineageEdges", "servingEndpoints"):
            assert res["data"][field] == [], field
        elif field == "viewer":
            assert res["data"]["viewer"] == {"name": "nobody", "isAdmin": False}, field  # who the token is, nothing more
        elif field == "principals":
            assert {e["node"]["name"] for e in res["data"]["principals"]["edges"]} >= {"nobody"}, field  # a directory, open to all as in Databricks
        elif field == "webhooks":
            assert res["data"]["webhooks"] == [], field
        elif field in ("externalLocations", "storageCredentials", "jobs"):
            assert res["data"][field]["edges"] == [], field
        elif field in ("catalogs", "auditEvents", "search"):
            if field == "search":
                assert res["errors"][0]["extensions"]["code"] == "NOT_FOUND", field
            else:
                edges = res["data"][field]["edges"]
                assert all(e["node"].get("principal", "nobody") == "nobody" for e in edges) and (field != "catalogs" or edges == []), field
        else:
            assert res["errors"][0]["extensions"]["code"] in ("PERMISSION_DENIED", "NOT_FOUND"), (field, res)
        assert audit_count(metastore) > before, f"{field} left no audit row"
