"""Lineage recorded by governed writes and through the API; traversal, paths, impact, visibility."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from catalog.client import Cairn, Metastore
from catalog.errors import InvalidArgument, NotFound, PermissionDenied
from lineage.service import ColumnEdge
from lineage.store import edges

COLS = [{"name": "user_id", "type": "bigint"}, {"name": "amount", "type": "double"}]


@pytest.fixture
def lake(admin: Cairn) -> Cairn:
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.s")
    for t in ("raw", "clean", "features", "preds"):
        admin.tables.create_table(f"main.s.{t}", COLS)
    admin.principals.create_user("ana")
    return admin


def names(result) -> list[tuple[str | None, int]]:  # type: ignore[no-untyped-def]
    return [(n.name, n.depth) for n in result.nodes]


def test_a_run_links_the_versions_it_read_to_the_version_it_wrote(lake: Cairn, metastore: Metastore) -> None:
    lake.data.write("main.s.raw", [{"user_id": 1, "amount": 2.0}])
    run = lake.lineage.start_run("build_features", parameters={"window": "30d"})
    assert lake.data.read("main.s.raw", run_id=run).num_rows == 1
    written = lake.data.write("main.s.features", [{"user_id": 1, "amount": 2.0}], run_id=run)
    lake.lineage.complete_run(run)
    up = lake.lineage.get_upstream("main.s.features")
    assert names(up) == [("main.s.raw", 1)]
    info = lake.lineage.get_run(run)
    assert (info["job_name"], info["state"], info["principal"], info["parameters"]) == ("build_features", "COMPLETE", "admin", {"window": "30d"})
    assert (info["inputs"], info["outputs"]) == ([("main.s.raw", 1)], [("main.s.features", written.version)])
    with pytest.raises(NotFound):
        metastore.as_principal("ana").lineage.get_run(run)
    with metastore.engine.connect() as conn:
        row = conn.execute(select(edges)).one()
    assert (row.run_id, row.source_version, row.target_version) == (run, 1, written.version)
    with pytest.raises(NotFound, match="run 'nope'"):
        lake.data.write("main.s.features", [{"user_id": 2, "amount": 1.0}], run_id="nope")


def test_recording_needs_modify_on_outputs_and_sight_of_inputs(lake: Cairn, metastore: Metastore) -> None:
    ana = metastore.as_principal("ana")
    with pytest.raises(NotFound):
        ana.lineage.record(["main.s.raw"], ["main.s.clean"])
    lake.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    with pytest.raises(PermissionDenied, match="lacks MODIFY"):
        ana.lineage.record(["main.s.raw"], ["main.s.clean"])
    with metastore.engine.connect() as conn:
        assert conn.execute(select(edges)).all() == []
    lake.grants.grant("table", "main.s.clean", "ana", "MODIFY")
    assert ana.lineage.record(["main.s.raw"], ["main.s.clean"]) == 1


def test_traversal_columns_depth_cycles_and_paths(lake: Cairn) -> None:
    lake.lineage.record(["main.s.raw"], ["main.s.clean"], [ColumnEdge("main.s.raw.amount", "main.s.clean.amount")])
    lake.lineage.record(["main.s.clean"], ["main.s.features"],
                        [ColumnEdge("main.s.clean.amount", "main.s.features.amount", "DIRECT", "AGGREGATION"),
                         ColumnEdge("main.s.clean.user_id", "main.s.features.amount", "INDIRECT", "GROUP_BY")])
    lake.lineage.record(["main.s.features"], ["main.s.preds"])
    lake.lineage.record(["main.s.preds"], ["main.s.raw"])  # a feedback loop: traversal must stop
    down = lake.lineage.get_downstream("main.s.raw")
    assert names(down) == [("main.s.clean", 1), ("main.s.features", 2), ("main.s.preds", 3)]
    assert not down.truncated
    preds = next(n for n in down.nodes if n.name == "main.s.preds")
    assert len(preds.path) == 4 and preds.path[0] == down.root.id
    cut = lake.lineage.get_downstream("main.s.raw", depth=1)
    assert names(cut) == [("main.s.clean", 1)] and cut.truncated
    cols = lake.lineage.get_downstream("main.s.raw.amount", level="COLUMN")
    assert names(cols) == [("main.s.clean.amount", 1), ("main.s.features.amount", 2)]
    path = lake.lineage.get_path("main.s.raw", "main.s.preds")
    assert [p.name for p in path] == ["main.s.raw", "main.s.clean", "main.s.features", "main.s.preds"]
    assert lake.lineage.get_path("main.s.clean", "main.s.clean")[0].name == "main.s.clean"
    impact = lake.lineage.get_impact("main.s.clean.user_id")
    assert (impact.columns, impact.tables, impact.owners) == (("main.s.features.amount",), ("main.s.features",), {"main.s.features": "admin"})


def test_lineage_as_of_a_time(lake: Cairn) -> None:
    lake.lineage.record(["main.s.raw"], ["main.s.clean"])
    time.sleep(0.02)
    between = datetime.now(UTC)
    time.sleep(0.02)
    lake.lineage.record(["main.s.clean"], ["main.s.features"])
    assert names(lake.lineage.get_downstream("main.s.raw", as_of=between)) == [("main.s.clean", 1)]
    assert len(lake.lineage.get_downstream("main.s.raw").nodes) == 2


def test_hidden_nodes_are_placeholders_that_keep_paths_connected(lake: Cairn, metastore: Metastore) -> None:
    lake.lineage.record(["main.s.raw"], ["main.s.clean"])
    lake.lineage.record(["main.s.clean"], ["main.s.features"])
    lake.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA"])
    lake.grants.grant("table", "main.s.raw", "ana", "SELECT")
    lake.grants.grant("table", "main.s.features", "ana", "SELECT")
    down = metastore.as_principal("ana").lineage.get_downstream("main.s.raw")
    hidden, shown = down.nodes
    assert (hidden.restricted, hidden.name, hidden.namespace, hidden.depth) == (True, None, None, 1)
    assert (shown.name, shown.depth, shown.path[1]) == ("main.s.features", 2, hidden.id)
    with pytest.raises(NotFound):
        metastore.as_principal("ana").lineage.get_upstream("main.s.clean")


def test_bad_traversal_arguments(lake: Cairn) -> None:
    with pytest.raises(InvalidArgument, match="depth"):
        lake.lineage.get_downstream("main.s.raw", depth=0)
    with pytest.raises(InvalidArgument, match="level"):
        lake.lineage.get_downstream("main.s.raw", level="ROW")
    with pytest.raises(InvalidArgument, match="unknown node kind"):
        lake.lineage.get_downstream("main.s.raw", node_kinds=["PLANET"])
    with pytest.raises(NotFound, match="no lineage"):
        lake.lineage.get_downstream("main.s.gone")


def test_sql_lineage_uses_catalog_columns_and_records_edges(lake: Cairn, metastore: Metastore) -> None:
    sql = "INSERT INTO features SELECT * FROM raw WHERE amount > 0"
    lin = lake.lineage.extract_sql(sql, "databricks", "main", "s")
    assert {(e.source, e.target, e.kind) for e in lin.columns} >= {("raw.user_id", "features.user_id", "DIRECT"), ("raw.amount", "features.amount", "DIRECT")}
    assert lake.lineage.record_sql(sql, "databricks", default_catalog="main", default_schema="s") > 1
    cols = lake.lineage.get_upstream("main.s.features.user_id", level="COLUMN")
    assert sorted(n.name for n in cols.nodes) == ["main.s.raw.amount", "main.s.raw.user_id"]  # direct, and the filter
    # Someone who cannot see `raw` gets no columns from the catalog for it: `*` stays unexpanded
    # (a `*` -> `*` edge, naming no column of raw's).
    lake.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA"])
    lake.grants.grant("table", "main.s.features", "ana", "SELECT")
    hidden = metastore.as_principal("ana").lineage.extract_sql(sql, "databricks", "main", "s")
    assert {(e.source, e.target) for e in hidden.columns if e.kind == "DIRECT"} == {("raw.*", "features.*")}
    with pytest.raises(InvalidArgument, match="cannot read the SQL"):
        lake.lineage.record_sql("INSERT INTO", "databricks")


def test_runs_are_emitted_as_openlineage_events(lake: Cairn, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from lineage.openlineage import parse

    received: list[tuple[str, str | None, dict]] = []

    class Consumer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, self.headers.get("Authorization"), body))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    server = HTTPServer(("127.0.0.1", 0), Consumer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CAIRN_OPENLINEAGE_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("CAIRN_OPENLINEAGE_API_KEY", "k")
    try:
        lake.data.write("main.s.raw", [{"user_id": 1, "amount": 1.0}])
        run = lake.lineage.start_run("daily_features")
        lake.data.read("main.s.raw", run_id=run)
        lake.data.write("main.s.features", [{"user_id": 1, "amount": 1.0}], run_id=run)
        lake.lineage.complete_run(run)
    finally:
        server.shutdown()
    assert [(p, a, b["eventType"]) for p, a, b in received] == [("/api/v1/lineage", "Bearer k", "START"), ("/api/v1/lineage", "Bearer k", "COMPLETE")]
    complete = parse(received[1][2])
    assert (complete.job_name, [d.name for d in complete.inputs], [d.name for d in complete.outputs]) == ("daily_features", ["main.s.raw"], ["main.s.features"])
    assert received[1][2]["inputs"][0]["facets"]["version"]["datasetVersion"] == "1"
    # A consumer that is down does not fail the run.
    monkeypatch.setenv("CAIRN_OPENLINEAGE_URL", "http://127.0.0.1:9")
    lake.lineage.complete_run(lake.lineage.start_run("job2"))


def test_models_versions_and_endpoints_are_lineage_nodes(lake: Cairn, metastore: Metastore) -> None:
    lake.models.create_registered_model("main.s.churn")
    lake.models.create_model_version("main.s.churn", "runs:/r/model")
    lake.lineage.record(["main.s.features"], ["model:main.s.churn/1"])
    lake.lineage.record(["model:main.s.churn/1"], ["endpoint:churn-prod"])
    lake.lineage.record(["endpoint:churn-prod"], ["main.s.preds"])
    down = lake.lineage.get_downstream("main.s.features")
    assert [(n.kind, n.name, n.depth) for n in down.nodes] == [
        ("MODEL_VERSION", "main.s.churn/1", 1), ("ENDPOINT", "churn-prod", 2), ("TABLE", "main.s.preds", 3)]
    only_tables = lake.lineage.get_downstream("main.s.features", node_kinds=["TABLE"])
    assert [n.name for n in only_tables.nodes] == ["main.s.preds"]
    up = lake.lineage.get_upstream("model:main.s.churn/1")
    assert [n.name for n in up.nodes] == ["main.s.features"]
    lake.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    with pytest.raises(NotFound, match="main.s.churn/1"):  # ana cannot even see the model
        metastore.as_principal("ana").lineage.record(["main.s.raw"], ["model:main.s.churn/1"])
    lake.grants.grant("model", "main.s.churn", "ana", "EXECUTE")
    with pytest.raises(PermissionDenied, match="ownership or MANAGE"):
        metastore.as_principal("ana").lineage.record(["main.s.raw"], ["model:main.s.churn/1"])
    with pytest.raises(InvalidArgument, match="unknown lineage reference"):
        lake.lineage.record(["main.s.raw"], ["planet:earth"])


def test_lineage_of_dropped_tables_is_for_admins_only(lake: Cairn, metastore: Metastore) -> None:
    lake.lineage.record(["main.s.raw"], ["main.s.clean"])
    lake.tables.delete_table("main.s.clean")
    lake.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    ana = metastore.as_principal("ana")
    hidden = ana.lineage.get_downstream("main.s.raw").nodes
    assert [(n.restricted, n.name) for n in hidden] == [(True, None)]
    with pytest.raises(PermissionDenied):
        ana.lineage.get_upstream("main.s.clean")
    assert [n.name for n in lake.lineage.get_downstream("main.s.raw").nodes] == ["main.s.clean"]


def test_another_principals_run_is_hidden_the_same_way_by_every_call(metastore) -> None:  # type: ignore[no-untyped-def]
    from catalog.entities import AuditResult
    from catalog.errors import NotFound

    admin = metastore.as_principal("admin")
    admin.principals.create_user("eve")
    run = admin.lineage.start_run("nightly")
    eve = metastore.as_principal("eve")
    for call in (lambda: eve.lineage.get_run(run), lambda: eve.lineage.complete_run(run)):
        with pytest.raises(NotFound, match=f"run '{run}' does not exist"):
            call()
    denied = [e for e in admin.audit.list_events(max_results=1000) if e.principal == "eve" and e.result is AuditResult.DENIED]
    assert [e.action for e in denied] == ["get_run", "complete_run"]
    assert admin.lineage.get_run(run)["state"] != "COMPLETE"
