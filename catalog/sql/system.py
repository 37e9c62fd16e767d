"""System tables: read-only, governed, built from the same services, so each shows only what the
caller may see (audit: admins everything, others their own events)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from catalog.errors import NotFound
from catalog.paging import every


def _catalogs(c: Any) -> Iterator[Any]:
    yield from every(c.catalogs.list_catalogs)


def _schemas(c: Any) -> Iterator[Any]:
    for cat in _catalogs(c):
        yield from every(c.schemas.list_schemas, cat.name)


def _tables(c: Any) -> Iterator[Any]:
    for cat in _catalogs(c):
        yield from every(c.tables.list_tables, cat.name)


def _split(t: Any) -> tuple[str, str, str]:
    a, b, n = t.full_name.split(".")
    return a, b, n


_STATUS = {"ALLOWED": 200, "INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
           "ALREADY_EXISTS": 409, "CONFLICT": 409, "FAILED_PRECONDITION": 412, "UNAVAILABLE": 503, "INTERNAL": 500}
_AUDIT_COLUMNS = ["event_id", "event_time", "principal", "action", "securable_kind", "securable_name", "result", "error_code", "request_id",
                  "source", "parameters",
                  # Databricks' system.access.audit columns, beside Cairn's own
                  "event_date", "action_name", "service_name", "user_identity", "request_params", "response", "user_agent",
                  "audit_level", "version"]
_AUDIT_SCHEMA = pa.schema([
    ("event_id", pa.int64()), ("event_time", pa.timestamp("us", tz="UTC")), ("principal", pa.string()), ("action", pa.string()),
    ("securable_kind", pa.string()), ("securable_name", pa.string()), ("result", pa.string()), ("error_code", pa.string()),
    ("request_id", pa.string()), ("source", pa.string()), ("parameters", pa.string()), ("event_date", pa.date32()),
    ("action_name", pa.string()), ("service_name", pa.string()), ("user_identity", pa.struct([("email", pa.string())])),
    ("request_params", pa.map_(pa.string(), pa.string())),
    ("response", pa.struct([("status_code", pa.int32()), ("error_message", pa.string()), ("result", pa.string())])),
    ("user_agent", pa.string()), ("audit_level", pa.string()), ("version", pa.string()),
])


def audit(c: Any) -> pa.Table:
    rows, token = [], None
    while True:
        page = c.audit.list_events(page_token=token, max_results=1000)
        for e in page:
            params = {k: v if isinstance(v, str) else json.dumps(v, default=str) for k, v in e.parameters.items() if v is not None}
            if e.securable_name:
                params.setdefault("full_name_arg", e.securable_name)
            rows.append(dict(
                event_id=e.id, event_time=e.event_time, principal=e.principal, action=e.action, securable_kind=e.securable_kind,
                securable_name=e.securable_name, result=e.result.value, error_code=e.error_code, request_id=e.request_id,
                source=e.source, parameters=json.dumps(e.parameters, default=str), event_date=e.event_time.date(), action_name=e.action,
                service_name="unityCatalog", user_identity={"email": e.principal}, request_params=list(params.items()),
                response={"status_code": _STATUS.get(e.error_code or "ALLOWED", 500) if e.result.value != "ALLOWED" else 200,
                          "error_message": getattr(e, "error_message", None), "result": None},
                user_agent=f"cairn-{e.source}" if e.source else None, audit_level="ACCOUNT_LEVEL", version="2.0"))
        token = page.next_page_token
        if not token:
            return pa.Table.from_pylist(rows, schema=_AUDIT_SCHEMA).select(_AUDIT_COLUMNS)


def lineage(level: str) -> Callable[[Any], pa.Table]:
    def build(c: Any) -> pa.Table:
        rows = c.lineage.list_edges(level)
        return _table(rows, ["source", "target", "run_id", "source_version", "target_version", "transformation_type",
                             "transformation_subtype", "created_at"])

    return build


def catalogs(c: Any) -> pa.Table:
    return _table([dict(catalog_name=x.name, catalog_owner=x.owner, comment=x.comment, created=x.created_at, created_by=x.created_by)
                   for x in _catalogs(c)], ["catalog_name", "catalog_owner", "comment", "created", "created_by"])


def schemata(c: Any) -> pa.Table:
    return _table([dict(catalog_name=x.full_name.split(".")[0], schema_name=x.name, schema_owner=x.owner, comment=x.comment, created=x.created_at)
                   for x in _schemas(c)], ["catalog_name", "schema_name", "schema_owner", "comment", "created"])


def tables(c: Any) -> pa.Table:
    rows = []
    for t in _tables(c):
        cat, sch, name = _split(t)
        rows.append(dict(table_catalog=cat, table_schema=sch, table_name=name, table_type=t.table_type.value if t.table_type else None,
                         table_owner=t.owner, comment=t.comment, data_source_format=t.data_source_format, storage_path=t.storage_location,
                         created=t.created_at))
    return _table(rows, ["table_catalog", "table_schema", "table_name", "table_type", "table_owner", "comment", "data_source_format",
                         "storage_path", "created"])


def columns(c: Any) -> pa.Table:
    rows = []
    for t in _tables(c):
        cat, sch, name = _split(t)
        rows += [dict(table_catalog=cat, table_schema=sch, table_name=name, column_name=col.name, ordinal_position=col.position,
                      data_type=col.type_text, is_nullable="YES" if col.nullable else "NO", comment=col.comment) for col in t.columns]
    return _table(rows, ["table_catalog", "table_schema", "table_name", "column_name", "ordinal_position", "data_type", "is_nullable", "comment"])


def table_privileges(c: Any) -> pa.Table:
    rows = []
    for t in _tables(c):
        cat, sch, name = _split(t)
        rows += [dict(grantee=g.principal, table_catalog=cat, table_schema=sch, table_name=name, privilege_type=g.privilege.value)
                 for g in c.grants.list_grants("table", t.full_name)]
    return _table(rows, ["grantee", "table_catalog", "table_schema", "table_name", "privilege_type"])


def _tags(column_level: bool) -> Callable[[Any], pa.Table]:
    def build(c: Any) -> pa.Table:
        rows = []
        for t in _tables(c):
            cat, sch, name = _split(t)
            for tag in c.tags.list_tags("table", t.full_name):
                if (tag.column is not None) == column_level:
                    row = dict(catalog_name=cat, schema_name=sch, table_name=name, tag_name=tag.key, tag_value=tag.value)
                    if column_level:
                        row["column_name"] = tag.column
                    rows.append(row)
        cols = ["catalog_name", "schema_name", "table_name"] + (["column_name"] if column_level else []) + ["tag_name", "tag_value"]
        return _table(rows, cols)

    return build


def _lakeflow(c: Any, what: str) -> pa.Table:
    from catalog.sql.jobs_system import lakeflow

    return lakeflow(c, what)


SYSTEM_TABLES: dict[str, Callable[[Any], pa.Table]] = {
    "system.lakeflow.jobs": lambda c: _lakeflow(c, "jobs"),
    "system.lakeflow.job_run_timeline": lambda c: _lakeflow(c, "job_run_timeline"),
    "system.lakeflow.job_task_run_timeline": lambda c: _lakeflow(c, "job_task_run_timeline"),
    "system.access.audit": audit,
    "system.access.table_lineage": lineage("TABLE"),
    "system.access.column_lineage": lineage("COLUMN"),
    "system.information_schema.catalogs": catalogs,
    "system.information_schema.schemata": schemata,
    "system.information_schema.tables": tables,
    "system.information_schema.columns": columns,
    "system.information_schema.table_privileges": table_privileges,
    "system.information_schema.table_tags": _tags(False),
    "system.information_schema.column_tags": _tags(True),
}


def system_table(client: Any, key: str) -> pa.Table:
    build = SYSTEM_TABLES.get(key)
    if build is None:
        raise NotFound(f"system table '{key}' does not exist; there are {', '.join(sorted(SYSTEM_TABLES))}")
    return build(client)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> pa.Table:
    if not rows:
        return pa.table({c: pa.array([], pa.string()) for c in cols})
    return pa.Table.from_pylist(rows).select(cols)
