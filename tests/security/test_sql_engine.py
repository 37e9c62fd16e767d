"""Class 1: the SQL engine reaches nothing but what the statement was authorized to read.

Two layers, each tested alone: the shim's relation resolution refuses files, engine functions and
out-of-scope CTE names before anything runs; and the DuckDB connection itself cannot open a file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from catalog.client import Cairn, Metastore
from catalog.errors import PermissionDenied
from catalog.relations import FileAccessRefused
from tests.security.conftest import denied_rows


def files_of(admin: Cairn, table: str) -> list[str]:
    loc = admin.tables.get_table(table).storage_location.removeprefix("file://")
    return sorted(str(p) for p in Path(loc).glob("*.parquet"))


def attacks(admin: Cairn, metastore: Metastore) -> list[str]:
    secret = admin.tables.get_table("main.s.secret").storage_location.removeprefix("file://")
    people = admin.tables.get_table("main.s.people").storage_location.removeprefix("file://")
    one = files_of(admin, "main.s.secret")[0]
    db = str(metastore.engine.url.database or "/etc/hostname")
    return [
        f"SELECT * FROM read_parquet('{secret}/*.parquet')",
        f"SELECT * FROM parquet_scan('{secret}/*.parquet')",
        f"SELECT * FROM read_parquet('{people}/*.parquet')",  # the masked table's raw rows
        f"SELECT * FROM read_json('{secret}/_delta_log/00000000000000000000.json')",
        "SELECT * FROM read_text('/etc/passwd')",
        f"SELECT * FROM read_blob('{db}')",
        f"SELECT * FROM '{one}'",
        f"SELECT * FROM `{one}`",
        f"SELECT * FROM parquet.`{secret}`",
        f"SELECT * FROM delta.`{secret}`",
        "SELECT * FROM duckdb_settings()",
        "SELECT current_setting('enable_external_access')",
        "SELECT * FROM query('SELECT 42')",
        "SELECT * FROM sniff_csv('/etc/passwd')",
        f"SELECT (SELECT count(*) FROM read_parquet('{secret}/*.parquet')) AS n",
        f"SELECT * FROM main.s.people WHERE name IN (SELECT x FROM read_parquet('{secret}/*.parquet'))",
        # A CTE named like a file, in scope only inside its own subquery: the same name outside it is a file.
        f"SELECT * FROM (WITH `{one}` AS (SELECT 1 AS x) SELECT * FROM `{one}`) a, `{one}` b",
        # A later CTE is not in scope inside an earlier one.
        f"WITH a AS (SELECT * FROM `{one}`), `{one}` AS (SELECT 1 AS x) SELECT * FROM a",
    ]


@pytest.mark.parametrize("n", range(18))
def test_file_and_engine_escapes_are_refused_and_audited(redteam: Cairn, admin: Cairn, metastore: Metastore, n: int) -> None:
    statement = attacks(admin, metastore)[n]
    before = len(denied_rows(admin, "bob"))
    with pytest.raises(PermissionDenied) as err:
        redteam.sql(statement)
    assert isinstance(err.value, FileAccessRefused)
    rows = denied_rows(admin, "bob")
    assert len(rows) == before + 1
    row = rows[-1]
    assert row.action == "execute_sql" and row.securable_name == err.value.what
    assert row.parameters["statement"] == statement


def test_cte_scoping_is_exact(redteam: Cairn, admin: Cairn) -> None:
    # In scope: a CTE shadows a catalog table of the same name, so bob reads the CTE, not `secret`.
    assert redteam.sql("USE CATALOG main; USE SCHEMA s; WITH secret AS (SELECT 'mine' AS x) SELECT x FROM secret").rows == [("mine",)]
    # Out of scope, the same name is the catalog table and is checked (bob may not even see it).
    with pytest.raises(Exception) as err:
        redteam.sql("SELECT * FROM (WITH secret AS (SELECT 1 AS x) SELECT * FROM secret) a, secret b")
    assert err.value.code in ("NOT_FOUND", "PERMISSION_DENIED")
    # Recursive CTEs see themselves; allowed table functions run.
    assert redteam.sql("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT sum(n) FROM r").rows == [(6,)]
    assert redteam.sql("SELECT count(*) FROM range(5)").rows == [(5,)]


def test_masked_table_reads_stay_masked_and_filtered(redteam: Cairn) -> None:
    assert redteam.sql("SELECT name, ssn FROM main.s.people ORDER BY name").rows == [("ann", "***-**-****")]
    assert redteam.sql("SELECT count(*) FROM main.s.people").rows == [(1,)]


def test_current_user_is_the_acting_principal(redteam: Cairn, admin: Cairn) -> None:
    assert redteam.sql("SELECT current_user(), session_user()").rows == [("bob", "bob")]
    assert admin.sql("SELECT current_user()").rows == [("admin",)]
    # The same text, cached as one template, still answers for each caller.
    assert redteam.sql("SELECT current_user()").rows == [("bob",)]


def test_the_engine_alone_cannot_reach_files(redteam: Cairn, admin: Cairn) -> None:
    """Layer 2 without layer 1: SQL sent straight to the shim's DuckDB connection."""
    import duckdb

    from catalog.scan import duckdb_cursor

    con = duckdb_cursor()
    one = files_of(admin, "main.s.secret")[0]
    for sql in (f"SELECT * FROM read_parquet('{one}')", f"SELECT * FROM '{one}'", "SELECT * FROM read_text('/etc/passwd')",
                "ATTACH '/tmp/cairn-attack.db' AS x", f"COPY (SELECT 1) TO '{os.path.dirname(one)}/evil.parquet'"):
        with pytest.raises(duckdb.PermissionException):
            con.execute(sql)
    with pytest.raises(duckdb.InvalidInputException, match="configuration"):
        con.execute("SET enable_external_access = true")
    assert not os.path.exists(os.path.join(os.path.dirname(one), "evil.parquet"))


def test_spark_sql_resolves_relations_the_same_way(redteam: Cairn, admin: Cairn) -> None:
    from pipelines.spark import GovernedSpark

    secret = admin.tables.get_table("main.s.secret").storage_location.removeprefix("file://")
    session = GovernedSpark(None, {"principal": "bob"})  # refused before Spark or the catalog is touched
    for sql in (f"SELECT * FROM parquet.`{secret}`", "SELECT * FROM read_files('/etc')", f"SELECT * FROM csv.`{secret}`",
                "SELECT reflect('java.lang.System', 'getenv', 'HOME')"):
        with pytest.raises(FileAccessRefused):
            session.sql(sql)


def test_a_database_for_one_snapshot_reads_only_its_files(redteam: Cairn, admin: Cairn) -> None:
    """The native path: a database made for the files of `people` cannot open `secret`'s."""
    import duckdb

    from catalog.sql import duck

    people, secret = files_of(admin, "main.s.people"), files_of(admin, "main.s.secret")
    pool = duck.FilePool(size=2)
    assert pool.cursor(frozenset(people))[1] is False  # first sight: Arrow datasets on the shared database
    con, native = pool.cursor(frozenset(people))
    assert native is True
    assert con.execute(f"SELECT count(*) FROM read_parquet('{people[0]}')").fetchone()[0] >= 1
    for sql in (f"SELECT * FROM read_parquet('{secret[0]}')", "SELECT * FROM read_text('/etc/passwd')",
                f"SELECT * FROM read_parquet('{os.path.dirname(people[0])}/*.parquet')"):
        with pytest.raises(duckdb.PermissionException):
            con.execute(sql)
    with pytest.raises(duckdb.InvalidInputException, match="configuration"):
        con.execute(f"SET allowed_paths = ['{secret[0]}']")
    # Queried twice, the same statement runs natively and still applies bob's filter and mask.
    for _ in range(3):
        assert redteam.sql("SELECT name, ssn FROM main.s.people").rows == [("ann", "***-**-****")]
