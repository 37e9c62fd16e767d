"""The catalog's root query fields, resolved through the governed services (mixed into the root
Query in api/graphql/schema.py)."""

from __future__ import annotations

import functools
from typing import Any

import graphene

from api.graphql.paging import MAX_FIRST, connection, ctx, edges, forward, page
from api.graphql.types import (
    AuditEventConnection,
    Catalog,
    CatalogConnection,
    ExternalLocation,
    ExternalLocationConnection,
    Function,
    Lineage,
    LineageEdge,
    LineageNode,
    PrincipalConnection,
    RegisteredModel,
    Schema,
    StorageCredential,
    StorageCredentialConnection,
    Table,
    TableConnection,
)


class CatalogQuery(graphene.ObjectType):
    """The catalog's root fields: the namespace, search, lineage, audit events, principals, storage."""

    catalogs = connection(CatalogConnection)
    catalog = graphene.Field(Catalog, name=graphene.String(required=True))
    schema = graphene.Field(Schema, name=graphene.String(required=True))
    table = graphene.Field(Table, name=graphene.String(required=True))
    model = graphene.Field(RegisteredModel, name=graphene.String(required=True))
    function = graphene.Field(Function, name=graphene.String(required=True))
    search = connection(TableConnection, text=graphene.String(required=True), catalog=graphene.String(required=True))
    lineage = graphene.Field(Lineage, name=graphene.String(required=True), upstream=graphene.Boolean(default_value=False),
                             depth=graphene.Int(default_value=5), level=graphene.String(default_value="TABLE"), as_of=graphene.DateTime(),
                             kinds=graphene.List(graphene.NonNull(graphene.String)))
    audit_events = connection(AuditEventConnection, principal=graphene.String(), action=graphene.String(),
                                         securable=graphene.String(), result=graphene.String(), since=graphene.DateTime(),
                                         until=graphene.DateTime(), description="Audit events, newest first.")
    lineage_edges = graphene.List(graphene.NonNull(LineageEdge), level=graphene.String(default_value="TABLE"), required=True)
    principals = connection(PrincipalConnection)
    external_locations = connection(ExternalLocationConnection)
    external_location = graphene.Field(ExternalLocation, name=graphene.String(required=True))
    storage_credentials = connection(StorageCredentialConnection)
    storage_credential = graphene.Field(StorageCredential, name=graphene.String(required=True))

    def resolve_external_locations(self, info: Any, **kw: Any) -> Any:
        return page(ExternalLocationConnection, info, kw, ctx(info)[0].external_locations.list_external_locations)

    def resolve_external_location(self, info: Any, name: str) -> Any:
        return ctx(info)[0].external_locations.get_external_location(name)

    def resolve_storage_credentials(self, info: Any, **kw: Any) -> Any:
        return page(StorageCredentialConnection, info, kw, ctx(info)[0].storage_credentials.list_storage_credentials)

    def resolve_storage_credential(self, info: Any, name: str) -> Any:
        return ctx(info)[0].storage_credentials.get_storage_credential(name)

    def resolve_lineage_edges(self, info: Any, level: str) -> list[LineageEdge]:
        rows = ctx(info)[0].lineage.list_edges(level)
        keep = ("source", "target", "source_kind", "target_kind", "run_id", "transformation_type", "transformation_subtype")
        return [LineageEdge(**{k: r[k] for k in keep}) for r in rows]

    def resolve_principals(self, info: Any, **kw: Any) -> Any:
        return page(PrincipalConnection, info, kw, ctx(info)[0].principals.list_principals, None, prime=False)

    def resolve_catalogs(self, info: Any, **kw: Any) -> Any:
        return page(CatalogConnection, info, kw, ctx(info)[0].catalogs.list_catalogs)

    def resolve_catalog(self, info: Any, name: str) -> Any:
        return ctx(info)[0].catalogs.get_catalog(name)

    def resolve_schema(self, info: Any, name: str) -> Any:
        return ctx(info)[0].schemas.get_schema(name)

    def resolve_table(self, info: Any, name: str) -> Any:
        return ctx(info)[0].tables.get_table(name)

    def resolve_model(self, info: Any, name: str) -> Any:
        return ctx(info)[0].models.get_registered_model(name)

    def resolve_function(self, info: Any, name: str) -> Any:
        return ctx(info)[0].functions.get_function(name)

    def resolve_search(self, info: Any, text: str, catalog: str, **kw: Any) -> Any:
        """Tables of a catalog whose name, comment, columns or tags mention `text`, in name order.
        The catalog's tables are read page by page until the page of hits is full."""
        first, after = forward(kw)
        cairn, loaders = ctx(info)
        needle = text.lower()

        def hit(t: Any) -> bool:
            words = [t.full_name, t.comment or ""] + [c.name for c in t.columns] + [f"{g.key}={g.value}" for g in loaders.tags_of(t)]
            return any(needle in w.lower() for w in words)

        hits: list[tuple[Any, str]] = []
        token = after
        while len(hits) <= first:
            tables = cairn.tables.list_tables(catalog, page_token=token, max_results=MAX_FIRST)
            loaders.prime(list(tables))
            hits += [(t, tables.cursor(i)) for i, t in enumerate(tables) if hit(t)]
            token = tables.next_page_token
            if not token:
                break
        return edges(TableConnection, hits, first, after)

    def resolve_lineage(self, info: Any, name: str, upstream: bool, depth: int, level: str, as_of: Any = None, kinds: Any = None) -> Any:
        svc = ctx(info)[0].lineage
        walk = svc.get_upstream if upstream else svc.get_downstream
        res = walk(name, level=level, depth=depth, as_of=as_of, node_kinds=kinds)
        node = lambda n: LineageNode(id=n.id, kind=n.kind, namespace=n.namespace, name=n.name, restricted=n.restricted, depth=n.depth, path=list(n.path))  # noqa: E731
        return Lineage(root=node(res.root), nodes=[node(n) for n in res.nodes], truncated=res.truncated)

    def resolve_audit_events(self, info: Any, principal: str | None = None, action: str | None = None, securable: str | None = None,
                             result: str | None = None, since: Any = None, until: Any = None, **kw: Any) -> Any:
        newest_first = functools.partial(ctx(info)[0].audit.list_events, newest_first=True)
        return page(AuditEventConnection, info, kw, newest_first, principal, action, securable, since, until, result, prime=False)
