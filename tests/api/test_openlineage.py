"""The OpenLineage endpoint on a real HTTP server, driven by the real openlineage-python client."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from api.openlineage import make_app
from catalog.client import Cairn, Metastore

pytestmark = pytest.mark.slow
TOKENS = {"tok-admin": "admin", "tok-ana": "ana"}


@pytest.fixture
def server(metastore: Metastore, admin: Cairn, live) -> Iterator[str]:  # type: ignore[no-untyped-def]
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.s")
    for t in ("raw", "gold"):
        admin.tables.create_table(f"main.s.{t}", [{"name": "id", "type": "bigint"}, {"name": "v", "type": "double"}])
    admin.principals.create_user("ana")
    with live(make_app(metastore, TOKENS.get)) as url:
        yield url


def ol_client(url: str, token: str, compression: str | None = None):  # type: ignore[no-untyped-def]
    from openlineage.client import OpenLineageClient

    transport = {"type": "http", "url": url, "endpoint": "api/v1/lineage", "auth": {"type": "api_key", "apiKey": token}}
    if compression:
        transport["compression"] = compression
    return OpenLineageClient(config={"transport": transport})


def run_event(inputs, outputs, state="COMPLETE"):  # type: ignore[no-untyped-def]
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState

    return RunEvent(eventType=getattr(RunState, state), eventTime=datetime.now(UTC).isoformat(), run=Run(runId=str(uuid.uuid4())),
                    job=Job(namespace="spark", name="etl"), producer="https://example.com/producer",
                    inputs=[InputDataset(namespace=ns, name=n, facets=f) for ns, n, f in inputs],
                    outputs=[OutputDataset(namespace=ns, name=n, facets=f) for ns, n, f in outputs])


def test_the_openlineage_client_works_unchanged(server: str, admin: Cairn) -> None:
    from openlineage.client.facet_v2 import column_lineage_dataset, symlinks_dataset

    gold_facets = {
        "symlinks": symlinks_dataset.SymlinksDatasetFacet(identifiers=[symlinks_dataset.Identifier(namespace="cairn", name="main.s.gold", type="TABLE")]),
        "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(fields={
            "v": column_lineage_dataset.Fields(inputFields=[column_lineage_dataset.InputField(
                namespace="cairn", name="main.s.raw", field="v",
                transformations=[column_lineage_dataset.Transformation(type="DIRECT", subtype="AGGREGATION")])],
                transformationDescription="", transformationType="")}),
    }
    client = ol_client(server, "tok-admin", compression="gzip")
    client.emit(run_event([("cairn", "main.s.raw", {}), ("s3://landing", "events/2026", {})], [("file", "/lake/gold", gold_facets)]))
    up = admin.lineage.get_upstream("main.s.gold")
    assert sorted((n.namespace, n.name) for n in up.nodes) == [("cairn", "main.s.raw"), ("s3://landing", "events/2026")]
    cols = admin.lineage.get_upstream("main.s.gold.v", level="COLUMN")
    assert [n.name for n in cols.nodes] == ["main.s.raw.v"]
    # The physical path is the same node as the catalog table (symlink).
    client.emit(run_event([("file", "/lake/gold", {})], [("cairn", "main.s.raw", {})]))
    assert [n.name for n in admin.lineage.get_upstream("main.s.raw").nodes] == ["main.s.gold", "events/2026"]


def test_invalid_events_get_400_with_the_reason(server: str) -> None:
    h = {"Authorization": "Bearer tok-admin"}
    r = httpx.post(f"{server}/api/v1/lineage", json={"producer": "x", "schemaURL": "y"}, headers=h)
    assert (r.status_code, r.json()["message"]) == (400, "event.eventTime is required")
    bad_run = {"eventTime": "2026-01-01T00:00:00Z", "producer": "x", "schemaURL": "y", "job": {"namespace": "n", "name": "j"}, "run": {"runId": "nope"}}
    r = httpx.post(f"{server}/api/v1/lineage", json=bad_run, headers=h)
    assert r.status_code == 400 and "not a UUID" in r.json()["message"]
    r = httpx.post(f"{server}/api/v1/lineage", content=b"{not json", headers=h)
    assert r.status_code == 400 and "not JSON" in r.json()["message"]
    r = httpx.post(f"{server}/api/v1/lineage", content=gzip.compress(b"[]"), headers={**h, "Content-Encoding": "gzip"})
    assert (r.status_code, r.json()["message"]) == (400, "the body must be a JSON object")  # as every route says it
    assert "Traceback" not in r.text


def test_authentication_and_authorization(server: str, admin: Cairn) -> None:
    event = json.loads(json.dumps({"eventTime": "2026-01-01T00:00:00Z", "producer": "x", "schemaURL": "y", "eventType": "COMPLETE",
                                   "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "n", "name": "j"},
                                   "inputs": [{"namespace": "cairn", "name": "main.s.raw"}], "outputs": [{"namespace": "cairn", "name": "main.s.gold"}]}))
    assert httpx.post(f"{server}/api/v1/lineage", json=event).status_code == 401
    assert httpx.post(f"{server}/api/v1/lineage", json=event, headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = httpx.post(f"{server}/api/v1/lineage", json=event, headers={"Authorization": "Bearer tok-ana"})
    assert r.status_code == 404  # ana may not even see main.s.raw
    admin.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    r = httpx.post(f"{server}/api/v1/lineage", json=event, headers={"Authorization": "Bearer tok-ana"})
    assert r.status_code == 403 and "lacks MODIFY" in r.json()["message"]
    assert admin.lineage.get_upstream("main.s.gold").nodes == ()
    admin.grants.grant("table", "main.s.gold", "ana", "MODIFY")
    r = httpx.post(f"{server}/api/v1/lineage", json=event, headers={"Authorization": "Bearer tok-ana"})
    assert (r.status_code, r.json()["edges"]) == (201, 1)
    denied = [e for e in admin.audit.list_events(principal="ana", action="ingest_openlineage", max_results=10)]
    assert [(e.result.value, e.source) for e in denied] == [("DENIED", "rest"), ("DENIED", "rest"), ("ALLOWED", "rest")]
