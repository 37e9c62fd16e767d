"""Model versions with their facts, version tags, promotion gates of every kind, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from catalog.entities import AuditResult
from catalog.errors import InvalidArgument, PromotionRefused

SIG = {"inputs": json.dumps([{"type": "double", "name": "spend"}]), "outputs": json.dumps([{"type": "long"}])}


def spec(point_in_time: bool = True) -> dict:
    return {"label": ["y"], "label_source": {"table": "main.ml.labels", "version": 1},
            "feature_tables": [{"table": "main.ml.feats", "version": 2}], "lookups": [], "functions": [], "exclude_columns": [],
            "point_in_time": point_in_time, "input_columns": ["user_id", "at"], "feature_columns": ["spend"]}


@pytest.fixture
def reg(admin):
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    for t in ("raw", "feats", "labels"):
        admin.tables.create_table(f"main.ml.{t}", [{"name": "x", "type": "int"}])
    admin.lineage.record(["main.ml.raw"], ["main.ml.feats"])
    admin.models.create_registered_model("main.ml.churn")
    return admin


def version(admin, auc: float, *, signature=SIG, feature_spec=None, run_id="run1"):
    v = admin.models.create_model_version("main.ml.churn", "file:///m", run_id=run_id, signature=signature,
                                          feature_spec=feature_spec, metrics={"auc": auc, "log_loss": 1 - auc})
    return admin.models.finalize_model_version("main.ml.churn", v.version)


def test_version_keeps_its_facts_and_lineage(reg) -> None:
    v = version(reg, 0.9, feature_spec=spec(), run_id="abc123")
    assert json.loads(v.properties["cairn.feature_spec"])["feature_columns"] == ["spend"]
    assert json.loads(v.properties["cairn.signature"]) == SIG and v.run_id == "abc123"
    up = reg.lineage.get_upstream("model:main.ml.churn/1")
    assert {n.name for n in up.nodes} == {"main.ml.feats", "main.ml.labels", "main.ml.raw"}
    assert sorted(reg.lineage.get_run("abc123")["inputs"]) == [("main.ml.feats", 2), ("main.ml.labels", 1)]
    with pytest.raises(InvalidArgument, match="signature"):
        reg.models.create_model_version("main.ml.churn", "file:///m", signature={"nope": 1})
    with pytest.raises(InvalidArgument, match="feature_spec.lookups"):
        reg.models.create_model_version("main.ml.churn", "file:///m", feature_spec={"lookups": "x"})
    assert reg.models.get_registered_model("main.ml.churn").version == 1  # nothing half-written


def test_gates_of_every_kind(reg, metastore) -> None:
    reg.principals.create_user("lead")
    reg.principals.create_user("intern")
    reg.principals.create_group("ml-leads")
    reg.principals.add_member("ml-leads", "lead")
    reg.grants.grant("model", "main.ml.churn", "lead", "APPLY TAG")
    reg.grants.grant("model", "main.ml.churn", "intern", "APPLY TAG")
    for who in ("lead", "intern"):
        reg.grants.grant("catalog", "main", who, "USE CATALOG")
        reg.grants.grant("schema", "main.ml", who, "USE SCHEMA")
    gates = [
        {"kind": "metric", "metric": "auc", "op": ">=", "threshold": 0.8},
        {"kind": "beats_current", "metric": "auc", "margin": 0.01},
        {"kind": "signature"},
        {"kind": "provenance"},
        {"kind": "tags", "tag": "validated=true"},
        {"kind": "approval", "tag": "approved", "group": "ml-leads"},
    ]
    stored = reg.models.set_gates("main.ml.churn", gates)
    assert reg.models.get_gates("main.ml.churn") == stored and stored[1]["op"] == ">"
    v1 = version(reg, 0.85, feature_spec=spec(), run_id="r1")
    reg.models.set_model_version_tag("main.ml.churn", 1, "validated", "true")
    metastore.as_principal("lead").models.set_model_version_tag("main.ml.churn", 1, "approved", "yes")
    results = reg.models.promote("main.ml.churn", "champion", v1.version)
    assert [r["passed"] for r in results] == [True] * 6
    assert reg.models.get_registered_model("main.ml.churn").aliases == {"champion": 1}
    tags = reg.models.get_model_version_tags("main.ml.churn", 1)
    assert json.loads(tags["cairn.gate.champion.1"])["gate"] == "auc >= 0.8"
    assert [r["passed"] for r in reg.models.get_gate_results("main.ml.churn", 1)] == [True] * 6

    # Version 2 fails every gate: all are named, nothing moves, the audit row has the results.
    version(reg, 0.79, signature=None, feature_spec=spec(point_in_time=False), run_id="r2")
    metastore.as_principal("intern").models.set_model_version_tag("main.ml.churn", 2, "approved", "yes")
    with pytest.raises(PromotionRefused) as err:
        reg.models.promote("main.ml.churn", "champion", 2)
    msg = str(err.value)
    for words in ("auc >= 0.8", "beats the current holder", "signature present", "provenance complete", "tag validated", "approval tag approved"):
        assert words in msg
    assert "intern, who is not a member of ml-leads" in msg and "6 gate(s) failed" in msg
    assert reg.models.get_registered_model("main.ml.churn").aliases == {"champion": 1}
    assert "cairn.gate.champion.1" not in reg.models.get_model_version_tags("main.ml.churn", 2)
    row = next(iter(reg.audit.list_events(action="promote_model_version", result=AuditResult.DENIED)))
    assert row.error_code == "FAILED_PRECONDITION" and [r["passed"] for r in row.parameters["results"]] == [False] * 6
    # Gate tags are the promotions' own: nobody writes them by hand.
    with pytest.raises(InvalidArgument):
        reg.models.set_model_version_tag("main.ml.churn", 2, "cairn.gate.champion.1", "{}")


def test_beats_current_margin_and_lower_is_better(reg) -> None:
    reg.models.set_gates("main.ml.churn", [{"kind": "beats_current", "metric": "log_loss", "op": "<", "margin": 0.05}])
    version(reg, 0.80)
    assert reg.models.promote("main.ml.churn", "champion", 1)[0]["detail"] == "no other version holds the alias"
    version(reg, 0.83)  # log loss 0.17 vs 0.20: better, but not by 0.05
    with pytest.raises(PromotionRefused, match="margin 0.05"):
        reg.models.promote("main.ml.churn", "champion", 2)
    version(reg, 0.9)
    assert reg.models.promote("main.ml.churn", "champion", 3)[0]["passed"] is True
    assert reg.models.get_registered_model("main.ml.churn").aliases == {"champion": 3}


def test_bad_gates_are_refused_naming_the_gate(reg) -> None:
    for gates, words in (([{"kind": "nope"}], "gate 1: kind 'nope'"), ([{"kind": "metric", "metric": "auc"}], "numeric threshold"),
                         ([{"kind": "signature"}, {"kind": "approval", "tag": "ok"}], "gate 2 (approval) needs the group"),
                         ([{"kind": "metric", "metric": "auc", "threshold": 1, "extra": 2}], "unknown field")):
        with pytest.raises(InvalidArgument, match=words.replace("(", r"\(").replace(")", r"\)")):
            reg.models.set_gates("main.ml.churn", gates)
    assert reg.models.get_gates("main.ml.churn") == []


def test_a_new_promotion_replaces_the_gate_record(reg) -> None:
    version(reg, 0.9)
    reg.models.set_gates("main.ml.churn", [{"kind": "signature"}, {"kind": "metric", "metric": "auc", "threshold": 0.5}])
    reg.models.promote("main.ml.churn", "champ_x", 1)
    reg.models.set_gates("main.ml.churn", [{"kind": "signature"}])
    reg.models.promote("main.ml.churn", "champ_x", 1)
    tags = reg.models.get_model_version_tags("main.ml.churn", 1)
    assert sorted(k for k in tags if k.startswith("cairn.gate.")) == ["cairn.gate.champ_x.1"]
    assert [r["gate"] for r in reg.models.get_gate_results("main.ml.churn", 1)] == ["signature present"]


def test_finalize_reads_what_an_mlflow_upload_carries(reg) -> None:
    from pathlib import Path

    v = reg.models.create_model_version("main.ml.churn", "runs:/r9/model", run_id="r9")  # as MLflow's uc: client does
    where = Path(reg.models.generate_temporary_credentials("main.ml.churn", 1, "READ_WRITE_MODEL_VERSION").url.removeprefix("file://"))
    where.mkdir(parents=True)
    (where / "feature_spec.json").write_text(json.dumps(spec()))
    (where / "MLmodel").write_text("flavors: {}\nsignature:\n  inputs: '[{\"type\": \"double\", \"name\": \"spend\"}]'\n  outputs: '[]'\n")
    done = reg.models.finalize_model_version("main.ml.churn", v.version)
    assert done.status == "READY" and json.loads(done.properties["cairn.feature_spec"]) == spec()
    assert json.loads(done.properties["cairn.signature"])["inputs"].startswith("[")
    assert {n.name for n in reg.lineage.get_upstream("model:main.ml.churn/1").nodes} == {"main.ml.feats", "main.ml.labels", "main.ml.raw"}


@pytest.mark.slow
def test_metric_gates_read_the_mlflow_run_when_the_version_carries_no_metrics(reg, tmp_path, monkeypatch) -> None:
    """A version registered through MLflow's `uc:` client carries only its run id: the gates read
    that run's metrics from the tracking store."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("gates")
    runs = []
    for auc in (0.85, 0.95, 0.6):
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "auc", auc)
        runs.append(run.info.run_id)
    for run_id in [*runs, "no-such-run"]:
        v = reg.models.create_model_version("main.ml.churn", "file:///m", run_id=run_id, signature=SIG)
        reg.models.finalize_model_version("main.ml.churn", v.version)
        assert "cairn.run_metrics" not in reg.models.get_model_version("main.ml.churn", v.version).properties
    reg.models.set_gates("main.ml.churn", [{"kind": "metric", "metric": "auc", "threshold": 0.8},
                                           {"kind": "beats_current", "metric": "auc", "margin": 0.05}])
    assert [r["detail"] for r in reg.models.promote("main.ml.churn", "champion", 1)] == ["auc = 0.85", "no other version holds the alias"]
    assert reg.models.promote("main.ml.churn", "champion", 2)[1]["detail"] == "auc = 0.95 vs 0.85 for version 1 (margin 0.05)"
    with pytest.raises(PromotionRefused) as low:
        reg.models.promote("main.ml.churn", "champion", 3)
    assert [r["detail"] for r in low.value.results] == ["auc = 0.6", "auc = 0.6 vs 0.95 for version 2 (margin 0.05)"]
    with pytest.raises(PromotionRefused, match="cannot read run no-such-run's metrics") as gone:
        reg.models.promote("main.ml.churn", "champion", 4)
    assert [r["passed"] for r in gone.value.results] == [False, False]
    assert reg.models.get_registered_model("main.ml.churn").aliases == {"champion": 2}
