"""Attacks on filter pushdown in the Spark source. bob reads `main.s.people` through a mask on `ssn`
(and, at first, a row filter): a filter he pushes on the masked column must never skip a file by the
real values beneath the mask. If it did, the number of files read would tell him which files hold a
given SSN, and his rows would differ from those of the same filter applied to what he may see. The
same for a masked partition column, whose values sit in the Delta log."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from catalog.client import Cairn, Metastore

pytestmark = pytest.mark.slow

SSNS = ["222-22-2222", "555-55-5555", "999-99-9999"]


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    from pipelines.spark import local_session

    session = local_session("cairn-security-pushdown", cores="2")
    yield session
    session.stop()


@pytest.fixture
def people(redteam: Cairn, admin: Cairn) -> Cairn:
    """Four files of `main.s.people`: ann (US) and bo (EU), then one per US row p0, p1, p2."""
    for i, ssn in enumerate(SSNS):
        admin.sql(f"INSERT INTO main.s.people VALUES ('p{i}', '{ssn}', 'US')")
    return redteam


def opts(metastore: Metastore, principal: str) -> dict[str, str]:
    # skipFiles: on whichever Spark runs the tests (each DataFrame here is scanned once)
    return {"home": str(metastore.settings.home), "url": metastore.settings.metastore_url, "principal": principal, "skipFiles": "true"}


def rows_of(df: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in df.collect())


def read(spark: Any, metastore: Metastore, principal: str, table: str, where: str) -> tuple[int, list[tuple[Any, ...]]]:
    df = spark.read.format("cairn").options(**opts(metastore, principal)).load(table).where(where)
    return df.rdd.getNumPartitions(), rows_of(df)


def unpushed(spark: Any, reader: Cairn, table: str, where: str) -> list[tuple[Any, ...]]:
    """The filter applied by Spark to every row `reader` may see (his governed read, nothing pushed)."""
    data = reader.data.read(table)
    return rows_of(spark.createDataFrame(data.to_pandas()).where(where))


def test_a_masked_column_never_skips_a_file(spark, people: Cairn, admin: Cairn, metastore: Metastore) -> None:  # type: ignore[no-untyped-def]
    # under the row filter bob gets no statistics at all: nothing is skipped, even on name
    assert read(spark, metastore, "bob", "main.s.people", "name = 'p1'") == (4, [("p1", "***-**-****", "US")])
    admin.sql("ALTER TABLE main.s.people DROP ROW FILTER")
    assert read(spark, metastore, "bob", "main.s.people", "name = 'p1'") == (1, [("p1", "***-**-****", "US")])  # name: skipped by min/max
    for where in [f"ssn = '{SSNS[1]}'", f"ssn in ('{SSNS[0]}', '{SSNS[2]}')", "ssn > '900'", "ssn < '3'", "ssn is null",
                  "ssn = '***-**-****'", "ssn <> '***-**-****'", f"ssn = '{SSNS[1]}' and name >= 'p'"]:
        files, rows = read(spark, metastore, "bob", "main.s.people", where)
        assert files == (3 if "name >=" in where else 4), where  # only the unmasked name decides
        assert rows == unpushed(spark, people, "main.s.people", where), where
        assert not any(ssn in str(rows) for ssn in SSNS)
    assert len(read(spark, metastore, "bob", "main.s.people", "ssn = '***-**-****'")[1]) == 5
    # admin, whom the mask also covers (not in hr), is judged the same way: by the mask, not the values
    assert read(spark, metastore, "admin", "main.s.people", f"ssn = '{SSNS[1]}'") == (4, [])


def test_skip_ignores_a_masked_column_even_with_its_statistics_at_hand(people: Cairn, admin: Cairn) -> None:
    admin.sql("ALTER TABLE main.s.people DROP ROW FILTER")
    plan = people.data.plan_scan("main.s.people", stats=True)
    assert plan.stats is not None and "max.ssn" not in plan.stats.column_names
    # a plan carrying the real SSNs' min and max (what the log holds): the decision still ignores them
    from catalog import delta

    forged = replace(plan, stats=delta.file_stats(delta.open_table(admin.tables.get_table("main.s.people").storage_location or ""), plan.files))
    assert "max.ssn" in forged.stats.column_names
    for op, value in [("=", SSNS[1]), ("in", SSNS[:1]), (">", "900"), ("<", "3"), ("<=", "1"), (">=", "999-99-9999")]:
        assert forged.skip([("ssn", op, value)]).files == plan.files
    assert len(forged.skip([("name", "=", "p1")]).files) == 1
    # and under a row filter nothing is skipped by min and max, even a forged plan's
    ruled = replace(forged, policy=replace(forged.policy, row_filter="region = 'US'"))
    assert ruled.skip([("name", "=", "p1")]).files == plan.files


def test_a_masked_partition_column_never_skips_a_partition(spark, admin: Cairn, metastore: Metastore) -> None:  # type: ignore[no-untyped-def]
    admin.sql("""
        CREATE CATALOG IF NOT EXISTS main; CREATE SCHEMA IF NOT EXISTS main.p;
        CREATE FUNCTION main.p.hide(region STRING) RETURNS STRING RETURN CASE WHEN is_member('hr') THEN region ELSE 'XX' END;
    """)
    admin.tables.create_table("main.p.pay", [{"name": "id", "type": "bigint"}, {"name": "region", "type": "string"}],
                              partition_columns=["region"])
    admin.data.write("main.p.pay", [{"id": 1, "region": "US"}, {"id": 2, "region": "EU"}, {"id": 3, "region": "APAC"}])
    admin.sql("ALTER TABLE main.p.pay ALTER COLUMN region SET MASK main.p.hide")
    admin.principals.create_user("eve")
    admin.sql("GRANT USE CATALOG ON CATALOG main TO eve; GRANT USE SCHEMA ON SCHEMA main.p TO eve; GRANT SELECT ON TABLE main.p.pay TO eve")
    eve = metastore.as_principal("eve")
    for where in ["region = 'EU'", "region in ('US', 'APAC')", "region <> 'EU'", "region > 'F'", "region is null", "region = 'XX'"]:
        files, rows = read(spark, metastore, "eve", "main.p.pay", where)
        assert files == 3, where
        assert rows == unpushed(spark, eve, "main.p.pay", where), where
        assert not any(r in str(rows) for r in ("US", "EU", "APAC"))
    assert read(spark, metastore, "eve", "main.p.pay", "region = 'XX'")[1] == [(1, "XX"), (2, "XX"), (3, "XX")]
    assert read(spark, metastore, "eve", "main.p.pay", "id = 2") == (1, [(2, "XX")])  # id, unmasked: by min and max
