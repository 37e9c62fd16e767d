"""A small xgboost model logged with MLflow (temp SQLite tracking store), a feature table published
to the online store, and a catalog model version pointing at the logged model: what serving serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FEATURES = [f"f{i}" for i in range(5)]


def log_model(tmp: Path, shift: float = 0.0, spec: dict[str, Any] | None = None, kind: str = "regressor") -> str:
    """Log an xgboost model trained on FEATURES (predicting f0 + shift, roughly); returns its source URI."""
    import mlflow
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    tmp.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.random((300, len(FEATURES))), columns=FEATURES)
    if kind == "classifier":
        model = xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(df, (df.f0 > 0.5).astype(int))
    else:
        model = xgb.XGBRegressor(n_estimators=30, max_depth=3).fit(df, df.f0 * 10 + shift)
    exp = mlflow.get_experiment_by_name("serving") or None
    exp_id = exp.experiment_id if exp else mlflow.create_experiment("serving", artifact_location=f"file://{tmp}/artifacts")
    with mlflow.start_run(experiment_id=exp_id):
        info = mlflow.xgboost.log_model(model, name="model", input_example=df.head(2))
    source = mlflow.get_logged_model(info.model_id).artifact_location
    if spec is not None:
        (Path(source.removeprefix("file://")) / "feature_spec.json").write_text(json.dumps(spec))
    return source


def register(cairn: Any, model: str, source: str) -> int:
    """A READY catalog model version of the model logged at `source`, uploaded to the version's
    storage location as registration does (serving reads only that copy); returns its number."""
    import os
    import shutil

    try:
        cairn.models.get_registered_model(model)
    except Exception:
        cairn.models.create_registered_model(model)
    v = cairn.models.create_model_version(model, source)
    target = cairn.models.generate_temporary_credentials(model, v.version, "READ_WRITE_MODEL_VERSION").url.removeprefix("file://")
    if os.path.isdir(source.removeprefix("file://")):  # a source that does not exist leaves a version that cannot load
        shutil.copytree(source.removeprefix("file://"), target, dirs_exist_ok=True)
    cairn.models.finalize_model_version(model, v.version)
    return int(v.version)


def feature_spec(table: str) -> dict[str, Any]:
    return {
        "label": "y", "label_source": {"table": None, "version": None}, "feature_tables": [{"table": table, "version": 1}],
        "lookups": [{"table_name": table, "lookup_key": ["user_id"], "timestamp_lookup_key": None, "lookback_window_us": None,
                     "feature_names": FEATURES, "rename_outputs": {}, "default_values": {"f0": 0.9, "f1": 0.0, "f2": 0.0, "f3": 0.0, "f4": 0.0}}],
        "functions": [], "exclude_columns": [], "point_in_time": False,
        "input_columns": ["user_id"], "feature_columns": FEATURES,
    }


def publish_features(cairn: Any, table: str, n: int = 50) -> None:
    import pandas as pd

    from pipelines.features import FeatureEngineeringClient

    fe = FeatureEngineeringClient(cairn)
    df = pd.DataFrame({"user_id": list(range(n)), **{f: [((i * 7 + j) % 10) / 10 for i in range(n)] for j, f in enumerate(FEATURES)}})
    fe.create_table(table, "user_id", df=df)
    fe.publish_table(table)
