"""The web UI at `/` (api/ui): served from the package with a strict CSP, every call through
GraphQL with the signed-in token, and working in a real headless Chromium (Debian's `chromium`,
driven by playwright-core from api/web): sign in, browse to a table, its lineage graph with the
expected nodes left to right, placeholders without names for a principal without privileges, a
2,000-node graph timed, models, audit, sign out. Screenshots go to tests/artifacts/ui-*.png."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from api.graphql import execute
from catalog.client import Metastore

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "api" / "web"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHAIN = ["main.raw.events", "main.feat.user_features", "main.ml.churn_training", "model:main.ml.churn/1", "endpoint:churn", "main.ml.predictions"]
SECRET = "main.vault.crm_export"  # upstream of everything; only the admin may see it
FANOUT, LEAVES = 40, 49  # the big graph: 1 + 40 + 40 * 49 = 2,001 nodes


def build_world(metastore: Metastore) -> dict[str, str]:
    """main.raw.events (a masked, tagged column, rows) → features → training set → churn v1 →
    endpoint churn → predictions, fed by a secret table; an analyst who may read main.raw only; a
    2,001-node graph below main.raw.big. Returns the tokens of admin and analyst."""
    a = metastore.as_principal("admin")
    a.sql("""CREATE CATALOG main COMMENT 'production lakehouse';
             CREATE SCHEMA main.raw; CREATE SCHEMA main.feat; CREATE SCHEMA main.ml; CREATE SCHEMA main.vault;
             CREATE TABLE main.vault.crm_export (user_id BIGINT, email STRING);
             CREATE TABLE main.raw.events (user_id BIGINT COMMENT 'who', email STRING COMMENT 'contact', amount DOUBLE, ts TIMESTAMP)
               COMMENT 'raw click and order events <img src=x onerror=window.pwned=1>';
             INSERT INTO main.raw.events VALUES (1, 'ann@example.com', 9.5, TIMESTAMP '2026-01-01 10:00:00'),
                                                (2, 'bob@example.com', 20.0, TIMESTAMP '2026-01-02 11:00:00');
             CREATE TABLE main.ml.churn_training (user_id BIGINT, churned BOOLEAN);
             CREATE TABLE main.ml.predictions (user_id BIGINT, score DOUBLE);
             CREATE TABLE main.raw.big (id BIGINT)""")
    a.tables.create_table("main.feat.user_features", [{"name": "user_id", "type": "bigint", "nullable": False},
                                                      {"name": "feature_timestamp", "type": "timestamp", "nullable": False},
                                                      {"name": "orders_30d", "type": "int"}],
                          primary_keys=["user_id", "feature_timestamp"], timestamp_keys=["feature_timestamp"], comment="per-user features")
    a.functions.create_function("main.raw.hide_email", "CASE WHEN is_account_group_member('support') THEN email ELSE '***' END", "string",
                                [{"name": "email", "type": "string"}])
    a.tables.set_column_mask("main.raw.events", "email", "main.raw.hide_email")
    a.tags.set_tags("table", "main.raw.events", {"pii": "true"}, column="email")
    a.tags.set_tags("table", "main.raw.events", {"domain": "sales"})
    a.models.create_registered_model("main.ml.churn", comment="who will leave")
    a.models.create_model_version("main.ml.churn", "file:///tmp/churn/1", run_id="run-0001")
    a.models.set_alias("main.ml.churn", "champion", 1)
    a.lineage.record([SECRET], [CHAIN[0]])
    for src, dst in itertools.pairwise(CHAIN):
        a.lineage.record([src], [dst])
    a.lineage.record([], [], [{"source": "main.raw.events.user_id", "target": "main.feat.user_features.user_id"}])  # type: ignore[list-item]
    event = {"eventTime": "2026-01-01T00:00:00Z", "producer": "tests", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json"}
    a.lineage.ingest_openlineage({**event, "job": {"namespace": "spark", "name": "fan"}, "inputs": [{"namespace": "cairn", "name": "main.raw.big"}],
                                  "outputs": [{"namespace": "s3://lake", "name": f"mid/{i}"} for i in range(FANOUT)]})
    for i in range(FANOUT):
        a.lineage.ingest_openlineage({**event, "job": {"namespace": "spark", "name": f"fan{i}"}, "inputs": [{"namespace": "s3://lake", "name": f"mid/{i}"}],
                                      "outputs": [{"namespace": "s3://lake", "name": f"leaf/{i}/{j}"} for j in range(LEAVES)]})
    a.principals.create_user("analyst")
    a.grants.grant("catalog", "main", "analyst", ["USE CATALOG"])
    a.grants.grant("schema", "main.raw", "analyst", ["USE SCHEMA", "SELECT"])
    return {"admin": a.tokens.create_token()[0], "analyst": a.tokens.create_token("analyst")[0]}


@pytest.fixture
def world(metastore: Metastore) -> dict[str, str]:
    return build_world(metastore)


def test_table_policy_and_viewer_fields(metastore: Metastore, world: dict[str, str]) -> None:
    analyst = metastore.as_principal("analyst")
    got = execute(analyst, '{ viewer { name kind isAdmin } tablePolicy(name: "main.raw.events") { rowFilter { function } columnMasks { column function using } } }')
    assert got == {"data": {"viewer": {"name": "analyst", "kind": "USER", "isAdmin": False},
                            "tablePolicy": {"rowFilter": None, "columnMasks": [{"column": "email", "function": "main.raw.hide_email", "using": []}]}}}
    hidden = execute(analyst, '{ tablePolicy(name: "main.ml.predictions") { columnMasks { column } } }')
    assert hidden["data"] is None or hidden["data"]["tablePolicy"] is None
    assert hidden["errors"][0]["extensions"]["code"] in ("NOT_FOUND", "PERMISSION_DENIED")
    denied = list(metastore.as_principal("admin").audit.list_events(principal="analyst", action="get_table", result="DENIED", max_results=10))
    assert [e.securable_name for e in denied] == ["main.ml.predictions"]


def test_the_page_and_its_files_come_from_the_package(metastore: Metastore, live) -> None:  # type: ignore[no-untyped-def]
    from api.server import make_app

    with live(make_app(metastore)) as url:
        page = httpx.get(f"{url}/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
        assert '<script type="module" src="/ui/app.js">' in page.text and "https://" not in page.text
        for name, kind in (("app.js", "text/javascript"), ("lineage.js", "text/javascript"), ("style.css", "text/css")):
            r = httpx.get(f"{url}/ui/{name}")
            assert r.status_code == 200 and r.headers["content-type"].startswith(kind) and "https://" not in r.text, name
        for bad in ("..%2F__init__.py", "__init__.py", "nope.js", "..%2F..%2Fserver.py"):
            assert httpx.get(f"{url}/ui/{bad}").status_code == 404, bad
        assert httpx.post(f"{url}/graphql", json={"query": "{ viewer { name } }"}).status_code == 401  # the page's data needs a token


def test_every_query_the_page_sends_is_valid_for_this_schema() -> None:
    """The queries of api/ui/static, built for this server's schema as the page builds them (optional
    registry and serving fields only when the schema has them), all pass GraphQL validation and the
    server's own bounds: a field renamed or removed fails here, not in front of a user."""
    import graphql as gql

    from api.graphql import prepare, schema

    if not shutil.which("node"):
        pytest.skip("needs node")

    def built(introspection: dict) -> dict[str, str]:  # type: ignore[type-arg]
        run = subprocess.run(["node", "ui_queries.mjs"], cwd=WEB, input=json.dumps(introspection), capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    introspection = gql.graphql_sync(schema.graphql_schema, built({"__schema": {"types": []}})["SCHEMA"]).data
    assert introspection is not None
    queries = built(introspection)
    assert {"VIEWER", "table", "lineage-both", "model", "models", "AUDIT", "search", "preview"} <= set(queries)
    for name, query in queries.items():
        if query is None:  # the endpoint page, on a server without serving endpoints
            assert name == "endpoint" and "servingEndpoint" not in {f for f in schema.graphql_schema.query_type.fields}
            continue
        assert not isinstance(prepare(query), dict), (name, prepare(query))  # a dict is the refusal
    assert "tablePolicy" in queries["table"] and "history(limit: 20)" in queries["table"]


def run_browser(url: str, world: dict[str, str], hidden: list[str]) -> dict:  # type: ignore[type-arg]
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        pytest.skip("playwright-core is not installed (make install)")
    if not Path("/usr/bin/chromium").exists() or not shutil.which("node"):
        pytest.skip("needs Debian's chromium and node (make test installs chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    plan = {"url": url, "admin": world["admin"], "analyst": world["analyst"], "table": "main.raw.events", "hidden": hidden,
            "big": "main.raw.big", "model": "main.ml.churn", "artifacts": str(ARTIFACTS)}
    run = subprocess.run(["node", "check_ui.mjs", json.dumps(plan)], cwd=WEB, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_ui_in_headless_chromium(metastore: Metastore, world: dict[str, str], live) -> None:  # type: ignore[no-untyped-def]
    from api.server import make_app

    hidden = [SECRET, "crm_export", "user_features", "churn_training", "main.ml.churn/1", "predictions"]
    with live(make_app(metastore)) as url:
        got = run_browser(url, world, hidden)
    print("\nlineage of 2,001 nodes in Chromium (ms):", json.dumps(got.get("big")))
    assert "failure" not in got, got
    assert got["consoleErrors"] == [] and got["pageErrors"] == [], got
    assert got["offsite"] == []  # nothing from elsewhere: works offline
    assert set(got["posts"]) == {f"{url}/graphql"}  # every call the page makes is GraphQL
    assert got["signInShown"] and got["who"] == "admin (admin)"
    # the table page, reached through the tree
    t = got["table"]
    assert t["title"] == "main.raw.events" and t["columns"] == ["user_id", "email", "amount", "ts"]
    assert t["comment"] == "raw click and order events <img src=x onerror=window.pwned=1>"  # shown as text, never run
    assert t["pwned"] is None and t["images"] == 0
    assert t["masked"] == ["email"] and "pii=true" in t["tags"] and "domain=sales" in t["tags"]
    assert t["owner"] == "admin" and any("metastore admin" in p for p in t["privileges"])
    assert t["preview"][0] == ["user_id", "email", "amount", "ts"] and sorted(r[1] for r in t["preview"][1:]) == ["***", "***"]  # the mask applies
    assert t["history"] >= 2  # create + insert
    # the lineage graph of the table: the whole chain, left to right
    g = got["lineage"]
    names = {n["name"]: n for n in g["nodes"]}
    chain = ["main.vault.crm_export", "main.raw.events", "main.feat.user_features", "main.ml.churn_training", "main.ml.churn/1", "churn", "main.ml.predictions"]
    assert set(chain) <= set(names), g
    xs = [names[n]["x"] for n in chain]
    assert xs == sorted(xs) and len(set(xs)) == len(xs), xs  # one column per step, in order
    assert names["main.raw.events"]["root"] and g["hidden"] == 0
    assert got["opened"] == "#/table/main.feat.user_features"  # a node opens its page
    ft = got["featureTable"]  # its page: keys and freshness
    assert "Keys\nuser_id, feature_timestamp" in ft and "Timestamp keys\nfeature_timestamp" in ft and "Freshness\nversion 0, committed" in ft, ft
    assert got["collapsed"] < got["expanded"]
    assert got["column"] == [["COLUMN", "main.feat.user_features.user_id"], ["COLUMN", "main.raw.events.user_id"]]
    assert got["asOfBefore"] == ["main.raw.events"]  # as of a time before any lineage: the node alone
    mv = {n["name"]: n["x"] for n in got["modelVersion"]}
    assert mv["main.ml.churn/1"] == 0 or min(mv.values()) < mv["main.ml.churn/1"] < max(mv.values())
    order = ["main.vault.crm_export", "main.raw.events", "main.feat.user_features", "main.ml.churn_training", "main.ml.churn/1", "churn", "main.ml.predictions"]
    assert [n for n in sorted(mv, key=lambda n: mv[n])] == order  # raw → features → training set → model version → endpoint → predictions
    assert got["search"] == ["main.raw.events"]  # by a column tag
    assert got["models"]["listed"] == ["main.ml.churn"] and "@champion → v1" in got["models"]["text"]
    # models, audit, sign-out
    assert "v1" in got["model"]["versions"] and "@champion" in got["model"]["versions"] and "run-0001" in got["model"]["versions"]
    assert got["audit"]["rows"] > 0 and set(got["audit"]["principals"]) == {"admin"} and got["audit"]["results"] == ["ALLOWED"]
    assert got["signedOut"] == {"form": True, "stored": None, "tree": 0}
    # the analyst: placeholders where it may not look, and no name of what they hide anywhere on the page
    a = got["analyst"]
    assert a["who"] == "analyst"
    assert a["visible"] == ["main.raw.events"]  # the endpoint is governed like its securable: hidden from the analyst too
    assert a["hidden"] == 6 and a["hiddenLabels"] == ["hidden"]
    assert a["leaked"] == [], a["leaked"]
    assert a["catalogTree"] == ["main"] and a["schemas"] == ["raw"]
    assert got["badToken"]["form"] and "refused" in got["badToken"]["message"]
    assert got["refusedMidSession"]["message"].startswith("The server refused the token") and got["refusedMidSession"]["stored"] is None
    assert got["refusedMidSession"]["main"] == ""  # nothing of the session stays on the page
    # a 2,001-node graph: wide fan-outs open folded; unfolded, every node is laid out and drawn
    big = got["big"]
    assert big["nodes"] == 1 + FANOUT + FANOUT * LEAVES and big["folded"] == big["labelled"] == 1 + FANOUT
    assert big["expanded"] == big["nodes"] and 0 < big["closeUp"] < 200  # up close, only what is in view
    assert big["renderMs"] > 0 and big["expandMs"] > 0
    for shot in ("signin", "table", "lineage", "big", "big-expanded", "big-close", "model", "audit", "analyst"):
        assert (ARTIFACTS / f"ui-{shot}.png").stat().st_size > 10_000, shot
