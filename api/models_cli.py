"""`cairn model ...`: registered models, versions, tags, promotion gates and webhooks, over the
governed services. Registered on the main command group in api/cli.py.

Gates are written SQL-ish, one per argument:
    cairn model gates set main.ml.churn "auc >= 0.8" "auc beats current by 0.01" "log_loss below current by 0.02" \
        signature provenance "tag validated=true" "approval approved by ml-leads"
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click

from api.cli_common import governed as _governed

_METRIC = re.compile(r"^\s*([\w./-]+)\s*(>=|<=|==|>|<)\s*(-?[\d.]+(?:e-?\d+)?)\s*$", re.I)
_BEATS = re.compile(r"^\s*([\w./-]+)\s+(beats|below)\s+current(?:\s+by\s+([\d.]+(?:e-?\d+)?))?\s*$", re.I)
_TAG = re.compile(r"^\s*tag\s+(\S+)\s*$", re.I)
_APPROVAL = re.compile(r"^\s*approval\s+(\S+)\s+by\s+(.+?)\s*$", re.I)


def parse_gate(text: str) -> dict[str, Any]:
    """One gate from its words.

    >>> parse_gate("auc >= 0.8")
    {'kind': 'metric', 'metric': 'auc', 'op': '>=', 'threshold': 0.8}
    >>> parse_gate("log_loss below current by 0.02")
    {'kind': 'beats_current', 'metric': 'log_loss', 'op': '<', 'margin': 0.02}
    >>> parse_gate("approval approved by ml-leads")
    {'kind': 'approval', 'tag': 'approved', 'group': 'ml-leads'}
    """
    from catalog.errors import InvalidArgument

    if text.strip().lower() in ("signature", "provenance"):
        return {"kind": text.strip().lower()}
    if m := _METRIC.match(text):
        return {"kind": "metric", "metric": m.group(1), "op": m.group(2), "threshold": float(m.group(3))}
    if m := _BEATS.match(text):
        return {"kind": "beats_current", "metric": m.group(1), "op": ">" if m.group(2).lower() == "beats" else "<",
                "margin": float(m.group(3) or 0)}
    if m := _APPROVAL.match(text):
        return {"kind": "approval", "tag": m.group(1), "group": m.group(2)}
    if m := _TAG.match(text):
        return {"kind": "tags", "tag": m.group(1)}
    raise InvalidArgument(f"cannot read gate {text!r}; write 'auc >= 0.8', 'auc beats current by 0.01', 'log_loss below current by 0.01', "
                          "'signature', 'provenance', 'tag KEY[=VALUE]' or 'approval TAG by GROUP'")



def _show(env: Any, rows: list[dict[str, Any]] | dict[str, Any], title: str) -> None:
    from api.features_cli import _show as show

    show(env, rows, title)


@click.group()
def model() -> None:
    """Registered models: versions, tags, promotion gates, promotions and webhooks."""


@model.command("list")
@click.argument("schema")
@_governed
def list_models(env: Any, schema: str) -> None:
    """Registered models in CATALOG.SCHEMA, with their aliases."""
    from catalog.paging import every

    cat, _, sch = schema.partition(".")
    rows = [{"name": m.full_name, "owner": m.owner, "aliases": [f"{a}={v}" for a, v in sorted(m.aliases.items())], "latest": m.version}
            for m in every(env.cairn().models.list_registered_models, cat, sch)]
    _show(env, rows, f"models in {schema}")


@model.command("versions")
@click.argument("name")
@_governed
def versions(env: Any, name: str) -> None:
    """Versions of a model: status, run, source, training set, signature."""
    from catalog.paging import every

    rows = [{"version": v.version, "status": v.status, "run_id": v.run_id, "source": v.source,
             "training_set": v.properties.get("cairn.training_set"), "signature": "cairn.signature" in v.properties,
             "feature_spec": "cairn.feature_spec" in v.properties}
            for v in every(env.cairn().models.list_model_versions, name)]
    _show(env, rows, f"versions of {name}")


@model.command("show")
@click.argument("name")
@click.argument("version", type=int)
@_governed
def show_version(env: Any, name: str, version: int) -> None:
    """One version: its facts, tags and gate results."""
    c = env.cairn()
    v = c.models.get_model_version(name, version)
    _show(env, {"name": v.full_name, "status": v.status, "run_id": v.run_id, "source": v.source,
                "training_set": v.properties.get("cairn.training_set"), "tags": json.dumps(c.models.get_model_version_tags(name, version)),
                "feature_spec": v.properties.get("cairn.feature_spec"), "signature": v.properties.get("cairn.signature")}, v.full_name)


@model.command("tag")
@click.argument("name")
@click.argument("version", type=int)
@click.argument("tag")
@_governed
def tag(env: Any, name: str, version: int, tag: str) -> None:
    """Set a version tag KEY=VALUE (approvals are tags: who set it counts)."""
    key, _, value = tag.partition("=")
    env.cairn().models.set_model_version_tag(name, version, key, value)
    click.echo(f"tagged {name}/{version} {key}={value}")


@model.group("gates")
def gates() -> None:
    """Promotion gates of a model."""


@gates.command("show")
@click.argument("name")
@_governed
def gates_show(env: Any, name: str) -> None:
    """The gates of NAME, in words and fields."""
    from catalog.client import describe_gate

    _show(env, [{"gate": describe_gate(g), **{k: v for k, v in g.items() if v is not None}} for g in env.cairn().models.get_gates(name)], f"gates of {name}")


@gates.command("set")
@click.argument("name")
@click.argument("gate", nargs=-1)
@_governed
def gates_set(env: Any, name: str, gate: tuple[str, ...]) -> None:
    """Replace the gates of NAME (owner or MANAGE); no GATE arguments clears them."""
    stored = env.cairn().models.set_gates(name, [parse_gate(g) for g in gate])
    click.echo(f"{len(stored)} gate(s) set on {name}")


@model.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--alias", default="champion", show_default=True)
@click.option("--dry-run", is_flag=True, help="Evaluate the gates, move nothing.")
@_governed
def promote(env: Any, name: str, version: int, alias: str, dry_run: bool) -> None:
    """Move ALIAS to VERSION if every gate passes (exit 1 naming every failed gate otherwise)."""
    from catalog.errors import PromotionRefused

    c = env.cairn()
    try:
        results = (c.models.evaluate_gates if dry_run else c.models.promote)(name, alias, version)
    except PromotionRefused as exc:
        _show(env, exc.results, f"{name}/{version} -> {alias}: refused")
        click.echo(f"error: {exc.code}: {exc}", err=True)
        sys.exit(1)
    _show(env, results, f"{name}/{version} -> {alias}" + (" (dry run)" if dry_run else ""))


@model.group("webhooks")
def webhooks() -> None:
    """Registry webhooks (MLflow payloads, X-MLflow-Signature) and their delivery log."""


@webhooks.command("create")
@click.argument("name")
@click.argument("url")
@click.option("--event", "events", multiple=True, required=True, help="e.g. model_version.created (repeat)")
@click.option("--model", default=None, help="catalog.schema.model (omit: every model; admins only)")
@click.option("--secret-env", default=None, help="Read the signing secret from this environment variable.")
@_governed
def webhooks_create(env: Any, name: str, url: str, events: tuple[str, ...], model: str | None, secret_env: str | None) -> None:
    """A webhook POSTing the events of --model (or every model: admins) to URL, signed with the secret."""
    import os

    secret = os.environ.get(secret_env) if secret_env else None
    w = env.cairn().webhooks.create_webhook(name, url, list(events), model, secret)
    _show(env, {"id": w.id, "name": w.name, "model": w.model, "events": list(w.events), "url": w.url, "signed": w.has_secret}, "webhook")


@webhooks.command("list")
@click.option("--model", default=None)
@_governed
def webhooks_list(env: Any, model: str | None) -> None:
    """Webhooks you own (admins: all), on --model or everywhere."""
    rows = [{"id": w.id, "name": w.name, "model": w.model, "events": list(w.events), "url": w.url, "status": w.status, "owner": w.owner}
            for w in env.cairn().webhooks.list_webhooks(model)]
    _show(env, rows, "webhooks")


@webhooks.command("deliveries")
@click.argument("webhook_id")
@_governed
def webhooks_deliveries(env: Any, webhook_id: str) -> None:
    """The delivery log: status, attempts, last HTTP status, latency."""
    rows = [{"delivery_id": d.delivery_id, "event": d.event, "status": d.status, "attempts": d.attempts, "last_status": d.last_status,
             "latency_ms": None if d.latency_ms is None else round(d.latency_ms, 1), "error": d.last_error}
            for d in env.cairn().webhooks.list_deliveries(webhook_id, None, 1000)]
    _show(env, rows, f"deliveries of {webhook_id}")


@webhooks.command("delete")
@click.argument("webhook_id")
@_governed
def webhooks_delete(env: Any, webhook_id: str) -> None:
    """Delete a webhook and its delivery log (its owner or an admin)."""
    env.cairn().webhooks.delete_webhook(webhook_id)
    click.echo(f"deleted webhook {webhook_id}")


@webhooks.command("send")
@_governed
def webhooks_send(env: Any) -> None:
    """Run the webhook sender in the foreground (any number may run; `cairn serve` may run one too)."""
    from catalog.client import WebhookSender

    click.echo("sending webhooks; Ctrl-C to stop", err=True)
    sender = WebhookSender(env.metastore)
    try:
        sender.run_forever()
    except KeyboardInterrupt:
        sender.stop()
