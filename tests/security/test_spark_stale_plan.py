"""Attack on the Spark source's plan: bob builds a `format("cairn")` DataFrame while he may read all
of `main.s.people`; then the owner sets a row filter (US only) and revokes his SELECT. Spark 4.3
plans a Python data source's read once per DataFrame (PythonDataSourceV2 keeps the read info), so
every later action on that DataFrame reads the planned files with the plan's old policy: no check,
no audit row, the EU row still shown. Not fixed here (the reader would have to check again per
scan); kept as a strict xfail so the fix turns it green."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from catalog.client import Cairn, Metastore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    from pipelines.spark import local_session

    session = local_session("cairn-security-stale-plan", cores="1")
    yield session
    session.stop()


@pytest.mark.xfail(strict=True, reason="a DataFrame's read is planned once: later row filters and revokes do not reach it")
def test_a_dataframe_planned_before_a_revoke_reads_nothing_after_it(spark, redteam: Cairn, admin: Cairn, metastore: Metastore) -> None:  # type: ignore[no-untyped-def]
    admin.sql("ALTER TABLE main.s.people DROP ROW FILTER")
    opts = {"home": str(metastore.settings.home), "url": metastore.settings.metastore_url, "principal": "bob"}
    df = spark.read.format("cairn").options(**opts).load("main.s.people")
    assert sorted(r["name"] for r in df.collect()) == ["ann", "bo"]
    admin.sql("ALTER TABLE main.s.people SET ROW FILTER main.s.us_only ON (region)")
    assert sorted(r["name"] for r in df.collect()) == ["ann"]  # the row filter now set is the reader's
    admin.sql("REVOKE SELECT ON TABLE main.s.people FROM bob")
    with pytest.raises(Exception, match="PERMISSION_DENIED|lacks SELECT|does not exist"):
        df.collect()
