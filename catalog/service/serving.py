"""Model serving endpoints: governed objects directly under the metastore, in the Databricks shape.

An endpoint serves model versions (`served_entities`), splits traffic between them by integer
percentages (`routes`), and may log every request to an inference table (a managed Delta table it
creates). As in Databricks, its permissions are CAN QUERY (invoke it) and CAN MANAGE (change its
config, grant on it, delete it); its owner and metastore admins hold both.

- Creating one needs EXECUTE on the registered model of each version it serves (and usage on its
  catalog and schema), SELECT on each feature table those versions' feature specs look up, and
  CREATE TABLE on the schema of its inference table.
- A config update needs CAN MANAGE (or ownership), and EXECUTE (and SELECT on the lookup tables)
  for every version it newly serves.
- Served feature lookups read the online store as the endpoint's OWNER (as Databricks uses its
  creator's credentials), checked when a model loads and every second after; a caller with CAN
  QUERY gets predictions only, never the looked-up rows.
- A query needs CAN QUERY: `authorize_query` returns what a server needs to answer it.
Lineage: model version → `endpoint:<name>` → inference table, recorded when the config says so.
"""

from __future__ import annotations

from typing import Any

from catalog import delta, storage
from catalog.entities import EndpointPlan, Page, ServedEntity, ServingEndpoint, TrafficRoute
from catalog.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from catalog.privileges import Kind, Privilege
from catalog.service.base import UnitOfWork
from catalog.service.common import (
    Service,
    decode_token,
    display,
    fetch,
    page_size,
    parse_for,
    resolve,
    validate_columns,
    validate_comment,
    visible_children,
)
from catalog.store.metastore import _aware
from catalog.store.serving import ServingStore
from lineage.recording import record_edges
from lineage.store import LineageStore

EP = Kind.SERVING_ENDPOINT
WORKLOAD_SIZES = ("Small", "Medium", "Large")
FEATURE_SPEC_PROPERTY = "cairn.feature_spec"
# The inference table's columns (Databricks' payload table, flattened where it nests).
INFERENCE_COLUMNS: list[dict[str, Any]] = [
    {"name": "request_id", "type": "string", "nullable": False},
    {"name": "client_request_id", "type": "string"},
    {"name": "timestamp", "type": "timestamp", "nullable": False},
    {"name": "date", "type": "date", "nullable": False},
    {"name": "status_code", "type": "int", "nullable": False},
    {"name": "execution_time_ms", "type": "double", "nullable": False},
    {"name": "served_entity", "type": "string"},
    {"name": "model_version", "type": "string"},
    {"name": "requester", "type": "string", "nullable": False},
    {"name": "request", "type": "string"},
    {"name": "response", "type": "string"},
]


def _entity(raw: Any, i: int) -> ServedEntity:
    if not isinstance(raw, dict):
        raise InvalidArgument(f"served_entities[{i}] must be an object with entity_name and entity_version")
    unknown = set(raw) - {"name", "entity_name", "entity_version", "workload_size", "scale_to_zero_enabled"}
    if unknown:
        raise InvalidArgument(f"served_entities[{i}]: unknown field(s) {sorted(unknown)}")
    model = raw.get("entity_name")
    if not isinstance(model, str) or not model:
        raise InvalidArgument(f"served_entities[{i}].entity_name must name a registered model (catalog.schema.model)")
    model = parse_for(Kind.MODEL, model).key
    version = raw.get("entity_version")
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidArgument(f"served_entities[{i}].entity_version must be a positive integer, not {version!r}")
    size = raw.get("workload_size", "Small")
    if size not in WORKLOAD_SIZES:
        raise InvalidArgument(f"served_entities[{i}].workload_size must be one of {', '.join(WORKLOAD_SIZES)}, not {size!r}")
    scale = raw.get("scale_to_zero_enabled", False)
    if not isinstance(scale, bool):
        raise InvalidArgument(f"served_entities[{i}].scale_to_zero_enabled must be true or false")
    name = raw.get("name") or f"{model.rsplit('.', 1)[1]}-{version}"
    if not isinstance(name, str) or len(name) > 63 or not name.replace("-", "").replace("_", "").isalnum():
        raise InvalidArgument(f"served_entities[{i}].name {name!r} must be letters, digits, '-' and '_' (at most 63)")
    return ServedEntity(name, model, version, size, scale)


def parse_config(served_entities: Any, routes: Any) -> tuple[list[ServedEntity], list[TrafficRoute]]:
    """Validate a config: 1..15 entities with distinct names; routes (default: all traffic to the
    only entity) naming served entities, integer percentages summing to 100.

    >>> es, rs = parse_config([{"entity_name": "m.l.churn", "entity_version": 2}], None)
    >>> es[0].name, rs[0].traffic_percentage
    ('churn-2', 100)
    """
    if not isinstance(served_entities, (list, tuple)) or not served_entities:
        raise InvalidArgument("config.served_entities must list at least one served entity")
    if len(served_entities) > 15:
        raise InvalidArgument("an endpoint serves at most 15 entities")
    entities = [_entity(e, i) for i, e in enumerate(served_entities)]
    names = [e.name for e in entities]
    if len(set(names)) != len(names):
        raise InvalidArgument(f"served entity names repeat: {names}")
    if routes is None:
        if len(entities) > 1:
            raise InvalidArgument("config.traffic_config.routes is required when an endpoint serves several entities")
        return entities, [TrafficRoute(entities[0].name, 100)]
    if not isinstance(routes, (list, tuple)) or not routes:
        raise InvalidArgument("config.traffic_config.routes must be a non-empty list")
    out: list[TrafficRoute] = []
    for i, r in enumerate(routes):
        if not isinstance(r, dict) or set(r) - {"served_model_name", "served_entity_name", "traffic_percentage"}:
            raise InvalidArgument(f"routes[{i}] must be {{served_model_name, traffic_percentage}}")
        target = r.get("served_model_name", r.get("served_entity_name"))
        if target not in names:
            raise InvalidArgument(f"routes[{i}].served_model_name {target!r} is not a served entity; served: {', '.join(names)}")
        pct = r.get("traffic_percentage")
        if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
            raise InvalidArgument(f"routes[{i}].traffic_percentage must be an integer from 0 to 100, not {pct!r}")
        out.append(TrafficRoute(target, pct))
    if len({r.served_model_name for r in out}) != len(out):
        raise InvalidArgument("routes name a served entity twice")
    if sum(r.traffic_percentage for r in out) != 100:
        raise InvalidArgument(f"traffic percentages sum to {sum(r.traffic_percentage for r in out)}, not 100")
    return entities, out


def _config(entities: list[ServedEntity], routes: list[TrafficRoute]) -> dict[str, Any]:
    return {
        "served_entities": [dict(name=e.name, entity_name=e.entity_name, entity_version=e.entity_version,
                                 workload_size=e.workload_size, scale_to_zero_enabled=e.scale_to_zero_enabled) for e in entities],
        "routes": [dict(served_model_name=r.served_model_name, traffic_percentage=r.traffic_percentage) for r in routes],
    }


def _endpoint(uow: UnitOfWork, sid: int, row: Any = None) -> ServingEndpoint:
    sec = fetch(uow, sid)
    row = row if row is not None else ServingStore(uow.conn).get(sid)
    if row is None:
        raise NotFound(f"serving endpoint '{sec.full_name}' has no config")
    cfg = row.config or {}
    return ServingEndpoint(
        sec.id, sec.full_name, sec.owner, sec.created_by, sec.created_at, _aware(row.updated_at), row.config_version,
        tuple(ServedEntity(**e) for e in cfg.get("served_entities", [])),
        tuple(TrafficRoute(**r) for r in cfg.get("routes", [])), row.inference_table, row.state, sec.comment,
    )


def _inference_target(raw: Any) -> tuple[str, str, str] | None:
    """(catalog, schema, table) of an `auto_capture_config`, or None when logging is off."""
    if raw is None or (isinstance(raw, dict) and raw.get("enabled") is False):
        return None
    if not isinstance(raw, dict):
        raise InvalidArgument("auto_capture_config must be {catalog_name, schema_name, table_name_prefix, enabled}")
    unknown = set(raw) - {"catalog_name", "schema_name", "table_name_prefix", "enabled"}
    if unknown:
        raise InvalidArgument(f"auto_capture_config: unknown field(s) {sorted(unknown)}")
    for key in ("catalog_name", "schema_name"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise InvalidArgument(f"auto_capture_config.{key} is required")
    prefix = raw.get("table_name_prefix") or "inference"
    fn = parse_for(Kind.TABLE, f"`{raw['catalog_name']}`.`{raw['schema_name']}`.`{prefix}_payload`")
    return fn.catalog, fn.schema, fn.name


def _lookup_tables(spec: str | None) -> list[str]:
    """The feature tables a version's feature spec (its `cairn.feature_spec` JSON) looks features up in."""
    import json

    lookups = json.loads(spec).get("lookups") if spec else None
    return [parse_for(Kind.TABLE, lk["table_name"]).key for lk in lookups or [] if isinstance(lk, dict) and isinstance(lk.get("table_name"), str)]


class ServingService(Service):
    def create_endpoint(self, name: str, served_entities: Any, routes: Any = None, auto_capture_config: Any = None,
                        comment: str | None = None) -> ServingEndpoint:
        """Create a serving endpoint owned by the caller.

        Needs EXECUTE on each served model version's registered model (with usage on its catalog and
        schema) and, with `auto_capture_config`, CREATE TABLE on that schema: the inference table
        `<table_name_prefix>_payload` is created there (an existing one with the same columns is
        reused when the caller may MODIFY it). Lineage: each version → the endpoint → the table.
        Raises InvalidArgument (config), NotFound, PermissionDenied, AlreadyExists, FailedPrecondition
        (a version that is not READY).
        """
        with self._uow("create_serving_endpoint", EP, display(name), served_entities=served_entities, routes=routes,
                       auto_capture_config=auto_capture_config) as uow:
            fn = parse_for(EP, name)
            entities, traffic = parse_config(served_entities, routes)
            target = _inference_target(auto_capture_config)
            self._require_execute(uow, entities)
            if uow.authz.resolve(EP, fn.key) is not None:
                raise AlreadyExists(f"serving endpoint '{fn.key}' already exists")
            table = self._inference_table(uow, target) if target else None
            root = uow.store.metastore_id()
            sec = uow.store.insert_securable(EP, root, fn.name, fn.key, uow.principal, uow.principal, validate_comment(comment))
            ServingStore(uow.conn).insert(sec.id, _config(entities, traffic), table)
            self._lineage(uow, fn.key, entities, table)
            return _endpoint(uow, sec.id)

    def get_endpoint(self, name: str) -> ServingEndpoint:
        """An endpoint the caller may see (owner, admin, CAN QUERY or CAN MANAGE); NotFound otherwise."""
        with self._uow("get_serving_endpoint", EP, display(name), write=False) as uow:
            sid, key = self._get(uow, name)
            uow.require_visible(sid, EP, key)
            return _endpoint(uow, sid)

    def list_endpoints(self, page_token: str | None = None, max_results: int | None = None) -> Page[ServingEndpoint]:
        """The endpoints the caller may see, by name, one page at a time."""
        with self._uow("list_serving_endpoints", Kind.METASTORE, None, write=False, page_token=page_token) as uow:
            uow.allow()
            page = visible_children(uow, uow.store.metastore_id(), (EP,), decode_token(page_token), page_size(max_results))
            rows = ServingStore(uow.conn).get_many([s.id for s in page.items])
            return Page(tuple(_endpoint(uow, s.id, rows.get(s.id)) for s in page.items if s.id in rows), page.next_page_token)

    def update_config(self, name: str, served_entities: Any, routes: Any = None) -> ServingEndpoint:
        """Replace what an endpoint serves and how traffic splits. Needs CAN MANAGE (or ownership)
        and EXECUTE on every model version it did not serve before. Servers switch once the new
        entities are loaded. Raises InvalidArgument, NotFound, PermissionDenied."""
        with self._uow("update_serving_endpoint_config", EP, display(name), served_entities=served_entities, routes=routes) as uow:
            sid, key = self._get(uow, name)
            self._require_manage(uow, sid, key, "change the config of")
            entities, traffic = parse_config(served_entities, routes)
            before = _endpoint(uow, sid)
            served = {e.model_version for e in before.served_entities}
            new = [e for e in entities if e.model_version not in served]
            self._require_execute(uow, new)
            ServingStore(uow.conn).update_config(sid, _config(entities, traffic))
            self._lineage(uow, key, new, None)
            uow.store.update_securable(sid, uow.principal)
            return _endpoint(uow, sid)

    def delete_endpoint(self, name: str) -> None:
        """Drop an endpoint (its inference table stays). Needs CAN MANAGE or ownership."""
        with self._uow("delete_serving_endpoint", EP, display(name)) as uow:
            sid, key = self._get(uow, name)
            self._require_manage(uow, sid, key, "drop")
            uow.store.delete_securable(sid)
            uow.store.log_authz_change("SUBTREE", sid)

    def authorize_query(self, name: str) -> EndpointPlan:
        """Check that the caller may query the endpoint (CAN QUERY, CAN MANAGE or ownership) and
        return what a server needs to answer: the endpoint and its model versions' sources."""
        with self._uow("query_serving_endpoint", EP, display(name), write=False) as uow:
            sid, key = self._get(uow, name)
            held = Privilege.CAN_MANAGE if uow.authz.has(uow.principal, Privilege.CAN_MANAGE, sid) else Privilege.CAN_QUERY
            uow.require(held, sid, EP, key, usage=False)
            endpoint = _endpoint(uow, sid)
            sources: dict[str, str] = {}
            specs: dict[str, str | None] = {}
            for e in endpoint.served_entities:
                vid = uow.authz.resolve(Kind.MODEL_VERSION, e.model_version)
                if vid is None:
                    raise FailedPrecondition(f"model version '{e.model_version}' served by '{key}' no longer exists")
                version = fetch(uow, vid)
                # Serve the catalog's own copy, uploaded to the version's managed storage at registration.
                # `source` is only where the registrant says it was logged: a path or URL there could name
                # another model's artifacts, a file of the server's, or an internal host, so it is never read.
                if not version.storage_location:
                    raise FailedPrecondition(f"model version '{e.model_version}' has no storage location to serve from")
                sources[e.name] = version.storage_location
                specs[e.name] = version.properties.get(FEATURE_SPEC_PROPERTY)
            return EndpointPlan(endpoint, sources, specs)

    # helpers -------------------------------------------------------------------------------
    @staticmethod
    def _get(uow: UnitOfWork, name: str) -> tuple[int, str]:
        key = parse_for(EP, name).key
        return resolve(uow, EP, key), key

    @staticmethod
    def _require_manage(uow: UnitOfWork, sid: int, key: str, what: str) -> None:
        """CAN MANAGE, ownership or admin (authz.can_manage counts CAN MANAGE as an endpoint's MANAGE)."""
        uow.require_manage(sid, EP, key, what)

    @staticmethod
    def _require_execute(uow: UnitOfWork, entities: list[ServedEntity]) -> None:
        for e in entities:
            mid = resolve(uow, Kind.MODEL, e.entity_name)
            uow.require(Privilege.EXECUTE, mid, Kind.MODEL, e.entity_name)
            vid = uow.authz.resolve(Kind.MODEL_VERSION, e.model_version)
            if vid is None:
                raise NotFound(f"model version '{e.model_version}' does not exist")
            version = fetch(uow, vid)
            if version.status != "READY":
                raise FailedPrecondition(f"model version '{e.model_version}' is {version.status}; only READY versions can be served")
            # Served lookups read the feature tables as the endpoint's owner: whoever makes an endpoint
            # serve a version must be able to read them too, so CAN MANAGE never borrows the owner's SELECT.
            for table in _lookup_tables(version.properties.get(FEATURE_SPEC_PROPERTY)):
                uow.require(Privilege.SELECT, resolve(uow, Kind.TABLE, table), Kind.TABLE, table)

    def _inference_table(self, uow: UnitOfWork, target: tuple[str, str, str]) -> str:
        """Create (or reuse) the managed Delta table requests are logged to; returns its name."""
        from deltalake import DeltaTable

        catalog, schema, name = target
        key = f"{catalog}.{schema}.{name}"
        schema_id = resolve(uow, Kind.SCHEMA, f"{catalog}.{schema}")
        uow.require(Privilege.CREATE_TABLE, schema_id, Kind.SCHEMA, f"{catalog}.{schema}")
        cols = validate_columns(INFERENCE_COLUMNS)
        existing = uow.authz.resolve(Kind.TABLE, key)
        if existing is not None:
            uow.require(Privilege.MODIFY, existing, Kind.TABLE, key)
            have = [(c.name, c.type_text) for c in fetch(uow, existing).columns]
            if have != [(c.name, c.type_text) for c in cols]:
                raise AlreadyExists(f"table '{key}' exists and is not an inference table; choose another table_name_prefix")
            return key
        table = uow.store.insert_securable(Kind.TABLE, schema_id, name, key, uow.principal, uow.principal,
                                           "Inference table of a serving endpoint", None,
                                           dict(table_type="MANAGED", data_source_format="DELTA"), cols)
        location = self.metastore.managed_location(catalog, schema, table.id)
        uow.store.update_securable(table.id, uow.principal, storage_location=location)
        uow.store.insert_storage_path(table.id, Kind.TABLE, storage.canonical(location))
        DeltaTable.create(location, delta.arrow_schema(cols), mode="error")  # last: a failure rolls the metastore back
        return key

    @staticmethod
    def _lineage(uow: UnitOfWork, endpoint: str, entities: list[ServedEntity], table: str | None) -> None:
        store = LineageStore(uow.conn)
        node = f"endpoint:{endpoint}"
        if entities:
            record_edges(store, None, [(f"model:{e.model_version}", None) for e in entities], [(node, None)])
        if table:
            record_edges(store, None, [(node, None)], [(table, None)])
