"""The booster fast path answers what the pyfunc model answers, for a classifier and a regressor."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.errors import InvalidArgument
from pipelines.serving.model import LoadedModel
from tests.serving.helpers import FEATURES, log_model

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_the_fast_path_matches_pyfunc(tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    source = log_model(tmp_path / "mlflow", kind=kind)
    rows = [{f: (i * 0.13 + j * 0.07) % 1 for j, f in enumerate(FEATURES)} for i in range(20)]
    fast = LoadedModel(source)
    assert fast._booster is not None and fast._dense is not None  # xgboost's C predict, arguments prepared once
    monkeypatch.setenv("CAIRN_SERVING_PYFUNC_ONLY", "1")
    slow = LoadedModel(source)
    assert slow._booster is None
    got, want = fast.predict(rows, None), slow.predict(rows, None)
    assert got == pytest.approx(want, abs=1e-5) and len(got) == 20
    assert fast.predict(None, [list(r.values()) for r in rows]) == got
    if kind == "classifier":
        assert set(got) <= {0, 1} and len(set(got)) == 2
    with pytest.raises(InvalidArgument, match="f4"):
        fast.predict([{"f0": 1}], None)
    with pytest.raises(InvalidArgument, match="takes 5"):
        fast.predict(None, [[1, 2]])


def test_the_dense_predictor_answers_as_inplace_predict_with_missing_values(tmp_path: Path) -> None:
    import numpy as np

    model = LoadedModel(log_model(tmp_path / "mlflow", kind="classifier"))
    assert model._dense is not None
    x = np.random.default_rng(3).random((50, len(FEATURES))).astype(np.float32)
    x[::3, 1] = np.nan
    want = model._booster.inplace_predict(x, validate_features=False)
    got = model._dense(x)
    assert got.shape == want.shape == (50,) and np.array_equal(got, want)
    assert np.array_equal(model._dense(x[:1].copy()), want[:1])
    nan_row = [None] * len(FEATURES)  # every feature missing: the trees' default directions
    assert model.predict(None, [nan_row]) == model.predict(None, [[float("nan")] * len(FEATURES)])
