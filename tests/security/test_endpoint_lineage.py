"""A serving endpoint in the lineage graph is governed like the securable it is: a principal with no
privilege on it sees a nameless placeholder, never its name."""

from __future__ import annotations

from catalog.client import Cairn, Metastore


def test_an_endpoint_node_is_a_placeholder_for_whom_cannot_see_it(metastore: Metastore, admin: Cairn) -> None:
    admin.principals.create_user("ana")
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.s")
    for t in ("main.s.features", "main.s.predictions"):
        admin.tables.create_table(t, [{"name": "x", "type": "int"}])
    admin.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    admin.lineage.record(["main.s.features"], ["endpoint:secret-ep"], [])
    admin.lineage.record(["endpoint:secret-ep"], ["main.s.predictions"], [])

    seen_by_admin = [(n.kind, n.name) for n in admin.lineage.get_downstream("main.s.features", depth=3).nodes]
    seen_by_ana = [(n.kind, n.name) for n in metastore.as_principal("ana").lineage.get_downstream("main.s.features", depth=3).nodes]
    assert ("ENDPOINT", "secret-ep") in seen_by_admin
    assert ("ENDPOINT", None) in seen_by_ana and all(n != "secret-ep" for _k, n in seen_by_ana)
    assert ("TABLE", "main.s.predictions") in seen_by_ana  # the path stays connected through the placeholder
