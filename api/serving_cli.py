"""`cairn endpoints ...`: serving endpoints over the governed serving service.

Registered on the main command group in api/cli.py. A config is given as flags for the common
case (`--model m.s.churn --version 3 [--scale-to-zero]`) or as the Databricks JSON
(`--config '{"served_entities": [...], "traffic_config": {...}}'`, or `@file.json`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from api.features_cli import _governed, _show


def _config(config: str | None, model: str | None, version: int | None, scale_to_zero: bool) -> dict[str, Any]:
    from catalog.errors import InvalidArgument
    from pipelines.serving.shape import update_args

    if config:
        text = Path(config[1:]).read_text() if config.startswith("@") else config
        try:
            return update_args(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"--config is not JSON: {exc}") from None
    if not model or version is None:
        raise InvalidArgument("give --model and --version, or --config with served_entities")
    return {"served_entities": [{"entity_name": model, "entity_version": version, "scale_to_zero_enabled": scale_to_zero}], "routes": None}


def _row(ep: Any) -> dict[str, Any]:
    return {"name": ep.name, "owner": ep.owner, "config_version": ep.config_version,
            "served": [f"{e.name}={e.model_version}{' (scale to zero)' if e.scale_to_zero_enabled else ''}" for e in ep.served_entities],
            "routes": [f"{r.served_model_name}:{r.traffic_percentage}%" for r in ep.routes], "inference_table": ep.inference_table}


def _options(fn: Any) -> Any:
    for option in reversed([
        click.option("--model", help="registered model served (catalog.schema.model)"),
        click.option("--version", type=int, help="its version"),
        click.option("--scale-to-zero", is_flag=True, help="unload it when idle"),
        click.option("--config", "config", help="Databricks config JSON (or @file.json): served_entities, traffic_config"),
    ]):
        fn = option(fn)
    return fn


@click.group()
def endpoints() -> None:
    """Model serving endpoints: create, update, list, get, delete (queries go to `cairn serve`)."""


@endpoints.command("create")
@click.argument("name")
@_options
@click.option("--inference-table", help="log requests to CATALOG.SCHEMA.PREFIX_payload (give CATALOG.SCHEMA.PREFIX)")
@_governed
def create(env: Any, name: str, model: str | None, version: int | None, scale_to_zero: bool, config: str | None,
           inference_table: str | None) -> None:
    """Create endpoint NAME serving a model version (needs EXECUTE on it; CREATE TABLE for the inference table)."""
    from catalog import names

    capture = None
    if inference_table:
        fn = names.parse(inference_table, 3)
        capture = {"catalog_name": fn.catalog, "schema_name": fn.schema, "table_name_prefix": fn.name}
    ep = env.cairn().serving.create_endpoint(name, **_config(config, model, version, scale_to_zero), auto_capture_config=capture)
    _show(env, _row(ep), ep.name)


@endpoints.command("update")
@click.argument("name")
@_options
@_governed
def update(env: Any, name: str, model: str | None, version: int | None, scale_to_zero: bool, config: str | None) -> None:
    """Replace what NAME serves and how traffic splits (needs CAN MANAGE)."""
    ep = env.cairn().serving.update_config(name, **_config(config, model, version, scale_to_zero))
    _show(env, _row(ep), ep.name)


@endpoints.command("list")
@_governed
def list_(env: Any) -> None:
    """The endpoints you may see."""
    from catalog.paging import every

    _show(env, [_row(ep) for ep in every(env.cairn().serving.list_endpoints)], "serving endpoints")


@endpoints.command("get")
@click.argument("name")
@_governed
def get(env: Any, name: str) -> None:
    """One endpoint."""
    ep = env.cairn().serving.get_endpoint(name)
    _show(env, _row(ep), ep.name)


@endpoints.command("delete")
@click.argument("name")
@_governed
def delete(env: Any, name: str) -> None:
    """Drop NAME (its inference table stays). Needs CAN MANAGE."""
    env.cairn().serving.delete_endpoint(name)
    click.echo(f"dropped serving endpoint {name}")
