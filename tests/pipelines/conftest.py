"""One local Spark session per test module (starting one takes ~15 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    from pipelines.spark import local_session

    session = local_session("cairn-tests", cores="2")
    yield session
    session.stop()
