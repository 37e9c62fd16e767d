"""Attacks on the catalog-wide table listing: hostile principal names, forged page tokens, grants
that must not open a hidden schema, and what a denial leaves in the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from catalog.client import Cairn, Metastore
from catalog.entities import AuditResult
from catalog.errors import InvalidArgument, NotFound
from catalog.service.common import encode_token
from catalog.store import tables as t

HOSTILE = "x') OR 1=1 OR ('"  # a legal principal name that would open every table if spliced into SQL


@pytest.fixture
def world(admin: Cairn) -> Cairn:
    for u in (HOSTILE, "%s", "eve"):
        admin.principals.create_user(u)
    admin.catalogs.create_catalog("main")
    for s in ("open", "shut"):
        admin.schemas.create_schema(f"main.{s}")
        for i in range(3):
            admin.tables.create_table(f"main.{s}.t{i}", [{"name": "x", "type": "int"}], table_type="VIEW",
                                      view_definition="SELECT 1 AS x")
    for u in (HOSTILE, "%s", "eve"):
        admin.grants.grant("catalog", "main", u, "USE CATALOG")
        admin.grants.grant("schema", "main.open", u, "USE SCHEMA")
    admin.grants.grant("table", "main.open.t1", "eve", "SELECT")
    admin.grants.grant("table", "main.shut.t2", "eve", "SELECT")  # no USE SCHEMA on shut: stays hidden
    return admin


def _audit(ms: Metastore, principal: str) -> list[tuple[str, str | None, str | None]]:
    with ms.engine.connect() as conn:
        q = select(t.audit_events.c.result, t.audit_events.c.securable_name, t.audit_events.c.error_code).where(
            t.audit_events.c.principal == principal, t.audit_events.c.action == "list_tables").order_by(t.audit_events.c.id)
        return [(r[0], r[1], r[2]) for r in conn.execute(q)]


@pytest.mark.parametrize("who", [HOSTILE, "%s"])
def test_hostile_principal_names_are_bound_not_spliced(world: Cairn, metastore: Metastore, who: str) -> None:
    me = metastore.as_principal(who)
    assert list(me.tables.list_tables("main")) == []
    assert list(me.tables.list_tables("main", "open")) == []
    assert _audit(metastore, who) == [(AuditResult.ALLOWED.value, "main", None), (AuditResult.ALLOWED.value, "main.open", None)]


def test_a_table_grant_does_not_open_a_hidden_schema_nor_does_a_forged_token(world: Cairn, metastore: Metastore) -> None:
    eve = metastore.as_principal("eve")
    assert [x.full_name for x in eve.tables.list_tables("main")] == ["main.open.t1"]
    for token in (encode_token("shut\x00"), encode_token("shut\x00t1"), encode_token("open\x00t1"), encode_token("a\x00' OR 1=1 --")):
        page = eve.tables.list_tables("main", page_token=token, max_results=1)
        assert all(x.full_name == "main.open.t1" for x in page) and "main.shut.t2" not in [x.full_name for x in page]
    with pytest.raises(NotFound, match="schema 'main.shut' does not exist"):
        eve.tables.list_tables("main", "shut")
    with pytest.raises(InvalidArgument, match="page_token"):
        eve.tables.list_tables("main", page_token="not base64 !")
    rows = _audit(metastore, "eve")
    assert rows[-2] == (AuditResult.DENIED.value, "main.shut", "PERMISSION_DENIED")
    assert rows[-1] == (AuditResult.FAILED.value, "main", "INVALID_ARGUMENT")
