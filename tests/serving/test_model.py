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
    assert fast._booster is not None
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
