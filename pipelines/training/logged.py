"""`log_model`: an MLflow model logged with the feature spec of the training set it learned from,
and registered as a catalog model version (embedded, through the governed model service).

The spec is `feature_spec.json` at the root of the logged model's directory, so any MLflow model
carrying that file can be scored by key alone (`score_batch`, serving).
"""

from __future__ import annotations

import importlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.errors import InvalidArgument, NotFound
from pipelines.training.spec import FEATURE_SPEC_FILE, feature_spec


@dataclass
class LoggedModel:
    model_uri: str  # models:/m-... (MLflow's logged model)
    model_id: str
    run_id: str | None
    feature_spec: dict[str, Any]
    model_version: Any = None  # the catalog ModelVersion when registered


def _flavor(flavor: Any) -> Any:
    if isinstance(flavor, str):
        if not flavor.isidentifier():
            raise InvalidArgument(f"unknown MLflow flavor {flavor!r}")
        try:
            return importlib.import_module(f"mlflow.{flavor}")
        except ImportError as exc:
            raise InvalidArgument(f"unknown MLflow flavor {flavor!r}") from exc
    if not hasattr(flavor, "log_model"):
        raise InvalidArgument("flavor must be an MLflow flavor module (mlflow.xgboost) or its name")
    return flavor


def log_model(
    model: Any, artifact_path: str, flavor: Any, training_set: Any, registered_model_name: str | None = None, *,
    feature_columns: list[str] | None = None, input_example: Any = None, signature: Any = None, cairn: Any = None,
) -> LoggedModel:
    """Log `model` with `flavor` (module or name: "xgboost", "sklearn", "pyfunc") into the active
    MLflow run (one is started when none is), with its signature, an input example, and
    `feature_spec.json` from `training_set`. With `registered_model_name` (catalog.schema.model)
    it becomes a new catalog model version: run, source, signature and feature spec recorded, and
    lineage from the training set's tables (at their versions) through the run to the version.
    `cairn` defaults to the client the training set was built with."""
    import mlflow
    from mlflow.models import infer_signature

    cairn = cairn or training_set.client.cairn
    fl = _flavor(flavor)
    if feature_columns is None:
        names = getattr(model, "feature_names_in_", None)
        feature_columns = [str(c) for c in names] if names is not None else None
    if feature_columns is None:
        raise InvalidArgument("pass feature_columns: the model does not say which columns it takes")
    spec = feature_spec(training_set, feature_columns)
    if signature is None and input_example is not None:
        try:
            signature = infer_signature(input_example, model.predict(input_example))
        except Exception:  # a model that cannot predict the example keeps no signature
            signature = None
    from pipelines.training.tracking import experiment_id

    started = None
    if mlflow.active_run() is None:
        started = mlflow.start_run(experiment_id=experiment_id(cairn))
    try:
        run_id = mlflow.active_run().info.run_id  # type: ignore[union-attr]
        info = fl.log_model(model, name=artifact_path, signature=signature, input_example=input_example)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / FEATURE_SPEC_FILE
            path.write_text(json.dumps(spec, indent=2, sort_keys=True))
            mlflow.MlflowClient().log_model_artifact(info.model_id, str(path))
        logged = LoggedModel(info.model_uri, info.model_id, run_id, spec)
        if registered_model_name:
            sig = info.signature.to_dict() if info.signature is not None else None
            metrics = dict(mlflow.get_run(run_id).data.metrics)
            logged.model_version = register(cairn, info.model_uri, registered_model_name, run_id, sig, spec, metrics)
        return logged
    finally:
        if started is not None:
            mlflow.end_run()


def register(cairn: Any, model_uri: str, name: str, run_id: str | None, signature: dict[str, Any] | None,
             spec: dict[str, Any] | None, metrics: dict[str, float] | None = None) -> Any:
    """A new version of catalog model `name` (created when missing) holding the artifacts at
    `model_uri`, through the governed services: create (PENDING), upload to its storage location,
    finalize (READY). Needs CREATE MODEL on the schema (first time) and ownership or MANAGE."""
    import mlflow

    try:
        cairn.models.get_registered_model(name)
    except NotFound:
        cairn.models.create_registered_model(name)
    version = cairn.models.create_model_version(name, source=model_uri, run_id=run_id, signature=signature, feature_spec=spec,
                                                metrics=metrics)
    creds = cairn.models.generate_temporary_credentials(name, version.version, "READ_WRITE_MODEL_VERSION")
    target = Path(creds.url.removeprefix("file://"))
    if "://" in creds.url and not creds.url.startswith("file://"):
        raise InvalidArgument(f"embedded registration writes local storage; {creds.url} is not (register through `uc:`)")
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(model_uri, dst_path=tmp)
        shutil.copytree(local, target, dirs_exist_ok=True)
    return cairn.models.finalize_model_version(name, version.version)
