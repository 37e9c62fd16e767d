"""The feature spec a logged model carries (`feature_spec.json` at the root of its MLflow model
directory): the training set's spec plus the columns a scoring request must carry and the model's
input column order. Serving and batch scoring rebuild the feature lookups from it.

>>> spec = {"lookups": [{"table_name": "m.f.users", "lookup_key": ["user_id"], "timestamp_lookup_key": "at",
...          "lookback_window_us": None, "feature_names": ["spend"], "rename_outputs": {}, "default_values": {}}],
...         "functions": [{"udf_name": "m.f.double", "input_bindings": {"x": "spend"}, "output_name": "d"}]}
>>> input_columns(spec, {"m.f.double": ["x"]}, {"spend"})
['user_id', 'at']
>>> lookups_of(spec)[0].timestamp_lookup_key
'at'
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from catalog.errors import InvalidArgument
from pipelines.features.spec import FeatureFunction, FeatureLookup

FEATURE_SPEC_FILE = "feature_spec.json"
FORMAT_VERSION = 1


def input_columns(spec: dict[str, Any], function_params: dict[str, list[str]], produced: set[str]) -> list[str]:
    """Columns a scoring request must carry: lookup keys, timestamp lookup keys, and the inputs of
    feature functions that no lookup produces, in first-seen order."""
    cols: list[str] = []
    for lk in spec.get("lookups", []):
        cols += [k.lower() for k in lk["lookup_key"]]
        if lk.get("timestamp_lookup_key"):
            cols.append(lk["timestamp_lookup_key"].lower())
    for f in spec.get("functions", []):
        for p in function_params.get(f["udf_name"], []):
            col = f["input_bindings"].get(p, p).lower()
            if col not in produced:
                cols.append(col)
    return list(dict.fromkeys(cols))


def feature_spec(training_set: Any, feature_columns: list[str]) -> dict[str, Any]:
    """The feature spec of a model trained on `training_set` (pipelines.features TrainingSet) with
    `feature_columns` as its input, in order. See the module docstring."""
    spec = dict(training_set.spec())
    produced = {out for r in training_set.lookups for _, out in r.features}
    params = {name: [c.name for c in fn.columns] for name, fn in training_set.function_defs.items()}
    spec["input_columns"] = input_columns(spec, params, produced)
    spec["feature_columns"] = list(feature_columns)
    spec["training_set_table"] = getattr(training_set, "saved_as", None)
    spec["format_version"] = FORMAT_VERSION
    return spec


def lookups_of(spec: dict[str, Any]) -> list[FeatureLookup | FeatureFunction]:
    """The feature lookups and functions of a feature spec, ready for `create_training_set`."""
    try:
        out: list[FeatureLookup | FeatureFunction] = []
        for lk in spec.get("lookups", []):
            window = lk.get("lookback_window_us")
            out.append(FeatureLookup(
                lk["table_name"], list(lk["lookup_key"]), timestamp_lookup_key=lk.get("timestamp_lookup_key"),
                lookback_window=None if window is None else timedelta(microseconds=int(window)),
                feature_names=lk.get("feature_names"), rename_outputs=lk.get("rename_outputs") or None,
                default_values=lk.get("default_values") or None,
            ))
        for f in spec.get("functions", []):
            out.append(FeatureFunction(f["udf_name"], dict(f.get("input_bindings") or {}), f.get("output_name")))
        return out
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgument(f"the model's {FEATURE_SPEC_FILE} is malformed: {exc}") from exc
