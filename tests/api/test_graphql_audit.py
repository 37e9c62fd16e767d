"""GraphQL `auditEvents`: newest first, like `cairn audit log`, with a time window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.graphql import execute
from catalog.client import Cairn


def test_audit_events_are_newest_first_and_page_backwards_in_time(admin: Cairn) -> None:
    for name in ("a", "b", "c"):
        admin.catalogs.create_catalog(name)
    query = """query($after: String) { auditEvents(first: 2, action: "create_catalog", after: $after) {
               edges { node { id securableName } } pageInfo { hasNextPage endCursor } } }"""
    first = execute(admin, query)["data"]["auditEvents"]
    assert [e["node"]["securableName"] for e in first["edges"]] == ["c", "b"] and first["pageInfo"]["hasNextPage"] is True
    second = execute(admin, query, {"after": first["pageInfo"]["endCursor"]})["data"]["auditEvents"]
    assert [e["node"]["securableName"] for e in second["edges"]] == ["a"] and second["pageInfo"]["hasNextPage"] is False
    ids = [e["node"]["id"] for e in first["edges"] + second["edges"]]
    assert ids == sorted(ids, reverse=True)
    # The Python API keeps its order (oldest first) unless asked: a cursor of one order is refused by the other.
    assert [e.securable_name for e in admin.audit.list_events(action="create_catalog")] == ["a", "b", "c"]


def test_audit_events_take_since_and_until(admin: Cairn) -> None:
    admin.catalogs.create_catalog("a")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    q = '{ auditEvents(action: "create_catalog", since: "%s", until: "%s") { edges { node { securableName } } } }'
    assert execute(admin, q % (earlier, later))["data"]["auditEvents"]["edges"] == [{"node": {"securableName": "a"}}]
    assert execute(admin, q % (later, later))["data"]["auditEvents"]["edges"] == []
    assert admin.audit.count_events(action="create_catalog") == 1
