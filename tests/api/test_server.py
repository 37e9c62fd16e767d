"""`cairn serve`'s app on a real server: tokens, UC REST with the real unitycatalog-client, health, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.server import make_app
from catalog.client import Cairn, Metastore

pytestmark = pytest.mark.slow
UC = "/api/2.1/unity-catalog"


@pytest.fixture
def server(metastore: Metastore, live, request) -> Iterator[str]:  # type: ignore[no-untyped-def]
    # Calls on the event loop (the default), or on worker threads with `threads` (request.param) > 0.
    with live(make_app(metastore, threads=getattr(request, "param", 0))) as url:
        yield url


@pytest.fixture
def tokens(admin: Cairn) -> dict[str, str]:
    admin.principals.create_user("ana")
    return {"admin": admin.tokens.create_token()[0], "ana": admin.tokens.create_token("ana", "1d")[0]}


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_unitycatalog_client_lists_and_creates(server: str, tokens: dict[str, str], admin: Cairn, ext_dir) -> None:  # type: ignore[no-untyped-def]
    from unitycatalog.client import ApiClient, CatalogsApi, Configuration, SchemasApi, TablesApi
    from unitycatalog.client.models import ColumnInfo, CreateCatalog, CreateSchema, CreateTable

    tmp_path = ext_dir  # external tables live in an external location (ext_files covers ext_dir)

    async def run() -> tuple:
        # The OSS spec declares no auth scheme, so the client sends the bearer token as a default header.
        config = Configuration(host=server + UC)
        async with ApiClient(config, header_name="Authorization", header_value=f"Bearer {tokens['admin']}") as client:
            cats, schemas, tables = CatalogsApi(client), SchemasApi(client), TablesApi(client)
            await cats.create_catalog(CreateCatalog(name="main", comment="prod"))
            await schemas.create_schema(CreateSchema(name="sales", catalog_name="main"))
            created = await tables.create_table(CreateTable(
                # EXTERNAL with a location: every client release accepts it (older ones require storage_location).
                name="orders", catalog_name="main", schema_name="sales", table_type="EXTERNAL", data_source_format="DELTA",
                storage_location=str(tmp_path / "orders"),
                columns=[ColumnInfo(name="id", type_text="bigint", type_name="LONG", position=0, nullable=False),
                         ColumnInfo(name="amount", type_text="decimal(10, 2)", type_name="DECIMAL", position=1)]))
            listed = await cats.list_catalogs()
            got = await tables.get_table("main.sales.orders")
            page1 = await tables.list_tables(catalog_name="main", schema_name="sales", max_results=1)
            return created, listed, got, page1

    created, listed, got, page1 = asyncio.run(run())
    assert [c.name for c in listed.catalogs] == ["main"] and listed.catalogs[0].comment == "prod"
    assert (created.table_type, created.data_source_format) == ("EXTERNAL", "DELTA")
    assert [(c.name, c.type_name, c.type_precision) for c in got.columns] == [("id", "LONG", None), ("amount", "DECIMAL", 10)]
    assert got.storage_location == admin.tables.get_table("main.sales.orders").storage_location == str(tmp_path / "orders")
    assert [t.name for t in page1.tables] == ["orders"]
    # What the client created is a real Delta table through the catalog.
    from decimal import Decimal

    admin.data.write("main.sales.orders", [{"id": 1, "amount": Decimal("2.50")}])
    assert admin.data.read("main.sales.orders").num_rows == 1


def test_unitycatalog_client_manages_credentials_and_external_locations(server: str, tokens: dict[str, str], admin: Cairn,
                                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    from unitycatalog.client import ApiClient, Configuration, CredentialsApi, ExternalLocationsApi
    from unitycatalog.client.models import CreateCredentialRequest, CreateExternalLocation, UpdateExternalLocation

    lake = tmp_path_factory.mktemp("lake")

    async def run() -> tuple:
        config = Configuration(host=server + UC)
        async with ApiClient(config, header_name="Authorization", header_value=f"Bearer {tokens['admin']}") as client:
            creds, locs = CredentialsApi(client), ExternalLocationsApi(client)
            cred = await creds.create_credential(CreateCredentialRequest(name="local", purpose="STORAGE", comment="server identity"))
            loc = await locs.create_external_location(CreateExternalLocation(name="lake", url=f"file://{lake}/", credential_name="local"))
            await locs.update_external_location("lake", UpdateExternalLocation(comment="raw files"))
            listed = await locs.list_external_locations(max_results=10)
            got = await locs.get_external_location("lake")
            listed_creds = await creds.list_credentials()
            return cred, loc, listed, got, listed_creds

    cred, loc, listed, got, listed_creds = asyncio.run(run())
    assert (cred.name, cred.comment, cred.owner) == ("local", "server identity", "admin")
    assert (loc.name, loc.url, loc.credential_name) == ("lake", lake.as_uri(), "local")
    assert [x.name for x in listed.external_locations] == ["lake"] and got.comment == "raw files"
    assert [c.name for c in listed_creds.credentials] == ["local"]
    assert admin.external_locations.get_external_location("lake").storage_location == str(lake)
    # ana sees none of it, and may not create her own.
    r = httpx.get(f"{server}{UC}/external-locations", headers=h(tokens["ana"]))
    assert r.json() == {"external_locations": [], "next_page_token": None}
    r = httpx.get(f"{server}{UC}/external-locations/lake", headers=h(tokens["ana"]))
    assert (r.status_code, r.json()["error_code"]) == (404, "NOT_FOUND")
    r = httpx.post(f"{server}{UC}/external-locations", json={"name": "mine", "url": "s3://bucket/mine"}, headers=h(tokens["ana"]))
    assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED")
    patch = {"changes": [{"principal": "ana", "add": ["CREATE_EXTERNAL_TABLE"]}]}
    r = httpx.patch(f"{server}{UC}/permissions/external_location/lake", json=patch, headers=h(tokens["admin"]))
    assert r.json() == {"privilege_assignments": [{"principal": "ana", "privileges": ["CREATE_EXTERNAL_TABLE"]}]}
    assert httpx.get(f"{server}{UC}/external-locations/lake", headers=h(tokens["ana"])).json()["url"] == lake.as_uri()
    r = httpx.delete(f"{server}{UC}/credentials/local", headers=h(tokens["admin"]))
    assert (r.status_code, r.json()["error_code"]) == (412, "FAILED_PRECONDITION")
    assert httpx.delete(f"{server}{UC}/credentials/local?force=true", headers=h(tokens["admin"])).json() == {}
    assert httpx.get(f"{server}{UC}/storage-credentials", headers=h(tokens["admin"])).json()["storage_credentials"] == []


@pytest.mark.parametrize("server", [0, 2], indirect=True, ids=["on-the-loop", "two-threads"])
def test_tokens_authenticate_and_the_services_authorize(server: str, tokens: dict[str, str], admin: Cairn) -> None:
    admin.catalogs.create_catalog("main")
    assert httpx.get(f"{server}{UC}/catalogs").status_code == 401
    assert httpx.get(f"{server}{UC}/catalogs", headers=h("cairn_wrong")).status_code == 401
    assert httpx.get(f"{server}{UC}/catalogs", headers=h(tokens["ana"])).json() == {"catalogs": [], "next_page_token": None}
    r = httpx.get(f"{server}{UC}/catalogs/main", headers=h(tokens["ana"]))
    assert (r.status_code, r.json()["error_code"]) == (404, "NOT_FOUND") and "Traceback" not in r.text
    r = httpx.post(f"{server}{UC}/catalogs", json={"name": "other"}, headers=h(tokens["ana"]))
    assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED")
    patch = {"changes": [{"principal": "ana", "add": ["USE_CATALOG", "BROWSE"]}]}
    r = httpx.patch(f"{server}{UC}/permissions/catalog/main", json=patch, headers=h(tokens["admin"]))
    assert r.json() == {"privilege_assignments": [{"principal": "ana", "privileges": ["BROWSE", "USE_CATALOG"]}]}
    assert httpx.get(f"{server}{UC}/catalogs/main", headers=h(tokens["ana"])).json()["name"] == "main"
    token_id = admin.tokens.list_tokens("ana")[0].token_id
    admin.tokens.revoke_token(token_id)
    assert httpx.get(f"{server}{UC}/catalogs", headers=h(tokens["ana"])).status_code == 401
    rest = [e for e in admin.audit.list_events(principal="ana", max_results=100) if e.source == "rest"]
    assert [(e.action, e.result.value) for e in rest] == [("list_catalogs", "ALLOWED"), ("get_catalog", "DENIED"),
                                                           ("create_catalog", "DENIED"), ("get_catalog", "ALLOWED")]


def test_models_versions_health_metrics_and_openlineage(server: str, tokens: dict[str, str], admin: Cairn) -> None:
    admin.sql("CREATE CATALOG ml; CREATE SCHEMA ml.m")
    t = h(tokens["admin"])
    assert httpx.post(f"{server}{UC}/models", json={"name": "churn", "catalog_name": "ml", "schema_name": "m"}, headers=t).status_code == 200
    v = httpx.post(f"{server}{UC}/models/versions", json={"model_name": "churn", "catalog_name": "ml", "schema_name": "m", "source": "runs:/r/m"}, headers=t).json()
    assert (v["version"], v["status"]) == (1, "PENDING_REGISTRATION") and v["storage_location"].endswith("/versions/1")
    assert httpx.patch(f"{server}{UC}/models/ml.m.churn/versions/1/finalize", headers=t).json()["status"] == "READY"
    assert [x["version"] for x in httpx.get(f"{server}{UC}/models/ml.m.churn/versions", headers=t).json()["model_versions"]] == [1]
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    event = {"eventTime": "2026-01-01T00:00:00Z", "producer": "p", "schemaURL": "s", "eventType": "COMPLETE",
             "run": {"runId": "3f1c0a56-0b5e-4c1b-9a7e-1d2c3b4a5f60"}, "job": {"namespace": "n", "name": "j"},
             "inputs": [{"namespace": "s3://raw", "name": "a"}], "outputs": [{"namespace": "s3://raw", "name": "b"}]}
    assert httpx.post(f"{server}/api/v1/lineage", json=event, headers=t).status_code == 201
    assert httpx.post(f"{server}/api/v1/lineage", json=event).status_code == 401
    gql = httpx.post(f"{server}/graphql", json={"query": '{ model(name: "ml.m.churn") { fullName versions { edges { node { version status } } } } }'}, headers=t)
    assert gql.json() == {"data": {"model": {"fullName": "ml.m.churn", "versions": {"edges": [{"node": {"version": 1, "status": "READY"}}]}}}}
    assert httpx.post(f"{server}/graphql", json={"query": "{ catalogs { edges { node { name } } } }"}).status_code == 401
    assert "graphiql" in httpx.get(f"{server}/graphql").text.lower()
    text = httpx.get(f"{server}/metrics").text
    assert 'cairn_requests_total{route="/api/2.1/unity-catalog/models",method="POST",status="200"} 1' in text
    assert "cairn_request_seconds_bucket" in text


def test_mlflow_registers_and_loads_a_model_through_the_uc_registry(server: str, tokens: dict[str, str], admin: Cairn,
                                                                   tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import mlflow
    import mlflow.pyfunc
    import pandas as pd

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):  # type: ignore[no-untyped-def]
            return model_input["x"] * 2

    admin.sql("CREATE CATALOG ml; CREATE SCHEMA ml.models")
    model_dir = tmp_path / "doubler"
    mlflow.pyfunc.save_model(str(model_dir), python_model=Doubler())
    monkeypatch.setenv("MLFLOW_UC_OSS_TOKEN", tokens["admin"])
    # The tracking store in the test's own folder: MLflow's default would write ./mlflow.db.
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_registry_uri(f"uc:{server}")
    version = mlflow.register_model(model_dir.as_uri(), "ml.models.doubler")
    assert (version.name, str(version.version)) == ("ml.models.doubler", "1")
    mv = admin.models.get_model_version("ml.models.doubler", 1)
    assert mv.status == "READY" and (Path(mv.storage_location) / "MLmodel").exists()
    loaded = mlflow.pyfunc.load_model("models:/ml.models.doubler/1")
    assert list(loaded.predict(pd.DataFrame({"x": [1, 2]}))) == [2, 4]


def test_calls_run_in_arrival_order_and_are_answered_once_their_audit_rows_commit(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from api.handler import InOrder
    from catalog.errors import Internal
    from catalog.service.base import GroupCommit

    engine = create_engine(f"sqlite:///{tmp_path / 'log.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE log (i INTEGER PRIMARY KEY)")
    audit_log = GroupCommit(engine)
    calls, order = InOrder(audit_log), []
    calls.BATCH = 2

    def call(i: int):  # type: ignore[no-untyped-def]
        def run() -> int:
            order.append(i)
            row = 0 if i == 4 else i  # call 4's row collides with call 0's
            audit_log.write(lambda store: store.conn.exec_driver_sql(f"INSERT INTO log VALUES ({row})"))
            if i == 3:
                raise ValueError("three")
            return i * 10
        return run

    async def ask(i: int) -> tuple[int, int]:
        result = await calls.run(call(i))
        with engine.connect() as conn:  # by the time a call is answered, its row is committed
            return result, conn.exec_driver_sql(f"SELECT count(*) FROM log WHERE i = {i}").scalar()

    async def ticker() -> None:
        for _ in range(6):
            order.append("turn")
            await asyncio.sleep(0)

    async def main() -> list[object]:
        waiting = [asyncio.create_task(ask(i)) for i in range(5)]
        await asyncio.sleep(0)  # every call is queued
        waiting[2].cancel()  # its client went away before its turn
        turns = asyncio.create_task(ticker())
        results = await asyncio.gather(*waiting, return_exceptions=True)
        await turns
        return results

    results = asyncio.run(main())
    assert [x for x in order if x != "turn"] == [0, 1, 3, 4]  # arrival order; the cancelled call never ran
    assert order.index(1) == order.index(0) + 1 and order.index(3) > order.index(1) + 1  # two per turn, then the loop turns
    assert results[:2] == [(0, 1), (10, 1)] and isinstance(results[2], asyncio.CancelledError)
    assert isinstance(results[3], ValueError) and str(results[3]) == "three"
    assert isinstance(results[4], Internal) and "IntegrityError" in str(results[4])  # its row failed: so does it, alone
    with engine.connect() as conn:
        assert [r[0] for r in conn.exec_driver_sql("SELECT i FROM log ORDER BY i")] == [0, 1, 3]
