"""Class 4: the change feed and the Delta history show a reader no more than a query would."""

from __future__ import annotations

import pytest

from catalog.client import Cairn, Metastore


@pytest.fixture
def feed(redteam: Cairn, admin: Cairn) -> Cairn:
    admin.sql("ALTER TABLE main.s.people DROP ROW FILTER")
    admin.sql("ALTER TABLE main.s.people ALTER COLUMN ssn DROP MASK")
    admin.tables.delete_table("main.s.people")
    admin.tables.create_table("main.s.people", data=[{"name": "ann", "ssn": "111-11-1111", "region": "US"}], enable_change_data_feed=True)
    admin.sql("GRANT SELECT ON TABLE main.s.people TO bob")
    admin.data.write("main.s.people", [{"name": "bo", "ssn": "987-65-4321", "region": "EU"}])
    admin.sql("UPDATE main.s.people SET region = 'US' WHERE ssn = '987-65-4321'")
    admin.sql("ALTER TABLE main.s.people SET ROW FILTER main.s.us_only ON (region)")
    admin.sql("ALTER TABLE main.s.people ALTER COLUMN ssn SET MASK main.s.hide_ssn")
    return redteam


def test_change_feed_rows_are_filtered_and_masked(feed: Cairn, admin: Cairn, metastore: Metastore) -> None:
    changes = feed.data.read_changes("main.s.people", 0).to_pylist()
    assert {r["ssn"] for r in changes} == {"***-**-****"}
    # bo's insert was in EU: filtered out; the update's pre-image (EU) too, its post-image (US) shown.
    assert sorted((r["name"], r["region"], r["_change_type"]) for r in changes) == [
        ("ann", "US", "insert"), ("bo", "US", "update_postimage")]
    admin.principals.add_member("hr", "bob")
    assert {r["ssn"] for r in feed.data.read_changes("main.s.people", 0).to_pylist()} == {"111-11-1111", "987-65-4321"}


def test_history_redacts_literals_for_non_owners(feed: Cairn, admin: Cairn) -> None:
    mine = [h.get("operationParameters", {}) for h in admin.data.history("main.s.people")]
    theirs = [h.get("operationParameters", {}) for h in feed.data.history("main.s.people")]
    assert any("987-65-4321" in str(p) for p in mine)  # the owner sees what was written
    assert not any("987-65-4321" in str(p) for p in theirs)
    assert any("ssn = ?" in str(p) for p in theirs)
    rows = feed.sql("DESCRIBE HISTORY main.s.people").rows
    assert rows and not any("987-65-4321" in str(r) for r in rows)
