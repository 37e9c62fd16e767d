"""Hyperparameter search for the xgboost classifier with hyperopt's TPE, as the seed does it.

Trials run in parallel processes, `parallelism` at a time: TPE proposes a batch, the batch is
trained in a process pool, the results are told back in trial order, then the next batch. Each
trial is a nested MLflow run under the search's run; the best parameters are refitted and logged
as the model. For a seed and a parallelism the search is reproducible: TPE draws from a generator
seeded per batch, and every fit is deterministic (fixed random_state, one thread).
"""

from __future__ import annotations

import math
from typing import Any

from catalog.errors import InvalidArgument

DEFAULT_SPACE_SPEC: dict[str, tuple[str, float, float]] = {
    "max_depth": ("quniform", 2, 8),
    "learning_rate": ("loguniform", 0.01, 0.3),
    "min_child_weight": ("loguniform", 0.5, 10.0),
    "subsample": ("uniform", 0.6, 1.0),
    "colsample_bytree": ("uniform", 0.6, 1.0),
}


def default_space() -> dict[str, Any]:
    from hyperopt import hp

    out: dict[str, Any] = {}
    for name, (kind, lo, hi) in DEFAULT_SPACE_SPEC.items():
        if kind == "quniform":
            out[name] = hp.quniform(name, lo, hi, 1)
        elif kind == "loguniform":
            out[name] = hp.loguniform(name, math.log(lo), math.log(hi))
        else:
            out[name] = hp.uniform(name, lo, hi)
    return out


def _trial(task: dict[str, Any]) -> dict[str, Any]:
    """One trial, in a worker process: fit, evaluate, log a nested run. Returns the loss and metrics."""
    import mlflow

    from pipelines.training.xgb import evaluate, fit

    mlflow.set_tracking_uri(task["tracking_uri"])
    X_train, X_valid, y_train, y_valid = task["data"]
    model = fit(task["params"], X_train, y_train, X_valid, y_valid, task["seed"])
    metrics = evaluate(model, X_valid, y_valid, task["threshold"])
    client = mlflow.MlflowClient()
    run = client.create_run(task["experiment_id"], run_name=f"trial-{task['number']}",
                            tags={"mlflow.parentRunId": task["parent_run_id"], "cairn.trial": str(task["number"])})
    for k, v in task["params"].items():
        client.log_param(run.info.run_id, k, v)
    for k, v in metrics.items():
        if v == v:
            client.log_metric(run.info.run_id, k, v)
    client.set_terminated(run.info.run_id)
    return {"loss": metrics["log_loss"], "metrics": metrics, "run_id": run.info.run_id}


def search_xgboost(
    cairn: Any, training_set: Any, *, max_evals: int = 16, parallelism: int = 2, space: dict[str, Any] | None = None,
    seed: int = 0, label: str | None = None, feature_columns: list[str] | None = None, valid_fraction: float = 0.25,
    threshold: float = 0.5, experiment: str | None = None, run_name: str | None = None, artifact_path: str = "model",
    registered_model_name: str | None = None, fixed_params: dict[str, Any] | None = None,
) -> Any:
    """TPE search minimizing validation log loss. Returns a TrainResult for the best model (its
    `trials` list every trial's params, loss and nested run id, in trial order)."""
    import mlflow
    import numpy as np
    from hyperopt import STATUS_OK, Trials, space_eval, tpe
    from hyperopt.base import JOB_STATE_DONE, Domain

    import pipelines.training.tracking as tracking
    from pipelines.training.logged import log_model
    from pipelines.training.xgb import DEFAULT_PARAMS, TrainResult, evaluate, fit, importance, split_frame

    if not isinstance(max_evals, int) or max_evals < 1:
        raise InvalidArgument(f"max_evals must be a positive integer, not {max_evals!r}")
    if not isinstance(parallelism, int) or not 1 <= parallelism <= 64:
        raise InvalidArgument(f"parallelism must be between 1 and 64, not {parallelism!r}")
    _frame, X_train, X_valid, y_train, y_valid, cols = split_frame(training_set, label, feature_columns, valid_fraction, seed)
    exp = tracking.experiment_id(cairn, experiment)
    uri = mlflow.get_tracking_uri()
    space = space or default_space()
    fixed = {**DEFAULT_PARAMS, **(fixed_params or {})}
    domain = Domain(lambda p: {"loss": 0.0, "status": STATUS_OK}, space)
    trials = Trials()
    done: list[dict[str, Any]] = []
    data = (X_train, X_valid, y_train, y_valid)
    with mlflow.start_run(experiment_id=exp, run_name=run_name or "hyperopt-search") as parent:
        mlflow.log_params({"max_evals": max_evals, "parallelism": parallelism, "seed": seed, "algo": "tpe", "threshold": threshold})
        tracking.log_training_inputs(training_set)
        pool = _pool(parallelism)
        try:
            batch_no = 0
            while len(done) < max_evals:
                n = min(parallelism, max_evals - len(done))
                ids = trials.new_trial_ids(n)
                trials.refresh()
                docs = tpe.suggest(ids, domain, trials, np.random.default_rng([seed, batch_no]).integers(2**31 - 1))
                batch_no += 1
                tasks = []
                for doc in docs:
                    vals = {k: v[0] for k, v in doc["misc"]["vals"].items() if v}
                    params = {**fixed, **space_eval(space, vals)}
                    tasks.append({"tracking_uri": uri, "experiment_id": exp, "parent_run_id": parent.info.run_id, "data": data,
                                  "params": params, "seed": seed, "threshold": threshold, "number": doc["tid"]})
                results = list(pool.map(_trial, tasks)) if pool is not None else [_trial(t) for t in tasks]
                for doc, task, res in zip(docs, tasks, results):
                    doc["state"] = JOB_STATE_DONE
                    doc["result"] = {"loss": res["loss"], "status": STATUS_OK}
                    done.append({"number": doc["tid"], "params": task["params"], "loss": res["loss"],
                                 "metrics": res["metrics"], "run_id": res["run_id"]})
                trials.insert_trial_docs(docs)
                trials.refresh()
        finally:
            if pool is not None:
                pool.shutdown()
        best = min(done, key=lambda t: (t["loss"], t["number"]))
        model = fit(best["params"], X_train, y_train, X_valid, y_valid, seed)
        metrics = evaluate(model, X_valid, y_valid, threshold)
        mlflow.log_params({f"best_{k}": v for k, v in best["params"].items()} | {"best_trial": best["number"]})
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        mlflow.log_dict(importance(model, cols), "feature_importance.json")
        mlflow.log_dict({"trials": [{k: t[k] for k in ("number", "params", "loss", "run_id")} for t in done]}, "trials.json")
        logged = log_model(model, artifact_path, "xgboost", training_set, registered_model_name,
                           feature_columns=cols, input_example=X_train.head(5), cairn=cairn)
        return TrainResult(parent.info.run_id, model, metrics, best["params"], logged.model_uri, cols, logged.model_version, done)


def _pool(parallelism: int) -> Any:
    """A process pool (spawned: the parent holds database connections and threads a fork would copy)."""
    if parallelism == 1:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=parallelism, mp_context=multiprocessing.get_context("spawn"))
