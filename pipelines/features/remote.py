"""The feature store client against a Cairn server (`FeatureEngineeringClient(url="http://...", token=...)`).

The same methods as the embedded client, each one call to the feature store routes of `cairn serve`
(api/features_rest.py), which run the embedded client there as the token's principal: the same
governed services, checks, audit rows and lineage. Tables travel as Arrow IPC streams (base64 in
the JSON body), so a request is bounded by the server's body limit (CAIRN_API_MAX_BODY, 16 MiB);
larger label sets belong in a catalog table, named instead of sent. Errors come back as the
CairnError the server raised (InvalidArgument, PermissionDenied, ...), with its message.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from catalog import errors
from catalog.errors import CairnError, InvalidArgument
from pipelines.features.spec import FeatureFunction, FeatureLookup, FeatureTable, to_arrow

PREFIX = "/api/cairn/features"


def encode(table: Any) -> str:
    """An Arrow table as base64 text of its IPC stream."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def decode(text: Any) -> Any:
    """The Arrow table of `encode`'s text; InvalidArgument when it is not one."""
    import pyarrow as pa

    if not isinstance(text, str):
        raise InvalidArgument("'arrow' must be base64 text of an Arrow IPC stream")
    try:
        return pa.ipc.open_stream(base64.b64decode(text, validate=True)).read_all()
    except (ValueError, pa.ArrowException) as exc:
        raise InvalidArgument(f"'arrow' is not an Arrow IPC stream: {exc}") from None


def _errors() -> dict[str, type[CairnError]]:
    out: dict[str, type[CairnError]] = {}
    for name in dir(errors):
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, CairnError) and cls.code not in out:
            out[cls.code] = cls
    return out


def table_json(t: Any) -> dict[str, Any]:
    return {"name": t.name, "primary_keys": list(t.primary_keys), "timestamp_keys": list(t.timestamp_keys), "features": list(t.features),
            "description": t.description, "version": t.version, "last_commit": t.last_commit.isoformat() if t.last_commit else None,
            "partition_columns": list(t.partition_columns)}


class RemoteFeatureEngineeringClient:
    """`FeatureEngineeringClient` over HTTP; see the module docstring."""

    def __init__(self, url: str, token: str | None, timeout: float = 600.0) -> None:
        import httpx

        if not token:
            raise InvalidArgument("a server needs a token: FeatureEngineeringClient(url=..., token=...) (`cairn token create`)")
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url + PREFIX, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        from urllib.parse import quote

        resp = self._http.request(method, quote(path), json=body)
        try:
            data = resp.json()
        except ValueError:
            data = {"error_code": "INTERNAL", "message": resp.text[:200]}
        if resp.status_code >= 400:
            cls = _errors().get(str(data.get("error_code")), CairnError)
            raise cls(str(data.get("message") or f"HTTP {resp.status_code}"))
        return data

    # feature tables ------------------------------------------------------------------------
    def create_table(self, name: str, primary_keys: str | list[str], timestamp_keys: str | list[str] | None = None, df: Any = None,
                     schema: Any = None, partition_columns: str | list[str] | None = None, description: str | None = None,
                     tags: dict[str, str] | None = None) -> Any:
        from catalog import delta

        columns = None
        if schema is not None:
            columns = [dict(c) for c in schema] if isinstance(schema, list) else \
                [{"name": c.name, "type": c.type_text, "nullable": c.nullable} for c in delta.columns_of(schema)]
        body = {"name": name, "primary_keys": [primary_keys] if isinstance(primary_keys, str) else list(primary_keys or []),
                "timestamp_keys": [timestamp_keys] if isinstance(timestamp_keys, str) else list(timestamp_keys or []),
                "columns": columns, "arrow": encode(to_arrow(df)) if df is not None else None,
                "partition_columns": [partition_columns] if isinstance(partition_columns, str) else list(partition_columns or []),
                "description": description, "tags": tags}
        return _feature_table(self._call("POST", "/tables", body))

    def write_table(self, name: str, df: Any, mode: str = "merge") -> int:
        return int(self._call("POST", f"/tables/{name}/write", {"arrow": encode(to_arrow(df)), "mode": mode})["version"])

    def get_table(self, name: str) -> Any:
        return _feature_table(self._call("GET", f"/tables/{name}"))

    def read_table(self, name: str, as_of_version: int | None = None, as_of_timestamp: Any = None, format: str = "pandas") -> Any:
        body = {"version": as_of_version, "timestamp": str(as_of_timestamp) if as_of_timestamp is not None else None}
        out = decode(self._call("POST", f"/tables/{name}/read", body)["arrow"])
        return out.to_pandas() if format == "pandas" else out

    def drop_table(self, name: str, online_stores: Any = None) -> int:
        if online_stores:
            raise InvalidArgument("a server clears its own online stores; leave online_stores out")
        return int(self._call("DELETE", f"/tables/{name}").get("online_rows_removed", 0))

    # training sets -------------------------------------------------------------------------
    def create_training_set(self, df: Any, feature_lookups: list[FeatureLookup | FeatureFunction], label: str | list[str] | None,
                            exclude_columns: list[str] | None = None) -> RemoteTrainingSet:
        if type(df).__module__.startswith("pyspark"):
            raise InvalidArgument("a Spark DataFrame cannot be sent to a server; name a catalog table, or use the embedded client on Spark")
        body: dict[str, Any] = {
            "lookups": [f.to_dict() for f in feature_lookups if isinstance(f, FeatureLookup)],
            "functions": [f.to_dict() for f in feature_lookups if isinstance(f, FeatureFunction)],
            "label": [label] if isinstance(label, str) else list(label or []), "exclude_columns": list(exclude_columns or []),
        }
        if any(not isinstance(f, (FeatureLookup, FeatureFunction)) for f in feature_lookups):
            raise InvalidArgument("feature_lookups holds something else; give FeatureLookup or FeatureFunction objects")
        if isinstance(df, str):
            body["label_table"] = df
        else:
            body["arrow"] = encode(to_arrow(df))
        spec = self._call("POST", "/training-sets", {**body, "plan_only": True})["spec"]  # checked and pinned now
        return RemoteTrainingSet(self, body, spec)

    def get_training_set_spec(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/training-sets/{name}/spec")

    # online --------------------------------------------------------------------------------
    def publish_table(self, name: str, online_store: Any = None) -> Any:
        if online_store is not None:
            raise InvalidArgument("a server publishes to its own online store; leave online_store out")
        from pipelines.features.online import PublishResult

        return PublishResult(**self._call("POST", f"/tables/{name}/publish", {}))

    def read_online_features(self, name: str, keys: list[dict[str, Any]] | Any, feature_names: list[str] | None = None,
                             online_store: Any = None) -> Any:
        if online_store is not None:
            raise InvalidArgument("a server reads its own online store; leave online_store out")
        from pipelines.features.online import OnlineFeatures

        if hasattr(keys, "to_dict"):
            keys = keys.to_dict("records")
        got = self._call("POST", f"/tables/{name}/online", {"keys": list(keys), "feature_names": feature_names})
        at = got.get("published_at")
        return OnlineFeatures(got["rows"], got.get("version"), datetime.fromisoformat(at) if at else None)


def _feature_table(d: dict[str, Any]) -> Any:
    return FeatureTable(d["name"], tuple(d["primary_keys"]), tuple(d["timestamp_keys"]), tuple(d["features"]), d.get("description"),
                        int(d["version"]), datetime.fromisoformat(d["last_commit"]) if d.get("last_commit") else None,
                        tuple(d.get("partition_columns") or ()))


@dataclass
class RemoteTrainingSet:
    """A training set the server checked at `create_training_set`; `load_df` and `save` build it
    there from the table versions pinned then (`spec`)."""

    client: RemoteFeatureEngineeringClient
    body: dict[str, Any]
    pinned: dict[str, Any]

    def _versions(self) -> dict[str, Any]:
        return {"versions": {t["table"]: t["version"] for t in self.pinned["feature_tables"]},
                "label_version": self.pinned["label_source"]["version"]}

    def spec(self) -> dict[str, Any]:
        return self.pinned

    def load_df(self, format: str | None = None) -> Any:
        got = self.client._call("POST", "/training-sets", {**self.body, **self._versions()})
        out = decode(got["arrow"])
        return out if format == "arrow" else out.to_pandas()

    def save(self, name: str) -> dict[str, Any]:
        """Materialize on the server as the governed table `name`; returns {"table": full name, "spec": ...}."""
        return self.client._call("POST", "/training-sets", {**self.body, **self._versions(), "save_as": name})
