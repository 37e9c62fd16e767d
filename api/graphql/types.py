"""The GraphQL object types: what the governed services return, as the schema shows it.

Resolvers get the service's entity (a `Securable`, an `AuditEvent`...) as `self`, not the graphene
class; nested lists are connections paged by the service (api/graphql/paging.py), and per-row
fields (tags, grants, effective privileges, history) load in batches through the request's loaders.
"""

from __future__ import annotations

import json
from typing import Any

import graphene

from api.graphql.models import ModelVersionFields, RegisteredModelFields
from api.graphql.paging import connection, connection_of, ctx, page


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
        return ctx(info)[1].privileges_of(self, principal)


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
    partition_columns = graphene.List(graphene.NonNull(graphene.String),
                                      description="The Delta table's partition columns, in order ([]: not partitioned; null: its storage could not be read).")
    history = graphene.List(graphene.NonNull(HistoryEntry), limit=graphene.Int(default_value=20), required=True)

    def resolve_partition_columns(self, info: Any) -> list[str] | None:
        known = self.partition_columns  # type: ignore[attr-defined]
        return list(known) if known is not None else ctx(info)[1].partitions_of(self)  # a listed table: batched

    def resolve_table_type(self, info: Any) -> str | None:
        return self.table_type.value if self.table_type else None  # type: ignore[attr-defined]

    def resolve_history(self, info: Any, limit: int) -> list[HistoryEntry]:
        rows = ctx(info)[1].history_of(self, limit)
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


class ModelVersion(ModelVersionFields, graphene.ObjectType):
    class Meta:
        interfaces = (Securable,)

    version = graphene.Int(required=True)
    status = graphene.String()
    source = graphene.String()
    run_id = graphene.String()


ModelVersionConnection = connection_of(ModelVersion)


class Alias(graphene.ObjectType):
    alias = graphene.String(required=True)
    version = graphene.Int(required=True)


class RegisteredModel(RegisteredModelFields, graphene.ObjectType):
    class Meta:
        interfaces = (Securable,)

    versions = connection(ModelVersionConnection)
    aliases = graphene.List(graphene.NonNull(Alias), required=True)

    def resolve_aliases(self, info: Any) -> list[Alias]:
        return [Alias(alias=a, version=v) for a, v in sorted(self.aliases.items())]  # type: ignore[attr-defined]

    def resolve_versions(self, info: Any, **kw: Any) -> Any:
        return page(ModelVersionConnection, info, kw, ctx(info)[0].models.list_model_versions, self.full_name)  # type: ignore[attr-defined]


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
