"""Lineage ingest cannot reach a table the caller may not write (outputs) or see (inputs, column
lineage inputs), whatever name the event gives it: its catalog name, a symlink, a physical name
linked before, or its storage location spelled any way. A refused event changes nothing and leaves
a DENIED audit row naming the table."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from catalog.client import Cairn, Metastore
from catalog.errors import InvalidArgument, NotFound, PermissionDenied

pytestmark = pytest.mark.slow
LINEAGE = "/api/v1/lineage"


def event(inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"eventTime": "2026-01-01T00:00:00Z", "producer": "https://example.com/p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json",
            "eventType": "COMPLETE", "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "spark", "name": "etl"},
            "inputs": inputs, "outputs": outputs}


def ds(namespace: str, name: str, symlink: str | None = None, columns_from: tuple[str, str] | None = None) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if symlink:
        facets["symlinks"] = {"identifiers": [{"namespace": "cairn", "name": symlink, "type": "TABLE"}]}
    if columns_from:
        facets["columnLineage"] = {"fields": {"v": {"inputFields": [{"namespace": columns_from[0], "name": columns_from[1], "field": "v"}]}}}
    return {"namespace": namespace, "name": name, "facets": facets}


def spellings(location: str) -> list[tuple[str, str, str | None]]:
    """Names of main.s.secret: (namespace, name, symlink)."""
    parent, leaf = location.rsplit("/", 1)
    return [("cairn", "main.s.secret", None), ("cairn", "MAIN.S.`secret`", None), ("file", "/elsewhere/x", "main.s.secret"),
            ("file", location, None), ("file", "file://" + location, None), ("file", location + "/", None),
            ("file", f"{parent}/../{parent.rsplit('/', 1)[1]}/{leaf}", None), ("file", parent + "//" + leaf + "/.", None),
            ("file", location + "/part-00000.parquet", None), ("file://", location, None), ("file://localhost", location, None)]


def state(admin: Cairn) -> str:
    """Every edge, column edge and physical-name link of the lineage graph, as one text."""
    from sqlalchemy import select

    from lineage.store import symlinks

    edges = admin.lineage.list_edges("TABLE") + admin.lineage.list_edges("COLUMN")
    with admin.metastore.engine.connect() as conn:
        links = sorted(tuple(r) for r in conn.execute(select(symlinks)))
    return json.dumps([sorted((e["source"], e["target"]) for e in edges), links])


def last_row(admin: Cairn) -> Any:
    rows = list(admin.audit.list_events(principal="ana", action="ingest_openlineage", max_results=1000))
    return rows[-1]


def post(server: str, token: str, body: Any) -> httpx.Response:
    return httpx.post(server + LINEAGE, json=body, headers={"Authorization": f"Bearer {token}"})


def test_an_output_that_is_secret_by_any_name_is_refused(server: str, world: dict[str, str], admin: Cairn) -> None:
    before = state(admin)
    for ns, name, link in spellings(world["secret_location"]):
        r = post(server, world["ana"], event([ds("cairn", "main.s.mine")], [ds(ns, name, link)]))
        assert (r.status_code, r.json()["error_code"]) == (404, "NOT_FOUND"), (ns, name, link, r.text)
        row = last_row(admin)
        assert (row.result.value, row.securable_kind, row.securable_name) == ("DENIED", "TABLE", "main.s.secret"), (ns, name)
    # Once ana may see it, she is told why: she lacks MODIFY.
    admin.grants.grant("table", "main.s.secret", "ana", ["SELECT"])
    for ns, name, link in spellings(world["secret_location"]):
        r = post(server, world["ana"], event([ds("cairn", "main.s.mine")], [ds(ns, name, link)]))
        assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED"), (ns, name, link)
        assert "lacks MODIFY on table 'main.s.secret'" in r.json()["message"]
    assert state(admin) == before
    assert admin.lineage.get_upstream("main.s.secret").nodes == ()


def test_an_input_or_a_column_input_that_is_secret_is_refused(server: str, world: dict[str, str], admin: Cairn) -> None:
    before = state(admin)
    for ns, name, link in spellings(world["secret_location"]):
        column_input = [] if link else [event([], [ds("cairn", "main.s.mine", columns_from=(ns, name))])]  # input fields carry no symlinks
        for body in [event([ds(ns, name, link)], [ds("cairn", "main.s.mine")]), *column_input]:
            r = post(server, world["ana"], body)
            assert (r.status_code, r.json()["error_code"]) == (404, "NOT_FOUND"), (ns, name, link, r.text)
            assert last_row(admin).securable_name == "main.s.secret"
    assert state(admin) == before
    assert admin.lineage.get_downstream("main.s.secret").nodes == ()
    assert admin.lineage.get_downstream("main.s.secret.v", level="COLUMN").nodes == ()


def test_a_refused_event_changes_nothing_and_an_allowed_one_names_its_tables(server: str, world: dict[str, str], admin: Cairn) -> None:
    before = state(admin)
    run = event([ds("s3://landing", "raw/a")], [ds("file", "/lake/ana", "main.s.mine"), ds("file", world["secret_location"] + "/")])
    r = post(server, world["ana"], run)
    assert r.status_code == 404
    assert state(admin) == before  # mine got no edge, /lake/ana no link, and the run was not recorded
    with pytest.raises(NotFound):
        admin.lineage.get_run(run["run"]["runId"])
    ok = event([ds("s3://landing", "raw/a"), ds("cairn", "main.s.seen")], [ds("file", "/lake/ana", "main.s.mine")])
    r = post(server, world["ana"], ok)
    assert (r.status_code, r.json()["edges"]) == (201, 2)
    row = last_row(admin)
    assert (row.result.value, row.securable_kind, row.securable_name) == ("ALLOWED", "TABLE", "main.s.mine,main.s.seen")
    assert sorted(n.name for n in admin.lineage.get_upstream("main.s.mine").nodes) == ["main.s.seen", "raw/a"]


def test_a_physical_name_cannot_be_linked_to_a_second_table(server: str, world: dict[str, str], admin: Cairn) -> None:
    # secret's location, claimed as mine by a symlink: even the admin may not merge two tables' names.
    body = event([], [ds("file", world["secret_location"], "main.s.mine")])
    r = post(server, world["admin"], body)
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_ARGUMENT")
    assert "2 different catalog tables: main.s.mine, main.s.secret" in r.json()["message"]
    # Reading a table does not let ana link names to it: inputs link nothing.
    r = post(server, world["ana"], event([ds("file", "/lake/seen-copy", "main.s.seen")], [ds("cairn", "main.s.mine")]))
    assert r.status_code == 201
    assert "/lake/seen-copy" not in state(admin)


def test_a_name_linked_before_is_the_table(server: str, world: dict[str, str], admin: Cairn) -> None:
    r = post(server, world["admin"], event([], [ds("hdfs://nn", "/warehouse/secret", "main.s.secret")]))
    assert r.status_code == 201
    before = state(admin)
    r = post(server, world["ana"], event([ds("cairn", "main.s.mine")], [ds("hdfs://nn", "/warehouse/secret")]))
    assert (r.status_code, last_row(admin).securable_name) == (404, "main.s.secret")
    assert state(admin) == before


def test_the_python_ingest_and_record_are_governed_the_same_way(metastore: Metastore, world: dict[str, str], admin: Cairn) -> None:
    ana = metastore.as_principal("ana")
    before = state(admin)
    with pytest.raises(NotFound):
        ana.lineage.ingest_openlineage(event([ds("cairn", "main.s.mine")], [ds("file", "file://" + world["secret_location"])]))
    with pytest.raises(NotFound):
        ana.lineage.record(["main.s.mine"], ["main.s.mine"], [{"source": "main.s.secret.v", "target": "main.s.mine.v"}])
    admin.grants.grant("table", "main.s.secret", "ana", ["SELECT"])
    with pytest.raises(PermissionDenied):
        ana.lineage.record(["main.s.mine"], ["main.s.secret"])
    assert state(admin) == before
    rows = [e for e in admin.audit.list_events(principal="ana", max_results=100) if e.action in ("ingest_openlineage", "record_lineage")]
    assert [(e.action, e.result.value, e.securable_name) for e in rows] == [
        ("ingest_openlineage", "DENIED", "main.s.secret"), ("record_lineage", "DENIED", "main.s.secret"), ("record_lineage", "DENIED", "main.s.secret")]
    with pytest.raises(InvalidArgument, match="limit is 10,000"):
        admin.lineage.record([f"main.s.t{i}" for i in range(200)], [f"main.s.u{i}" for i in range(200)])


def test_an_event_cannot_finish_or_extend_somebody_elses_run(server: str, world: dict[str, str], admin: Cairn, metastore: Metastore) -> None:
    run_id = admin.lineage.start_run("daily")
    before = state(admin)
    body = event([ds("cairn", "main.s.seen")], [ds("cairn", "main.s.mine")])
    body["run"]["runId"] = run_id
    r = post(server, world["ana"], body)
    assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED") and "belongs to another principal" in r.json()["message"]
    assert last_row(admin).result.value == "DENIED"
    with pytest.raises(PermissionDenied):
        metastore.as_principal("ana").lineage.record(["main.s.seen"], ["main.s.mine"], run_id=run_id)
    assert admin.lineage.get_run(run_id)["state"] == "RUNNING" and state(admin) == before
    body["run"]["runId"] = str(uuid.uuid4())  # her own run is hers to write
    assert post(server, world["ana"], body).status_code == 201
