"""GraphQL fields the web UI (api/ui) needs that the rest of the schema lacks, mixed into the root
Query of api/graphql.py: `viewer` (who the token belongs to) and `tablePolicy(name)` (a table's row
filter and column masks, so the page can show masked columns as masked). Both go through the
governed services; errors carry the service's stable code."""

from __future__ import annotations

from typing import Any

import graphene


class Viewer(graphene.ObjectType):
    name = graphene.String(required=True)
    kind = graphene.String(required=True)
    is_admin = graphene.Boolean(required=True)


class RowFilter(graphene.ObjectType):
    function = graphene.String(required=True)
    columns = graphene.List(graphene.NonNull(graphene.String), required=True)


class ColumnMask(graphene.ObjectType):
    column = graphene.String(required=True)
    function = graphene.String(required=True)
    using = graphene.List(graphene.NonNull(graphene.String), required=True)


class TablePolicy(graphene.ObjectType):
    row_filter = graphene.Field(RowFilter)
    column_masks = graphene.List(graphene.NonNull(ColumnMask), required=True)


class UiQuery(graphene.ObjectType):
    viewer = graphene.Field(Viewer, required=True, description="the principal of the request's token")
    table_policy = graphene.Field(TablePolicy, name=graphene.String(required=True),
                                  description="the row filter and column masks of a table the caller may see")

    def resolve_viewer(self, info: Any) -> Viewer:
        cairn = info.context["cairn"]
        p = cairn.principals.get_principal(cairn.principal)
        return Viewer(name=p.name, kind=p.kind.value, is_admin=p.is_admin)

    def resolve_table_policy(self, info: Any, name: str) -> TablePolicy:
        table = info.context["cairn"].tables.get_table(name)
        rf = table.row_filter
        return TablePolicy(
            row_filter=RowFilter(function=rf["function"], columns=list(rf.get("columns", []))) if rf else None,
            column_masks=[ColumnMask(column=c, function=m["function"], using=list(m.get("using", [])))
                          for c, m in sorted(table.column_masks.items())])
