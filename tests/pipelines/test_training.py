"""Training on a point-in-time training set: real xgboost, real MLflow tracking (SQLite in a temp
dir), the model logged with its feature spec, registered into the catalog, scored by key alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.features import FeatureEngineeringClient, FeatureLookup


@pytest.fixture(autouse=True)
def tracking(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield tmp_path
    mlflow.set_tracking_uri(None)


def churn_data(n: int = 240, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-user features at two times; churn depends on the features as of the label time."""
    rng = np.random.default_rng(seed)
    users = np.arange(n)
    t0, t1 = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-02-01", tz="UTC")
    spend0, spend1 = rng.gamma(2, 20, n), rng.gamma(2, 20, n)
    visits1 = rng.poisson(5, n)
    feats = pd.DataFrame({"user_id": np.concatenate([users, users]), "ts": [t0] * n + [t1] * n,
                          "spend": np.concatenate([spend0, spend1]), "visits": np.concatenate([rng.poisson(5, n), visits1])})
    churn = ((spend1 < 30) & (visits1 < 6)).astype("int64")
    flip = rng.random(n) < 0.05
    labels = pd.DataFrame({"user_id": users, "at": [pd.Timestamp("2024-02-15", tz="UTC")] * n, "churned": np.where(flip, 1 - churn, churn)})
    return feats, labels


@pytest.fixture
def setup(admin):
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    fe = FeatureEngineeringClient(admin)
    feats, labels = churn_data()
    admin.tables.create_table("main.ml.raw_events", [{"name": "user_id", "type": "bigint"}, {"name": "amount", "type": "double"}])
    admin.data.write("main.ml.raw_events", [{"user_id": 1, "amount": 2.0}])
    fe.create_table("main.ml.user_features", primary_keys=["user_id"], timestamp_keys=["ts"], df=feats)
    admin.lineage.record(["main.ml.raw_events"], ["main.ml.user_features"])
    admin.tables.create_table("main.ml.labels", [{"name": "user_id", "type": "bigint"}, {"name": "at", "type": "timestamp"},
                                                  {"name": "churned", "type": "bigint"}])
    admin.data.write("main.ml.labels", labels)
    ts = fe.create_training_set("main.ml.labels", [FeatureLookup("main.ml.user_features", "user_id", timestamp_lookup_key="at")], label="churned")
    return fe, ts, labels


@pytest.mark.slow
def test_train_logs_everything_and_registers_with_lineage(admin, setup, tracking) -> None:
    import mlflow

    from pipelines.training import score_batch, train_xgboost

    _fe, ts, labels = setup
    result = train_xgboost(admin, ts, params={"n_estimators": 60}, seed=3, registered_model_name="main.ml.churn")
    assert result.feature_columns == ["spend", "visits"]
    assert result.metrics["auc"] > 0.8 and 0 < result.metrics["log_loss"] < 0.7
    run = mlflow.get_run(result.run_id)
    assert {"auc", "log_loss", "precision", "recall", "best_iteration"} <= set(run.data.metrics)
    assert run.data.params["n_estimators"] == "60" and run.data.params["threshold"] == "0.5"
    inputs = {(d.dataset.name, d.tags[0].value if d.tags else None) for d in run.inputs.dataset_inputs}
    assert ("main.ml.labels@v1", "labels") in inputs and ("main.ml.user_features@v1", "features") in inputs
    sources = [json.loads(d.dataset.source) for d in run.inputs.dataset_inputs]
    assert {"delta_table_name": "main.ml.user_features", "delta_table_version": 1, "catalog": "cairn"} in sources
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id)}
    assert "feature_importance.json" in arts
    # The logged model carries its feature spec at its root, and a signature and input example.
    local = mlflow.artifacts.download_artifacts(result.model_uri, dst_path=str(tracking / "dl"))
    spec = json.loads(Path(local, "feature_spec.json").read_text())
    assert spec["input_columns"] == ["user_id", "at"] and spec["feature_columns"] == ["spend", "visits"]
    assert spec["feature_tables"] == [{"table": "main.ml.user_features", "version": 1}] and spec["point_in_time"] is True
    info = mlflow.models.get_model_info(result.model_uri)
    assert info.signature is not None and info.saved_input_example_info is not None
    # Registered in the catalog: run, source, signature, feature spec; lineage reaches the raw table.
    mv = result.model_version
    assert (mv.full_name, mv.status, mv.run_id, mv.source) == ("main.ml.churn/1", "READY", result.run_id, result.model_uri)
    assert json.loads(mv.properties["cairn.feature_spec"]) == spec and "inputs" in json.loads(mv.properties["cairn.signature"])
    up = admin.lineage.get_upstream("model:main.ml.churn/1")
    names = {n.name for n in up.nodes}
    assert {"main.ml.user_features", "main.ml.labels", "main.ml.raw_events"} <= names
    assert admin.lineage.get_run(result.run_id)["inputs"] == [("main.ml.labels", 1), ("main.ml.user_features", 1)] or \
        sorted(admin.lineage.get_run(result.run_id)["inputs"]) == [("main.ml.labels", 1), ("main.ml.user_features", 1)]
    # Batch scoring by key alone, point in time: the same rows give the model's own predictions.
    rows = labels[["user_id", "at"]].head(20)
    scored = score_batch(admin, "models:/main.ml.churn/1", rows)
    X = ts.load_df().head(20)[["spend", "visits"]].astype("float64")
    assert list(scored["prediction"]) == list(result.model.predict(X))
    assert list(scored["user_id"]) == list(rows["user_id"])
    with pytest.raises(Exception, match="lack column"):
        score_batch(admin, "models:/main.ml.churn/1", rows[["user_id"]])
    # The same through the feature client, as Databricks names them: fe.log_model and fe.score_batch.
    fe = _fe
    logged = fe.log_model(model=result.model, artifact_path="model", flavor="xgboost", training_set=ts,
                          registered_model_name="main.ml.churn", input_example=X.head(3))
    assert (logged.model_version.full_name, logged.model_version.status) == ("main.ml.churn/2", "READY")
    assert json.loads(logged.model_version.properties["cairn.feature_spec"]) == spec == logged.feature_spec
    assert {n.name for n in admin.lineage.get_upstream("model:main.ml.churn/2").nodes} >= {"main.ml.user_features", "main.ml.raw_events"}
    by_fe = fe.score_batch(model_uri="models:/main.ml.churn/2", df=rows)
    assert list(by_fe["prediction"]) == list(scored["prediction"]) and list(by_fe["user_id"]) == list(rows["user_id"])
    # Scoring reads the features as the client's principal: bob may run the model, not see its features.
    from catalog.entities import AuditResult
    from catalog.errors import NotFound

    admin.principals.create_user("bob")
    admin.grants.grant("catalog", "main", "bob", ["USE CATALOG", "USE SCHEMA"])
    admin.grants.grant("model", "main.ml.churn", "bob", ["EXECUTE"])
    with pytest.raises(NotFound, match="main.ml.user_features"):
        FeatureEngineeringClient(admin.metastore.as_principal("bob")).score_batch("models:/main.ml.churn/2", rows)
    denied = list(admin.audit.list_events(principal="bob", result=AuditResult.DENIED))
    assert any("main.ml.user_features" in (e.securable_name or "") for e in denied)


@pytest.mark.slow
def test_search_is_reproducible_with_nested_trials(admin, setup) -> None:
    import mlflow

    from pipelines.training import search_xgboost

    _, ts, _ = setup
    first = search_xgboost(admin, ts, max_evals=4, parallelism=2, seed=11, fixed_params={"n_estimators": 30})
    again = search_xgboost(admin, ts, max_evals=4, parallelism=2, seed=11, fixed_params={"n_estimators": 30})
    assert [t["params"] for t in first.trials] == [t["params"] for t in again.trials]
    assert [round(t["loss"], 9) for t in first.trials] == [round(t["loss"], 9) for t in again.trials]
    assert first.params == again.params and len(first.trials) == 4
    children = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{first.run_id}'", search_all_experiments=True)
    assert len(children) == 4
    assert first.metrics["log_loss"] == pytest.approx(min(t["loss"] for t in first.trials))


def test_embedded_tracking_store_lives_under_cairn_home(admin, monkeypatch) -> None:
    import mlflow

    from pipelines.training import tracking as tr

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(None)
    home = admin.metastore.settings.home
    assert tr.tracking_uri(admin) == f"sqlite:///{home / 'mlflow.db'}"
    exp = mlflow.get_experiment(tr.experiment_id(admin, "churn"))
    assert exp.artifact_location.startswith((home / "mlartifacts").as_uri())
    # A URI set through MLflow wins: any tracking store works.
    mlflow.set_tracking_uri(f"sqlite:///{home / 'other.db'}")
    assert tr.tracking_uri(admin) == f"sqlite:///{home / 'other.db'}"
