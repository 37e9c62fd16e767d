"""One served model version, loaded: its pyfunc model, the fast path for xgboost, and the features
its feature spec looks up in the online store.

Loading is `mlflow.pyfunc.load_model` of the version's source. When the flavor is xgboost, the
underlying booster answers directly (`inplace_predict` on a numpy row, no pandas on the way),
with the pyfunc model's semantics: class labels for a classifier, values for a regressor.

A model logged with a feature spec (`feature_spec.json` next to its MLmodel, or the catalog's
`cairn.feature_spec` property of the version) takes requests that carry only lookup keys and
on-demand inputs: each lookup's features come from the online store (read as the endpoint's
owner, SELECT checked when the reader opens and renewed every second); a feature present in the
request overrides the lookup; a key the store does not hold gets the lookup's default values;
then the spec's Python feature functions compute their outputs (pipelines/serving/functions.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from catalog.errors import InvalidArgument
from pipelines.serving.batch import Batcher
from pipelines.serving.functions import OnDemandFeatures

SPEC_FILE = "feature_spec.json"
log = logging.getLogger("cairn.serving")


def local_path(source: str) -> str:
    """A local directory holding the model (downloaded when the source is remote)."""
    if source.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(source).path)
    if "://" not in source and ":" not in source.split("/", 1)[0]:
        return source
    import mlflow

    return mlflow.artifacts.download_artifacts(artifact_uri=source)


class FeatureAssembler:
    """Turns request records into model rows: online lookups, request overrides, defaults."""

    def __init__(self, spec: dict[str, Any], cairn: Any, online_store: Any = None) -> None:
        from pipelines.features import FeatureEngineeringClient

        self.columns: list[str] = [c.lower() for c in spec.get("feature_columns") or []]
        self.inputs: list[str] = [c.lower() for c in spec.get("input_columns") or []]
        fe = FeatureEngineeringClient(cairn)
        self.lookups: list[tuple[list[str], list[tuple[str, str]], dict[str, Any], Any]] = []
        for lk in spec.get("lookups") or []:
            keys = [k.lower() for k in lk["lookup_key"]]
            reader = fe.online_reader(lk["table_name"], lk.get("feature_names"), online_store=online_store)
            renames = {k.lower(): v.lower() for k, v in (lk.get("rename_outputs") or {}).items()}
            outs = [(f, renames.get(f, f)) for f in reader.features]
            defaults = {k.lower(): v for k, v in (lk.get("default_values") or {}).items()}
            self.lookups.append((keys, outs, defaults, reader))
        self.functions = OnDemandFeatures(spec.get("functions") or [], cairn)

    def close(self) -> None:
        for *_rest, reader in self.lookups:
            reader.close()
        self.functions.close()

    def assemble(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = [{str(k).lower(): v for k, v in r.items()} for r in records]
        for keys, outs, defaults, reader in self.lookups:
            need = [i for i, r in enumerate(rows) if any(o not in r for _f, o in outs)]
            if not need:
                continue
            for i in need:
                missing = [k for k in keys if k not in rows[i]]
                if missing:
                    raise InvalidArgument(f"record {i} lacks lookup key(s) {missing} of feature table '{reader.name}'")
            found = reader.lookup([[rows[i][k] for k in keys] for i in need])
            for i, got in zip(need, found):
                row = rows[i]
                for feature, out in outs:
                    if out not in row:  # present in the request: it overrides the lookup
                        value = got.get(feature)
                        row[out] = defaults.get(feature) if value is None else value
        self.functions.apply(rows)  # on-demand features, over the request and the looked-up features
        return rows


class LoadedModel:
    """A model version ready to predict. `predict` takes records (or positional rows)."""

    def __init__(self, source: str, catalog_spec: str | None = None, cairn: Any = None, online_store: Any = None) -> None:
        import mlflow.pyfunc

        path = local_path(source)
        self.pyfunc = mlflow.pyfunc.load_model(path)
        spec_file = Path(path) / SPEC_FILE
        # The catalog's copy first: it is what registration checked; the file may have changed since.
        spec = json.loads(catalog_spec) if catalog_spec else (json.loads(spec_file.read_text()) if spec_file.is_file() else None)
        self.spec = spec
        self.assembler = FeatureAssembler(spec, cairn, online_store) if spec and (spec.get("lookups") or spec.get("functions")) and cairn is not None else None
        schema = self.pyfunc.metadata.get_input_schema()
        names = schema.input_names() if schema is not None and schema.has_input_names() else None
        self.columns: list[str] | None = (spec or {}).get("feature_columns") or names
        self._booster, self._classes = self._fast_path()
        self._dense: DensePredictor | None = None
        if self._booster is not None:
            # One row at a time: a thread pool per call costs more than the trees themselves.
            self._booster.set_param({"nthread": int(os.environ.get("CAIRN_SERVING_XGB_THREADS", "1"))})
            self._dense = DensePredictor.checked(self._booster)
        if self.columns is None and self._booster is not None and self._booster.feature_names:
            self.columns = list(self._booster.feature_names)
        self._lower = [c.lower() for c in self.columns] if self.columns else None
        # rows predicted independently (the booster): concurrent requests may share a call
        self.batch: Batcher | None = Batcher(self.predict) if self._booster is not None else None

    def _fast_path(self) -> tuple[Any, Any]:
        if "xgboost" not in self.pyfunc.metadata.flavors or os.environ.get("CAIRN_SERVING_PYFUNC_ONLY"):
            return None, None
        impl = getattr(self.pyfunc, "_model_impl", None)
        xgb_model = getattr(impl, "xgb_model", None)
        if xgb_model is None:
            return None, None
        if hasattr(xgb_model, "get_booster"):
            classes = getattr(xgb_model, "classes_", None) if hasattr(xgb_model, "predict_proba") else None
            if hasattr(xgb_model, "predict_proba") and classes is None:
                return None, None
            return xgb_model.get_booster(), classes
        return xgb_model, None  # a plain Booster: pyfunc returns its raw predictions too

    def close(self) -> None:
        if self.assembler is not None:
            self.assembler.close()

    def predict(self, records: list[dict[str, Any]] | None, rows: list[list[Any]] | None) -> list[Any]:
        lowered = False
        if records is not None and self.assembler is not None:
            records, lowered = self.assembler.assemble(records), True
        if self._booster is not None:
            return self._predict_booster(records, rows, lowered)
        import pandas as pd

        if records is not None:
            frame = pd.DataFrame(records)
            if self.columns:
                lower = {c.lower(): c for c in frame.columns}
                missing = [c for c in self.columns if c not in frame.columns and c.lower() not in lower]
                if missing:
                    raise InvalidArgument(f"the request lacks column(s) {missing[:10]} the model needs")
                frame = frame[[c if c in frame.columns else lower[c.lower()] for c in self.columns]]
                frame.columns = list(self.columns)
        else:
            frame = pd.DataFrame(rows, columns=self.columns if self.columns and len(self.columns) == len(rows[0]) else None)  # type: ignore[index]
        return _jsonable(self.pyfunc.predict(frame))

    def _predict_booster(self, records: list[dict[str, Any]] | None, rows: list[list[Any]] | None, lowered: bool = False) -> list[Any]:
        import numpy as np

        cols = self._lower
        if records is not None:
            if cols is None:
                raise InvalidArgument("the model declares no input columns; send positional rows (instances)")
            matrix = []
            for i, r in enumerate(records):
                row = r if lowered or all(isinstance(k, str) and k.islower() for k in r) else {str(k).lower(): v for k, v in r.items()}
                try:
                    values = [row[c] for c in cols]
                    # numbers pass as they are (one type test for the row); anything else is checked one by one
                    matrix.append(values if _NUMBERS.issuperset(map(type, values)) else [_num(v) for v in values])
                except KeyError:
                    missing = [c for c in cols if c not in row]
                    raise InvalidArgument(f"record {i} lacks column(s) {missing[:10]} the model needs") from None
        else:
            width = len(cols) if cols else None
            for i, values in enumerate(rows or []):
                if width is not None and len(values) != width:
                    raise InvalidArgument(f"row {i} has {len(values)} values; the model takes {width}")
            matrix = [values if _NUMBERS.issuperset(map(type, values)) else [_num(v) for v in values] for values in rows or []]
        try:
            x = np.asarray(matrix, dtype=np.float32)
        except (TypeError, ValueError, OverflowError):
            raise InvalidArgument("every feature value must be a number (or null)") from None
        out = self._dense(x) if self._dense is not None and x.ndim == 2 else self._booster.inplace_predict(x, validate_features=False)
        if self._classes is not None:
            if out.ndim == 1:
                out = self._classes[(out > 0.5).astype(int)]
            else:
                out = self._classes[out.argmax(axis=1)]
        return _jsonable(out)


class DensePredictor:
    """`booster.inplace_predict(x)` for a C-contiguous float32 matrix, through the same xgboost C
    function (`XGBoosterPredictFromDense`) with its arguments prepared once: the Python wrapper
    costs twice what the C call does on one row (type sniffing, JSON config, ctypes types built
    per call). Used only when `checked` found it answering exactly as `inplace_predict` does.

    The call keeps the GIL (the library loaded again as a `ctypes.PyDLL`): a one-row prediction
    takes ~60 us, and releasing the GIL around it lets any background thread (the inference log,
    lease renewals) take it, so the event loop would wait up to a switch interval to answer."""

    CONFIG = b'{"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, "missing": NaN, "strict_shape": false, "cache_id": 0}'

    def __init__(self, booster: Any) -> None:
        import ctypes

        from xgboost.core import _LIB, c_bst_ulong

        self._booster, self._ctypes = booster, ctypes
        self._call = ctypes.PyDLL(_LIB._name).XGBoosterPredictFromDense
        self._shape = ctypes.POINTER(c_bst_ulong)()
        self._dims = c_bst_ulong()
        self._preds = ctypes.POINTER(ctypes.c_float)()
        self._byref = (ctypes.byref(self._shape), ctypes.byref(self._dims), ctypes.byref(self._preds))
        self._no_proxy = ctypes.c_void_p()

    @classmethod
    def checked(cls, booster: Any) -> DensePredictor | None:
        """A predictor for `booster` when it matches `inplace_predict` on probe rows (missing values
        included); None (use `inplace_predict`) when it does not or this xgboost lacks the function."""
        import numpy as np

        try:
            width = booster.num_features()
            probe = np.random.default_rng(0).random((4, width)).astype(np.float32)
            probe[1, 0] = np.nan
            fast = cls(booster)
            if all(np.array_equal(fast(rows), booster.inplace_predict(rows, validate_features=False))
                   for rows in (probe, probe[:1].copy())):
                return fast
        except Exception as exc:  # an xgboost without the function, or a model it cannot take
            log.info("xgboost's dense predict is not used for this model: %s", exc)
        return None

    def __call__(self, x: Any) -> Any:
        import numpy as np

        n, m = x.shape
        iface = f'{{"data": [{x.ctypes.data}, true], "strides": null, "descr": [["", "<f4"]], "typestr": "<f4", "shape": [{n}, {m}], "version": 3}}'
        rc = self._call(self._booster.handle, iface.encode(), self.CONFIG, self._no_proxy, *self._byref)
        if rc != 0:
            from xgboost.core import _LIB

            raise RuntimeError(_LIB.XGBGetLastError().decode())
        dims = self._dims.value
        shape = tuple(int(self._shape[i]) for i in range(dims))
        size = 1
        for d in shape:
            size *= d
        # the C buffer is the booster's own and reused by the next call: copy it out
        return np.ctypeslib.as_array(self._preds, shape=(size,)).copy().reshape(shape)


_NUMBERS = frozenset({int, float})


def _num(v: Any) -> Any:
    if v is None:
        return math.nan
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return v
    raise InvalidArgument(f"feature value {v!r} is not a number")


def _jsonable(out: Any) -> list[Any]:
    if hasattr(out, "to_dict") and hasattr(out, "columns"):  # a DataFrame
        return out.to_dict("records")  # type: ignore[no-any-return]
    if hasattr(out, "tolist"):
        return out.tolist()  # type: ignore[no-any-return]
    return list(out)
