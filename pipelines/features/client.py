"""The feature store client, named after the Databricks Feature Engineering client.

    from pipelines.features import FeatureEngineeringClient, FeatureLookup
    fe = FeatureEngineeringClient(ms.as_principal("alice"))
    fe.create_table("main.ml.user_features", primary_keys=["user_id", "ts"], timestamp_keys=["ts"], df=features)
    ts = fe.create_training_set(labels, [FeatureLookup("main.ml.user_features", "user_id", timestamp_lookup_key="ts")], label="y")
    train = ts.load_df()

Everything goes through the governed services of the `Cairn` client it is bound to: feature tables
are catalog tables (primary and timestamp keys, change data feed on), reads are checked, filtered,
masked and audited (`data.plan_scans`), writes need MODIFY, and saved training sets are catalog
tables carrying their spec, with their lineage recorded by the operation that made them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from catalog import delta
from catalog.errors import FailedPrecondition, InvalidArgument
from pipelines.features.spec import (
    PARTITION_COLUMNS,
    SPEC,
    UNIQUE_VERSION,
    FeatureFunction,
    FeatureLookup,
    FeatureTable,
    to_arrow,
)

FEATURE_TABLE = "cairn.feature_table"


def dedupe(table: Any, keys: list[str]) -> Any:
    """The last row of `table` for each key (later rows in the input win, as a later commit would)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows < 2:
        return table
    idx = pa.array(range(table.num_rows), pa.int64())
    grouped = table.append_column("__i", idx).group_by(keys, use_threads=False).aggregate([("__i", "max")])
    keep = pc.sort_indices(grouped.column("__i_max"))
    return table.take(pc.take(grouped.column("__i_max"), keep))


class FeatureEngineeringClient:
    """Feature tables, training sets and online features, acting as one principal.

    `cairn` is a principal-bound client (`Metastore.as_principal(name)`); with `home`/`url` and
    `principal` instead, the client opens the metastore itself. With an http(s) `url` and a `token`
    (`cairn token create`), it is a client of that Cairn server (pipelines/features/remote.py):
    the same methods, run by the server as the token's principal.
    """

    def __new__(cls, cairn: Any = None, *, home: str | None = None, url: str | None = None, principal: str | None = None,
                token: str | None = None) -> Any:
        if cls is FeatureEngineeringClient and cairn is None and url and url.startswith(("http://", "https://")):
            from pipelines.features.remote import RemoteFeatureEngineeringClient

            return RemoteFeatureEngineeringClient(url, token)  # not an instance of cls: __init__ does not run
        return super().__new__(cls)

    def __init__(self, cairn: Any = None, *, home: str | None = None, url: str | None = None, principal: str | None = None,
                 token: str | None = None) -> None:
        if cairn is None:
            from catalog.client import Metastore

            cairn = Metastore.open(home, url).as_principal(principal)
        self.cairn = cairn

    # feature tables ------------------------------------------------------------------------
    def create_table(
        self, name: str, primary_keys: str | list[str], timestamp_keys: str | list[str] | None = None, df: Any = None,
        schema: Any = None, partition_columns: str | list[str] | None = None, description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> FeatureTable:
        """Create a feature table: a Delta catalog table with primary keys (NOT NULL; the timestamp
        key is one of them) and the change data feed on, filled from `df` when given.

        `schema` is an Arrow schema or a list of column dicts; without it the columns come from `df`.
        `partition_columns` partition the Delta table (files under `col=value/`, values in the log;
        reads restore them, and a filter on them skips other partitions' files).
        Needs CREATE TABLE on the schema. Raises InvalidArgument naming a missing key column, or a
        partition column that is missing or of a type tables are not partitioned by (float, binary,
        nested); nothing is created then.
        """
        pks = [primary_keys] if isinstance(primary_keys, str) else list(primary_keys or [])
        tks = [timestamp_keys] if isinstance(timestamp_keys, str) else list(timestamp_keys or [])
        parts = [partition_columns] if isinstance(partition_columns, str) else list(partition_columns or [])
        if not pks:
            raise InvalidArgument("a feature table needs primary_keys")
        if len(tks) > 1:
            raise InvalidArgument("a feature table has at most one timestamp key")
        pks = [k.lower() for k in pks] + [t.lower() for t in tks if t.lower() not in [k.lower() for k in pks]]
        data = to_arrow(df) if df is not None else None
        if schema is not None:
            columns = [dict(c) for c in schema] if isinstance(schema, list) else \
                [{"name": c.name, "type": c.type_text, "nullable": c.nullable} for c in delta.columns_of(schema)]
        elif data is not None:
            columns = [{"name": c.name, "type": c.type_text, "nullable": c.nullable} for c in delta.columns_of(data.schema)]
        else:
            raise InvalidArgument("give a df or a schema to create a feature table")
        known = {str(c["name"]).lower() for c in columns}
        for k in pks:
            if k.lower() not in known:
                raise InvalidArgument(f"key column '{k}' is not a column of the feature table")
        for c in columns:
            if str(c["name"]).lower() in pks:
                c["nullable"] = False
        props = {FEATURE_TABLE: "true", UNIQUE_VERSION: "0"}
        if parts:
            props[PARTITION_COLUMNS] = ",".join(p.lower() for p in parts)
        self.cairn.tables.create_table(name, columns, comment=description, properties=props, primary_keys=pks,
                                       timestamp_keys=[t.lower() for t in tks], enable_change_data_feed=True,
                                       partition_columns=[p.lower() for p in parts])
        if tags:
            self.cairn.tags.set_tags("table", name, tags)
        if data is not None:
            self.write_table(name, data)
        return self.get_table(name)

    def write_table(self, name: str, df: Any, mode: str = "merge") -> int:
        """Upsert `df` into a feature table by its whole primary key (timestamp included), or
        replace its contents (`mode="overwrite"`). Rows of `df` repeating a key: the last one wins.
        Returns the new Delta version. Needs SELECT and MODIFY (merge) or MODIFY (overwrite)."""
        if mode not in ("merge", "overwrite"):
            raise InvalidArgument(f"mode must be merge or overwrite, not {mode!r}")
        table = self.cairn.tables.get_table(name)
        if not table.primary_keys:
            raise InvalidArgument(f"'{table.full_name}' is not a feature table: it has no primary key")
        data = to_arrow(df)
        for k in table.primary_keys:
            if k not in data.column_names:
                raise InvalidArgument(f"primary key column '{k}' is missing from the data written to '{table.full_name}'")
        data = dedupe(data, list(table.primary_keys))
        if mode == "merge":
            result = self.cairn.data.merge(table.full_name, data, on=list(table.primary_keys))
            unique = table.properties.get(UNIQUE_VERSION) == str(result.version - 1)
        else:
            result = self.cairn.data.write(table.full_name, data, mode="overwrite")
            unique = True
        self._note_unique(table, result.version if unique else None)
        return result.version

    def _note_unique(self, table: Any, version: int | None) -> None:
        """Record that this Delta version holds one row per primary key, so training sets can skip the
        tie-break. Only the owner may alter the table's properties; for anyone else the tie-break runs."""
        if table.owner != self.cairn.principal:
            return
        props = dict(table.properties)
        if version is None:
            props.pop(UNIQUE_VERSION, None)
        else:
            props[UNIQUE_VERSION] = str(version)
        if props != table.properties:
            self.cairn.tables.update_table(table.full_name, properties=props)

    def get_table(self, name: str) -> FeatureTable:
        """A feature table: keys, features, description, latest version and its commit time. Needs SELECT."""
        table = self.cairn.tables.get_table(name)
        if not table.primary_keys:
            raise InvalidArgument(f"'{table.full_name}' is not a feature table: it has no primary key")
        last = self.cairn.data.history(table.full_name, limit=1)
        version = int(last[0].get("version", 0)) if last else 0
        when = datetime.fromtimestamp(last[0]["timestamp"] / 1000, UTC) if last and "timestamp" in last[0] else None
        keys = set(table.primary_keys)
        parts = tuple(p for p in table.properties.get(PARTITION_COLUMNS, "").split(",") if p)
        return FeatureTable(table.full_name, table.primary_keys, table.timestamp_keys,
                            tuple(c.name for c in table.columns if c.name not in keys), table.comment, version, when, parts)

    def read_table(self, name: str, as_of_version: int | None = None, as_of_timestamp: Any = None, format: str = "pandas") -> Any:
        """The feature table's rows (as the reader may see them), optionally as of a version or time."""
        out = self.cairn.data.read(name, version=as_of_version, timestamp=as_of_timestamp)
        return out.to_pandas() if format == "pandas" else out

    def drop_table(self, name: str, online_stores: list[Any] | None = None) -> int:
        """Drop a feature table from the catalog, then its online rows: from the default SQLite
        store, every store this process published it to, and `online_stores` (a Redis store
        published to from another process must be named here). Needs ownership or MANAGE; when
        refused, nothing is removed anywhere. Returns how many online rows were removed."""
        from pipelines.features.online import drop_online

        table = self.cairn.tables.get_table(name)
        if not table.primary_keys:
            raise InvalidArgument(f"'{table.full_name}' is not a feature table: it has no primary key")
        self.cairn.tables.delete_table(table.full_name)
        return drop_online(self.cairn, table.full_name, online_stores)

    # training sets -------------------------------------------------------------------------
    def create_training_set(
        self, df: Any, feature_lookups: list[FeatureLookup | FeatureFunction], label: str | list[str] | None,
        exclude_columns: list[str] | None = None,
    ) -> Any:
        """A training set: the rows of `df` (pandas, Arrow, a Spark DataFrame, or the name of a
        catalog table) with the features of each lookup joined point in time, then the on-demand
        features. The snapshots of every table read are fixed here (checked and audited now, each
        with its Delta version); `load_df()` and `save()` read exactly those versions.
        Raises InvalidArgument naming a missing column, a type mismatch or a clashing output name;
        PermissionDenied when a table may not be read."""
        from pipelines.features.training import TrainingSet

        return TrainingSet.create(self, df, feature_lookups, label, exclude_columns)

    def get_training_set_spec(self, name: str) -> dict[str, Any]:
        """The spec a saved training set carries: label source and version, feature tables and
        versions, lookups and functions."""
        table = self.cairn.tables.get_table(name)
        raw = table.properties.get(SPEC)
        if raw is None:
            raise FailedPrecondition(f"'{table.full_name}' is not a saved training set")
        return json.loads(raw)

    # models (Databricks' fe.log_model / fe.score_batch; the work is pipelines.training's) ---------
    def log_model(self, model: Any, artifact_path: str, flavor: Any, training_set: Any, registered_model_name: str | None = None,
                  **kwargs: Any) -> Any:
        """Log `model` with the feature spec of `training_set` into the active MLflow run and, with
        `registered_model_name`, register it in the catalog as this client's principal. See
        `pipelines.training.log_model` (feature_columns, input_example, signature)."""
        from pipelines.training.logged import log_model

        return log_model(model, artifact_path, flavor, training_set, registered_model_name, cairn=self.cairn, **kwargs)

    def score_batch(self, model_uri: str, df: Any, result_name: str = "prediction") -> Any:
        """`df` with the predictions of the model at `model_uri`, its features looked up point in time
        by the keys in `df`, read as this client's principal. See `pipelines.training.score_batch`."""
        from pipelines.training.scoring import score_batch

        return score_batch(self.cairn, model_uri, df, result_name, client=self)

    # online --------------------------------------------------------------------------------
    def publish_table(self, name: str, online_store: Any = None) -> Any:
        """Publish the latest row per primary key to an online store (SQLite under CAIRN_HOME by
        default, or a `RedisOnlineStore`); a re-publish sends only the changes since the last
        published version, from the change data feed. Refused for tables with row filters or masks."""
        from pipelines.features.online import publish

        return publish(self.cairn, name, online_store)

    def read_online_features(self, name: str, keys: list[dict[str, Any]] | Any, feature_names: list[str] | None = None,
                             online_store: Any = None) -> Any:
        """Online features for a batch of keys (dicts of primary key -> value), in order; a key
        never published gives nulls. Needs SELECT on the feature table."""
        from pipelines.features.online import read_online

        return read_online(self.cairn, name, keys, feature_names, online_store)

    def online_reader(self, name: str, feature_names: list[str] | None = None, online_store: Any = None, ttl_seconds: float = 1.0) -> Any:
        """A reader for serving: SELECT checked and audited at open and once per `ttl_seconds`."""
        from pipelines.features.online import OnlineReader

        return OnlineReader(self.cairn, name, feature_names, online_store, ttl_seconds)
