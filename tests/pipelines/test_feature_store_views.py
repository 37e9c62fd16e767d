"""What the CLI (`cairn features ...`) and GraphQL show of feature tables and training sets."""

from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner

from api.cli import cli
from api.graphql import execute
from pipelines.features import FeatureEngineeringClient, FeatureLookup


def T(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def setup(admin):
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    fe = FeatureEngineeringClient(admin)
    fe.create_table("main.ml.users", "user_id", "ts", df=pd.DataFrame({"user_id": [1, 2], "ts": [T("2024-01-01")] * 2, "spend": [1.0, 2.0]}))
    ts = fe.create_training_set(pd.DataFrame({"user_id": [1], "at": [T("2024-01-02")], "y": [1]}),
                                [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at")], label="y")
    ts.save("main.ml.train")
    admin.models.create_registered_model("main.ml.churn")
    admin.lineage.record(["main.ml.train"], ["model:main.ml.churn"])  # what the training issue will record
    fe.publish_table("main.ml.users")
    return fe


def test_cli_shows_feature_tables_and_training_sets(admin, metastore):
    setup(admin)
    base = ["--home", str(metastore.settings.home), "--url", metastore.settings.metastore_url, "--as", "admin", "--json"]
    runner = CliRunner()
    out = runner.invoke(cli, [*base, "features", "tables", "main.ml"])
    assert out.exit_code == 0, out.output
    rows = {r["name"]: r for r in json.loads(out.output)}
    assert set(rows) == {"main.ml.users"}  # the training set has no primary key: not a feature table
    users = rows["main.ml.users"]
    assert (users["primary_keys"], users["timestamp_keys"], users["version"], users["published_version"]) == (["user_id", "ts"], ["ts"], 1, 1)
    assert users["last_commit"] and users["published_at"]
    out = runner.invoke(cli, [*base, "features", "training-sets", "main"])
    sets = json.loads(out.output)
    assert [s["name"] for s in sets] == ["main.ml.train"]
    assert sets[0]["spec"]["feature_tables"] == [{"table": "main.ml.users", "version": 1}]
    assert sets[0]["models"] == ["main.ml.churn"]
    out = runner.invoke(cli, [*base, "features", "get", "main.ml.nope"])
    assert out.exit_code == 1 and "NOT_FOUND" in out.output
    out = runner.invoke(cli, [*base, "features", "publish", "main.ml.users"])
    assert out.exit_code == 0 and "incremental publish of main.ml.users at version 1: 0 key(s)" in out.output


def test_graphql_feature_table_and_training_set(admin, metastore):
    setup(admin)
    res = execute(admin, '{ featureTable(name: "main.ml.users") { name primaryKeys timestampKeys features version lastCommit publishedVersion } '
                         'trainingSet(name: "main.ml.train") { name label featureTables { table version } pointInTime models spec } }')
    assert "errors" not in res, res
    ft, ts = res["data"]["featureTable"], res["data"]["trainingSet"]
    assert (ft["primaryKeys"], ft["timestampKeys"], ft["features"], ft["version"], ft["publishedVersion"]) == (["user_id", "ts"], ["ts"], ["spend"], 1, 1)
    assert ts["featureTables"] == [{"table": "main.ml.users", "version": 1}] and ts["pointInTime"] is True
    assert ts["models"] == ["main.ml.churn"] and json.loads(ts["spec"])["label"] == ["y"]
    metastore.as_principal("admin").principals.create_user("eve")
    denied = execute(metastore.as_principal("eve"), '{ trainingSet(name: "main.ml.train") { name } }')
    assert denied["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_audit_provenance_reads_the_recorded_spec(admin, metastore):
    from lineage.ci import build_snapshot
    from lineage.policy import evaluate, load

    setup(admin)
    admin.models.create_model_version("main.ml.churn", "file:///m")
    admin.models.set_alias("main.ml.churn", "champion", 1)
    admin.lineage.record(["main.ml.train"], ["model:main.ml.churn/1"])
    admin.tags.set_tags("table", "main.ml.users", {"raw": "true"})
    rules = load("rules:\n  - id: prov\n    type: provenance\n    severity: error\n")
    found = {f.object: f for f in evaluate(rules, build_snapshot(admin, rules))}
    assert found["main.ml.churn/1"].passed, found["main.ml.churn/1"].message
    # A tag cannot contradict the recorded spec: removing the tags changes nothing...
    admin.tags.unset_tags("table", "main.ml.train", ["training_set", "point_in_time"])
    found = {f.object: f for f in evaluate(rules, build_snapshot(admin, rules))}
    assert found["main.ml.churn/1"].passed
    # ...and a hand-made "training set" tagged point_in_time=true without a spec still passes by tags only,
    # while one whose spec says it was not point in time fails.
    fe = FeatureEngineeringClient(admin)
    plain = fe.create_training_set(pd.DataFrame({"user_id": [1], "y": [1]}), [FeatureLookup("main.ml.users", "user_id")], label="y")
    plain.save("main.ml.train_latest")
    admin.models.create_model_version("main.ml.churn", "file:///m2")
    admin.models.set_alias("main.ml.churn", "challenger", 2)
    admin.lineage.record(["main.ml.train_latest"], ["model:main.ml.churn/2"])
    admin.tags.set_tags("table", "main.ml.train_latest", {"point_in_time": "true"})
    found = {f.object: f for f in evaluate(rules, build_snapshot(admin, rules))}
    assert not found["main.ml.churn/2"].passed and "its recorded spec" in found["main.ml.churn/2"].message
