"""The SQL shim: governance statements, governed queries and writes, policies, system tables, errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from catalog.client import Cairn, Metastore
from catalog.entities import AuditResult
from catalog.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied


@pytest.fixture
def sales(admin: Cairn) -> Cairn:
    admin.sql("""
        CREATE CATALOG main COMMENT 'prod';
        USE CATALOG main;
        CREATE SCHEMA sales;
        USE SCHEMA sales;
        CREATE TABLE orders (id BIGINT NOT NULL, user_id BIGINT, amount DOUBLE, region STRING);
        CREATE TABLE users (user_id BIGINT, name STRING, email STRING);
        CREATE TABLE regions (region STRING, manager STRING);
        INSERT INTO orders VALUES (1, 10, 5.0, 'US'), (2, 11, 7.5, 'EU'), (3, 10, 1.0, 'US');
        INSERT INTO users VALUES (10, 'ann', 'ann@x.com'), (11, 'bo', 'bo@x.com');
        INSERT INTO regions VALUES ('US', 'mia'), ('EU', 'lea');
        CREATE GROUP analysts;
    """)
    for user in ("ana", "bob"):
        admin.principals.create_user(user)
    admin.sql("ALTER GROUP analysts ADD USER ana")
    return admin


def rows(client: Cairn, sql: str) -> list[tuple]:
    return client.sql(sql).rows


def test_governance_statements(sales: Cairn, metastore: Metastore) -> None:
    s = sales
    s.sql("GRANT USE CATALOG ON CATALOG main TO `analysts`")
    s.sql("GRANT USE SCHEMA, SELECT ON SCHEMA main.sales TO analysts")
    assert rows(s, "SHOW GRANTS ON SCHEMA main.sales") == [("analysts", "SELECT", "SCHEMA", "main.sales"), ("analysts", "USE SCHEMA", "SCHEMA", "main.sales"),
                                                           ("analysts", "USE CATALOG", "CATALOG", "main")]  # inherited, with its object
    assert rows(s, "SHOW GRANTS `analysts` ON CATALOG main") == [("analysts", "USE CATALOG", "CATALOG", "main")]
    s.sql("REVOKE SELECT ON SCHEMA main.sales FROM analysts")
    assert [r[1] for r in rows(s, "SHOW GRANTS ON SCHEMA main.sales")] == ["USE SCHEMA", "USE CATALOG"]
    s.sql("ALTER TABLE orders SET TAGS ('domain' = 'sales', 'tier' = 'gold')")
    s.sql("ALTER TABLE main.sales.users ALTER COLUMN email SET TAGS ('pii' = 'true')")
    s.sql("ALTER TABLE orders UNSET TAGS ('tier')")
    assert [(t.column, t.key, t.value) for t in s.tags.list_tags("table", "main.sales.orders")] == [(None, "domain", "sales")]
    assert [(t.column, t.key) for t in s.tags.list_tags("table", "main.sales.users")] == [("email", "pii")]
    s.sql("COMMENT ON TABLE orders IS 'every order'")
    assert s.tables.get_table("main.sales.orders").comment == "every order"
    s.sql("ALTER TABLE orders OWNER TO `analysts`")
    assert s.tables.get_table("main.sales.orders").owner == "analysts"
    assert rows(s, "SHOW TABLES IN main.sales LIKE 'u*|r*'") == [("sales", "regions", False), ("sales", "users", False)]
    assert rows(s, "SHOW CATALOGS") == [("main",)]
    described = rows(s, "DESCRIBE TABLE EXTENDED orders")
    assert described[:2] == [("id", "bigint", None), ("user_id", "bigint", None)] and ("Owner", "analysts", "") in described
    with pytest.raises(AlreadyExists):
        s.sql("CREATE SCHEMA sales")
    assert s.sql("CREATE SCHEMA IF NOT EXISTS sales").message == "schema sales already exists"
    with pytest.raises(FailedPrecondition, match="not empty"):
        s.sql("DROP SCHEMA main.sales")
    assert s.sql("DROP TABLE IF EXISTS nope").message == "table main.sales.nope does not exist"
    s.sql("DROP SCHEMA main.sales CASCADE")
    assert rows(s, "SHOW SCHEMAS IN main") == []


def test_queries_and_time_travel(sales: Cairn) -> None:
    s = sales
    joined = rows(s, """
        SELECT u.name, r.manager, sum(o.amount) AS total
        FROM orders o JOIN users u ON o.user_id = u.user_id JOIN regions r ON o.region = r.region
        GROUP BY u.name, r.manager ORDER BY u.name""")
    assert joined == [("ann", "mia", 6.0), ("bo", "lea", 7.5)]
    before = datetime.now(UTC)
    time.sleep(0.05)
    s.sql("INSERT INTO orders VALUES (4, 11, 2.0, 'EU')")
    assert rows(s, "SELECT count(*) FROM orders") == [(4,)]
    assert rows(s, "SELECT count(*) FROM orders VERSION AS OF 1") == [(3,)]
    assert rows(s, "SELECT count(*) FROM main.sales.orders@v1") == [(3,)]
    assert rows(s, f"SELECT count(*) FROM orders TIMESTAMP AS OF '{before.isoformat()}'") == [(3,)]
    assert rows(s, "WITH big AS (SELECT * FROM orders WHERE amount > 4) SELECT id FROM big ORDER BY id") == [(1,), (2,)]


def test_writes_commit_through_the_table_service_and_record_lineage(sales: Cairn) -> None:
    s = sales
    s.sql("CREATE TABLE totals AS SELECT user_id, sum(amount) AS total FROM orders GROUP BY user_id")
    assert sorted(rows(s, "SELECT * FROM totals")) == [(10, 6.0), (11, 7.5)]
    s.sql("INSERT OVERWRITE TABLE totals SELECT user_id, max(amount) FROM orders GROUP BY user_id")
    assert sorted(rows(s, "SELECT * FROM totals")) == [(10, 5.0), (11, 7.5)]
    s.sql("INSERT INTO totals (total, user_id) SELECT 1.5, 12")
    assert sorted(rows(s, "SELECT * FROM totals")) == [(10, 5.0), (11, 7.5), (12, 1.5)]
    assert rows(s, "UPDATE totals SET total = total * 2 WHERE user_id = 12") == [(1,)]
    assert rows(s, "DELETE FROM totals WHERE total > 7") == [(1,)]
    merged = rows(s, """MERGE INTO totals t USING (SELECT 10 AS user_id, 0.0 AS total UNION ALL SELECT 13, 4.0) s
                        ON t.user_id = s.user_id WHEN MATCHED THEN UPDATE SET total = s.total + t.total WHEN NOT MATCHED THEN INSERT *""")
    assert merged == [(2, 1, 0, 1)]
    assert sorted(rows(s, "SELECT * FROM totals")) == [(10, 5.0), (12, 3.0), (13, 4.0)]
    assert [h["operation"] for h in s.data.history("main.sales.totals")][:2] == ["MERGE", "DELETE"]
    up = s.lineage.get_upstream("main.sales.totals")
    assert [n.name for n in up.nodes] == ["main.sales.orders"]
    cols = s.lineage.get_upstream("main.sales.totals.total", level="COLUMN")
    assert "main.sales.orders.amount" in [n.name for n in cols.nodes]
    with pytest.raises(InvalidArgument, match="gives 1 column"):
        s.sql("INSERT INTO totals SELECT 1")


def test_every_table_is_checked_before_anything_runs(sales: Cairn, metastore: Metastore) -> None:
    sales.sql("GRANT USE CATALOG ON CATALOG main TO bob")
    sales.sql("GRANT USE SCHEMA ON SCHEMA main.sales TO bob")
    sales.sql("GRANT SELECT ON TABLE main.sales.orders TO bob")
    sales.sql("GRANT SELECT ON TABLE main.sales.users TO bob")
    bob = metastore.as_principal("bob")
    assert rows(bob, "SELECT count(*) FROM main.sales.orders") == [(3,)]
    with pytest.raises(NotFound, match="regions"):
        bob.sql("SELECT * FROM main.sales.orders o JOIN main.sales.users u ON o.user_id = u.user_id "
                "JOIN main.sales.regions r ON o.region = r.region")
    with pytest.raises(PermissionDenied, match="lacks MODIFY"):
        bob.sql("INSERT INTO main.sales.orders SELECT 9, 9, 9.0, 'US'")
    assert rows(sales, "SELECT count(*) FROM orders") == [(3,)]
    denied = [(e.action, e.result) for e in sales.audit.list_events(principal="bob", result="DENIED", max_results=50)]
    assert ("read_tables", AuditResult.DENIED) in denied and ("write_table", AuditResult.DENIED) in denied
    statements = [e for e in sales.audit.list_events(principal="bob", action="execute_sql", max_results=50)]
    assert [e.result for e in statements] == [AuditResult.ALLOWED, AuditResult.DENIED, AuditResult.DENIED]
    assert statements[0].parameters["statement"] == "SELECT count(*) FROM main.sales.orders"


def test_row_filters_and_masks_in_sql_and_through_views(sales: Cairn, metastore: Metastore) -> None:
    s = sales
    s.sql("CREATE FUNCTION main.sales.us_only(region STRING) RETURNS BOOLEAN RETURN is_account_group_member('analysts') OR region = 'US'")
    s.sql("CREATE FUNCTION main.sales.hide_email(email STRING) RETURNS STRING RETURN CASE WHEN is_member('analysts') THEN email ELSE 'redacted' END")
    s.sql("ALTER TABLE orders SET ROW FILTER main.sales.us_only ON (region)")
    s.sql("ALTER TABLE users ALTER COLUMN email SET MASK main.sales.hide_email")
    s.sql("CREATE VIEW us_orders AS SELECT o.id, u.email FROM orders o JOIN users u ON o.user_id = u.user_id")
    for who in ("ana", "bob"):
        s.sql(f"GRANT USE CATALOG ON CATALOG main TO {who}")
        s.sql(f"GRANT USE SCHEMA, SELECT ON SCHEMA main.sales TO {who}")
    ana, bob = metastore.as_principal("ana"), metastore.as_principal("bob")
    assert rows(ana, "SELECT id FROM main.sales.orders ORDER BY id") == [(1,), (2,), (3,)]
    assert rows(bob, "SELECT id FROM main.sales.orders ORDER BY id") == [(1,), (3,)]
    assert rows(bob, "SELECT email FROM main.sales.users ORDER BY user_id") == [("redacted",), ("redacted",)]
    assert rows(ana, "SELECT email FROM main.sales.users ORDER BY user_id") == [("ann@x.com",), ("bo@x.com",)]
    # A view reads with its owner's rights (admin), but the base tables' filters and masks are the
    # reader's, as in Databricks: ana (in analysts) sees every row and the emails, bob neither.
    assert rows(ana, "SELECT id, email FROM main.sales.us_orders ORDER BY id") == [(1, "ann@x.com"), (2, "bo@x.com"), (3, "ann@x.com")]
    assert rows(bob, "SELECT id, email FROM main.sales.us_orders ORDER BY id") == [(1, "redacted"), (3, "redacted")]
    # The Python read path applies the same policy.
    assert [r["id"] for r in bob.data.read("main.sales.orders").to_pylist()] == [1, 3]


def test_system_tables_show_only_what_the_caller_may_see(sales: Cairn, metastore: Metastore) -> None:
    sales.sql("CREATE TABLE sums AS SELECT user_id, sum(amount) AS s FROM orders GROUP BY user_id")
    sales.sql("GRANT USE CATALOG ON CATALOG main TO bob")
    sales.sql("GRANT USE SCHEMA ON SCHEMA main.sales TO bob")
    sales.sql("GRANT SELECT ON TABLE main.sales.sums TO bob")
    bob = metastore.as_principal("bob")
    assert rows(bob, "SELECT table_name FROM system.information_schema.tables ORDER BY table_name") == [("sums",)]
    assert rows(sales, "SELECT count(*) FROM system.information_schema.tables") == [(4,)]
    assert rows(bob, "SELECT column_name FROM system.information_schema.columns ORDER BY ordinal_position") == [("user_id",), ("s",)]
    assert rows(bob, "SELECT DISTINCT principal FROM system.access.audit") == [("bob",)]
    assert rows(sales, "SELECT source, target FROM system.access.table_lineage") == [("main.sales.orders", "main.sales.sums")]
    assert rows(bob, "SELECT count(*) FROM system.access.table_lineage") == [(0,)]  # bob cannot see orders
    assert rows(sales, "SELECT grantee, privilege_type FROM system.information_schema.table_privileges") == [("bob", "SELECT")]
    with pytest.raises(NotFound, match="system table 'system.access.nope'"):
        sales.sql("SELECT * FROM system.access.nope")


def test_errors_are_clear_and_scripts_stop_at_the_first_failure(sales: Cairn) -> None:
    with pytest.raises(InvalidArgument, match="line 1, column"):
        sales.sql("SELEC * FROM orders")
    with pytest.raises(NotFound, match=r"^\[TABLE_OR_VIEW_NOT_FOUND\] The table or view `main`.`sales`.`ghost` cannot be found"):
        sales.sql("SELECT * FROM ghost")  # in Databricks' words
    with pytest.raises(InvalidArgument, match=r"statement 2 \(line 3\) failed"):
        sales.sql("INSERT INTO orders VALUES (7, 1, 1.0, 'US');\n\nSELECT * FROM;\nINSERT INTO orders VALUES (8, 1, 1.0, 'US')")
    assert rows(sales, "SELECT max(id) FROM orders") == [(7,)]
    with pytest.raises(InvalidArgument, match="expected TO at line 1, column 26"):
        sales.sql("GRANT SELECT ON TABLE TO bob")
    with pytest.raises(InvalidArgument, match="USE CATALOG / USE SCHEMA"):
        metastore_client = sales.metastore.as_principal("admin")
        metastore_client.sql("SELECT * FROM orders")
    with pytest.raises(InvalidArgument, match="no current catalog|not fully qualified"):
        sales.metastore.as_principal("admin").sql("CREATE SCHEMA lonely")


def test_maintenance_and_group_statements(sales: Cairn) -> None:
    s = sales
    s.sql("INSERT INTO orders VALUES (4, 12, 2.0, 'US')")
    assert [r[3] for r in rows(s, "DESCRIBE HISTORY orders")][:2] == ["WRITE", "WRITE"]
    assert "numFilesRemoved" in rows(s, "OPTIMIZE orders ZORDER BY (user_id)")[0][1]
    with pytest.raises(FailedPrecondition, match="168-hour minimum"):
        s.sql("VACUUM orders RETAIN 1 HOURS")
    assert isinstance(rows(s, "VACUUM orders RETAIN 168 HOURS DRY RUN"), list)
    s.sql("RESTORE TABLE orders TO VERSION AS OF 1")
    assert rows(s, "SELECT count(*) FROM orders") == [(3,)]
    assert rows(s, "ALTER GROUP analysts ADD USER bob") == [("ana",), ("bob",)]
    assert rows(s, "ALTER GROUP analysts REMOVE USER ana") == [("bob",)]
    s.sql("CREATE FUNCTION main.sales.none_(region STRING) RETURNS BOOLEAN RETURN false")
    s.sql("ALTER TABLE orders SET ROW FILTER main.sales.none_ ON (region)")
    assert rows(s, "SELECT count(*) FROM orders") == [(0,)]
    s.sql("ALTER TABLE orders DROP ROW FILTER")
    assert rows(s, "SELECT count(*) FROM orders") == [(3,)]


def test_reading_a_view_needs_select_on_it(sales: Cairn, metastore: Metastore) -> None:
    sales.sql("CREATE VIEW big AS SELECT id, amount FROM orders WHERE amount > 2")
    sales.sql("GRANT BROWSE ON CATALOG main TO bob")
    bob = metastore.as_principal("bob")
    assert bob.tables.get_table("main.sales.big").table_type.value == "VIEW"  # BROWSE shows metadata ...
    with pytest.raises(PermissionDenied):
        bob.sql("SELECT * FROM main.sales.big")  # ... but not data
    sales.sql("GRANT USE CATALOG ON CATALOG main TO bob")
    sales.sql("GRANT USE SCHEMA ON SCHEMA main.sales TO bob")
    sales.sql("GRANT SELECT ON TABLE main.sales.big TO bob")
    assert sorted(rows(bob, "SELECT id FROM main.sales.big")) == [(1,), (2,)]  # definer's rights for orders


def test_a_repeated_query_is_checked_and_audited_every_time(sales: Cairn, metastore: Metastore) -> None:
    """The parsed query is reused; the checks, the snapshot and the audit rows are not."""
    sales.sql("GRANT USE CATALOG ON CATALOG main TO bob; GRANT USE SCHEMA ON SCHEMA main.sales TO bob; GRANT SELECT ON TABLE main.sales.orders TO bob")
    bob = metastore.as_principal("bob", request_id="q1")
    bob.sql("USE CATALOG main; USE SCHEMA sales")
    q = "SELECT count(*) AS n, sum(amount) AS total FROM orders"
    assert bob.sql(q).rows == [(3, 13.5)]
    sales.sql("INSERT INTO main.sales.orders VALUES (4, 11, 2.5, 'EU')")
    assert bob.sql(q).rows == [(4, 16.0)]  # the same text sees the new snapshot
    sales.sql("REVOKE SELECT ON TABLE main.sales.orders FROM bob")
    with pytest.raises(NotFound):  # no privilege left on it: bob may not even see it
        bob.sql(q)
    events = [e for e in sales.audit.list_events(principal="bob", max_results=1000) if e.request_id == "q1"]
    reads = [(e.action, e.result, e.parameters.get("delta_version")) for e in events if e.action == "read_table"]
    assert reads == [("read_table", AuditResult.ALLOWED, 1), ("read_table", AuditResult.ALLOWED, 2)]
    statements = [(e.action, e.result) for e in events if e.action in ("execute_sql", "read_tables")]
    assert statements[-6:] == [("read_tables", AuditResult.ALLOWED), ("execute_sql", AuditResult.ALLOWED),
                               ("read_tables", AuditResult.ALLOWED), ("execute_sql", AuditResult.ALLOWED),
                               ("read_tables", AuditResult.DENIED), ("execute_sql", AuditResult.DENIED)]


def test_listings_are_never_cut_at_a_page(admin: Cairn) -> None:
    for i in range(1001):
        admin.catalogs.create_catalog(f"c{i:04d}")
    shown = admin.sql("SHOW CATALOGS").rows
    assert len(shown) == 1001 and shown[-1] == ("c1000",)
    assert admin.sql("SELECT count(*) FROM system.information_schema.catalogs").rows == [(1001,)]
