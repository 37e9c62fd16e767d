"""Credential vending (`generate_temporary_credentials`, REST /temporary-table-credentials) and the
storage securables' own rules: who may create, see, change and drop locations and credentials.

An engine handed a table's files applies no row filter and no column mask, so tables with either are
refused; vending needs EXTERNAL USE SCHEMA on the schema besides SELECT (and MODIFY to write), as in
Unity Catalog, and ALL PRIVILEGES does not include it. Every refusal is audited as DENIED.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from api.server import make_app
from catalog.client import Cairn, Metastore
from catalog.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

UC = "/api/2.1/unity-catalog"


@pytest.fixture
def hr(metastore: Metastore, admin: Cairn) -> Cairn:
    """main.hr.people (masked and filtered once the test sets them) and main.hr.plain; ana reads both."""
    admin.sql("CREATE CATALOG main; CREATE SCHEMA main.hr")
    admin.tables.create_table("main.hr.people", data=[{"id": 1, "region": "US", "ssn": "111"}, {"id": 2, "region": "EU", "ssn": "222"}])
    admin.tables.create_table("main.hr.plain", data=[{"id": 1}])
    admin.functions.create_function("main.hr.us_only", "region = 'US'", "boolean", [{"name": "region", "type": "string"}])
    admin.functions.create_function("main.hr.mask", "'***'", "string", [{"name": "ssn", "type": "string"}])
    admin.principals.create_user("ana")
    admin.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA", "SELECT", "MODIFY", "EXTERNAL USE SCHEMA"])
    return admin


def denied(admin: Cairn, who: str = "ana") -> list[tuple[str, str | None, str]]:
    events = admin.audit.list_events(principal=who, action="generate_temporary_table_credentials", max_results=1000)
    return [(e.result.value, e.error_code, e.source) for e in events]


def test_plain_tables_are_vended_with_select_and_external_use_schema(hr: Cairn, metastore: Metastore) -> None:
    ana = metastore.as_principal("ana")
    cred = ana.tables.generate_temporary_credentials("main.hr.plain", "READ_WRITE")
    assert (cred.url, cred.operation) == (hr.tables.get_table("main.hr.plain").storage_location, "READ_WRITE")
    assert denied(hr) == [("ALLOWED", None, "python")]


@pytest.mark.parametrize("policy", ["row filter", "column mask", "both"])
def test_filtered_or_masked_tables_are_not_vended(hr: Cairn, metastore: Metastore, policy: str) -> None:
    if policy in ("row filter", "both"):
        hr.tables.set_row_filter("main.hr.people", "main.hr.us_only", ["region"])
    if policy in ("column mask", "both"):
        hr.tables.set_column_mask("main.hr.people", "ssn", "main.hr.mask")
    ana = metastore.as_principal("ana")
    for op in ("READ", "READ_WRITE"):
        with pytest.raises(FailedPrecondition) as refused:
            ana.tables.generate_temporary_credentials("main.hr.people", op)
        message = str(refused.value)
        assert ("row filter main.hr.us_only" in message) == (policy != "column mask")
        assert ("column mask on ssn" in message) == (policy != "row filter")
        assert hr.tables.get_table("main.hr.people").storage_location not in message  # the files' URL is not handed out
    assert denied(hr) == [("DENIED", "FAILED_PRECONDITION", "python")] * 2
    # The admin is refused too: no one can take the files around the policies.
    with pytest.raises(FailedPrecondition):
        hr.tables.generate_temporary_credentials("main.hr.people")


def test_external_use_schema_is_needed_and_not_part_of_all_privileges(hr: Cairn, metastore: Metastore) -> None:
    hr.principals.create_user("bo")
    hr.grants.grant("catalog", "main", "bo", "ALL PRIVILEGES")
    bo = metastore.as_principal("bo")
    assert bo.data.read("main.hr.plain").num_rows == 1  # ALL PRIVILEGES reads through Cairn
    with pytest.raises(PermissionDenied, match="bo lacks EXTERNAL USE SCHEMA on schema 'main.hr'"):
        bo.tables.generate_temporary_credentials("main.hr.plain")
    assert denied(hr, "bo") == [("DENIED", "PERMISSION_DENIED", "python")]
    hr.grants.grant("schema", "main.hr", "bo", "EXTERNAL USE SCHEMA")
    assert bo.tables.generate_temporary_credentials("main.hr.plain").operation == "READ"
    # SELECT is still needed alongside it; MODIFY to write.
    hr.principals.create_user("cy")
    hr.grants.grant("catalog", "main", "cy", ["USE CATALOG", "USE SCHEMA", "EXTERNAL USE SCHEMA"])
    cy = metastore.as_principal("cy")
    with pytest.raises((PermissionDenied, NotFound)):
        cy.tables.generate_temporary_credentials("main.hr.plain")
    hr.grants.grant("table", "main.hr.plain", "cy", "SELECT")
    with pytest.raises(PermissionDenied, match="lacks MODIFY"):
        cy.tables.generate_temporary_credentials("main.hr.plain", "READ_WRITE")
    assert [r[0] for r in denied(hr, "cy")] == ["DENIED", "DENIED"]


def test_read_write_is_refused_in_a_read_only_location(hr: Cairn, metastore: Metastore, tmp_path_factory: pytest.TempPathFactory) -> None:
    lake = tmp_path_factory.mktemp("lake")
    hr.external_locations.create_external_location("lake", str(lake))
    hr.tables.create_table("main.hr.ext", [{"name": "id", "type": "int"}], table_type="EXTERNAL", storage_location=str(lake / "ext"))
    hr.external_locations.update_external_location("lake", read_only=True)
    ana = metastore.as_principal("ana")
    assert ana.tables.generate_temporary_credentials("main.hr.ext", "READ").url == str(lake / "ext")
    with pytest.raises(FailedPrecondition, match="read-only external location 'lake'"):
        ana.tables.generate_temporary_credentials("main.hr.ext", "READ_WRITE")
    assert denied(hr)[-1] == ("DENIED", "FAILED_PRECONDITION", "python")


@pytest.mark.slow
def test_rest_vending_refuses_masked_tables_and_missing_external_use(hr: Cairn, metastore: Metastore, live: Any) -> None:
    hr.tables.set_column_mask("main.hr.people", "ssn", "main.hr.mask")
    hr.principals.create_user("bo")
    hr.grants.grant("catalog", "main", "bo", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    tokens = {who: hr.tokens.create_token(who)[0] for who in ("ana", "bo")}
    plain_id = str(hr.tables.get_table("main.hr.plain").id)
    with live(make_app(metastore)) as url:
        def vend(who: str, table: str) -> httpx.Response:
            return httpx.post(f"{url}{UC}/temporary-table-credentials", json={"table_id": table, "operation": "READ"},
                              headers={"Authorization": f"Bearer {tokens[who]}"})

        masked = vend("ana", "main.hr.people")
        assert (masked.status_code, masked.json()["error_code"]) == (412, "FAILED_PRECONDITION")
        assert "column mask on ssn" in masked.json()["message"] and "url" not in masked.json()
        no_use = vend("bo", plain_id)
        assert (no_use.status_code, no_use.json()["error_code"]) == (403, "PERMISSION_DENIED")
        ok = vend("ana", plain_id)
        assert ok.status_code == 200 and ok.json()["url"] == hr.tables.get_table("main.hr.plain").storage_location
    assert denied(hr) == [("DENIED", "FAILED_PRECONDITION", "rest"), ("ALLOWED", None, "rest")]
    assert denied(hr, "bo") == [("DENIED", "PERMISSION_DENIED", "rest")]


# the storage securables themselves -------------------------------------------------------------
@pytest.fixture
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {k: tmp_path_factory.mktemp(k) for k in ("one", "two")}


def test_locations_are_deny_by_default_listed_by_visibility_and_hidden_when_invisible(
        admin: Cairn, metastore: Metastore, dirs: dict[str, Path]) -> None:
    admin.principals.create_user("bob")
    admin.principals.create_user("eve")
    admin.storage_credentials.create_storage_credential("cred", comment="server identity")
    admin.external_locations.create_external_location("one", str(dirs["one"]), "cred")
    admin.external_locations.create_external_location("two", f"file://{dirs['two']}/", comment="second")
    admin.grants.grant("external_location", "one", "bob", "READ FILES")
    bob, eve = metastore.as_principal("bob"), metastore.as_principal("eve")
    assert [x.full_name for x in bob.external_locations.list_external_locations()] == ["one"]
    assert list(eve.external_locations.list_external_locations()) == [] and list(eve.storage_credentials.list_storage_credentials()) == []
    assert bob.external_locations.get_external_location("one").storage_location == str(dirs["one"])
    with pytest.raises(NotFound, match="external location 'two' does not exist"):
        bob.external_locations.get_external_location("two")
    with pytest.raises(NotFound):
        eve.storage_credentials.get_storage_credential("cred")
    for attempt in (lambda: eve.storage_credentials.create_storage_credential("mine"),
                    lambda: eve.external_locations.create_external_location("mine", "s3://bucket/mine"),
                    lambda: bob.external_locations.update_external_location("one", comment="x"),
                    lambda: bob.external_locations.delete_external_location("one"),
                    lambda: bob.grants.grant("external_location", "one", "bob", "CREATE EXTERNAL TABLE")):
        with pytest.raises(PermissionDenied):
            attempt()
    assert [x.full_name for x in admin.external_locations.list_external_locations()] == ["one", "two"]
    assert admin.external_locations.get_external_location("one").comment is None
    events = admin.audit.list_events(result="DENIED", max_results=1000)
    assert [(e.principal, e.action) for e in events] == [
        ("bob", "get_external_location"), ("eve", "get_storage_credential"), ("eve", "create_storage_credential"),
        ("eve", "create_external_location"), ("bob", "update_external_location"), ("bob", "delete_external_location"), ("bob", "grant")]


def test_locations_may_not_overlap_each_other_managed_storage_or_a_table(admin: Cairn, metastore: Metastore, dirs: dict[str, Path]) -> None:
    admin.external_locations.create_external_location("one", str(dirs["one"]))
    admin.sql("CREATE CATALOG main; CREATE SCHEMA main.s")
    admin.tables.create_table("main.s.t", [{"name": "a", "type": "int"}], table_type="EXTERNAL", storage_location=str(dirs["one"] / "t"))
    for url, why in ((str(dirs["one"]), "overlaps another external location"), (str(dirs["one"] / "sub"), "overlaps another"),
                     (str(dirs["one"].parent), "overlaps the metastore's managed storage" if metastore.settings.home.is_relative_to(dirs["one"].parent) else "overlaps another"),
                     (str(metastore.settings.warehouse / "x"), "managed storage"), (str(metastore.settings.home), "managed storage"),
                     ("/", "managed storage")):
        with pytest.raises(PermissionDenied, match=why):
            admin.external_locations.create_external_location("bad", url)
    with pytest.raises(InvalidArgument, match="'lake/x' is relative"):
        admin.external_locations.create_external_location("bad", "lake/x")
    with pytest.raises(InvalidArgument, match="scheme 'http'"):
        admin.external_locations.create_external_location("bad", "http://example.com/x")
    with pytest.raises(AlreadyExists):
        admin.external_locations.create_external_location("ONE", str(dirs["two"]))
    # Moving a location onto another's ground is refused; moving it off its tables needs force.
    admin.external_locations.create_external_location("two", str(dirs["two"]))
    with pytest.raises(PermissionDenied):
        admin.external_locations.update_external_location("two", url=str(dirs["one"] / "x"))
    with pytest.raises(FailedPrecondition, match="holds 1 table"):
        admin.external_locations.update_external_location("one", url="s3://bucket/one")
    with pytest.raises(FailedPrecondition, match="holds 1 external table"):
        admin.external_locations.delete_external_location("one")
    assert [x.storage_location for x in admin.external_locations.list_external_locations()] == [str(dirs["one"]), str(dirs["two"])]
    assert [x.full_name for x in admin.external_locations.list_external_locations()] == ["one", "two"]
    admin.external_locations.delete_external_location("one", force=True)
    assert admin.data.read("main.s.t").num_rows == 0  # the table stays
    with pytest.raises(PermissionDenied, match="not inside an external location"):  # but its folder takes no new table
        admin.tables.create_table("main.s.u", [{"name": "a", "type": "int"}], table_type="EXTERNAL", storage_location=str(dirs["one"] / "u"))


def test_a_location_names_a_credential_granted_on_the_credential_itself(admin: Cairn, metastore: Metastore, dirs: dict[str, Path]) -> None:
    admin.principals.create_user("bob")
    admin.storage_credentials.create_storage_credential("cred")
    admin.grants.grant("metastore", None, "bob", "CREATE EXTERNAL LOCATION")
    bob = metastore.as_principal("bob")
    with pytest.raises(PermissionDenied, match="lacks CREATE EXTERNAL LOCATION on storage credential 'cred'"):
        bob.external_locations.create_external_location("one", str(dirs["one"]), "cred")
    assert list(admin.external_locations.list_external_locations()) == []
    admin.grants.grant("storage_credential", "cred", "bob", "CREATE EXTERNAL LOCATION")
    loc = bob.external_locations.create_external_location("one", str(dirs["one"]), "cred")
    assert (loc.owner, loc.credential_name) == ("bob", "cred")
    # The credential's rename follows into the location; dropping a used credential needs force.
    admin.storage_credentials.update_storage_credential("cred", new_name="server")
    assert bob.external_locations.get_external_location("one").credential_name == "server"
    with pytest.raises(FailedPrecondition, match="used by external location"):
        admin.storage_credentials.delete_storage_credential("server")
    admin.storage_credentials.delete_storage_credential("server", force=True)
    assert bob.external_locations.get_external_location("one").credential_name is None


def test_sql_statements_for_locations_and_credentials(admin: Cairn, metastore: Metastore, dirs: dict[str, Path]) -> None:
    admin.principals.create_user("bob")
    admin.sql("CREATE CATALOG main; CREATE SCHEMA main.s; GRANT USE CATALOG ON CATALOG main TO bob; "
              "GRANT USE SCHEMA, CREATE TABLE ON SCHEMA main.s TO bob")
    admin.sql("CREATE STORAGE CREDENTIAL local COMMENT 'server identity'")
    admin.sql(f"CREATE EXTERNAL LOCATION lake URL 'file://{dirs['one']}' WITH (STORAGE CREDENTIAL local) COMMENT 'raw'")
    assert admin.sql(f"CREATE EXTERNAL LOCATION IF NOT EXISTS lake URL '{dirs['one']}'").message == "external location lake already exists"
    assert admin.sql("SHOW EXTERNAL LOCATIONS").rows == [("lake", str(dirs["one"]), "local", False, "admin", "raw")]
    assert admin.sql("SHOW STORAGE CREDENTIALS").rows == [("local", False, "admin", "server identity")]
    assert dict(admin.sql("DESCRIBE EXTERNAL LOCATION lake").rows)["url"] == str(dirs["one"])
    admin.sql("GRANT CREATE EXTERNAL TABLE ON EXTERNAL LOCATION lake TO bob")
    assert admin.sql("SHOW GRANTS ON EXTERNAL LOCATION lake").rows == [("bob", "CREATE EXTERNAL TABLE", "EXTERNAL_LOCATION", "lake")]
    bob = metastore.as_principal("bob")
    assert bob.sql("SHOW EXTERNAL LOCATIONS").rows[0][0] == "lake" and bob.sql("SHOW STORAGE CREDENTIALS").rows == []
    bob.sql(f"CREATE TABLE main.s.e (a INT) LOCATION '{dirs['one']}/e'")
    bob.sql("INSERT INTO main.s.e VALUES (3)")
    assert bob.sql("SELECT a FROM main.s.e").rows == [(3,)]
    with pytest.raises(PermissionDenied):
        bob.sql("DROP EXTERNAL LOCATION lake")
    admin.sql("REVOKE CREATE EXTERNAL TABLE ON EXTERNAL LOCATION lake FROM bob")
    with pytest.raises(PermissionDenied, match="lacks CREATE EXTERNAL TABLE"):
        bob.sql(f"CREATE TABLE main.s.f (a INT) LOCATION '{dirs['one']}/f'")
    admin.sql(f"ALTER EXTERNAL LOCATION lake SET URL '{dirs['two']}' FORCE")
    assert dict(admin.sql("DESCRIBE EXTERNAL LOCATION lake").rows)["url"] == str(dirs["two"])
    admin.sql("ALTER EXTERNAL LOCATION lake OWNER TO bob")
    assert bob.sql("DROP EXTERNAL LOCATION lake").message == "dropped external location lake"
    assert admin.sql("DROP EXTERNAL LOCATION IF EXISTS lake").message == "external location lake does not exist"
    assert admin.sql("DROP STORAGE CREDENTIAL local").message == "dropped storage credential local"
    assert admin.sql("SHOW STORAGE CREDENTIALS").rows == []


def test_a_view_carries_no_storage_location_and_is_never_vended(hr: Cairn, metastore: Metastore) -> None:
    """A view given another table's folder as its storage_location would be vended that folder."""
    secret = hr.tables.get_table("main.hr.people").storage_location
    hr.grants.grant("schema", "main.hr", "ana", "CREATE TABLE")
    ana = metastore.as_principal("ana")
    with pytest.raises(InvalidArgument, match="a VIEW has no storage_location"):
        ana.tables.create_table("main.hr.v", [], table_type="VIEW", view_definition="SELECT 1 AS x", storage_location=secret)
    with pytest.raises(NotFound):
        hr.tables.get_table("main.hr.v")
    ana.tables.create_table("main.hr.v", [], table_type="VIEW", view_definition="SELECT 1 AS x")
    with pytest.raises(FailedPrecondition, match="is a VIEW without storage"):
        ana.tables.generate_temporary_credentials("main.hr.v")
    assert denied(hr)[-1] == ("DENIED", "FAILED_PRECONDITION", "python")


def test_owning_a_location_does_not_allow_moving_it(admin: Cairn, metastore: Metastore, dirs: dict[str, Path]) -> None:
    admin.principals.create_user("bob")
    admin.external_locations.create_external_location("one", str(dirs["one"]))
    admin.grants.transfer_ownership("external_location", "one", "bob")
    bob = metastore.as_principal("bob")
    assert bob.external_locations.update_external_location("one", comment="mine").comment == "mine"
    with pytest.raises(PermissionDenied, match="lacks CREATE EXTERNAL LOCATION on metastore"):
        bob.external_locations.update_external_location("one", url="/etc")
    assert admin.external_locations.get_external_location("one").storage_location == str(dirs["one"])
    admin.grants.grant("metastore", None, "bob", "CREATE EXTERNAL LOCATION")
    assert bob.external_locations.update_external_location("one", url=str(dirs["two"])).storage_location == str(dirs["two"])
