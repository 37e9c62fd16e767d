"""Databricks habits in the SQL shim: what users coming from Databricks type, and the answers they expect."""

from __future__ import annotations

import json

import pytest

from catalog.client import Cairn, Metastore
from catalog.errors import InvalidArgument, NotFound


@pytest.fixture
def lake(admin: Cairn) -> Cairn:
    admin.principals.create_user("carol")
    admin.principals.create_user("dan")
    admin.principals.create_group("eng")
    admin.principals.add_member("eng", "carol")
    admin.sql("CREATE CATALOG main COMMENT 'prod'; CREATE SCHEMA main.s COMMENT 'sales'; "
              "CREATE TABLE main.s.t AS SELECT 1 AS id, 'a' AS name")
    return admin


def test_show_grants_on_a_table_lists_inherited_grants_with_their_object(lake: Cairn) -> None:
    lake.sql("GRANT USE CATALOG ON CATALOG main TO eng; GRANT USE SCHEMA, SELECT ON SCHEMA main.s TO eng; "
             "GRANT CREATE TABLE ON SCHEMA main.s TO eng; GRANT MODIFY ON TABLE main.s.t TO carol")
    assert lake.sql("SHOW GRANTS ON TABLE main.s.t").rows == [
        ("carol", "MODIFY", "TABLE", "main.s.t"),
        ("eng", "SELECT", "SCHEMA", "main.s"), ("eng", "USE SCHEMA", "SCHEMA", "main.s"),  # CREATE TABLE says nothing about a table
        ("eng", "USE CATALOG", "CATALOG", "main"),
    ]
    assert lake.sql("SHOW GRANTS `eng` ON TABLE main.s.t").rows == [
        ("eng", "SELECT", "SCHEMA", "main.s"), ("eng", "USE SCHEMA", "SCHEMA", "main.s"), ("eng", "USE CATALOG", "CATALOG", "main")]


def test_account_users_holds_every_user(lake: Cairn, metastore: Metastore) -> None:
    dan = metastore.as_principal("dan")
    with pytest.raises(NotFound):
        dan.sql("SELECT * FROM main.s.t")
    lake.sql("GRANT USE CATALOG, USE SCHEMA, SELECT ON CATALOG main TO `account users`")
    assert dan.sql("SELECT id FROM main.s.t").rows == [(1,)]
    assert "account users" in lake.principals.list_groups_of("dan")
    assert lake.principals.list_members("account users") == ["admin", "carol", "dan"]
    with pytest.raises(InvalidArgument, match="built in"):
        lake.principals.add_member("account users", "eng")
    with pytest.raises(InvalidArgument, match="built in"):
        lake.principals.delete_principal("account users")
    lake.sql("REVOKE USE CATALOG, USE SCHEMA, SELECT ON CATALOG main FROM `account users`")
    with pytest.raises(NotFound):
        dan.sql("SELECT * FROM main.s.t")


def test_describe_catalog_and_schema(lake: Cairn) -> None:
    res = lake.sql("DESCRIBE CATALOG main")
    assert res.columns == ["info_name", "info_value"]
    assert res.rows == [("Catalog Name", "main"), ("Comment", "prod"), ("Owner", "admin")]
    assert lake.sql("DESCRIBE SCHEMA main.s").rows == [("Catalog Name", "main"), ("Namespace Name", "s"), ("Comment", "sales"), ("Owner", "admin")]
    extended = dict(lake.sql("DESCRIBE SCHEMA EXTENDED main.s").rows)
    assert extended["Created By"] == "admin" and "T" in extended["Created Time"]


def test_set_and_unset_tag_on(lake: Cairn) -> None:
    lake.sql("SET TAG ON TABLE main.s.t tier = gold")
    lake.sql("SET TAG ON COLUMN main.s.t.name pii")
    lake.sql("SET TAG ON SCHEMA main.s 'domain' = 'sales'")
    assert {(t.column, t.key, t.value) for t in lake.tags.list_tags("table", "main.s.t")} == {(None, "tier", "gold"), ("name", "pii", "")}
    assert [(t.key, t.value) for t in lake.tags.list_tags("schema", "main.s")] == [("domain", "sales")]
    lake.sql("UNSET TAG ON COLUMN main.s.t.name pii; UNSET TAG ON TABLE main.s.t tier")
    assert lake.tags.list_tags("table", "main.s.t") == []


def test_show_groups_and_users(lake: Cairn) -> None:
    assert lake.sql("SHOW USERS").rows == [("admin",), ("carol",), ("dan",)]
    assert lake.sql("SHOW USERS LIKE 'c*'").rows == [("carol",)]
    groups = lake.sql("SHOW GROUPS")
    assert groups.columns == ["name", "directGroup"] and groups.rows == [("account users", True), ("eng", True)]
    assert lake.sql("SHOW GROUPS WITH USER dan").rows == [("account users", True)]


def test_describe_history_has_user_names_and_iso_times(lake: Cairn, metastore: Metastore) -> None:
    lake.sql("GRANT USE CATALOG, USE SCHEMA, SELECT, MODIFY ON CATALOG main TO carol")
    metastore.as_principal("carol").sql("INSERT INTO main.s.t VALUES (2, 'b')")
    res = lake.sql("DESCRIBE HISTORY main.s.t")
    assert res.columns[:5] == ["version", "timestamp", "userName", "operation", "operationParameters"]
    assert [(r[0], r[2], r[3]) for r in res.rows] == [(1, "carol", "WRITE"), (0, "admin", "WRITE")]
    assert all(r[1].endswith("+00:00") and "T" in r[1] for r in res.rows)
    assert json.loads(res.rows[0][4]) == {"mode": "Append"}


def test_system_audit_has_databricks_columns(lake: Cairn, metastore: Metastore) -> None:
    with pytest.raises(NotFound):
        metastore.as_principal("dan").tables.get_table("main.s.t")
    rows = lake.sql("SELECT action_name, user_identity.email, response.status_code, service_name, event_date, request_params "
                    "FROM system.access.audit WHERE user_identity.email = 'dan'").rows
    assert len(rows) == 1
    action, email, status, service, day, params = rows[0]
    assert (action, email, status, service) == ("get_table", "dan", 403, "unityCatalog")
    assert str(day)[:4].isdigit() and dict(params)["full_name_arg"] == "main.s.t"
    # Cairn's own columns are still there beside them.
    assert lake.sql("SELECT principal, action, result FROM system.access.audit WHERE principal = 'dan'").rows == [("dan", "get_table", "DENIED")]


def test_a_table_you_may_not_see_answers_in_databricks_words(lake: Cairn, metastore: Metastore) -> None:
    expected = "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`s`.`t` cannot be found"
    with pytest.raises(NotFound) as hidden:
        metastore.as_principal("dan").sql("SELECT * FROM main.s.t")
    with pytest.raises(NotFound) as missing:
        lake.sql("SELECT * FROM main.s.nope")
    assert str(hidden.value).startswith(expected)
    assert str(missing.value).startswith(expected.replace("`t`", "`nope`"))  # the same words: nothing leaks
