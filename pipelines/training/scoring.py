"""`score_batch`: predictions for rows that carry only keys (and timestamps); the model's feature
spec says which features to look up, and they are joined point in time through the feature
store's governed read path, exactly as in training.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.errors import FailedPrecondition, InvalidArgument
from pipelines.training.spec import FEATURE_SPEC_FILE, lookups_of

_CATALOG_URI = re.compile(r"^models:/(?P<name>[^/@]+\.[^/@]+\.[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[A-Za-z0-9_-]+))$")


def model_dir(cairn: Any, model_uri: str, dst: str) -> Path:
    """A local directory holding the model at `model_uri`. Catalog URIs (`models:/cat.sch.m/3`,
    `models:/cat.sch.m@champion`) go through the governed model service (EXECUTE on the model);
    anything else (runs:/, models:/m-..., a path) through MLflow."""
    m = _CATALOG_URI.match(model_uri)
    if m:
        name = m.group("name")
        version = int(m.group("version")) if m.group("version") else cairn.models.get_version_by_alias(name, m.group("alias")).version
        creds = cairn.models.generate_temporary_credentials(name, version, "READ_MODEL_VERSION")
        if "://" in creds.url and not creds.url.startswith("file://"):
            import mlflow

            return Path(mlflow.artifacts.download_artifacts(creds.url, dst_path=dst))
        return Path(creds.url.removeprefix("file://"))
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=dst))


def read_spec(path: Path) -> dict[str, Any]:
    f = path / FEATURE_SPEC_FILE
    if not f.exists():
        raise FailedPrecondition(f"the model has no {FEATURE_SPEC_FILE}; log it with log_model(..., training_set=...)")
    try:
        return json.loads(f.read_text())
    except ValueError as exc:
        raise InvalidArgument(f"the model's {FEATURE_SPEC_FILE} is not JSON: {exc}") from exc


@dataclass(frozen=True)
class _Reader:
    """What a training set needs of its feature client: the principal-bound catalog client. (The
    feature client's own `score_batch` passes itself; importing it here would be a cycle.)"""

    cairn: Any


def score_batch(cairn: Any, model_uri: str, df: Any, result_name: str = "prediction", *, client: Any = None) -> Any:
    """`df` (pandas, Arrow or a list of dicts) with the model's predictions in `result_name`, rows
    in order. `df` needs the spec's input columns (lookup keys, timestamp lookup keys, function
    inputs); features come from the feature tables as of each row's timestamp, read as `cairn`'s
    principal (SELECT on each, EXECUTE on the model). Raises InvalidArgument naming a missing column.
    Also `FeatureEngineeringClient.score_batch(model_uri, df)`, which passes itself as `client`."""
    import mlflow.pyfunc

    from pipelines.features.spec import to_arrow
    from pipelines.features.training import TrainingSet

    rows = to_arrow(df)
    with tempfile.TemporaryDirectory() as tmp:
        path = model_dir(cairn, model_uri, tmp)
        spec = read_spec(path)
        missing = [c for c in spec.get("input_columns", []) if c not in rows.column_names]
        if missing:
            raise InvalidArgument(f"the rows to score lack column(s) {missing} that the model's features are looked up by")
        ts = TrainingSet.create(client if client is not None else _Reader(cairn), rows, lookups_of(spec), None, None)
        frame = ts.load_df()
        cols = spec.get("feature_columns") or []
        absent = [c for c in cols if c not in frame.columns]
        if absent:
            raise InvalidArgument(f"feature column(s) {absent} of the model are neither looked up nor in the rows")
        model = mlflow.pyfunc.load_model(str(path))
        pred = model.predict(frame[cols].astype("float64"))
    out = rows.to_pandas()
    out[result_name] = list(pred)
    return out
