"""Escalations through the ML half: a principal holding little (CREATE MODEL in its own schema, a
job it once could run as a service principal, a webhook on a model it once managed) tries to reach
what it may not. Each refusal leaves a DENIED audit row and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from api.server import make_app
from catalog.client import Cairn, Metastore
from catalog.entities import AuditResult
from tests.serving.helpers import log_model, register


def denials(admin: Cairn, who: str, action: str) -> list[Any]:
    return [e for e in admin.audit.list_events(principal=who, max_results=1000) if e.action == action and e.result is AuditResult.DENIED]


@pytest.fixture
def sandbox(admin: Cairn, metastore: Metastore) -> Cairn:
    """admin's model `m.s.secret`; bob may create models in his own schema `m.bob`, nothing else."""
    admin.catalogs.create_catalog("m")
    admin.schemas.create_schema("m.s")
    admin.schemas.create_schema("m.bob")
    admin.models.create_registered_model("m.s.secret")
    admin.principals.create_user("bob")
    admin.grants.grant("catalog", "m", "bob", ["USE CATALOG"])
    admin.grants.grant("schema", "m.bob", "bob", ["USE SCHEMA", "CREATE MODEL"])
    return metastore.as_principal("bob")


@pytest.mark.parametrize("source", ["{secret}", "file://{secret}", "/etc", "http://127.0.0.1:9/model", "s3://someone-elses/bucket"])
def test_a_version_source_is_never_what_serving_reads(admin: Cairn, sandbox: Cairn, source: str) -> None:
    """bob registers a version whose `source` names another model's managed artifacts (or a server
    file, an internal URL, a bucket): serving reads only the version's own managed storage."""
    secret = admin.models.create_model_version("m.s.secret", "file:///logged/secret").storage_location or ""
    sandbox.models.create_registered_model("m.bob.mine")
    v = sandbox.models.create_model_version("m.bob.mine", source.format(secret=secret))
    sandbox.models.finalize_model_version("m.bob.mine", v.version)
    sandbox.serving.create_endpoint("ep", [{"name": "e", "entity_name": "m.bob.mine", "entity_version": 1}])
    plan = sandbox.serving.authorize_query("ep")
    assert plan.sources == {"e": v.storage_location}
    assert secret not in plan.sources["e"] and v.storage_location and "/m.bob.mine" not in secret


@pytest.mark.slow
def test_borrowing_anothers_model_artifacts_serves_nothing(admin: Cairn, sandbox: Cairn, metastore: Metastore, live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """End to end: bob may not EXECUTE m.s.secret; a version of his own pointing at its artifacts
    loads nothing (503), never the secret model's predictions."""
    n = register(admin, "m.s.secret", log_model(tmp_path / "mlflow"))
    secret = admin.models.get_model_version("m.s.secret", n).storage_location
    with pytest.raises(Exception):
        sandbox.models.generate_temporary_credentials("m.s.secret", n)
    assert len(denials(admin, "bob", "generate_temporary_model_version_credentials")) == 1
    sandbox.models.create_registered_model("m.bob.mine")
    v = sandbox.models.create_model_version("m.bob.mine", secret or "")
    sandbox.models.finalize_model_version("m.bob.mine", v.version)
    sandbox.serving.create_endpoint("ep", [{"name": "e", "entity_name": "m.bob.mine", "entity_version": 1}])
    token = admin.tokens.create_token("bob")[0]
    with live(make_app(metastore)) as url:
        r = httpx.post(url + "/serving-endpoints/ep/invocations", json={"dataframe_records": [{f"f{i}": 0.5 for i in range(5)}]},
                       headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert r.status_code == 503 and "predictions" not in r.json() and "Traceback" not in r.text


def test_a_revoked_service_principal_user_role_stops_the_jobs_it_set_up(metastore: Metastore, admin: Cairn) -> None:
    """alice could run jobs as prod-sp; once the role is revoked her job no longer starts runs as
    prod-sp (by her, by someone she shared it with, or by its schedule) until an admin updates it."""
    from catalog.errors import PermissionDenied

    for u in ("alice", "mallory"):
        admin.principals.create_user(u)
    admin.principals.create_service_principal("prod-sp")
    admin.jobs.set_service_principal_user("prod-sp", "alice")
    alice, mallory = metastore.as_principal("alice"), metastore.as_principal("mallory")
    task = [{"task_key": "a", "python_task": {"entry_point": "pipelines.jobs.samples:echo"}}]
    alice.jobs.create_job({"name": "nightly", "run_as": "prod-sp", "tasks": task})
    alice.jobs.set_permission("nightly", "mallory", "CAN_MANAGE_RUN")
    assert alice.jobs.run_now("nightly").run_as == "prod-sp"
    admin.jobs.set_service_principal_user("prod-sp", "alice", grant=False)
    for who in (alice, mallory):
        with pytest.raises(PermissionDenied, match="may no longer act as"):
            who.jobs.run_now("nightly")
    with pytest.raises(PermissionDenied):  # nor can she re-arm it herself
        alice.jobs.update_job("nightly", {"name": "nightly", "run_as": "prod-sp", "tasks": task})
    assert len(list(admin.jobs.list_runs("nightly"))) == 1
    assert len(denials(admin, "alice", "run_job")) == 1 and len(denials(admin, "mallory", "run_job")) == 1
    assert len(denials(admin, "alice", "update_job")) == 1
    admin.jobs.update_job("nightly", {"name": "nightly", "run_as": "prod-sp", "tasks": task})  # an admin vouches again
    assert mallory.jobs.run_now("nightly").run_as == "prod-sp"


def test_a_revoked_manage_stops_the_webhooks_it_let_someone_create(admin: Cairn, metastore: Metastore, monkeypatch: pytest.MonkeyPatch) -> None:
    """carol managed m.s.churn and added a webhook; once MANAGE is revoked its events (sources,
    run ids, tags) no longer reach her URL, while an admin's webhook on the same model still hears them."""
    monkeypatch.setenv("CAIRN_WEBHOOK_ALLOW_PRIVATE", "1")  # no DNS in tests: example.com is not resolved
    admin.catalogs.create_catalog("m")
    admin.schemas.create_schema("m.s")
    admin.models.create_registered_model("m.s.churn")
    admin.principals.create_user("carol")
    admin.grants.grant("catalog", "m", "carol", ["USE CATALOG", "USE SCHEMA"])
    admin.grants.grant("model", "m.s.churn", "carol", ["MANAGE", "EXECUTE"])
    carol = metastore.as_principal("carol")
    theirs = carol.webhooks.create_webhook("spy", "https://example.com/carol", ["model_version.created", "model_version_alias.created"], "m.s.churn")
    ours = admin.webhooks.create_webhook("ops", "https://example.com/ops", ["model_version.created"], "m.s.churn")
    admin.models.create_model_version("m.s.churn", "file:///m/1")
    assert len(carol.webhooks.list_deliveries(theirs.id)) == 1
    admin.grants.revoke("model", "m.s.churn", "carol", ["MANAGE"])
    v = admin.models.create_model_version("m.s.churn", "file:///m/2")
    admin.models.finalize_model_version("m.s.churn", v.version)
    admin.models.set_alias("m.s.churn", "champion", v.version)
    assert [d.event for d in admin.webhooks.list_deliveries(theirs.id)] == ["model_version.created"]  # the first only
    assert [d.event for d in admin.webhooks.list_deliveries(ours.id)] == ["model_version.created"] * 2


def test_a_feature_spec_cannot_name_lookup_tables_the_registrant_cannot_see(admin: Cairn, sandbox: Cairn) -> None:
    """Served lookups read as the endpoint's owner: bob may not register a spec looking up a table
    hidden from him (admin's `m.s.salary`), hoping someone who can read it serves his model."""
    from catalog.errors import NotFound
    from tests.serving.helpers import feature_spec

    admin.tables.create_table("m.s.salary", [{"name": "user_id", "type": "bigint"}, {"name": "f0", "type": "double"}])
    sandbox.models.create_registered_model("m.bob.mine")
    spec = {**feature_spec("m.s.salary"), "feature_tables": []}
    with pytest.raises(NotFound, match="m.s.salary"):
        sandbox.models.create_model_version("m.bob.mine", "file:///m", feature_spec=spec)
    assert list(sandbox.models.list_model_versions("m.bob.mine")) == []
    assert len(denials(admin, "bob", "create_model_version")) == 1


@pytest.mark.slow
def test_serving_uses_the_spec_registration_checked_not_a_file_swapped_in(admin: Cairn, sandbox: Cairn, tmp_path: Path) -> None:
    """bob registers a version whose catalog spec looks up a table he may read, then his upload
    carries a feature_spec.json looking up `m.s.salary`: what serving loads is the checked spec."""
    import json
    import shutil

    from pipelines.serving.model import LoadedModel
    from tests.serving.helpers import feature_spec

    for name in ("m.bob.open", "m.s.salary"):
        admin.tables.create_table(name, [{"name": "user_id", "type": "bigint"}] + [{"name": f"f{i}", "type": "double"} for i in range(5)])
    admin.grants.grant("table", "m.bob.open", "bob", ["SELECT"])
    source = log_model(tmp_path / "mlflow")
    sandbox.models.create_registered_model("m.bob.mine")
    v = sandbox.models.create_model_version("m.bob.mine", source, feature_spec=feature_spec("m.bob.open"))
    target = Path(sandbox.models.generate_temporary_credentials("m.bob.mine", v.version, "READ_WRITE_MODEL_VERSION").url.removeprefix("file://"))
    shutil.copytree(source.removeprefix("file://"), target, dirs_exist_ok=True)
    (target / "feature_spec.json").write_text(json.dumps(feature_spec("m.s.salary")))
    sandbox.models.finalize_model_version("m.bob.mine", v.version)
    sandbox.serving.create_endpoint("ep", [{"name": "e", "entity_name": "m.bob.mine", "entity_version": 1}])
    plan = sandbox.serving.authorize_query("ep")
    loaded = LoadedModel(plan.sources["e"], plan.feature_specs["e"])  # no client: the lookups are not opened
    assert [lk["table_name"] for lk in loaded.spec["lookups"]] == ["m.bob.open"]


@pytest.mark.parametrize("how", ["rename", "drop_elsewhere"])
def test_online_rows_of_a_table_never_serve_another_table_of_the_same_name(admin: Cairn, metastore: Metastore, how: str) -> None:
    """admin publishes `m.shared.salary`, then renames it (or drops it where its online store was not
    cleared); bob, who may create tables in `m.shared`, makes a new `m.shared.salary` he owns: its
    online reads must not hand him admin's published rows, nor may his publish merge into them."""
    import gc

    import pandas as pd

    from catalog.errors import FailedPrecondition
    from pipelines.features import FeatureEngineeringClient
    from pipelines.features.online import SqliteOnlineStore

    admin.catalogs.create_catalog("m")
    admin.schemas.create_schema("m.shared")
    admin.principals.create_user("bob")
    admin.grants.grant("catalog", "m", "bob", ["USE CATALOG"])
    admin.grants.grant("schema", "m.shared", "bob", ["USE SCHEMA", "CREATE TABLE"])
    fa, fb = FeatureEngineeringClient(admin), FeatureEngineeringClient(metastore.as_principal("bob"))
    path = metastore.settings.home / "elsewhere.db"
    fa.create_table("m.shared.salary", "user_id", df=pd.DataFrame({"user_id": [1, 2], "pay": [250000.0, 99000.0]}))
    publisher = SqliteOnlineStore(path)
    fa.publish_table("m.shared.salary", online_store=publisher)
    assert publisher.settle()  # its checkpoint thread, which holds it, is done
    del publisher
    gc.collect()  # the publishing store is gone: as if another server had published (its Redis, say), drop_table cannot clear it
    store = SqliteOnlineStore(path)
    if how == "rename":
        admin.tables.update_table("m.shared.salary", new_name="salary_old")
    else:
        fa.drop_table("m.shared.salary")
    fb.create_table("m.shared.salary", "user_id", df=pd.DataFrame({"user_id": [3], "pay": [1.0]}))
    with pytest.raises(FailedPrecondition, match="another table"):
        fb.read_online_features("m.shared.salary", [{"user_id": 1}], online_store=store)
    with pytest.raises(FailedPrecondition, match="another table"):
        fb.online_reader("m.shared.salary", online_store=store, ttl_seconds=0)
    got = fb.publish_table("m.shared.salary", online_store=store)
    assert got.mode == "FULL"  # never an incremental merge into the other table's rows
    rows = fb.read_online_features("m.shared.salary", [{"user_id": 1}, {"user_id": 3}], online_store=store).rows
    assert rows == [{"user_id": 1, "pay": None}, {"user_id": 3, "pay": 1.0}]


def test_can_manage_cannot_make_the_owners_lookups_read_a_table_it_may_not(admin: Cairn, metastore: Metastore) -> None:
    """Lookups run as the endpoint's owner. eve holds CAN MANAGE on admin's endpoint and EXECUTE on
    the model, not SELECT on `m.s.salary`: she may not switch the endpoint to a version that looks
    features up there (then query it, reading salary through admin's rights)."""
    from catalog.errors import NotFound
    from tests.serving.helpers import feature_spec

    admin.catalogs.create_catalog("m")
    admin.schemas.create_schema("m.s")
    admin.tables.create_table("m.s.salary", [{"name": "user_id", "type": "bigint"}] + [{"name": f"f{i}", "type": "double"} for i in range(5)])
    admin.models.create_registered_model("m.s.churn")
    for spec in (None, feature_spec("m.s.salary")):
        v = admin.models.create_model_version("m.s.churn", "file:///m", feature_spec=spec)
        admin.models.finalize_model_version("m.s.churn", v.version)
    admin.principals.create_user("eve")
    admin.grants.grant("catalog", "m", "eve", ["USE CATALOG", "USE SCHEMA"])
    admin.grants.grant("model", "m.s.churn", "eve", ["EXECUTE"])
    admin.serving.create_endpoint("ep", [{"name": "e", "entity_name": "m.s.churn", "entity_version": 1}])
    admin.grants.grant("serving_endpoint", "ep", "eve", "CAN MANAGE")
    eve = metastore.as_principal("eve")
    salary = [{"name": "e2", "entity_name": "m.s.churn", "entity_version": 2}]
    with pytest.raises(NotFound, match="m.s.salary"):
        eve.serving.update_config("ep", salary)
    with pytest.raises(NotFound, match="m.s.salary"):
        eve.serving.create_endpoint("mine", salary)
    assert admin.serving.get_endpoint("ep").config_version == 1 and [e.name for e in admin.serving.list_endpoints()] == ["ep"]
    assert len(denials(admin, "eve", "update_serving_endpoint_config")) == 1 and len(denials(admin, "eve", "create_serving_endpoint")) == 1
    admin.grants.grant("table", "m.s.salary", "eve", ["SELECT"])
    assert eve.serving.update_config("ep", salary).config_version == 2
