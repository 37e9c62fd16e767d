"""Class 3: views are checked on every path when created, and read with the reader's policies."""

from __future__ import annotations

import httpx
import pytest

from api.server import make_app
from catalog.client import Cairn, Metastore
from catalog.errors import AlreadyExists, NotFound, PermissionDenied
from tests.security.conftest import denied_rows


@pytest.fixture
def bob_creates(redteam: Cairn, admin: Cairn) -> Cairn:
    admin.sql("GRANT CREATE TABLE ON SCHEMA main.s TO bob")
    return redteam


DEFINITIONS = [
    "SELECT * FROM main.s.secret",
    "SELECT * FROM secret",  # unqualified: the view's own schema
    "SELECT p.name FROM main.s.people p JOIN main.s.secret s ON true",
    "WITH x AS (SELECT * FROM main.s.secret) SELECT * FROM x",
    "SELECT (SELECT max(x) FROM main.s.secret) AS leak",
]


def _views(admin: Cairn) -> list[str]:
    return [t.name for t in admin.tables.list_tables("main", "s") if t.table_type.value == "VIEW"]


@pytest.mark.parametrize("definition", DEFINITIONS)
def test_python_view_over_an_unreadable_table_is_refused(bob_creates: Cairn, admin: Cairn, definition: str) -> None:
    before = len(denied_rows(admin, "bob"))
    with pytest.raises((PermissionDenied, NotFound)):
        bob_creates.tables.create_table("main.s.leak", table_type="VIEW", view_definition=definition)
    assert "leak" not in _views(admin)
    rows = denied_rows(admin, "bob")
    assert len(rows) == before + 1 and rows[-1].action == "create_table" and rows[-1].securable_name == "main.s.leak"


def test_sql_view_over_an_unreadable_table_is_refused(bob_creates: Cairn, admin: Cairn) -> None:
    with pytest.raises((PermissionDenied, NotFound)):
        bob_creates.sql("CREATE VIEW main.s.leak AS SELECT * FROM main.s.secret")
    assert "leak" not in _views(admin)


def test_view_over_files_is_refused(bob_creates: Cairn, admin: Cairn) -> None:
    loc = admin.tables.get_table("main.s.secret").storage_location.removeprefix("file://")
    for definition in (f"SELECT * FROM read_parquet('{loc}/*.parquet')", f"SELECT * FROM parquet.`{loc}`"):
        with pytest.raises(PermissionDenied):
            bob_creates.tables.create_table("main.s.leak", table_type="VIEW", view_definition=definition)
    assert "leak" not in _views(admin)


@pytest.mark.slow
def test_rest_view_over_an_unreadable_table_is_refused(bob_creates: Cairn, admin: Cairn, metastore: Metastore, live) -> None:  # type: ignore[no-untyped-def]
    token = admin.tokens.create_token("bob", "1d")[0]
    body = {"catalog_name": "main", "schema_name": "s", "name": "leak", "table_type": "VIEW", "columns": [],
            "view_definition": "SELECT * FROM main.s.secret"}
    with live(make_app(metastore)) as url:
        r = httpx.post(f"{url}/api/2.1/unity-catalog/tables", json=body, headers={"Authorization": f"Bearer {token}"})
        ok = httpx.post(f"{url}/api/2.1/unity-catalog/tables", json={**body, "name": "mine", "view_definition": "SELECT name FROM main.s.people"},
                        headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (403, 404) and r.json()["error_code"] in ("PERMISSION_DENIED", "NOT_FOUND")
    assert ok.status_code == 200 and ok.json()["view_definition"] == "SELECT name FROM main.s.people"
    assert _views(admin) == ["mine"]


def test_view_applies_the_readers_filters_and_masks(redteam: Cairn, admin: Cairn, metastore: Metastore) -> None:
    admin.sql("CREATE VIEW main.s.everyone AS SELECT name, ssn FROM main.s.people")  # owned by admin
    admin.sql("GRANT SELECT ON TABLE main.s.everyone TO bob")
    # Admin is not in hr: the owner's own read is filtered and masked too.
    assert admin.sql("SELECT * FROM main.s.everyone ORDER BY name").rows == [("ann", "***-**-****")]
    assert redteam.sql("SELECT * FROM main.s.everyone ORDER BY name").rows == [("ann", "***-**-****")]
    admin.principals.create_user("hana")
    admin.principals.add_member("hr", "hana")
    admin.sql("GRANT USE CATALOG ON CATALOG main TO hana; GRANT USE SCHEMA ON SCHEMA main.s TO hana; GRANT SELECT ON TABLE main.s.everyone TO hana")
    hana = metastore.as_principal("hana")
    # hana reads the view (not the table, on which she holds nothing) and sees what hr may see.
    assert hana.sql("SELECT * FROM main.s.everyone ORDER BY name").rows == [("ann", "111-11-1111"), ("bo", "987-65-4321")]
    with pytest.raises((PermissionDenied, NotFound)):
        hana.sql("SELECT * FROM main.s.people")


def test_dynamic_view_sees_the_reader(redteam: Cairn, admin: Cairn, metastore: Metastore) -> None:
    admin.sql("CREATE VIEW main.s.mine AS SELECT name, current_user() AS reader, is_account_group_member('hr') AS hr FROM main.s.secret, main.s.people")
    admin.sql("GRANT SELECT ON TABLE main.s.mine TO bob")
    assert redteam.sql("SELECT DISTINCT reader, hr FROM main.s.mine").rows == [("bob", False)]
    assert admin.sql("SELECT DISTINCT reader FROM main.s.mine").rows == [("admin",)]


def test_view_whose_owner_lost_access_is_refused_without_naming_its_tables(redteam: Cairn, admin: Cairn, metastore: Metastore) -> None:
    admin.principals.create_user("olga")
    admin.sql("GRANT USE CATALOG ON CATALOG main TO olga; GRANT USE SCHEMA, CREATE TABLE ON SCHEMA main.s TO olga;"
              "GRANT SELECT ON TABLE main.s.secret TO olga")
    olga = metastore.as_principal("olga")
    olga.sql("CREATE VIEW main.s.olgas AS SELECT x FROM main.s.secret")
    olga.sql("GRANT SELECT ON TABLE main.s.olgas TO bob")
    assert redteam.sql("SELECT * FROM main.s.olgas").rows == [("top secret",)]
    admin.sql("REVOKE SELECT ON TABLE main.s.secret FROM olga")
    with pytest.raises(PermissionDenied) as err:
        redteam.sql("SELECT * FROM main.s.olgas")
    assert "olga" in str(err.value) and "secret" not in str(err.value)


def test_nested_views_check_each_owner(redteam: Cairn, admin: Cairn) -> None:
    admin.sql("CREATE VIEW main.s.inner_v AS SELECT name, ssn FROM main.s.people; CREATE VIEW main.s.outer_v AS SELECT * FROM main.s.inner_v")
    admin.sql("GRANT SELECT ON TABLE main.s.outer_v TO bob")
    assert redteam.sql("SELECT * FROM main.s.outer_v").rows == [("ann", "***-**-****")]
    with pytest.raises((PermissionDenied, NotFound)):
        redteam.sql("SELECT * FROM main.s.inner_v")


def test_create_or_replace_does_not_swallow_a_refused_drop(bob_creates: Cairn, admin: Cairn) -> None:
    admin.sql("CREATE VIEW main.s.admins_view AS SELECT name FROM main.s.people")
    # Invisible to bob, the view is "not there" to drop, and so already there to create.
    with pytest.raises(AlreadyExists):
        bob_creates.sql("CREATE OR REPLACE VIEW main.s.admins_view AS SELECT name FROM main.s.people")
    admin.sql("GRANT SELECT ON TABLE main.s.admins_view TO bob")  # visible now, but not bob's to drop
    with pytest.raises(PermissionDenied):
        bob_creates.sql("CREATE OR REPLACE VIEW main.s.admins_view AS SELECT name FROM main.s.people")
    assert admin.tables.get_table("main.s.admins_view").owner == "admin"
