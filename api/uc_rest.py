"""The Unity-Catalog-compatible REST API under /api/2.1/unity-catalog (a transport only).

JSON shapes follow the Unity Catalog OSS spec (times in epoch milliseconds, `max_results` /
`page_token` paging), so `unitycatalog-client` works against it. Every handler calls a governed
service as the request's principal; errors come back as {"error_code", "message"} with the status
from one table, never a traceback.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from catalog import storage
from catalog.errors import InvalidArgument
from catalog.privileges import Kind

PREFIX = "/api/2.1/unity-catalog"
_TYPE_NAMES = {
    "bigint": "LONG", "int": "INT", "smallint": "SHORT", "tinyint": "BYTE", "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN",
    "string": "STRING", "binary": "BINARY", "date": "DATE", "timestamp": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP_NTZ",
}
_FROM_TYPE_NAME = {"LONG": "bigint", "INT": "int", "SHORT": "smallint", "BYTE": "tinyint", "DOUBLE": "double", "FLOAT": "float",
                   "BOOLEAN": "boolean", "STRING": "string", "BINARY": "binary", "DATE": "date", "TIMESTAMP": "timestamp",
                   "TIMESTAMP_NTZ": "timestamp_ntz", "DECIMAL": "decimal(10, 0)"}


def ms(ts: Any) -> int | None:
    return int(ts.timestamp() * 1000) if ts is not None else None


def type_name(type_text: str) -> str:
    t = type_text.lower()
    if t in _TYPE_NAMES:
        return _TYPE_NAMES[t]
    for prefix, name in (("decimal", "DECIMAL"), ("array", "ARRAY"), ("map", "MAP"), ("struct", "STRUCT"), ("varchar", "STRING"), ("char", "CHAR")):
        if t.startswith(prefix):
            return name
    return "STRING"


def _common(s: Any) -> dict[str, Any]:
    return {"comment": s.comment, "properties": s.properties or {}, "owner": s.owner, "created_at": ms(s.created_at), "created_by": s.created_by,
            "updated_at": ms(s.updated_at), "updated_by": s.updated_by}


def catalog_json(s: Any) -> dict[str, Any]:
    return {"name": s.name, "id": str(s.id), **_common(s)}


def schema_json(s: Any) -> dict[str, Any]:
    cat, name = s.full_name.split(".")
    return {"name": name, "catalog_name": cat, "full_name": s.full_name, "schema_id": str(s.id), **_common(s)}


def column_json(c: Any) -> dict[str, Any]:
    out = {"name": c.name, "type_text": c.type_text, "type_name": type_name(c.type_text), "position": c.position, "nullable": c.nullable,
           "comment": c.comment, "type_json": _type_json(c)}
    m = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", c.type_text)
    if m:
        out.update(type_precision=int(m[1]), type_scale=int(m[2]))
    return out


def _type_json(c: Any) -> str:
    import json

    spark = {"bigint": "long", "int": "integer", "smallint": "short", "tinyint": "byte"}.get(c.type_text, c.type_text)
    return json.dumps({"name": c.name, "type": spark, "nullable": c.nullable, "metadata": {}})


def _with_partition_index(column: dict[str, Any], s: Any) -> dict[str, Any]:
    """UC's ColumnInfo.partition_index: the column's place among the table's partition columns
    (as `get_table` reads them from the Delta log; lists do not, so they leave it out)."""
    parts = s.partition_columns or ()
    return {**column, "partition_index": parts.index(column["name"])} if column["name"] in parts else column


def table_json(s: Any) -> dict[str, Any]:
    cat, sch, name = s.full_name.split(".")
    out = {"name": name, "catalog_name": cat, "schema_name": sch, "table_type": s.table_type.value if s.table_type else None,
           "data_source_format": s.data_source_format, "columns": [_with_partition_index(column_json(c), s) for c in s.columns],
           "storage_location": s.storage_location,
           "table_id": str(s.id), **_common(s)}
    if s.view_definition:
        out["view_definition"] = s.view_definition
    return out


def function_json(s: Any) -> dict[str, Any]:
    cat, sch, name = s.full_name.split(".")
    return {"name": name, "catalog_name": cat, "schema_name": sch, "full_name": s.full_name, "function_id": str(s.id),
            "data_type": type_name(s.source or "string"), "full_data_type": s.source, "routine_body": s.data_source_format or "SQL",
            "routine_definition": s.routine_definition, "input_params": {"parameters": [
                {"name": c.name, "type_text": c.type_text, "type_name": type_name(c.type_text), "position": c.position} for c in s.columns]},
            **_common(s)}


def uri(location: str | None) -> str | None:
    """Local paths as file:// URIs, as Unity Catalog hands out storage locations."""
    if location and location.startswith("/"):
        from pathlib import Path

        return Path(location).as_uri()
    return location


def model_json(s: Any) -> dict[str, Any]:
    cat, sch, name = s.full_name.split(".")
    return {"name": name, "catalog_name": cat, "schema_name": sch, "full_name": s.full_name, "id": str(s.id),
            "storage_location": uri(s.storage_location), **_common(s),
            "aliases": [{"alias_name": a, "version_num": v} for a, v in sorted(s.aliases.items())]}


def version_json(s: Any) -> dict[str, Any]:
    model = s.full_name.rsplit("/", 1)[0]
    cat, sch, name = model.split(".")
    return {"model_name": name, "catalog_name": cat, "schema_name": sch, "version": s.version, "source": s.source, "run_id": s.run_id,
            "status": s.status, "storage_location": uri(s.storage_location), "id": str(s.id), "comment": s.comment,
            "created_at": ms(s.created_at), "created_by": s.created_by, "updated_at": ms(s.updated_at), "updated_by": s.updated_by,
            # Cairn's own facts (MLflow's UC client ignores unknown fields): JSON text, or null.
            **{k: s.properties.get(f"cairn.{k}") for k in ("signature", "feature_spec", "training_set")}}


def location_json(s: Any) -> dict[str, Any]:
    return {"name": s.name, "id": str(s.id), "url": storage.uri(s.storage_location or ""), "credential_name": s.credential_name,
            "read_only": bool(s.read_only), **_common(s)}


def credential_json(s: Any) -> dict[str, Any]:
    return {"name": s.name, "full_name": s.full_name, "id": str(s.id), "purpose": "STORAGE", "read_only": bool(s.read_only), **_common(s)}


# Cloud identities a storage credential could carry; Cairn's hold none yet (local storage needs none).
_IDENTITIES = ("aws_iam_role", "azure_service_principal", "azure_managed_identity", "gcp_service_account_key",
               "databricks_gcp_service_account", "cloudflare_api_token")


def _no_identity(b: dict[str, Any]) -> None:
    given = [k for k in _IDENTITIES if b.get(k)]
    if given:
        raise InvalidArgument(f"storage credentials hold no cloud identity yet; leave out {', '.join(given)}")
    if b.get("purpose") not in (None, "STORAGE"):
        raise InvalidArgument(f"purpose must be STORAGE (service credentials are not supported), not {b['purpose']!r}")


def _flag(r: Request, name: str) -> bool:
    return r.query_params.get(name, "false").lower() == "true"


def _force(r: Request) -> bool:
    return _flag(r, "force")


def page(items: Any, key: str, fmt: Any) -> dict[str, Any]:
    return {key: [fmt(x) for x in items], "next_page_token": items.next_page_token}


def _int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(f"{name} must be an integer") from None


def _need(body: dict[str, Any], key: str) -> Any:
    if not isinstance(body, dict) or body.get(key) in (None, ""):
        raise InvalidArgument(f"'{key}' is required")
    return body[key]


# Body shapes (api.http.check): what each route reads, and of what type. Checked before the call,
# so a malformed body is a 400 naming the field, whatever the route does with it.
_ENTITY = {"name": str, "catalog_name": str, "schema_name": str, "comment": str, "properties": dict}
_UPDATE = {"owner": str, "comment": str, "properties": dict, "new_name": str}
_COLUMN = {"name": str, "type_text": str, "type_name": str, "position": int, "nullable": bool, "comment": str, "partition_index": int}
SHAPES: dict[str, Any] = {
    "create": _ENTITY,
    "update": _UPDATE,
    "table": {**_ENTITY, "table_type": str, "storage_location": str, "view_definition": str, "data_source_format": str, "columns": [_COLUMN]},
    "function": {"function_info": {**_ENTITY, "routine_definition": str, "full_data_type": str, "data_type": str, "routine_body": str,
                                   "input_params": {"parameters": [_COLUMN]}}},
    "version": {"model_name": str, "catalog_name": str, "schema_name": str, "source": str, "run_id": str, "comment": str,
                "signature": dict, "feature_spec": dict},
    "comment": {"comment": str},
    "permissions": {"changes": [{"principal": str, "add": [str], "remove": [str]}]},
    "table_credentials": {"table_id": str, "operation": str},
    "alias": {"version_num": int},
    "version_credentials": {"catalog_name": str, "schema_name": str, "model_name": str, "version": int, "operation": str},
    "location": {"name": str, "url": str, "credential_name": str, "comment": str, "read_only": bool},
    "location_update": {"url": str, "credential_name": str, "comment": str, "new_name": str, "read_only": bool, "owner": str, "force": bool},
    "credential": {"name": str, "comment": str, "read_only": bool},
    "credential_update": {"comment": str, "new_name": str, "read_only": bool, "owner": str},
}


def routes(handler: Any) -> list[Route]:
    """`handler(fn, shape=...)` wraps an endpoint `fn(cairn, request, body) -> json` with body checks, auth and errors."""

    # catalogs ------------------------------------------------------------------------------
    def list_catalogs(c: Any, r: Request, b: Any) -> Any:
        return page(c.catalogs.list_catalogs(r.query_params.get("page_token"), _int(r, "max_results")), "catalogs", catalog_json)

    def create_catalog(c: Any, r: Request, b: Any) -> Any:
        return catalog_json(c.catalogs.create_catalog(_need(b, "name"), b.get("comment"), b.get("properties")))

    def get_catalog(c: Any, r: Request, b: Any) -> Any:
        return catalog_json(c.catalogs.get_catalog(r.path_params["name"]))

    def update_catalog(c: Any, r: Request, b: Any) -> Any:
        name = r.path_params["name"]
        if b.get("owner"):
            c.grants.transfer_ownership("catalog", name, b["owner"])
        if any(b.get(k) is not None for k in ("comment", "properties", "new_name")):
            return catalog_json(c.catalogs.update_catalog(name, b.get("comment"), b.get("properties"), b.get("new_name")))
        return catalog_json(c.catalogs.get_catalog(name))

    def delete_catalog(c: Any, r: Request, b: Any) -> Any:
        c.catalogs.delete_catalog(r.path_params["name"], cascade=r.query_params.get("force", "false").lower() == "true")
        return {}

    # schemas -------------------------------------------------------------------------------
    def list_schemas(c: Any, r: Request, b: Any) -> Any:
        cat = r.query_params.get("catalog_name") or _need({}, "catalog_name")
        return page(c.schemas.list_schemas(cat, r.query_params.get("page_token"), _int(r, "max_results")), "schemas", schema_json)

    def create_schema(c: Any, r: Request, b: Any) -> Any:
        full = f"{_need(b, 'catalog_name')}.{_need(b, 'name')}"
        return schema_json(c.schemas.create_schema(full, b.get("comment"), b.get("properties")))

    def get_schema(c: Any, r: Request, b: Any) -> Any:
        return schema_json(c.schemas.get_schema(r.path_params["name"]))

    def update_schema(c: Any, r: Request, b: Any) -> Any:
        name = r.path_params["name"]
        if b.get("owner"):
            c.grants.transfer_ownership("schema", name, b["owner"])
        if any(b.get(k) is not None for k in ("comment", "properties", "new_name")):
            return schema_json(c.schemas.update_schema(name, b.get("comment"), b.get("properties"), b.get("new_name")))
        return schema_json(c.schemas.get_schema(name))

    def delete_schema(c: Any, r: Request, b: Any) -> Any:
        c.schemas.delete_schema(r.path_params["name"], cascade=r.query_params.get("force", "false").lower() == "true")
        return {}

    # tables --------------------------------------------------------------------------------
    def list_tables(c: Any, r: Request, b: Any) -> Any:
        cat = r.query_params.get("catalog_name") or _need({}, "catalog_name")
        sch = r.query_params.get("schema_name") or _need({}, "schema_name")
        found = c.tables.list_tables(cat, sch, r.query_params.get("page_token"), _int(r, "max_results"))
        if _flag(r, "include_delta_metadata"):  # UC's switch for what the Delta log says: here each column's partition_index
            parts = c.tables.partition_columns_many(list(found.items))  # one governed call for the page
            found = dataclasses.replace(found, items=tuple(
                dataclasses.replace(s, partition_columns=p) if isinstance(p := parts.get(s.id), tuple) else s for s in found.items))
        return page(found, "tables", table_json)

    def create_table(c: Any, r: Request, b: Any) -> Any:
        full = f"{_need(b, 'catalog_name')}.{_need(b, 'schema_name')}.{_need(b, 'name')}"
        cols = []
        for col in sorted(b.get("columns") or [], key=lambda x: x.get("position") or 0):  # shape: a list of objects
            text = col.get("type_text") or _FROM_TYPE_NAME.get(str(col.get("type_name", "")).upper())
            cols.append({"name": col.get("name"), "type": text, "nullable": col.get("nullable", True), "comment": col.get("comment")})
        # UC's ColumnInfo.partition_index: the column's place among the partition columns.
        parts = [col.get("name") for col in sorted((x for x in b.get("columns") or [] if x.get("partition_index") is not None),
                                                   key=lambda x: x["partition_index"])]
        table = c.tables.create_table(full, cols, table_type=b.get("table_type") or "MANAGED", storage_location=b.get("storage_location"),
                                      comment=b.get("comment"), properties=b.get("properties"), view_definition=b.get("view_definition"),
                                      data_source_format=b.get("data_source_format") or "DELTA", partition_columns=parts)
        return table_json(table)

    def get_table(c: Any, r: Request, b: Any) -> Any:
        return table_json(c.tables.get_table(r.path_params["name"]))

    def delete_table(c: Any, r: Request, b: Any) -> Any:
        c.tables.delete_table(r.path_params["name"])
        return {}

    # functions -----------------------------------------------------------------------------
    def list_functions(c: Any, r: Request, b: Any) -> Any:
        cat = r.query_params.get("catalog_name") or _need({}, "catalog_name")
        sch = r.query_params.get("schema_name") or _need({}, "schema_name")
        return page(c.functions.list_functions(cat, sch, r.query_params.get("page_token"), _int(r, "max_results")), "functions", function_json)

    def create_function(c: Any, r: Request, b: Any) -> Any:
        f = _need(b, "function_info")
        full = f"{_need(f, 'catalog_name')}.{_need(f, 'schema_name')}.{_need(f, 'name')}"
        params = [{"name": p.get("name"), "type": p.get("type_text") or _FROM_TYPE_NAME.get(str(p.get("type_name", "")).upper())}
                  for p in (f.get("input_params") or {}).get("parameters", [])]
        return function_json(c.functions.create_function(full, _need(f, "routine_definition"), f.get("full_data_type") or
                                                         _FROM_TYPE_NAME.get(str(f.get("data_type", "")).upper(), "string"), params,
                                                         f.get("routine_body") or "SQL", f.get("comment")))

    def get_function(c: Any, r: Request, b: Any) -> Any:
        return function_json(c.functions.get_function(r.path_params["name"]))

    def delete_function(c: Any, r: Request, b: Any) -> Any:
        c.functions.delete_function(r.path_params["name"])
        return {}

    # registered models and versions --------------------------------------------------------
    def list_models(c: Any, r: Request, b: Any) -> Any:
        cat = r.query_params.get("catalog_name") or _need({}, "catalog_name")
        sch = r.query_params.get("schema_name") or _need({}, "schema_name")
        return page(c.models.list_registered_models(cat, sch, r.query_params.get("page_token"), _int(r, "max_results")),
                    "registered_models", model_json)

    def create_model(c: Any, r: Request, b: Any) -> Any:
        full = f"{_need(b, 'catalog_name')}.{_need(b, 'schema_name')}.{_need(b, 'name')}"
        return model_json(c.models.create_registered_model(full, b.get("comment")))

    def get_model(c: Any, r: Request, b: Any) -> Any:
        return model_json(c.models.get_registered_model(r.path_params["name"]))

    def update_model(c: Any, r: Request, b: Any) -> Any:
        name = r.path_params["name"]
        if b.get("owner"):
            c.grants.transfer_ownership("model", name, b["owner"])
        if any(b.get(k) is not None for k in ("comment", "new_name")):
            return model_json(c.models.update_registered_model(name, b.get("comment"), None, b.get("new_name")))
        return model_json(c.models.get_registered_model(name))

    def delete_model(c: Any, r: Request, b: Any) -> Any:
        c.models.delete_registered_model(r.path_params["name"])
        return {}

    def create_version(c: Any, r: Request, b: Any) -> Any:
        full = f"{_need(b, 'catalog_name')}.{_need(b, 'schema_name')}.{_need(b, 'model_name')}"
        return version_json(c.models.create_model_version(full, _need(b, "source"), b.get("run_id"), b.get("comment"),
                                                          signature=b.get("signature"), feature_spec=b.get("feature_spec")))

    def list_versions(c: Any, r: Request, b: Any) -> Any:
        return page(c.models.list_model_versions(r.path_params["name"], r.query_params.get("page_token"), _int(r, "max_results")),
                    "model_versions", version_json)

    def get_version(c: Any, r: Request, b: Any) -> Any:
        return version_json(c.models.get_model_version(r.path_params["name"], int(r.path_params["version"])))

    def update_version(c: Any, r: Request, b: Any) -> Any:
        return version_json(c.models.update_model_version(r.path_params["name"], int(r.path_params["version"]), b.get("comment") or ""))

    def finalize_version(c: Any, r: Request, b: Any) -> Any:
        return version_json(c.models.finalize_model_version(r.path_params["name"], int(r.path_params["version"])))

    def delete_version(c: Any, r: Request, b: Any) -> Any:
        c.models.delete_model_version(r.path_params["name"], int(r.path_params["version"]))
        return {}

    # permissions and credentials -----------------------------------------------------------
    def get_permissions(c: Any, r: Request, b: Any) -> Any:
        kind = Kind.parse(r.path_params["type"])
        grants = c.grants.list_grants(kind, None if kind is Kind.METASTORE else r.path_params["name"], r.query_params.get("principal"))
        by: dict[str, list[str]] = {}
        for g in grants:
            by.setdefault(g.principal, []).append(g.privilege.value.replace(" ", "_"))
        return {"privilege_assignments": [{"principal": p, "privileges": sorted(v)} for p, v in sorted(by.items())]}

    def update_permissions(c: Any, r: Request, b: Any) -> Any:
        kind = Kind.parse(r.path_params["type"])
        name = None if kind is Kind.METASTORE else r.path_params["name"]
        for change in b.get("changes") or []:
            who = _need(change, "principal")
            if change.get("add"):
                c.grants.grant(kind, name, who, change["add"])
            if change.get("remove"):
                c.grants.revoke(kind, name, who, change["remove"])
        return get_permissions(c, r, b)

    def table_credentials(c: Any, r: Request, b: Any) -> Any:
        table_id = _need(b, "table_id")
        name = table_id if "." in table_id else c.tables.get_table_by_id(table_id).full_name
        cred = c.tables.generate_temporary_credentials(name, b.get("operation") or "READ")
        return {"url": cred.url, "expiration_time": ms(cred.expiration_time)}

    def set_alias(c: Any, r: Request, b: Any) -> Any:
        return model_json(c.models.set_alias(r.path_params["name"], r.path_params["alias"], int(_need(b, "version_num"))))

    def delete_alias(c: Any, r: Request, b: Any) -> Any:
        c.models.delete_alias(r.path_params["name"], r.path_params["alias"])
        return {}

    def get_by_alias(c: Any, r: Request, b: Any) -> Any:
        return version_json(c.models.get_version_by_alias(r.path_params["name"], r.path_params["alias"]))

    def model_version_credentials(c: Any, r: Request, b: Any) -> Any:
        full = f"{_need(b, 'catalog_name')}.{_need(b, 'schema_name')}.{_need(b, 'model_name')}"
        cred = c.models.generate_temporary_credentials(full, int(_need(b, "version")), b.get("operation") or "READ_MODEL_VERSION")
        return {"url": uri(cred.url), "expiration_time": ms(cred.expiration_time)}

    # external locations and storage credentials -------------------------------------------
    def list_locations(c: Any, r: Request, b: Any) -> Any:
        return page(c.external_locations.list_external_locations(r.query_params.get("page_token"), _int(r, "max_results")),
                    "external_locations", location_json)

    def create_location(c: Any, r: Request, b: Any) -> Any:
        return location_json(c.external_locations.create_external_location(
            _need(b, "name"), _need(b, "url"), b.get("credential_name"), b.get("comment"), bool(b.get("read_only") or False)))

    def get_location(c: Any, r: Request, b: Any) -> Any:
        return location_json(c.external_locations.get_external_location(r.path_params["name"]))

    def update_location(c: Any, r: Request, b: Any) -> Any:
        name = r.path_params["name"]
        if b.get("owner"):
            c.grants.transfer_ownership(Kind.EXTERNAL_LOCATION, name, b["owner"])
        keys = ("url", "credential_name", "comment", "new_name", "read_only")
        if any(b.get(k) is not None for k in keys):
            return location_json(c.external_locations.update_external_location(name, **{k: b.get(k) for k in keys}, force=bool(b.get("force"))))
        return location_json(c.external_locations.get_external_location(name))

    def delete_location(c: Any, r: Request, b: Any) -> Any:
        c.external_locations.delete_external_location(r.path_params["name"], force=_force(r))
        return {}

    def list_credentials(key: str) -> Any:
        def list_(c: Any, r: Request, b: Any) -> Any:
            if r.query_params.get("purpose") not in (None, "", "STORAGE"):
                return {key: [], "next_page_token": None}
            return page(c.storage_credentials.list_storage_credentials(r.query_params.get("page_token"), _int(r, "max_results")),
                        key, credential_json)
        return list_

    def create_credential(c: Any, r: Request, b: Any) -> Any:
        _no_identity(b)
        return credential_json(c.storage_credentials.create_storage_credential(_need(b, "name"), b.get("comment"), bool(b.get("read_only") or False)))

    def get_credential(c: Any, r: Request, b: Any) -> Any:
        return credential_json(c.storage_credentials.get_storage_credential(r.path_params["name"]))

    def update_credential(c: Any, r: Request, b: Any) -> Any:
        _no_identity(b)
        name = r.path_params["name"]
        if b.get("owner"):
            c.grants.transfer_ownership(Kind.STORAGE_CREDENTIAL, name, b["owner"])
        if any(b.get(k) is not None for k in ("comment", "new_name", "read_only")):
            return credential_json(c.storage_credentials.update_storage_credential(name, b.get("comment"), b.get("new_name"), b.get("read_only")))
        return credential_json(c.storage_credentials.get_storage_credential(name))

    def delete_credential(c: Any, r: Request, b: Any) -> Any:
        c.storage_credentials.delete_storage_credential(r.path_params["name"], force=_force(r))
        return {}

    def r(path: str, fn: Any, methods: list[str], shape: str | None = None) -> Route:
        return Route(PREFIX + path, handler(fn, shape=SHAPES[shape] if shape else None), methods=methods)

    # Databricks serves credentials at /storage-credentials, Unity Catalog OSS at /credentials (with a purpose).
    storage_routes = [
        r("/external-locations", list_locations, ["GET"]), r("/external-locations", create_location, ["POST"], "location"),
        r("/external-locations/{name}", get_location, ["GET"]), r("/external-locations/{name}", update_location, ["PATCH"], "location_update"),
        r("/external-locations/{name}", delete_location, ["DELETE"]),
    ] + [route for path, key in (("/storage-credentials", "storage_credentials"), ("/credentials", "credentials")) for route in (
        r(path, list_credentials(key), ["GET"]), r(path, create_credential, ["POST"], "credential"), r(path + "/{name}", get_credential, ["GET"]),
        r(path + "/{name}", update_credential, ["PATCH"], "credential_update"), r(path + "/{name}", delete_credential, ["DELETE"]))]
    return [
        r("/catalogs", list_catalogs, ["GET"]), r("/catalogs", create_catalog, ["POST"], "create"),
        r("/catalogs/{name}", get_catalog, ["GET"]), r("/catalogs/{name}", update_catalog, ["PATCH"], "update"), r("/catalogs/{name}", delete_catalog, ["DELETE"]),
        r("/schemas", list_schemas, ["GET"]), r("/schemas", create_schema, ["POST"], "create"),
        r("/schemas/{name}", get_schema, ["GET"]), r("/schemas/{name}", update_schema, ["PATCH"], "update"), r("/schemas/{name}", delete_schema, ["DELETE"]),
        r("/tables", list_tables, ["GET"]), r("/tables", create_table, ["POST"], "table"),
        r("/tables/{name}", get_table, ["GET"]), r("/tables/{name}", delete_table, ["DELETE"]),
        r("/functions", list_functions, ["GET"]), r("/functions", create_function, ["POST"], "function"),
        r("/functions/{name}", get_function, ["GET"]), r("/functions/{name}", delete_function, ["DELETE"]),
        r("/models", list_models, ["GET"]), r("/models", create_model, ["POST"], "create"),
        r("/models/versions", create_version, ["POST"], "version"),
        r("/models/{name}", get_model, ["GET"]), r("/models/{name}", update_model, ["PATCH"], "update"), r("/models/{name}", delete_model, ["DELETE"]),
        r("/models/{name}/versions", list_versions, ["GET"]),
        r("/models/{name}/versions/{version:int}", get_version, ["GET"]), r("/models/{name}/versions/{version:int}", update_version, ["PATCH"], "comment"),
        r("/models/{name}/versions/{version:int}", delete_version, ["DELETE"]),
        r("/models/{name}/versions/{version:int}/finalize", finalize_version, ["PATCH"]),
        r("/models/{name}/aliases/{alias}", set_alias, ["PUT"], "alias"), r("/models/{name}/aliases/{alias}", delete_alias, ["DELETE"]),
        r("/models/{name}/aliases/{alias}", get_by_alias, ["GET"]),
        r("/permissions/{type}/{name}", get_permissions, ["GET"]), r("/permissions/{type}/{name}", update_permissions, ["PATCH"], "permissions"),
        r("/temporary-table-credentials", table_credentials, ["POST"], "table_credentials"),
        r("/temporary-model-version-credentials", model_version_credentials, ["POST"], "version_credentials"),
        *storage_routes,
    ]

