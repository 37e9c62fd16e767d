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


def test_requests_ready_together_share_one_predict_call_and_keep_their_own_answers(tmp_path: Path) -> None:
    """Dynamic batching (pipelines/serving/batch.py): requests that reach the event loop in the same
    turn are predicted in one call, each getting exactly its own rows' predictions; a request with
    bad rows fails alone, the others in its batch are still answered."""
    import asyncio

    model = LoadedModel(log_model(tmp_path / "mlflow", kind="regressor"))
    assert model.batch is not None
    requests = [[{f: (i * 0.11 + j * 0.05) % 1 for j, f in enumerate(FEATURES)} for i in range(k, k + n)] for k, n in ((0, 1), (5, 3), (9, 2))]
    alone = [model.predict(r, None) for r in requests]

    async def together() -> list[object]:
        bad = [{"f0": 1.0}]  # lacks f1..f4
        return await asyncio.gather(*(model.batch(r, None) for r in [*requests, bad]), model.batch(None, [[0.5] * len(FEATURES)]),
                                    return_exceptions=True)

    *got, failed, positional = asyncio.run(together())
    assert got == alone
    assert isinstance(failed, InvalidArgument) and "f4" in str(failed)
    assert positional == model.predict(None, [[0.5] * len(FEATURES)])
    # five requests: the failing batch call, then each alone
    assert (model.batch.requests, model.batch.calls) == (5, 6)
    calls = model.batch.calls

    async def good_only() -> list[object]:
        return await asyncio.gather(*(model.batch(r, None) for r in requests))

    assert asyncio.run(good_only()) == alone
    assert model.batch.calls == calls + 1  # three requests, one call
