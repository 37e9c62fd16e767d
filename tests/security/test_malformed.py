"""Malformed requests get 400 INVALID_ARGUMENT naming the field or the limit, never a 500 or a
traceback, and change nothing; then property-based fuzzing of GraphQL documents and REST and
OpenLineage bodies against one server: zero 500s, zero tracebacks."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.client import Cairn

pytestmark = pytest.mark.slow
UC = "/api/2.1/unity-catalog"
JSON = {"Content-Type": "application/json"}


def h(token: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **more}


def ol(**dataset: Any) -> dict[str, Any]:
    return {"eventTime": "2026-01-01T00:00:00Z", "producer": "p", "schemaURL": "s", "eventType": "COMPLETE", "run": {"runId": str(uuid.uuid4())},
            "job": {"namespace": "n", "name": "j"}, "inputs": [], "outputs": [{"namespace": "s3://b", "name": "x", **dataset}]}


def column_lineage(transformations: Any) -> dict[str, Any]:
    return {"facets": {"columnLineage": {"fields": {"v": {"inputFields": [{"namespace": "s3://b", "name": "y", "field": "v", "transformations": transformations}]}}}}}


TABLE = {"name": "t9", "catalog_name": "main", "schema_name": "s", "table_type": "MANAGED"}
CASES: list[tuple[str, str, bytes, dict[str, str], str]] = [
    # method, path, body, headers, words the message must hold
    ("PATCH", f"{UC}/catalogs/main", b"[1]", JSON, "the body must be a JSON object"),
    ("PATCH", f"{UC}/catalogs/main", b'"x"', JSON, "the body must be a JSON object"),
    ("PATCH", f"{UC}/catalogs/main", b"null", JSON, "the body must be a JSON object"),
    ("PATCH", f"{UC}/catalogs/main", b'{"comment": 5}', JSON, "comment must be a string"),
    ("PATCH", f"{UC}/catalogs/main", b'{"properties": [1]}', JSON, "properties must be an object"),
    ("POST", f"{UC}/catalogs", b"42", JSON, "the body must be a JSON object"),
    ("POST", f"{UC}/temporary-table-credentials", json.dumps({"table_id": "1" * 40}).encode(), JSON, "table_id"),
    ("POST", f"{UC}/temporary-table-credentials", json.dumps({"table_id": 7}).encode(), JSON, "table_id must be a string"),
    ("POST", f"{UC}/tables", json.dumps({**TABLE, "name": 5}).encode(), JSON, "name must be a string"),
    ("POST", f"{UC}/tables", json.dumps({**TABLE, "columns": "x"}).encode(), JSON, "columns must be an array"),
    ("POST", f"{UC}/tables", json.dumps({**TABLE, "columns": [1]}).encode(), JSON, "columns[0] must be a JSON object"),
    ("POST", f"{UC}/tables", json.dumps({**TABLE, "columns": [{"name": "a", "position": "1"}]}).encode(), JSON, "columns[0].position must be an integer"),
    ("POST", f"{UC}/functions", json.dumps({"function_info": {"name": "f", "input_params": {"parameters": {"a": 1}}}}).encode(), JSON,
     "function_info.input_params.parameters must be an array"),
    ("PATCH", f"{UC}/permissions/catalog/main", json.dumps({"changes": [{"principal": "ana", "add": "SELECT"}]}).encode(), JSON,
     "changes[0].add must be an array"),
    ("PUT", f"{UC}/models/main.s.m/aliases/a", json.dumps({"version_num": True}).encode(), JSON, "version_num must be an integer"),
    ("PUT", f"{UC}/models/main.s.m/aliases/a", json.dumps({"version_num": 10**40}).encode(), JSON, "version_num is out of range"),
    ("GET", f"{UC}/models/main.s.m/versions/{'9' * 40}", b"", {}, "version 9999"),
    ("POST", f"{UC}/catalogs", b'{"name": "\xff\xfe"}', JSON, "not UTF-8"),
    ("POST", f"{UC}/catalogs", b"{not json", JSON, "not JSON"),
    ("POST", f"{UC}/catalogs", b'{"name": "x", "comment": NaN}', JSON, "NaN is not JSON"),
    ("POST", f"{UC}/catalogs", b'{"name": "x"}', {"Content-Type": "text/plain"}, "Content-Type 'text/plain' is not accepted"),
    ("POST", f"{UC}/catalogs", b"name=x", {"Content-Type": "application/x-www-form-urlencoded"}, "send application/json"),
    ("POST", f"{UC}/catalogs", b"[" * 100_000 + b"]" * 100_000, JSON, "nested deeper than the limit of 64 levels"),
    ("POST", f"{UC}/catalogs", b"[" * 70 + b"]" * 70, JSON, "nested deeper than the limit of 64 levels"),
    ("POST", "/graphql", json.dumps({"query": {"q": 1}}).encode(), JSON, "query must be a string"),
    ("POST", "/graphql", json.dumps({"query": "{ catalogs { edges { node { name } } } }", "variables": [1]}).encode(), JSON, "variables must be an object"),
    ("POST", "/graphql", b"[]", JSON, "the body must be a JSON object"),
    ("POST", "/graphql", json.dumps({"query": "{" * 100_000}).encode(), JSON, "nests deeper than 40 levels"),
    ("POST", "/graphql", json.dumps({"query": "{ catalogs { nope } }"}).encode(), JSON, "Cannot query field 'nope'"),
    ("POST", "/api/v1/lineage", json.dumps(ol(facets={"symlinks": [1]})).encode(), JSON, "outputs[0].facets.symlinks must be an object"),
    ("POST", "/api/v1/lineage", json.dumps(ol(facets={"symlinks": {"identifiers": [1]}})).encode(), JSON, "symlinks.identifiers[0].namespace is required"),
    ("POST", "/api/v1/lineage", json.dumps(ol(**column_lineage("abc"))).encode(), JSON, "inputFields[0].transformations must be an array"),
    ("POST", "/api/v1/lineage", json.dumps(ol(**column_lineage([{"type": 5}]))).encode(), JSON, "transformations[0].type must be a string"),
    ("POST", "/api/v1/lineage", json.dumps(ol(facets={"schema": {"fields": "abc"}})).encode(), JSON, "facets.schema.fields must be an array"),
    ("POST", "/api/v1/lineage", json.dumps({**ol(), "run": {"runId": str(uuid.uuid4()), "facets": "abc"}}).encode(), JSON, "run.facets must be an object"),
    ("POST", "/api/v1/lineage", json.dumps({**ol(), "inputs": {"a": 1}}).encode(), JSON, "event.inputs must be an array"),
]


@pytest.fixture
def before(admin: Cairn, world: dict[str, str]) -> str:
    admin.models.create_registered_model("main.s.m")
    return state(admin)


def state(admin: Cairn) -> str:
    catalogs = [(c.name, c.comment, dict(c.properties or {})) for c in admin.catalogs.list_catalogs()]
    tables = [t.name for t in admin.tables.list_tables("main", "s")]
    return json.dumps([catalogs, tables, admin.lineage.list_edges(), [(g.principal, g.privilege.value) for g in admin.grants.list_grants("catalog", "main")]],
                      default=str)


@pytest.mark.parametrize("method, path, body, headers, words", CASES, ids=[f"{c[0]} {c[1][-30:]} {c[4][:30]}" for c in CASES])
def test_a_malformed_request_is_a_400_naming_the_field(server: str, world: dict[str, str], admin: Cairn, before: str,
                                                        method: str, path: str, body: bytes, headers: dict[str, str], words: str) -> None:
    r = httpx.request(method, server + path, content=body, headers=h(world["admin"], **headers))
    assert "Traceback" not in r.text and "File \"" not in r.text
    if path == "/graphql" and "errors" in r.json():  # GraphQL answers refusals in its own shape, with a 400
        assert r.status_code == 400 and "data" not in r.json()
        error = r.json()["errors"][0]
        assert error["extensions"]["code"] == "INVALID_ARGUMENT" and words in error["message"], r.text
    else:
        assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_ARGUMENT"), r.text
        assert words in r.json()["message"], r.text
    assert state(admin) == before


# Fuzzing -----------------------------------------------------------------------------------------
json_values = st.recursive(st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
UC_FIELDS = ["name", "catalog_name", "schema_name", "comment", "properties", "owner", "new_name", "columns", "table_type", "storage_location",
             "function_info", "model_name", "source", "version_num", "changes", "table_id", "operation", "version", "input_params", "position"]
uc_bodies = st.dictionaries(st.sampled_from(UC_FIELDS), json_values, max_size=6) | json_values
UC_ROUTES = [("POST", "/catalogs"), ("PATCH", "/catalogs/main"), ("POST", "/schemas"), ("PATCH", "/schemas/main.s"), ("POST", "/tables"),
             ("POST", "/functions"), ("POST", "/models"), ("POST", "/models/versions"), ("PATCH", "/models/main.s.m"),
             ("PATCH", "/permissions/catalog/main"), ("POST", "/temporary-table-credentials"), ("PUT", "/models/main.s.m/aliases/a"),
             ("POST", "/temporary-model-version-credentials"), ("PATCH", "/models/main.s.m/versions/1")]
GRAPHQL_WORDS = ["{", "}", "(", ")", "[", "]", ":", "...", "$x", "!", "=", "@include(if: true)", "query", "mutation", "fragment F on Query",
                 "catalogs", "edges", "node", "name", "table", "sql", "first:", "1", "-1", "99999999999999999999", '"main.s.secret"', "a:",
                 "lineage", "auditEvents", "grant", "tags", '"', '"""', "#", ",", "\\u0000", "on", "Catalog", "__typename", "__schema"]
graphql_docs = st.lists(st.sampled_from(GRAPHQL_WORDS), max_size=40).map(" ".join) | st.text(max_size=60)
OL_PATHS = ["inputs", "outputs", "run", "job", "eventType", "eventTime", "producer", "schemaURL", "dataset"]


def ol_bodies() -> Any:
    def mutate(parts: tuple[str, Any, Any]) -> Any:
        key, value, facet = parts
        event = ol(facets={"symlinks": facet, "columnLineage": facet, "schema": facet})
        event[key] = value
        return event
    return st.tuples(st.sampled_from(OL_PATHS), json_values, json_values).map(mutate) | json_values


def sound(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    assert "Traceback" not in r.text and "File \"" not in r.text


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def test_fuzzed_requests_never_get_a_500_or_a_traceback(server: str, world: dict[str, str], admin: Cairn, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the transport is the same on both metastores; fuzzed once")
    admin.models.create_registered_model("main.s.m")
    client = httpx.Client(base_url=server, headers=h(world["admin"]), timeout=30)  # the admin reaches every check past authorization

    @FUZZ
    @given(route=st.sampled_from(UC_ROUTES), body=uc_bodies)
    def rest(route: tuple[str, str], body: Any) -> None:
        sound(client.request(route[0], UC + route[1], json=body))

    @FUZZ
    @given(query=graphql_docs, variables=json_values)
    def graphql(query: str, variables: Any) -> None:
        r = client.post("/graphql", json={"query": query, "variables": variables})
        sound(r)
        assert "INTERNAL" not in r.text, r.text

    @FUZZ
    @given(body=ol_bodies())
    def lineage(body: Any) -> None:
        sound(client.post("/api/v1/lineage", json=body))

    @FUZZ
    @given(raw=st.binary(max_size=200), kind=st.sampled_from(["application/json", "text/plain", "", "application/x+json"]))
    def raw_bytes(raw: bytes, kind: str) -> None:
        sound(client.post(UC + "/catalogs", content=raw, headers={"Content-Type": kind} if kind else {}))
        sound(client.post("/api/v1/lineage", content=raw, headers={"Content-Encoding": "gzip"}))

    with client:
        rest()
        graphql()
        lineage()
        raw_bytes()
    assert admin.lineage.get_upstream("main.s.secret").nodes == ()
