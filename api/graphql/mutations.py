"""The catalog's mutations: each one governed service call, its errors mapped once (api/errors.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import graphene

from api.graphql.paging import ctx
from api.graphql.types import Catalog, ExternalLocation, Grant, Schema, SqlResult, StorageCredential, Table, Tag


class ColumnInput(graphene.InputObjectType):
    name = graphene.String(required=True)
    type = graphene.String(required=True)
    nullable = graphene.Boolean(default_value=True)
    comment = graphene.String()


class TagInput(graphene.InputObjectType):
    key = graphene.String(required=True)
    value = graphene.String(default_value="")


def _mutation(name: str, fields: dict[str, Any], output: Any, call: Callable[..., Any]) -> Any:
    """A mutation `name` taking `fields`, answering `output`: `call(cairn, **arguments)`."""

    def mutate(root: Any, info: Any, **kw: Any) -> Any:
        return call(ctx(info)[0], **kw)

    return type(name, (graphene.Mutation,), {"Arguments": type("Arguments", (), fields), "Output": output, "mutate": mutate})


_kind = graphene.String(required=True)
_name = graphene.String(required=True)

CreateCatalog = _mutation("CreateCatalog", {"name": _name, "comment": graphene.String()}, Catalog,
                          lambda c, name, comment=None: c.catalogs.create_catalog(name, comment))
CreateSchema = _mutation("CreateSchema", {"name": _name, "comment": graphene.String()}, Schema,
                         lambda c, name, comment=None: c.schemas.create_schema(name, comment))
CreateTable = _mutation("CreateTable", {"name": _name, "columns": graphene.List(graphene.NonNull(ColumnInput), required=True),
                                        "comment": graphene.String()}, Table,
                        lambda c, name, columns, comment=None: c.tables.create_table(name, [dict(x) for x in columns], comment=comment))
Drop = _mutation("Drop", {"kind": _kind, "name": _name, "cascade": graphene.Boolean(default_value=False)}, graphene.Boolean,
                 lambda c, kind, name, cascade: c.drop(kind, name, cascade) or True)
GrantPrivileges = _mutation("GrantPrivileges", {"kind": _kind, "name": graphene.String(), "principal": _name,
                                                "privileges": graphene.List(graphene.NonNull(graphene.String), required=True)},
                            graphene.List(graphene.NonNull(Grant)), lambda c, kind, principal, privileges, name=None: c.grants.grant(kind, name, principal, privileges))
RevokePrivileges = _mutation("RevokePrivileges", {"kind": _kind, "name": graphene.String(), "principal": _name,
                                                  "privileges": graphene.List(graphene.NonNull(graphene.String), required=True)},
                             graphene.List(graphene.NonNull(Grant)), lambda c, kind, principal, privileges, name=None: c.grants.revoke(kind, name, principal, privileges))
SetTags = _mutation("SetTags", {"kind": _kind, "name": _name, "tags": graphene.List(graphene.NonNull(TagInput), required=True),
                                "column": graphene.String()}, graphene.List(graphene.NonNull(Tag)),
                    lambda c, kind, name, tags, column=None: c.tags.set_tags(kind, name, {t.key: t.value for t in tags}, column))
UnsetTags = _mutation("UnsetTags", {"kind": _kind, "name": _name, "keys": graphene.List(graphene.NonNull(graphene.String), required=True),
                                    "column": graphene.String()}, graphene.List(graphene.NonNull(Tag)),
                      lambda c, kind, name, keys, column=None: c.tags.unset_tags(kind, name, keys, column))
TransferOwnership = _mutation("TransferOwnership", {"kind": _kind, "name": _name, "owner": _name}, graphene.String,
                              lambda c, kind, name, owner: c.grants.transfer_ownership(kind, name, owner).owner)
CreateStorageCredential = _mutation("CreateStorageCredential", {"name": _name, "comment": graphene.String(),
                                                                "read_only": graphene.Boolean(default_value=False)}, StorageCredential,
                                     lambda c, name, read_only, comment=None: c.storage_credentials.create_storage_credential(name, comment, read_only))
CreateExternalLocation = _mutation("CreateExternalLocation", {"name": _name, "url": graphene.String(required=True),
                                                              "credential_name": graphene.String(), "comment": graphene.String(),
                                                              "read_only": graphene.Boolean(default_value=False)}, ExternalLocation,
                                   lambda c, name, url, read_only, credential_name=None, comment=None:
                                   c.external_locations.create_external_location(name, url, credential_name, comment, read_only))
RunSql = _mutation("RunSql", {"statement": graphene.String(required=True)}, SqlResult, lambda c, statement: c.sql(statement))


class CatalogMutation(graphene.ObjectType):
    """The catalog's mutations (mixed into the root Mutation in api/graphql/schema.py)."""

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
