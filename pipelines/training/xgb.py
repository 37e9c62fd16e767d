"""Train an xgboost classifier (the churn model) on a training set, tracked in MLflow.

Early stopping goes through the constructor (`early_stopping_rounds`, `eval_metric`), as current
xgboost wants; the run gets the parameters, AUC, log loss, precision and recall at a threshold,
the best iteration, the feature importance (`feature_importance.json`), the training set's tables
and versions as inputs, and the model with its signature, input example and feature spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalog.errors import InvalidArgument

DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 200, "max_depth": 4, "learning_rate": 0.1, "subsample": 1.0, "colsample_bytree": 1.0,
    "min_child_weight": 1.0, "reg_lambda": 1.0,
}
EARLY_STOPPING_ROUNDS = 10


@dataclass
class TrainResult:
    """What a training (or the best trial of a search) produced."""

    run_id: str
    model: Any
    metrics: dict[str, float]
    params: dict[str, Any]
    model_uri: str
    feature_columns: list[str]
    model_version: Any = None  # the catalog's ModelVersion when registered
    trials: list[dict[str, Any]] = field(default_factory=list)


def split_frame(training_set: Any, label: str | None, feature_columns: list[str] | None, valid_fraction: float, seed: int) -> tuple[Any, ...]:
    """(frame, X_train, X_valid, y_train, y_valid, feature columns) of a training set. By default the
    features are every numeric or boolean column but the label, the lookup keys and timestamps."""
    import numpy as np
    import pandas as pd

    if not 0 < valid_fraction < 1:
        raise InvalidArgument(f"valid_fraction must be between 0 and 1, not {valid_fraction!r}")
    frame = training_set.load_df()
    labels = training_set.label
    target = (label or (labels[0] if labels else "")).lower()
    if not target or target not in frame.columns:
        raise InvalidArgument("the training set has no label column; create it with label=... or pass label")
    if feature_columns is None:
        keys = set()
        for r in training_set.lookups:
            keys |= {k.lower() for k in r.lookup.lookup_key}
            if r.lookup.timestamp_lookup_key:
                keys.add(r.lookup.timestamp_lookup_key.lower())
        feature_columns = [c for c in frame.columns if c not in keys and c not in labels and c != target
                           and (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    else:
        feature_columns = [c.lower() for c in feature_columns]
        missing = [c for c in feature_columns if c not in frame.columns]
        if missing:
            raise InvalidArgument(f"feature column(s) {missing} are not columns of the training set")
    if not feature_columns:
        raise InvalidArgument("the training set has no numeric feature columns to train on")
    frame = frame[frame[target].notna()].reset_index(drop=True)
    y = frame[target].astype("int64")
    if y.nunique() < 2:
        raise InvalidArgument(f"label '{target}' needs both classes to train a classifier")
    X = frame[feature_columns].astype("float64")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    cut = max(1, int(len(frame) * valid_fraction))
    valid, train = order[:cut], order[cut:]
    return frame, X.iloc[train], X.iloc[valid], y.iloc[train], y.iloc[valid], feature_columns


def fit(params: dict[str, Any], X_train: Any, y_train: Any, X_valid: Any, y_valid: Any, seed: int) -> Any:
    """An XGBClassifier fitted with early stopping on the validation set (deterministic for a seed)."""
    from xgboost import XGBClassifier

    p = {**DEFAULT_PARAMS, **params}
    p["n_estimators"] = int(p["n_estimators"])
    p["max_depth"] = int(p["max_depth"])
    model = XGBClassifier(**p, early_stopping_rounds=EARLY_STOPPING_ROUNDS, eval_metric="logloss", random_state=seed,
                          n_jobs=1, tree_method="hist")
    model.fit(X_train, y_train, eval_set=[(X_valid, y_valid)], verbose=False)
    return model


def evaluate(model: Any, X: Any, y: Any, threshold: float) -> dict[str, float]:
    """AUC, log loss, precision and recall at `threshold`, and the best iteration."""
    from sklearn.metrics import log_loss, precision_score, recall_score, roc_auc_score

    proba = model.predict_proba(X)[:, 1]
    pred = (proba >= threshold).astype(int)
    out = {
        "auc": float(roc_auc_score(y, proba)) if len(set(y)) > 1 else float("nan"),
        "log_loss": float(log_loss(y, proba, labels=[0, 1])),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
    }
    best = getattr(model, "best_iteration", None)
    if best is not None:
        out["best_iteration"] = float(best)
    return out


def train_xgboost(
    cairn: Any, training_set: Any, *, params: dict[str, Any] | None = None, label: str | None = None,
    feature_columns: list[str] | None = None, valid_fraction: float = 0.25, threshold: float = 0.5, seed: int = 0,
    experiment: str | None = None, run_name: str | None = None, artifact_path: str = "model",
    registered_model_name: str | None = None,
) -> TrainResult:
    """Train and log an XGBClassifier on `training_set` in a new MLflow run, acting as `cairn`'s
    principal (the training set was built through the governed read path, so every table read was
    checked and audited). With `registered_model_name`, the model becomes a new version of that
    catalog model (created when missing), with lineage from the training set to the version."""
    import mlflow

    import pipelines.training.tracking as tracking
    from pipelines.training.logged import log_model

    if not 0 < threshold < 1:
        raise InvalidArgument(f"threshold must be between 0 and 1, not {threshold!r}")
    frame, X_train, X_valid, y_train, y_valid, cols = split_frame(training_set, label, feature_columns, valid_fraction, seed)
    exp = tracking.experiment_id(cairn, experiment)
    params = {**DEFAULT_PARAMS, **(params or {})}
    with mlflow.start_run(experiment_id=exp, run_name=run_name) as run:
        model = fit(params, X_train, y_train, X_valid, y_valid, seed)
        metrics = evaluate(model, X_valid, y_valid, threshold)
        mlflow.log_params({**params, "threshold": threshold, "seed": seed, "valid_fraction": valid_fraction,
                           "early_stopping_rounds": EARLY_STOPPING_ROUNDS, "rows": len(frame)})
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        tracking.log_training_inputs(training_set)
        mlflow.log_dict(importance(model, cols), "feature_importance.json")
        logged = log_model(model, artifact_path, "xgboost", training_set, registered_model_name,
                           feature_columns=cols, input_example=X_train.head(5), cairn=cairn)
        return TrainResult(run.info.run_id, model, metrics, params, logged.model_uri, cols, logged.model_version)


def importance(model: Any, columns: list[str]) -> dict[str, dict[str, float]]:
    """Gain, weight and cover per feature (features never split on get 0)."""
    booster = model.get_booster()
    out: dict[str, dict[str, float]] = {}
    for kind in ("gain", "weight", "cover"):
        scores = booster.get_score(importance_type=kind)
        out[kind] = {c: float(scores.get(c, 0.0)) for c in columns}
    return out
