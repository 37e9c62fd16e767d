"""The GraphQL API (graphene): a transport over the governed services.

Per-request loaders batch tags and grants: a list resolver primes them for every object it returns,
so a query for 100 tables with their tags, owners and grants costs a handful of SQL queries. Lists
are Relay connections. Errors carry `extensions.code` (the service's stable code) and never a
traceback. A query is bounded before it is parsed (tokens, aliases, nesting: the parser and the
validator cost grows with them, and validation compares aliased fields pairwise) and before it runs
(depth of fields, objects its connections could return): see api/graphql_limits.py.
"""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any

import graphene
import graphql as gql
from graphene import relay
from graphql import GraphQLError

from api.graphql_features import FeatureQuery
from api.graphql_limits import DEFAULT_FIRST, MAX_DEPTH, MAX_NODES, MAX_TOKENS, bounds, depth_of, nodes_of
from api.graphql_ui import UiQuery
from catalog.client import Cairn
from catalog.errors import CairnError
from catalog.privileges import Kind
from catalog.service.common import encode_token

CACHED_QUERY = 16 * 1024  # longer query texts are not kept in the parse cache
MAX_FIRST = 1000


class Loaders:
    """Request-scoped batch caches of tags and grants, keyed by securable id.

    A list resolver registers the objects it returns (`prime`); the first time a field asks for the
    tags (or grants) of one of them, they are loaded for all of them in one call, and only that field's.
    """

    def __init__(self, cairn: Cairn) -> None:
        self.cairn = cairn
        self.known: dict[int, Any] = {}
        self.tags: dict[int, list[Any]] = {}
        self.grants: dict[int, list[Any]] = {}

    def prime(self, securables: list[Any]) -> None:
        for s in securables:
            self.known.setdefault(s.id, s)

    def tags_of(self, s: Any) -> list[Any]:
        return self._load(s, self.tags, self.cairn.tags.list_tags_many)

    def grants_of(self, s: Any) -> list[Any]:
        return self._load(s, self.grants, self.cairn.grants.list_grants_many)

    def _load(self, s: Any, cache: dict[int, list[Any]], load: Any) -> list[Any]:
        if s.id not in cache:
            self.prime([s])
            missing = [x for i, x in self.known.items() if i not in cache]
            loaded = load(missing)
            for x in missing:
                cache[x.id] = loaded.get(x.id, [])
        return cache[s.id]


def ctx(info: Any) -> tuple[Cairn, Loaders]:
    return info.context["cairn"], info.context["loaders"]


def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a service, turning Cairn errors into GraphQL errors with a stable code."""
    try:
        return fn(*args, **kwargs)
    except CairnError as exc:
        raise GraphQLError(str(exc), extensions={"code": exc.code}) from None


def listed(fn: Any, *args: Any, first: int, after: str | None = None) -> list[Any]:
    """Up to `first` items of a paged service listing, from page token `after`."""
    out, token = [], after
    while len(out) < first:
        page = run(fn, *args, page_token=token, max_results=min(1000, first - len(out)))
        out += list(page)
        token = page.next_page_token
        if not token:
            break
    return out


def connection_of(node: Any) -> Any:
    """The Relay connection type over `node` (`TableConnection` over `Table`)."""
    return relay.Connection.create_type(f"{node.__name__}Connection", node=node)


def connection(node: Any, **args: Any) -> relay.ConnectionField:
    """A Relay connection; `first` defaults to DEFAULT_FIRST, as the REST API's page size does."""
    return relay.ConnectionField(node, first=graphene.Int(default_value=DEFAULT_FIRST), **args)


def forward(kw: dict[str, Any]) -> tuple[int, str | None]:
    """A connection's `first` and `after`, checked (connections page forward only)."""
    if kw.get("last") is not None or kw.get("before"):
        raise GraphQLError("connections page forward only: use first and after", extensions={"code": "INVALID_ARGUMENT"})
    first = kw.get("first")
    if first is None or first < 0 or first > MAX_FIRST:
        raise GraphQLError(f"first must be between 0 and {MAX_FIRST}, got {first}", extensions={"code": "INVALID_ARGUMENT"})
    return first, kw.get("after") or None


def page(connection: Any, info: Any, kw: dict[str, Any], fn: Any, *args: Any, key: Any = lambda x: x.name, prime: bool = True) -> Any:
    """One page of a connection, read through the service's own paging.

    An item's cursor is the service's page token for what follows it (keyset, not an offset): the
    page after a cursor costs one page of reads however deep it is, and stays in place when items
    are added or removed before it. `first + 1` items are read to know `hasNextPage`.
    """
    first, after = forward(kw)
    items = listed(fn, *args, first=first + 1, after=after)
    if prime:  # securables: their tags and grants load in batches
        ctx(info)[1].prime(items[:first])
    return edges(connection, [(x, encode_token(key(x))) for x in items], first, after)


def edges(connection: Any, items: list[tuple[Any, str]], first: int, after: str | None) -> Any:
    """`connection` over the first `first` of (node, cursor) pairs; one more means a next page."""
    out = [connection.Edge(node=x, cursor=cursor) for x, cursor in items[:first]]
    return connection(edges=out, page_info=relay.PageInfo(
        start_cursor=out[0].cursor if out else None, end_cursor=out[-1].cursor if out else None,
        has_previous_page=after is not None, has_next_page=len(items) > first))


class Tag(graphene.ObjectType):
    key = graphene.String(required=True)
    value = graphene.String(required=True)
    column = graphene.String()


class Grant(graphene.ObjectType):
    principal = graphene.String(required=True)
    privilege = graphene.String(required=True)

    def resolve_privilege(self, info: Any) -> str:
        return self.privilege.value  # type: ignore[attr-defined]


class Reason(graphene.ObjectType):
    kind = graphene.String(required=True)
    description = graphene.String(required=True)
    granted_on = graphene.String()
    grantee = graphene.String()
    via_groups = graphene.List(graphene.NonNull(graphene.String))

    def resolve_description(self, info: Any) -> str:
        return self.describe()  # type: ignore[attr-defined]


class EffectivePrivilege(graphene.ObjectType):
    privilege = graphene.String(required=True)
    reasons = graphene.List(graphene.NonNull(Reason), required=True)

    def resolve_privilege(self, info: Any) -> str:
        return self.privilege.value  # type: ignore[attr-defined]


class Securable(graphene.Interface):
    full_name = graphene.String(required=True)
    name = graphene.String(required=True)
    owner = graphene.String(required=True)
    comment = graphene.String()
    created_at = graphene.DateTime()
    created_by = graphene.String()
    tags = graphene.List(graphene.NonNull(Tag), required=True)
    grants = graphene.List(graphene.NonNull(Grant), required=True)
    effective_privileges = graphene.List(graphene.NonNull(EffectivePrivilege), principal=graphene.String(), required=True)

    def resolve_tags(self, info: Any) -> list[Any]:
        return ctx(info)[1].tags_of(self)

    def resolve_grants(self, info: Any) -> list[Any]:
        return ctx(info)[1].grants_of(self)

    def resolve_effective_privileges(self, info: Any, principal: str | None = None) -> list[Any]:
        kind = self.kind  # type: ignore[attr-defined]
        return run(ctx(info)[0].grants.get_effective_privileges, kind, self.full_name, principal)  # type: ignore[attr-defined]


class Column(graphene.ObjectType):
    name = graphene.String(required=True)
    type = graphene.String(required=True)
    nullable = graphene.Boolean(required=True)
    comment = graphene.String()
    position = graphene.Int(required=True)

    def resolve_type(self, info: Any) -> str:
        return self.type_text  # type: ignore[attr-defined]


class HistoryEntry(graphene.ObjectType):
    version = graphene.Int()
    timestamp = graphene.Float()
    operation = graphene.String()
    parameters = graphene.String()


class Table(graphene.ObjectType):
    class Meta:
        interfaces = (Securable,)

    table_type = graphene.String()
    storage_location = graphene.String()
    columns = graphene.List(graphene.NonNull(Column), required=True)
    primary_keys = graphene.List(graphene.NonNull(graphene.String), required=True)
    timestamp_keys = graphene.List(graphene.NonNull(graphene.String), required=True)
    history = graphene.List(graphene.NonNull(HistoryEntry), limit=graphene.Int(default_value=20), required=True)

    def resolve_table_type(self, info: Any) -> str | None:
        return self.table_type.value if self.table_type else None  # type: ignore[attr-defined]

    def resolve_history(self, info: Any, limit: int) -> list[HistoryEntry]:
        rows = run(ctx(info)[0].data.history, self.full_name, limit)  # type: ignore[attr-defined]
        return [HistoryEntry(version=h.get("version"), timestamp=h.get("timestamp"), operation=h.get("operation"),
                             parameters=json.dumps(h.get("operationParameters", {}), default=str)) for h in rows]


class Function(graphene.ObjectType):
    class Meta:
        interfaces = (Securable,)

    routine_definition = graphene.String()
    data_type = graphene.String()
    language = graphene.String()
    parameters = graphene.List(graphene.NonNull(Column), required=True)

    def resolve_data_type(self, info: Any) -> str | None:
        return self.source  # type: ignore[attr-defined]

    def resolve_language(self, info: Any) -> str | None:
        return self.data_source_format  # type: ignore[attr-defined]

    def resolve_parameters(self, info: Any) -> list[Any]:
        return list(self.columns)  # type: ignore[attr-defined]


class ModelVersion(graphene.ObjectType):
    class Meta:
        interfaces = (Securable,)

    version = graphene.Int(required=True)
    status = graphene.String()
    source = graphene.String()
    run_id = graphene.String()


class Alias(graphene.ObjectType):
    alias = graphene.String(required=True)
    version = graphene.Int(required=True)


class RegisteredModel(graphene.ObjectType):
    class Meta:
        interfaces = (Securable,)

    versions = connection(lambda: ModelVersionConnection)
    aliases = graphene.List(graphene.NonNull(Alias), required=True)

    def resolve_aliases(self, info: Any) -> list[Alias]:
        return [Alias(alias=a, version=v) for a, v in sorted(self.aliases.items())]  # type: ignore[attr-defined]

    def resolve_versions(self, info: Any, **kw: Any) -> Any:
        return page(ModelVersionConnection, info, kw, ctx(info)[0].models.list_model_versions, self.full_name)  # type: ignore[attr-defined]


ModelVersionConnection = connection_of(ModelVersion)
RegisteredModelConnection = connection_of(RegisteredModel)
FunctionConnection = connection_of(Function)
TableConnection = connection_of(Table)


class Schema(graphene.ObjectType):
    class Meta:
        interfaces = (Securable,)

    tables = connection(TableConnection)
    models = connection(RegisteredModelConnection)
    functions = connection(FunctionConnection)

    # Resolvers get the service's securable as `self`, not this class.
    def resolve_tables(self, info: Any, **kw: Any) -> Any:
        return page(TableConnection, info, kw, ctx(info)[0].tables.list_tables, *self.full_name.split("."))

    def resolve_functions(self, info: Any, **kw: Any) -> Any:
        return page(FunctionConnection, info, kw, ctx(info)[0].functions.list_functions, *self.full_name.split("."))

    def resolve_models(self, info: Any, **kw: Any) -> Any:
        return page(RegisteredModelConnection, info, kw, ctx(info)[0].models.list_registered_models, *self.full_name.split("."))


SchemaConnection = connection_of(Schema)


class Catalog(graphene.ObjectType):
    class Meta:
        interfaces = (Securable,)

    schemas = connection(SchemaConnection)

    def resolve_schemas(self, info: Any, **kw: Any) -> Any:
        return page(SchemaConnection, info, kw, ctx(info)[0].schemas.list_schemas, self.name)  # type: ignore[attr-defined]


CatalogConnection = connection_of(Catalog)


class LineageNode(graphene.ObjectType):
    id = graphene.Int(required=True)
    kind = graphene.String(required=True)
    namespace = graphene.String()
    name = graphene.String()
    restricted = graphene.Boolean(required=True)
    depth = graphene.Int(required=True)
    path = graphene.List(graphene.NonNull(graphene.Int), required=True)


class Lineage(graphene.ObjectType):
    root = graphene.Field(LineageNode, required=True)
    nodes = graphene.List(graphene.NonNull(LineageNode), required=True)
    truncated = graphene.Boolean(required=True)


class AuditEvent(graphene.ObjectType):
    id = graphene.Int(required=True)
    event_time = graphene.DateTime(required=True)
    principal = graphene.String(required=True)
    action = graphene.String(required=True)
    securable_kind = graphene.String()
    securable_name = graphene.String()
    result = graphene.String(required=True)
    error_code = graphene.String()
    source = graphene.String(required=True)
    request_id = graphene.String(required=True)
    parameters = graphene.String()

    def resolve_result(self, info: Any) -> str:
        return self.result.value  # type: ignore[attr-defined]

    def resolve_parameters(self, info: Any) -> str:
        return json.dumps(self.parameters, default=str)  # type: ignore[attr-defined]


AuditEventConnection = connection_of(AuditEvent)


class LineageEdge(graphene.ObjectType):
    source = graphene.String(required=True)
    target = graphene.String(required=True)
    source_kind = graphene.String(required=True)
    target_kind = graphene.String(required=True)
    run_id = graphene.String()
    transformation_type = graphene.String()
    transformation_subtype = graphene.String()


class PrincipalInfo(graphene.ObjectType):
    name = graphene.String(required=True)
    kind = graphene.String(required=True)
    is_admin = graphene.Boolean(required=True)

    def resolve_kind(self, info: Any) -> str:
        return self.kind.value  # type: ignore[attr-defined]


PrincipalConnection = connection_of(PrincipalInfo)


class SqlResult(graphene.ObjectType):
    columns = graphene.List(graphene.NonNull(graphene.String), required=True)
    rows = graphene.List(graphene.NonNull(graphene.List(graphene.String)), required=True)
    message = graphene.String()

    def resolve_rows(self, info: Any) -> list[list[str | None]]:
        return [[None if v is None else str(v) for v in row] for row in self.rows]  # type: ignore[attr-defined]


class StorageCredential(graphene.ObjectType):
    class Meta:
        interfaces = (Securable,)

    read_only = graphene.Boolean(required=True)

    def resolve_read_only(self, info: Any) -> bool:
        return bool(self.read_only)  # type: ignore[attr-defined]


class ExternalLocation(graphene.ObjectType):
    class Meta:
        interfaces = (Securable,)

    url = graphene.String(required=True)
    credential_name = graphene.String()
    read_only = graphene.Boolean(required=True)

    def resolve_url(self, info: Any) -> str:
        return self.storage_location or ""  # type: ignore[attr-defined]

    def resolve_read_only(self, info: Any) -> bool:
        return bool(self.read_only)  # type: ignore[attr-defined]


StorageCredentialConnection = connection_of(StorageCredential)
ExternalLocationConnection = connection_of(ExternalLocation)


def _typed(s: Any) -> Any:
    return {Kind.CATALOG: Catalog, Kind.SCHEMA: Schema, Kind.TABLE: Table, Kind.MODEL: RegisteredModel, Kind.MODEL_VERSION: ModelVersion,
            Kind.STORAGE_CREDENTIAL: StorageCredential, Kind.EXTERNAL_LOCATION: ExternalLocation}[s.kind]


class Query(FeatureQuery, UiQuery, graphene.ObjectType):
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
        return run(ctx(info)[0].external_locations.get_external_location, name)

    def resolve_storage_credentials(self, info: Any, **kw: Any) -> Any:
        return page(StorageCredentialConnection, info, kw, ctx(info)[0].storage_credentials.list_storage_credentials)

    def resolve_storage_credential(self, info: Any, name: str) -> Any:
        return run(ctx(info)[0].storage_credentials.get_storage_credential, name)

    def resolve_lineage_edges(self, info: Any, level: str) -> list[LineageEdge]:
        rows = run(ctx(info)[0].lineage.list_edges, level)
        keep = ("source", "target", "source_kind", "target_kind", "run_id", "transformation_type", "transformation_subtype")
        return [LineageEdge(**{k: r[k] for k in keep}) for r in rows]

    def resolve_principals(self, info: Any, **kw: Any) -> Any:
        return page(PrincipalConnection, info, kw, ctx(info)[0].principals.list_principals, None, prime=False)

    def resolve_catalogs(self, info: Any, **kw: Any) -> Any:
        return page(CatalogConnection, info, kw, ctx(info)[0].catalogs.list_catalogs)

    def resolve_catalog(self, info: Any, name: str) -> Any:
        return run(ctx(info)[0].catalogs.get_catalog, name)

    def resolve_schema(self, info: Any, name: str) -> Any:
        return run(ctx(info)[0].schemas.get_schema, name)

    def resolve_table(self, info: Any, name: str) -> Any:
        return run(ctx(info)[0].tables.get_table, name)

    def resolve_model(self, info: Any, name: str) -> Any:
        return run(ctx(info)[0].models.get_registered_model, name)

    def resolve_function(self, info: Any, name: str) -> Any:
        return run(ctx(info)[0].functions.get_function, name)

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
            tables = run(cairn.tables.list_tables, catalog, page_token=token, max_results=MAX_FIRST)
            loaders.prime(list(tables))
            # The catalog-wide listing's token for what follows a table: its schema and name.
            hits += [(t, encode_token("\x00".join(t.full_name.split(".")[1:]))) for t in tables if hit(t)]
            token = tables.next_page_token
            if not token:
                break
        return edges(TableConnection, hits, first, after)

    def resolve_lineage(self, info: Any, name: str, upstream: bool, depth: int, level: str, as_of: Any = None, kinds: Any = None) -> Any:
        svc = ctx(info)[0].lineage
        res = run(svc.get_upstream if upstream else svc.get_downstream, name, level=level, depth=depth, as_of=as_of, node_kinds=kinds)
        node = lambda n: LineageNode(id=n.id, kind=n.kind, namespace=n.namespace, name=n.name, restricted=n.restricted, depth=n.depth, path=list(n.path))  # noqa: E731
        return Lineage(root=node(res.root), nodes=[node(n) for n in res.nodes], truncated=res.truncated)

    def resolve_audit_events(self, info: Any, principal: str | None = None, action: str | None = None, securable: str | None = None,
                             result: str | None = None, since: Any = None, until: Any = None, **kw: Any) -> Any:
        newest_first = functools.partial(ctx(info)[0].audit.list_events, newest_first=True)
        return page(AuditEventConnection, info, kw, newest_first, principal, action, securable, since, until, result,
                    key=lambda e: f"<{e.id}", prime=False)


class ColumnInput(graphene.InputObjectType):
    name = graphene.String(required=True)
    type = graphene.String(required=True)
    nullable = graphene.Boolean(default_value=True)
    comment = graphene.String()


class TagInput(graphene.InputObjectType):
    key = graphene.String(required=True)
    value = graphene.String(default_value="")


def _mutation(name: str, fields: dict[str, Any], output: Any, call: Any) -> type:
    def mutate(root: Any, info: Any, **kw: Any) -> Any:
        return call(ctx(info)[0], **kw)

    return type(name, (graphene.Mutation,), {"Arguments": type("Arguments", (), fields), "Output": output, "mutate": mutate})


_kind = graphene.String(required=True)
_name = graphene.String(required=True)

CreateCatalog = _mutation("CreateCatalog", {"name": _name, "comment": graphene.String()}, Catalog,
                          lambda c, name, comment=None: run(c.catalogs.create_catalog, name, comment))
CreateSchema = _mutation("CreateSchema", {"name": _name, "comment": graphene.String()}, Schema,
                         lambda c, name, comment=None: run(c.schemas.create_schema, name, comment))
CreateTable = _mutation("CreateTable", {"name": _name, "columns": graphene.List(graphene.NonNull(ColumnInput), required=True),
                                        "comment": graphene.String()}, Table,
                        lambda c, name, columns, comment=None: run(c.tables.create_table, name, [dict(x) for x in columns], comment=comment))
Drop = _mutation("Drop", {"kind": _kind, "name": _name, "cascade": graphene.Boolean(default_value=False)}, graphene.Boolean,
                 lambda c, kind, name, cascade: _drop(c, kind, name, cascade))
GrantPrivileges = _mutation("GrantPrivileges", {"kind": _kind, "name": graphene.String(), "principal": _name,
                                                "privileges": graphene.List(graphene.NonNull(graphene.String), required=True)},
                            graphene.List(graphene.NonNull(Grant)), lambda c, kind, principal, privileges, name=None: run(c.grants.grant, kind, name, principal, privileges))
RevokePrivileges = _mutation("RevokePrivileges", {"kind": _kind, "name": graphene.String(), "principal": _name,
                                                  "privileges": graphene.List(graphene.NonNull(graphene.String), required=True)},
                             graphene.List(graphene.NonNull(Grant)), lambda c, kind, principal, privileges, name=None: run(c.grants.revoke, kind, name, principal, privileges))
SetTags = _mutation("SetTags", {"kind": _kind, "name": _name, "tags": graphene.List(graphene.NonNull(TagInput), required=True),
                                "column": graphene.String()}, graphene.List(graphene.NonNull(Tag)),
                    lambda c, kind, name, tags, column=None: run(c.tags.set_tags, kind, name, {t.key: t.value for t in tags}, column))
UnsetTags = _mutation("UnsetTags", {"kind": _kind, "name": _name, "keys": graphene.List(graphene.NonNull(graphene.String), required=True),
                                    "column": graphene.String()}, graphene.List(graphene.NonNull(Tag)),
                      lambda c, kind, name, keys, column=None: run(c.tags.unset_tags, kind, name, keys, column))
TransferOwnership = _mutation("TransferOwnership", {"kind": _kind, "name": _name, "owner": _name}, graphene.String,
                              lambda c, kind, name, owner: run(c.grants.transfer_ownership, kind, name, owner).owner)
CreateStorageCredential = _mutation("CreateStorageCredential", {"name": _name, "comment": graphene.String(),
                                                                "read_only": graphene.Boolean(default_value=False)}, StorageCredential,
                                     lambda c, name, read_only, comment=None: run(c.storage_credentials.create_storage_credential, name, comment, read_only))
CreateExternalLocation = _mutation("CreateExternalLocation", {"name": _name, "url": graphene.String(required=True),
                                                              "credential_name": graphene.String(), "comment": graphene.String(),
                                                              "read_only": graphene.Boolean(default_value=False)}, ExternalLocation,
                                   lambda c, name, url, read_only, credential_name=None, comment=None:
                                   run(c.external_locations.create_external_location, name, url, credential_name, comment, read_only))
RunSql = _mutation("RunSql", {"statement": graphene.String(required=True)}, SqlResult, lambda c, statement: run(c.sql, statement))


def _drop(c: Cairn, kind: str, name: str, cascade: bool) -> bool:
    k = run(Kind.parse, kind)
    fn = {Kind.CATALOG: lambda: c.catalogs.delete_catalog(name, cascade), Kind.SCHEMA: lambda: c.schemas.delete_schema(name, cascade),
          Kind.TABLE: lambda: c.tables.delete_table(name), Kind.FUNCTION: lambda: c.functions.delete_function(name),
          Kind.MODEL: lambda: c.models.delete_registered_model(name),
          # cascade means force: a location that holds tables, a credential that locations use
          Kind.EXTERNAL_LOCATION: lambda: c.external_locations.delete_external_location(name, cascade),
          Kind.STORAGE_CREDENTIAL: lambda: c.storage_credentials.delete_storage_credential(name, cascade)}.get(k)
    if fn is None:
        raise GraphQLError(f"cannot drop a {k.value.lower()}", extensions={"code": "INVALID_ARGUMENT"})
    run(fn)
    return True


class Mutation(graphene.ObjectType):
    create_catalog = CreateCatalog.Field()
    create_schema = CreateSchema.Field()
    create_table = CreateTable.Field()
    drop = Drop.Field()
    grant = GrantPrivileges.Field()
    revoke = RevokePrivileges.Field()
    set_tags = SetTags.Field()
    unset_tags = UnsetTags.Field()
    transfer_ownership = TransferOwnership.Field()
    create_storage_credential = CreateStorageCredential.Field()
    create_external_location = CreateExternalLocation.Field()
    sql = RunSql.Field()


schema = graphene.Schema(query=Query, mutation=Mutation, types=[Catalog, Schema, Table, Function, RegisteredModel, ModelVersion,
                                                               StorageCredential, ExternalLocation])


def _refusal(message: str, locations: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "extensions": {"code": "INVALID_ARGUMENT"}}
    if locations:
        error["locations"] = [{"line": loc.line, "column": loc.column} for loc in locations]
    return {"errors": [error]}


def prepare(query: str) -> Any:
    """Bound, parse, depth-check and validate a query: a DocumentNode, or the error body to answer.

    Clients send the same few query texts over and over; documents are never mutated by execution,
    so one parsed and validated document serves every request (and every thread) with that text.
    Only short texts are cached, so the cache cannot be filled with megabytes of distinct queries.
    """
    if len(query) <= CACHED_QUERY:
        return parsed(query)
    return _prepare(query)


def _prepare(query: str) -> Any:
    refused = bounds(query)
    if refused:
        return _refusal(refused)
    try:
        document = gql.parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        return _refusal(exc.message, exc.locations)
    depth = depth_of(document)
    if depth > MAX_DEPTH:
        return _refusal(f"the query is {depth} levels deep; the limit is {MAX_DEPTH}")
    errors = gql.validate(schema.graphql_schema, document)
    if errors:
        return {"errors": [_error(e, "") for e in errors]}
    return document


parsed = functools.lru_cache(maxsize=1024)(_prepare)


def may_be_long(query: str) -> bool:
    """Whether a request could keep a thread busy for long: it may run SQL (the `sql` mutation), or
    its text is long and not yet parsed. Such requests run off the event loop."""
    return "sql" in query or len(query) > CACHED_QUERY


def execute(cairn: Cairn, query: str, variables: dict[str, Any] | None = None, operation: str | None = None) -> dict[str, Any]:
    """Run one GraphQL request as `cairn`'s principal; returns the JSON response body."""
    document = prepare(query)
    if isinstance(document, dict):
        return document
    if variables is not None and not isinstance(variables, dict):
        return _refusal("variables must be a JSON object")
    if operation is not None and not isinstance(operation, str):
        return _refusal("operationName must be a string")
    nodes = nodes_of(document, variables or {})
    if nodes > MAX_NODES:
        return _refusal(f"the query could ask for {nodes:,} objects; the limit is {MAX_NODES:,}: ask for fewer with first:")
    with cairn.audit.request("graphql", query=query, operation=operation):
        result = gql.execute(schema.graphql_schema, document, context_value={"cairn": cairn, "loaders": Loaders(cairn)},
                             variable_values=variables, operation_name=operation)
    body: dict[str, Any] = {"data": result.data}  # type: ignore[union-attr]
    if result.errors:  # type: ignore[union-attr]
        body["errors"] = [_error(e, cairn.ctx.request_id) for e in result.errors]  # type: ignore[union-attr]
    return body


def _error(exc: GraphQLError, request_id: str) -> dict[str, Any]:
    ext = dict(exc.extensions or {})
    if "code" not in ext:
        original = exc.original_error
        if original is None:
            ext["code"] = "INVALID_ARGUMENT"  # a validation error in the query itself
        else:
            return {"message": f"internal error (request id {request_id or uuid.uuid4().hex})", "path": exc.path,
                    "extensions": {"code": "INTERNAL"}}
    out: dict[str, Any] = {"message": exc.message, "extensions": ext}
    if exc.path:
        out["path"] = exc.path
    if exc.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in exc.locations]
    return out
