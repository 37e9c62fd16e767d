"""The feature store over HTTP, under /api/cairn/features (a transport only).

What `FeatureEngineeringClient(url=..., token=...)` calls (pipelines/features/remote.py): each
route runs the embedded client as the request's principal, so checks, audit rows, row filters and
masks, and lineage are those of every other path. Tables travel as base64 Arrow IPC streams in
the JSON body (bounded like every body: CAIRN_API_MAX_BODY).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from catalog.errors import InvalidArgument

PREFIX = "/api/cairn/features"
_TABLE = {"name": str, "primary_keys": [str], "timestamp_keys": [str], "columns": [dict], "arrow": str, "partition_columns": [str],
          "description": str, "tags": dict}
_TRAINING = {"arrow": str, "label_table": str, "lookups": [dict], "functions": [dict], "label": [str], "exclude_columns": [str],
             "plan_only": bool, "versions": dict, "label_version": int, "save_as": str}


def routes(handler: Any) -> list[Route]:
    """The feature store routes; `handler(fn, shape=...)` as in api/server.py."""
    from pipelines.features import FeatureEngineeringClient, FeatureFunction, FeatureLookup
    from pipelines.features.remote import decode, encode, table_json

    def fe(c: Any) -> Any:
        return FeatureEngineeringClient(c)

    def name(r: Request) -> str:
        return str(r.path_params["name"])

    def create_table(c: Any, r: Request, b: Any) -> Any:
        if not b.get("name"):
            raise InvalidArgument("give the feature table's name")
        t = fe(c).create_table(b["name"], b.get("primary_keys") or [], b.get("timestamp_keys") or None,
                               df=decode(b["arrow"]) if b.get("arrow") else None, schema=b.get("columns"),
                               partition_columns=b.get("partition_columns") or None, description=b.get("description"), tags=b.get("tags"))
        return table_json(t)

    def get_table(c: Any, r: Request, b: Any) -> Any:
        return table_json(fe(c).get_table(name(r)))

    def write_table(c: Any, r: Request, b: Any) -> Any:
        if not b.get("arrow"):
            raise InvalidArgument("give the rows to write as 'arrow'")
        return {"version": fe(c).write_table(name(r), decode(b["arrow"]), b.get("mode") or "merge")}

    def read_table(c: Any, r: Request, b: Any) -> Any:
        return {"arrow": encode(fe(c).read_table(name(r), b.get("version"), b.get("timestamp"), format="arrow"))}

    def drop_table(c: Any, r: Request, b: Any) -> Any:
        return {"online_rows_removed": fe(c).drop_table(name(r))}

    def training_set(c: Any, r: Request, b: Any) -> Any:
        labels = b.get("label_table") or (decode(b["arrow"]) if b.get("arrow") else None)
        if labels is None:
            raise InvalidArgument("give the training rows as 'arrow' or name a 'label_table'")
        lookups = [FeatureLookup.from_dict(d) for d in b.get("lookups") or []] + \
            [FeatureFunction.from_dict(d) for d in b.get("functions") or []]
        ts = fe(c).create_training_set(labels, lookups, b.get("label") or None, b.get("exclude_columns") or None)
        if b.get("plan_only"):
            return {"spec": ts.spec()}
        if b.get("versions") is not None or b.get("label_version") is not None:
            ts = ts.at_versions(b.get("versions") or {}, b.get("label_version"))
        if b.get("save_as"):
            table = ts.save(b["save_as"])
            return {"table": table.full_name, "spec": ts.spec()}
        return {"arrow": encode(ts.load_df(format="arrow")), "spec": ts.spec()}

    def training_set_spec(c: Any, r: Request, b: Any) -> Any:
        return fe(c).get_training_set_spec(name(r))

    def publish(c: Any, r: Request, b: Any) -> Any:
        got = fe(c).publish_table(name(r))
        return {"table": got.table, "version": got.version, "mode": got.mode, "keys_written": got.keys_written,
                "keys_deleted": got.keys_deleted, "seconds": got.seconds, "keys_point_read": got.keys_point_read}

    def online(c: Any, r: Request, b: Any) -> Any:
        if not isinstance(b.get("keys"), list):
            raise InvalidArgument("give 'keys': a list of primary key objects or values")
        got = fe(c).read_online_features(name(r), b["keys"], b.get("feature_names"))
        return {"rows": got.rows, "version": got.version, "published_at": got.published_at.isoformat() if got.published_at else None}

    def route(path: str, fn: Any, methods: list[str], shape: Any = None) -> Route:
        return Route(PREFIX + path, handler(fn, shape=shape, long=lambda body: True), methods=methods)

    return [
        route("/tables", create_table, ["POST"], _TABLE),
        route("/tables/{name}", get_table, ["GET"]),
        route("/tables/{name}", drop_table, ["DELETE"]),
        route("/tables/{name}/write", write_table, ["POST"], {"arrow": str, "mode": str}),
        route("/tables/{name}/read", read_table, ["POST"], {"version": int, "timestamp": str}),
        route("/tables/{name}/publish", publish, ["POST"], {}),
        route("/tables/{name}/online", online, ["POST"], {"keys": list, "feature_names": [str]}),
        route("/training-sets", training_set, ["POST"], _TRAINING),
        route("/training-sets/{name}/spec", training_set_spec, ["GET"]),
    ]
