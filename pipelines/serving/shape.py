"""The Databricks serving-endpoints JSON shape, both ways, for every transport (REST, CLI).

>>> args = create_args({"name": "churn", "config": {"served_entities": [{"entity_name": "m.s.churn", "entity_version": "3"}]}})
>>> args["name"], args["served_entities"][0]["entity_version"]
('churn', '3')
"""

from __future__ import annotations

from typing import Any

from catalog.entities import ServingEndpoint
from catalog.errors import InvalidArgument


def _config(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise InvalidArgument("config must be an object with served_entities (and traffic_config)")
    unknown = set(config) - {"served_entities", "served_models", "traffic_config", "auto_capture_config"}
    if unknown:
        raise InvalidArgument(f"config: unknown field(s) {sorted(unknown)}")
    traffic = config.get("traffic_config")
    if traffic is not None and (not isinstance(traffic, dict) or set(traffic) - {"routes"}):
        raise InvalidArgument("config.traffic_config must be {routes: [{served_model_name, traffic_percentage}]}")
    entities = config.get("served_entities", config.get("served_models"))
    if isinstance(entities, list):  # served_models (older API) name the model `model_name`/`model_version`
        entities = [{("entity_name" if k == "model_name" else "entity_version" if k == "model_version" else k): v
                     for k, v in e.items()} if isinstance(e, dict) else e for e in entities]
    return {"served_entities": entities, "routes": (traffic or {}).get("routes")}


def create_args(body: Any) -> dict[str, Any]:
    """`ServingService.create_endpoint` arguments from a `POST /api/2.0/serving-endpoints` body."""
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise InvalidArgument("the body needs a name (string) and a config")
    unknown = set(body) - {"name", "config", "auto_capture_config", "comment", "tags", "route_optimized"}
    if unknown:
        raise InvalidArgument(f"unknown field(s) {sorted(unknown)}")
    if "config" not in body:
        raise InvalidArgument("the body needs a config with served_entities")
    cfg = _config(body["config"])
    capture = body["config"].get("auto_capture_config", body.get("auto_capture_config"))
    return {"name": body["name"], **cfg, "auto_capture_config": capture, "comment": body.get("comment")}


def update_args(body: Any) -> dict[str, Any]:
    """`ServingService.update_config` arguments from a `PUT .../config` body."""
    cfg = _config({k: v for k, v in (body or {}).items() if k != "auto_capture_config"} if isinstance(body, dict) else body)
    return cfg


def endpoint_json(ep: ServingEndpoint, states: dict[str, str] | None = None) -> dict[str, Any]:
    """An endpoint as Databricks describes one; entity states from this server when it runs them."""
    states = states or {}
    entities = []
    for e in ep.served_entities:
        live = states.get(e.name)
        entities.append({
            "name": e.name, "entity_name": e.entity_name, "entity_version": str(e.entity_version), "workload_size": e.workload_size,
            "scale_to_zero_enabled": e.scale_to_zero_enabled,
            "state": {"deployment": "DEPLOYMENT_READY" if live in (None, "READY", "SCALED_TO_ZERO", "NOT_LOADED") else
                      "DEPLOYMENT_FAILED" if live == "LOAD_FAILED" else "DEPLOYMENT_CREATING", "cairn_state": live or "NOT_LOADED"},
        })
    config: dict[str, Any] = {
        "served_entities": entities,
        "traffic_config": {"routes": [{"served_model_name": r.served_model_name, "traffic_percentage": r.traffic_percentage} for r in ep.routes]},
        "config_version": ep.config_version,
    }
    if ep.inference_table:
        catalog, schema, table = ep.inference_table.split(".")
        config["auto_capture_config"] = {"catalog_name": catalog, "schema_name": schema, "table_name_prefix": table.removesuffix("_payload"),
                                         "enabled": True, "state": {"payload_table": {"name": table}}}
    return {
        "name": ep.name, "id": str(ep.id), "creator": ep.created_by, "owner": ep.owner,
        "creation_timestamp": int(ep.created_at.timestamp() * 1000), "last_updated_timestamp": int(ep.updated_at.timestamp() * 1000),
        "state": {"ready": "READY" if ep.state == "READY" else "NOT_READY", "config_update": "NOT_UPDATING"},
        "config": config, "comment": ep.comment, "inference_table": ep.inference_table,
    }
