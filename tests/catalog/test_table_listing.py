"""Listing the tables a principal may see across a catalog: one query, exact visibility, exact pages."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from catalog.client import Cairn, Metastore
from catalog.entities import AuditResult
from catalog.errors import NotFound
from catalog.store import tables as t
from catalog.store.metastore import now


def _bulk_tables(ms: Metastore, schema_id: int, schema: str, count: int) -> list[int]:
    """`count` tables under one schema, written in one statement (what is tested is listing)."""
    ts = now()
    rows = [dict(kind="TABLE", parent_id=schema_id, name=f"t{i:04d}", full_name=f"{schema}.t{i:04d}", owner="admin", comment=None,
                 properties={}, spec={"table_type": "EXTERNAL"}, created_at=ts, created_by="admin", updated_at=ts, updated_by="admin")
            for i in range(count)]
    with ms.engine.begin() as conn:
        conn.execute(insert(t.securables), rows)
        return list(conn.execute(select(t.securables.c.id).where(t.securables.c.parent_id == schema_id).order_by(t.securables.c.name)).scalars())


def _grant_rows(ms: Metastore, ids: list[int], principal: str) -> None:
    with ms.engine.begin() as conn:
        conn.execute(insert(t.grants), [dict(securable_id=i, principal=principal, privilege="SELECT", granted_by="admin", granted_at=now())
                                        for i in ids])


@pytest.fixture
def big(admin: Cairn, metastore: Metastore) -> dict[str, list[str]]:
    """Catalog `big`: s0 with 1,200 tables (bob may read every third), s1 with 300 (group ds, bob
    among them, may read the whole schema), s2 with 50 bob may read but whose schema he cannot use."""
    admin.principals.create_user("bob")
    admin.principals.create_user("carol")
    admin.principals.create_group("ds")
    admin.principals.add_member("ds", "bob")
    admin.catalogs.create_catalog("big")
    ids = {}
    for name, count in (("s0", 1200), ("s1", 300), ("s2", 50)):
        schema = admin.schemas.create_schema(f"big.{name}")
        ids[name] = _bulk_tables(metastore, schema.id, f"big.{name}", count)
    _grant_rows(metastore, ids["s0"][::3], "bob")
    _grant_rows(metastore, ids["s2"], "bob")
    admin.grants.grant("catalog", "big", "bob", "USE CATALOG")
    admin.grants.grant("schema", "big.s0", "bob", "USE SCHEMA")
    admin.grants.grant("schema", "big.s1", "ds", "USE SCHEMA")
    admin.grants.grant("schema", "big.s1", "ds", "SELECT")
    return {
        "s0": [f"big.s0.t{i:04d}" for i in range(0, 1200, 3)],
        "s1": [f"big.s1.t{i:04d}" for i in range(300)],
        "all": [f"big.s{s}.t{i:04d}" for s, n in ((0, 1200), (1, 300), (2, 50)) for i in range(n)],
    }


def _pages(list_page, *args, size: int) -> tuple[list[str], int]:  # type: ignore[no-untyped-def]
    out, token, calls = [], None, 0
    while True:
        page = list_page(*args, page_token=token, max_results=size)
        calls += 1
        out += [x.full_name for x in page]
        token = page.next_page_token
        if token is None:
            return out, calls


def _audit_rows(ms: Metastore, principal: str, action: str) -> list[tuple[str, str | None]]:
    with ms.engine.connect() as conn:
        q = select(t.audit_events.c.result, t.audit_events.c.securable_name).where(
            t.audit_events.c.principal == principal, t.audit_events.c.action == action).order_by(t.audit_events.c.id)
        return [(r[0], r[1]) for r in conn.execute(q)]


def test_catalog_listing_is_exactly_what_the_schemas_show_over_many_pages(big: dict[str, list[str]], metastore: Metastore) -> None:
    bob = metastore.as_principal("bob")
    expected = big["s0"] + big["s1"]  # s2's tables stay hidden behind a schema bob cannot use
    across, calls = _pages(bob.tables.list_tables, "big", size=170)
    assert across == expected and calls == -(-len(expected) // 170)
    (s0, c0), (s1, c1) = _pages(bob.tables.list_tables, "big", "s0", size=170), _pages(bob.tables.list_tables, "big", "s1", size=170)
    assert s0 + s1 == expected
    assert _pages(bob.tables.list_tables, "big", "s0", size=1000) == (big["s0"], 1)  # 400 of 1,200, one page
    # Every call wrote exactly one ALLOWED row naming its scope.
    allowed = AuditResult.ALLOWED.value
    rows = _audit_rows(metastore, "bob", "list_tables")
    assert rows == [(allowed, "big")] * calls + [(allowed, "big.s0")] * c0 + [(allowed, "big.s1")] * c1 + [(allowed, "big.s0")]


def test_catalog_listing_for_an_admin_and_for_a_stranger(big: dict[str, list[str]], metastore: Metastore) -> None:
    assert _pages(metastore.as_principal("admin").tables.list_tables, "big", size=1000)[0] == big["all"]
    carol = metastore.as_principal("carol")
    with pytest.raises(NotFound, match="catalog 'big' does not exist"):
        carol.tables.list_tables("big")
    assert _audit_rows(metastore, "carol", "list_tables") == [(AuditResult.DENIED.value, "big")]


def test_catalog_listing_follows_a_revoke_and_a_forged_token_finds_nothing_hidden(big: dict[str, list[str]], admin: Cairn,
                                                                                  metastore: Metastore) -> None:
    bob = metastore.as_principal("bob")
    assert len(_pages(bob.tables.list_tables, "big", size=1000)[0]) == 700
    admin.grants.revoke("schema", "big.s1", "ds", "SELECT")
    assert _pages(bob.tables.list_tables, "big", size=1000)[0] == big["s0"]
    admin.grants.transfer_ownership("table", "big.s0.t0001", "bob")  # an owner needs no grant to see it
    admin.grants.transfer_ownership("table", "big.s2.t0001", "bob")  # but a schema he cannot see still hides it
    assert _pages(bob.tables.list_tables, "big", size=1000)[0] == sorted([*big["s0"], "big.s0.t0001"])
    # A token pointing into the hidden schema continues in name order and still shows nothing of it.
    from catalog.service.common import encode_token

    page = bob.tables.list_tables("big", page_token=encode_token("s2\x00"), max_results=10)
    assert list(page) == [] and page.next_page_token is None
