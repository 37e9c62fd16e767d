"""MLflow tracking for Cairn's training: the embedded default store, experiments whose artifacts
live under CAIRN_HOME, and the training set's tables logged as run inputs with their Delta versions.

The embedded default is a SQLite tracking store at `$CAIRN_HOME/mlflow.db` with artifacts under
`$CAIRN_HOME/mlartifacts` (never a file in the working directory). A tracking URI set through
MLflow (`MLFLOW_TRACKING_URI` or `mlflow.set_tracking_uri`) wins: any MLflow tracking store works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEFAULT_EXPERIMENT = "cairn-training"
_defaults: set[str] = set()  # embedded default URIs this process set, so another CAIRN_HOME gets its own


def tracking_uri(cairn: Any) -> str:
    """The tracking URI to use: MLflow's own when one is set, else the SQLite store under CAIRN_HOME."""
    import mlflow
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    if is_tracking_uri_set() and mlflow.get_tracking_uri() not in _defaults:
        return mlflow.get_tracking_uri()
    home = Path(cairn.metastore.settings.home)
    home.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    _defaults.add(uri)
    return uri


def experiment_id(cairn: Any, name: str | None = None) -> str:
    """Point MLflow at the tracking store and return the id of experiment `name` (created with its
    artifacts under CAIRN_HOME when the store is the embedded one)."""
    import mlflow

    uri = tracking_uri(cairn)
    mlflow.set_tracking_uri(uri)
    name = name or DEFAULT_EXPERIMENT
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if uri.startswith("sqlite:///") and uri == f"sqlite:///{Path(cairn.metastore.settings.home) / 'mlflow.db'}":
        location = (Path(cairn.metastore.settings.home) / "mlartifacts" / name.strip("/").replace("/", "_")).as_uri()
    return str(mlflow.create_experiment(name, artifact_location=location))


def table_dataset(table: str, version: int | None, context: str) -> Any:
    """An MLflow dataset naming a Cairn table at a Delta version (a Delta source, no data copied)."""
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    class CairnTableSource(DeltaDatasetSource):
        """A Delta source named by its Cairn catalog name (never looked up in Databricks)."""

        def _is_databricks_uc_table(self) -> bool:
            return False

        def to_dict(self) -> dict[str, Any]:
            return {"delta_table_name": self.delta_table_name, "delta_table_version": self.delta_table_version, "catalog": "cairn"}

    source = CairnTableSource(delta_table_name=table, delta_table_version=version)
    # mlflow's MetaDataset is concrete at run time (its profile is optional); its stub says abstract.
    return MetaDataset(source, name=f"{table}@v{version}", digest=f"{table}@{version}"[:36])  # type: ignore[abstract]


def log_training_inputs(training_set: Any, frame: Any | None = None) -> list[tuple[str, int | None, str]]:
    """Log each feature table and the label table (catalog name and Delta version) as inputs of the
    active run, and the training frame itself when given. Returns (table, version, context) logged."""
    import mlflow

    spec = training_set.spec()
    logged: list[tuple[str, int | None, str]] = []
    label = spec["label_source"]
    if label.get("table"):
        logged.append((label["table"], label["version"], "labels"))
    for ft in spec["feature_tables"]:
        logged.append((ft["table"], ft["version"], "features"))
    saved = getattr(training_set, "saved_as", None)
    for table, version, context in logged:
        mlflow.log_input(table_dataset(table, version, context), context=context)
    if saved:
        mlflow.log_input(table_dataset(saved, None, "training_set"), context="training_set")
    if frame is not None:
        # mlflow.data exports from_pandas lazily, which mypy cannot see
        mlflow.log_input(mlflow.data.from_pandas(frame, name="training_frame"), context="training")  # type: ignore[attr-defined]
    return logged
