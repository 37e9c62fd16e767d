"""`cairn features ...`: feature tables, training sets and publishing, over the governed services.

Registered on the main command group in api/cli.py; uses its context object (`env.cairn()`,
`env.as_json`) and reports Cairn errors as one line, like every other command.
"""

from __future__ import annotations

import json
from typing import Any

import click

from api.cli_common import governed as _governed


def _show(env: Any, rows: list[dict[str, Any]] | dict[str, Any], title: str) -> None:
    if env.as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    rows = [{"field": k, "value": v} for k, v in rows.items()] if isinstance(rows, dict) else rows
    if not rows:
        Console().print("[dim](none)[/dim]")
        return
    table = Table(title=title)
    for key in rows[0]:
        table.add_column(str(key))
    for row in rows:
        table.add_row(*("" if v is None else (", ".join(map(str, v)) if isinstance(v, list) else str(v)) for v in row.values()))
    Console().print(table)


def _scope(scope: str) -> tuple[str, str | None]:
    from catalog import names

    fn = names.parse(scope)
    return fn.catalog, fn.schema if len(fn.parts) > 1 else None


@click.group()
def features() -> None:
    """Feature tables, training sets and online publishing."""


@features.command("tables")
@click.argument("scope")
@_governed
def tables(env: Any, scope: str) -> None:
    """Feature tables in CATALOG or CATALOG.SCHEMA: keys, freshness (last commit), published version."""
    from pipelines.features.catalog_view import list_feature_tables

    rows = list_feature_tables(env.cairn(), *_scope(scope))
    keep = ("name", "primary_keys", "timestamp_keys", "version", "last_commit", "published_version", "published_at")
    _show(env, rows if env.as_json else [{k: r[k] for k in keep} for r in rows], "feature tables")


@features.command("get")
@click.argument("name")
@_governed
def get(env: Any, name: str) -> None:
    """One feature table."""
    from pipelines.features.catalog_view import get_feature_table

    _show(env, get_feature_table(env.cairn(), name), name)


@features.command("training-sets")
@click.argument("scope")
@_governed
def training_sets(env: Any, scope: str) -> None:
    """Saved training sets in CATALOG or CATALOG.SCHEMA: label source, feature tables and versions, models."""
    from pipelines.features.catalog_view import list_training_sets

    rows = list_training_sets(env.cairn(), *_scope(scope))
    if env.as_json:
        _show(env, rows, "training sets")
        return
    _show(env, [{"name": r["name"], "label": r["spec"]["label_source"]["table"], "label_version": r["spec"]["label_source"]["version"],
                 "feature_tables": [f"{f['table']}@v{f['version']}" for f in r["spec"]["feature_tables"]],
                 "point_in_time": r["spec"]["point_in_time"], "models": r["models"]} for r in rows], "training sets")


@features.command("training-set")
@click.argument("name")
@_governed
def training_set(env: Any, name: str) -> None:
    """One saved training set with its full spec."""
    from pipelines.features.catalog_view import get_training_set

    row = get_training_set(env.cairn(), name)
    _show(env, row if env.as_json else {**row, "spec": json.dumps(row["spec"], indent=1)}, name)


@features.command("publish")
@click.argument("name")
@_governed
def publish(env: Any, name: str) -> None:
    """Publish the latest row per key to the online store (SQLite under CAIRN_HOME); incremental after the first."""
    from pipelines.features import FeatureEngineeringClient

    res = FeatureEngineeringClient(env.cairn()).publish_table(name)
    click.echo(f"{res.mode.lower()} publish of {res.table} at version {res.version}: {res.keys_written} key(s) written, "
               f"{res.keys_deleted} deleted in {res.seconds:.2f} s")
