"""What the CLI and GraphQL show of the feature store: feature tables (keys, freshness, published
state) and training sets (their spec, and the models their lineage leads to). Read through the
governed services only; a fact the caller may not read (a table's history without SELECT) is None."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from catalog.errors import CairnError, InvalidArgument
from pipelines.features.spec import SPEC


def _all_tables(cairn: Any, catalog: str, schema: str | None) -> list[Any]:
    out, token = [], None
    while True:
        page = cairn.tables.list_tables(catalog, schema, page_token=token, max_results=1000)
        out += list(page)
        token = page.next_page_token
        if not token:
            return out


def feature_table_info(cairn: Any, table: Any, online_store: Any = None) -> dict[str, Any]:
    """Keys, features, freshness (the last commit's version and time, for readers) and the online
    store's published version and time (None when never published)."""
    from pipelines.features.online import default_store, default_store_exists

    version = last_commit = None
    try:
        last = cairn.data.history(table.full_name, limit=1)
        if last:
            version = int(last[0].get("version", 0))
            last_commit = datetime.fromtimestamp(last[0]["timestamp"] / 1000, UTC) if "timestamp" in last[0] else None
    except CairnError:
        pass  # no SELECT: the catalog entry shows, its data's freshness does not
    store = online_store or (default_store(cairn) if default_store_exists(cairn) else None)
    published = store.state(table.full_name) if store is not None and version is not None else None
    keys = set(table.primary_keys)
    return {
        "name": table.full_name, "primary_keys": list(table.primary_keys), "timestamp_keys": list(table.timestamp_keys),
        "features": [c.name for c in table.columns if c.name not in keys], "description": table.comment, "owner": table.owner,
        "version": version, "last_commit": last_commit,
        "published_version": published[0] if published else None, "published_at": published[1] if published else None,
    }


def get_feature_table(cairn: Any, name: str) -> dict[str, Any]:
    table = cairn.tables.get_table(name)
    if not table.primary_keys:
        raise InvalidArgument(f"'{table.full_name}' is not a feature table: it has no primary key")
    return feature_table_info(cairn, table)


def list_feature_tables(cairn: Any, catalog: str, schema: str | None = None) -> list[dict[str, Any]]:
    """Tables with primary keys (feature tables) the caller may see, in name order."""
    return [feature_table_info(cairn, t) for t in _all_tables(cairn, catalog, schema) if t.primary_keys]


def training_set_info(cairn: Any, table: Any) -> dict[str, Any]:
    """A saved training set: its spec and the models (and versions) downstream of it in the lineage."""
    spec = json.loads(table.properties[SPEC])
    models: list[str] = []
    try:
        down = cairn.lineage.get_downstream(table.full_name)
        models = sorted({n.name for n in down.nodes if n.kind in ("MODEL", "MODEL_VERSION") and n.name and not n.restricted})
    except CairnError:
        pass
    return {"name": table.full_name, "owner": table.owner, "spec": spec, "models": models}


def get_training_set(cairn: Any, name: str) -> dict[str, Any]:
    table = cairn.tables.get_table(name)
    if SPEC not in table.properties:
        raise InvalidArgument(f"'{table.full_name}' is not a saved training set")
    return training_set_info(cairn, table)


def list_training_sets(cairn: Any, catalog: str, schema: str | None = None) -> list[dict[str, Any]]:
    return [training_set_info(cairn, t) for t in _all_tables(cairn, catalog, schema) if SPEC in t.properties]
