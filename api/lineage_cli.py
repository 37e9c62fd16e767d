"""`cairn lineage`: lineage of SQL text (`lineage sql`) and of the catalog's graph (`lineage show`).
Registered in api/cli.py."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from api.cli_common import Env, emit, governed


@click.group()
def lineage() -> None:
    """Lineage: SQL extraction and graph traversal."""


@lineage.command("sql")
@click.argument("file", type=click.File("r"))
@click.option("--dialect", default="spark", show_default=True, help="databricks, spark, ansi, hive, postgres, bigquery, snowflake, tsql, duckdb, mysql")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def lineage_sql(env: Env, file: Any, dialect: str, as_json: bool) -> None:
    """Table and column lineage of the SQL in FILE ('-' for stdin). Exits 1 when it cannot parse."""
    from lineage.sql import extract

    got = extract(file.read(), dialect)
    if got.errors and not (as_json or env.as_json):  # nothing but the errors: no empty tables around them
        for e in got.errors:
            click.echo(f"error: {e}", err=True)
        sys.exit(1)
    if as_json or env.as_json:
        click.echo(json.dumps({
            "sources": sorted(got.sources), "targets": sorted(got.targets),
            "columns": [{"source": e.source, "target": e.target, "kind": e.kind, "subtype": e.subtype} for e in sorted(got.columns)],
            "errors": [{"message": e.message, "line": e.line, "col": e.col} for e in got.errors],
        }, indent=2))
    else:
        emit(env, [{"sources": ", ".join(sorted(got.sources)), "targets": ", ".join(sorted(got.targets))}], "tables")
        emit(env, [{"source": e.source, "target": e.target, "kind": e.kind, "subtype": e.subtype} for e in sorted(got.columns)], "columns")
        for e in got.errors:
            click.echo(f"error: {e}", err=True)
    if got.errors:
        sys.exit(1)


@lineage.command("show")
@click.argument("name")
@click.option("--upstream", is_flag=True, help="Walk upstream instead of downstream.")
@click.option("--level", type=click.Choice(["TABLE", "COLUMN"], case_sensitive=False), default="TABLE")
@click.option("--depth", default=10, show_default=True)
@governed
def lineage_show(env: Env, name: str, upstream: bool, level: str, depth: int) -> None:
    """Downstream (or upstream) of a table, a model version (catalog.schema.model/N), or of
    catalog.schema.table.column with --level COLUMN."""
    svc = env.cairn().lineage
    res = (svc.get_upstream if upstream else svc.get_downstream)(name, level=level.upper(), depth=depth)
    label = {n.id: n.name or "(restricted)" for n in (res.root, *res.nodes)}
    emit(env, [{"depth": n.depth, "node": label[n.id], "kind": n.kind, "path": " > ".join(label[p] for p in n.path)} for n in res.nodes],
         f"{'upstream' if upstream else 'downstream'} of {name}" + (" (truncated)" if res.truncated else ""))
