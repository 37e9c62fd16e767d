"""The `cairn sql` shell completes only names the caller may see: one governed listing of the
current catalog's tables (not a walk of its schemas), so a hidden schema's tables never show."""

from __future__ import annotations

from types import SimpleNamespace

from api.sql_shell import _names
from catalog.client import Cairn, Metastore


def test_completion_offers_only_visible_names(metastore: Metastore, admin: Cairn) -> None:
    admin.principals.create_user("ana")
    admin.catalogs.create_catalog("main")
    for schema in ("main.s", "main.hid"):
        admin.schemas.create_schema(schema)
    admin.tables.create_table("main.s.t", [{"name": "x", "type": "int"}])
    admin.tables.create_table("main.hid.secret", [{"name": "x", "type": "int"}])
    admin.grants.grant("catalog", "main", "ana", ["USE CATALOG"])
    admin.grants.grant("schema", "main.s", "ana", ["USE SCHEMA", "SELECT"])

    def names(client: Cairn) -> list[str]:
        return sorted(_names(SimpleNamespace(services=client, current_catalog="main", current_schema="s")))

    assert names(metastore.as_principal("ana")) == ["main", "main.s", "main.s.t", "t"]
    assert names(admin) == ["main", "main.hid", "main.hid.secret", "main.s", "main.s.t", "t"]
