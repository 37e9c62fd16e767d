"""DML that reads rows (UPDATE, DELETE, MERGE, replace_where) cannot see past a row filter or mask."""

from __future__ import annotations

import pytest

from catalog.client import Cairn
from catalog.errors import FailedPrecondition


@pytest.fixture
def writer(redteam: Cairn, admin: Cairn) -> Cairn:
    admin.sql("GRANT MODIFY ON TABLE main.s.people TO bob")
    admin.principals.add_member("hr", "admin")  # so that admin's reads see every row and value
    return redteam


@pytest.mark.parametrize("attack", [
    "UPDATE main.s.people SET name = ssn",  # copies the masked value into a column bob can read
    "DELETE FROM main.s.people WHERE ssn = '987-65-4321'",  # the count answers whether a hidden row exists
    "MERGE INTO main.s.people t USING (SELECT 'bo' AS name) s ON t.name = s.name WHEN MATCHED THEN DELETE",
])
def test_dml_on_a_policy_table_is_refused_for_non_owners(writer: Cairn, admin: Cairn, attack: str) -> None:
    before = admin.data.read("main.s.people").to_pylist()
    with pytest.raises(FailedPrecondition, match="row filter or column masks"):
        writer.sql(attack)
    assert admin.data.read("main.s.people").to_pylist() == before


def test_python_dml_and_replace_where_are_refused_too(writer: Cairn, admin: Cairn) -> None:
    with pytest.raises(FailedPrecondition):
        writer.data.update("main.s.people", {"name": "ssn"})
    with pytest.raises(FailedPrecondition):
        writer.data.delete("main.s.people", "ssn = '987-65-4321'")
    with pytest.raises(FailedPrecondition):
        writer.data.write("main.s.people", [{"name": "x", "ssn": "0", "region": "US"}], mode="overwrite", replace_where="ssn = '987-65-4321'")
    # Appending reads nothing: allowed. The owner may run any DML.
    writer.data.write("main.s.people", [{"name": "cy", "ssn": "222-22-2222", "region": "US"}])
    admin.sql("DELETE FROM main.s.people WHERE name = 'cy'")
    assert sorted(r["name"] for r in admin.data.read("main.s.people").to_pylist()) == ["ann", "bo"]
