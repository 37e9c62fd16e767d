"""The `cairn` command line. Thin commands over the governed services; one error handler.

Heavy modules are imported inside commands so `cairn --help` starts fast.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from collections.abc import Callable
from typing import Any

import click


class Env:
    def __init__(self, home: str | None, url: str | None, principal: str | None, as_json: bool) -> None:
        self.home, self.url, self.principal, self.as_json = home, url, principal, as_json
        self._metastore = None

    @property
    def metastore(self):  # type: ignore[no-untyped-def]
        if self._metastore is None:
            from catalog.client import Metastore

            self._metastore = Metastore.open(self.home, self.url)
        return self._metastore

    def cairn(self):  # type: ignore[no-untyped-def]
        from catalog.entities import Source

        return self.metastore.as_principal(self.principal, Source.CLI)


def governed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command with the client as its first argument; turn Cairn errors into one clear line."""

    @click.pass_obj
    @functools.wraps(fn)
    def wrapper(env: Env, *args: Any, **kwargs: Any) -> Any:
        from catalog.errors import CairnError

        try:
            return fn(env, *args, **kwargs)
        except CairnError as exc:
            click.echo(f"error: {exc.code}: {exc}", err=True)
            sys.exit(2 if exc.code == "INVALID_ARGUMENT" else 1)

    return wrapper


def emit(env: Env, rows: list[dict[str, Any]] | dict[str, Any], title: str | None = None) -> None:
    """Print rows as a rich table, or as JSON with --json."""
    if env.as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if isinstance(rows, dict):
        rows = [{"field": k, "value": v} for k, v in rows.items()]
    if not rows:
        console.print("[dim](none)[/dim]")
        return
    table = Table(title=title)
    for key in rows[0]:
        table.add_column(str(key))
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


def securable_row(s: Any) -> dict[str, Any]:
    return {"name": s.full_name, "kind": s.kind.value, "owner": s.owner, "comment": s.comment, "type": s.table_type.value if s.table_type else None}


@click.group()
@click.option("--home", envvar="CAIRN_HOME", help="Cairn home (default ./.cairn).")
@click.option("--url", envvar="CAIRN_METASTORE_URL", help="Metastore URL (default SQLite under the home).")
@click.option("--as", "principal", envvar="CAIRN_PRINCIPAL", help="Act as this principal.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def cli(ctx: click.Context, home: str | None, url: str | None, principal: str | None, as_json: bool) -> None:
    """Cairn: a governance catalog and lineage service for ML lakehouses."""
    ctx.obj = Env(home, url, principal, as_json)


@cli.command()
@click.option("--admin", required=True, help="Name of the first metastore admin.")
@governed
def init(env: Env, admin: str) -> None:
    """Create the metastore and its first admin."""
    env.metastore.initialize(admin)
    click.echo(f"initialized metastore at {env.metastore.settings.metastore_url} with admin '{admin}'")


# namespace -------------------------------------------------------------------------------------
@cli.group()
def catalog() -> None:
    """Catalogs."""


@catalog.command("create")
@click.argument("name")
@click.option("--comment")
@governed
def catalog_create(env: Env, name: str, comment: str | None) -> None:
    emit(env, securable_row(env.cairn().catalogs.create_catalog(name, comment=comment)))


@catalog.command("list")
@governed
def catalog_list(env: Env) -> None:
    emit(env, [securable_row(c) for c in env.cairn().catalogs.list_catalogs(max_results=1000)], "catalogs")


@catalog.command("drop")
@click.argument("name")
@click.option("--cascade", is_flag=True)
@governed
def catalog_drop(env: Env, name: str, cascade: bool) -> None:
    env.cairn().catalogs.delete_catalog(name, cascade=cascade)
    click.echo(f"dropped catalog {name}")


@cli.group()
def schema() -> None:
    """Schemas."""


@schema.command("create")
@click.argument("name")
@click.option("--comment")
@governed
def schema_create(env: Env, name: str, comment: str | None) -> None:
    emit(env, securable_row(env.cairn().schemas.create_schema(name, comment=comment)))


@schema.command("list")
@click.argument("catalog_name")
@governed
def schema_list(env: Env, catalog_name: str) -> None:
    emit(env, [securable_row(s) for s in env.cairn().schemas.list_schemas(catalog_name, max_results=1000)], "schemas")


@schema.command("drop")
@click.argument("name")
@click.option("--cascade", is_flag=True)
@governed
def schema_drop(env: Env, name: str, cascade: bool) -> None:
    env.cairn().schemas.delete_schema(name, cascade=cascade)
    click.echo(f"dropped schema {name}")


@cli.group()
def table() -> None:
    """Tables."""


@table.command("create")
@click.argument("name")
@click.option("--column", "columns", multiple=True, required=True, help="name:type[:not null], repeatable.")
@click.option("--comment")
@click.option("--primary-key", "primary_keys", multiple=True)
@click.option("--timestamp-key", "timestamp_keys", multiple=True)
@governed
def table_create(env: Env, name: str, columns: tuple[str, ...], comment: str | None, primary_keys: tuple[str, ...], timestamp_keys: tuple[str, ...]) -> None:
    cols = []
    for spec in columns:
        parts = spec.split(":")
        if len(parts) < 2:
            raise click.BadParameter(f"{spec!r} is not name:type[:not null]", param_hint="--column")
        cols.append({"name": parts[0], "type": parts[1], "nullable": not (len(parts) > 2 and parts[2].strip().lower() == "not null")})
    t = env.cairn().tables.create_table(name, cols, comment=comment, primary_keys=primary_keys, timestamp_keys=timestamp_keys)
    emit(env, securable_row(t))


@table.command("list")
@click.argument("scope")
@governed
def table_list(env: Env, scope: str) -> None:
    """Tables in CATALOG or CATALOG.SCHEMA that you may see."""
    from catalog import names

    fn = names.parse(scope)
    tables = env.cairn().tables.list_tables(fn.catalog, fn.schema if len(fn.parts) > 1 else None, max_results=1000)
    emit(env, [securable_row(t) for t in tables], "tables")


@table.command("get")
@click.argument("name")
@governed
def table_get(env: Env, name: str) -> None:
    t = env.cairn().tables.get_table(name)
    if env.as_json:
        import dataclasses

        emit(env, dataclasses.asdict(t))
        return
    emit(env, securable_row(t))
    emit(env, [{"column": c.name, "type": c.type_text, "nullable": c.nullable, "comment": c.comment} for c in t.columns])


@table.command("drop")
@click.argument("name")
@governed
def table_drop(env: Env, name: str) -> None:
    env.cairn().tables.delete_table(name)
    click.echo(f"dropped table {name}")


# principals ------------------------------------------------------------------------------------
@cli.group()
def principal() -> None:
    """Users, groups and service principals."""


@principal.command("create")
@click.argument("name")
@click.option("--kind", type=click.Choice(["user", "group", "service_principal"], case_sensitive=False), default="user")
@click.option("--admin", "is_admin", is_flag=True, help="Make it a metastore admin.")
@governed
def principal_create(env: Env, name: str, kind: str, is_admin: bool) -> None:
    p = env.cairn().principals.create_principal(name, kind, is_admin=is_admin)
    emit(env, {"name": p.name, "kind": p.kind.value, "admin": p.is_admin})


@principal.command("list")
@governed
def principal_list(env: Env) -> None:
    rows = env.cairn().principals.list_principals(max_results=1000)
    emit(env, [{"name": p.name, "kind": p.kind.value, "admin": p.is_admin} for p in rows], "principals")


@principal.command("add-member")
@click.argument("group")
@click.argument("member")
@governed
def principal_add_member(env: Env, group: str, member: str) -> None:
    members = env.cairn().principals.add_member(group, member)
    click.echo(f"{group}: {', '.join(members)}")


@principal.command("remove-member")
@click.argument("group")
@click.argument("member")
@governed
def principal_remove_member(env: Env, group: str, member: str) -> None:
    members = env.cairn().principals.remove_member(group, member)
    click.echo(f"{group}: {', '.join(members) or '(no members)'}")


# grants ----------------------------------------------------------------------------------------
@cli.command()
@click.argument("privileges")
@click.argument("kind")
@click.argument("name")
@click.argument("to_principal", metavar="PRINCIPAL")
@governed
def grant(env: Env, privileges: str, kind: str, name: str, to_principal: str) -> None:
    """Grant PRIVILEGES (comma-separated) on KIND NAME to PRINCIPAL."""
    grants = env.cairn().grants.grant(kind, name, to_principal, [p.strip() for p in privileges.split(",")])
    emit(env, [{"principal": g.principal, "privilege": g.privilege.value, "on": f"{g.securable_kind.value} {g.securable_name}"} for g in grants])


@cli.command()
@click.argument("privileges")
@click.argument("kind")
@click.argument("name")
@click.argument("from_principal", metavar="PRINCIPAL")
@governed
def revoke(env: Env, privileges: str, kind: str, name: str, from_principal: str) -> None:
    """Revoke PRIVILEGES (comma-separated) on KIND NAME from PRINCIPAL."""
    env.cairn().grants.revoke(kind, name, from_principal, [p.strip() for p in privileges.split(",")])
    click.echo(f"revoked {privileges} on {kind} {name} from {from_principal}")


@cli.command()
@click.argument("kind")
@click.argument("name")
@click.option("--principal", "who", help="Whose privileges (default: you).")
@governed
def why(env: Env, kind: str, name: str, who: str | None) -> None:
    """Every privilege a principal holds on KIND NAME, and why."""
    eff = env.cairn().grants.get_effective_privileges(kind, name, who)
    emit(env, [{"privilege": e.privilege.value, "because": "; ".join(r.describe() for r in e.reasons)} for e in eff])


@cli.command("grants")
@click.argument("kind")
@click.argument("name")
@governed
def grants_show(env: Env, kind: str, name: str) -> None:
    """Direct grants on KIND NAME."""
    rows = env.cairn().grants.list_grants(kind, name)
    emit(env, [{"principal": g.principal, "privilege": g.privilege.value} for g in rows])


# tags ------------------------------------------------------------------------------------------
@cli.group()
def tag() -> None:
    """Tags on securables and columns."""


@tag.command("set")
@click.argument("kind")
@click.argument("name")
@click.argument("pairs", nargs=-1, required=True)
@click.option("--column")
@governed
def tag_set(env: Env, kind: str, name: str, pairs: tuple[str, ...], column: str | None) -> None:
    """Set KEY=VALUE tags."""
    tags = dict(p.split("=", 1) if "=" in p else (p, "") for p in pairs)
    rows = env.cairn().tags.set_tags(kind, name, tags, column=column)
    emit(env, [{"column": t.column, "key": t.key, "value": t.value} for t in rows])


@tag.command("list")
@click.argument("kind")
@click.argument("name")
@governed
def tag_list(env: Env, kind: str, name: str) -> None:
    rows = env.cairn().tags.list_tags(kind, name)
    emit(env, [{"column": t.column, "key": t.key, "value": t.value} for t in rows])


# audit ------------------------------------------------------------------------------------------
@cli.group(invoke_without_command=True)
@click.option("--policy", type=click.Path(dir_okay=False), help="Policy file (YAML) to check the catalog against.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), help="Write the report here instead of stdout.")
@click.option("--url", "server", help="A running Cairn server (with --token) instead of the embedded catalog.")
@click.option("--token")
@click.pass_context
def audit(ctx: click.Context, policy: str | None, fmt: str, output: str | None, server: str | None, token: str | None) -> None:
    """Check lineage policies (exit 0 pass, 1 violations, 2 invalid policy or unreachable catalog).

    Subcommands: `log` (the audit log) and `diff` (change impact of SQL).
    """
    if ctx.invoked_subcommand:
        return
    from catalog.errors import CairnError
    from lineage import ci, policy as policies

    env: Env = ctx.obj
    if not policy:
        click.echo("error: give --policy FILE (or a subcommand: log, diff)", err=True)
        sys.exit(2)
    try:
        rules = policies.load(Path(policy).read_text())
    except OSError as exc:
        click.echo(f"error: cannot read the policy: {exc}", err=True)
        sys.exit(2)
    except policies.PolicyError as exc:
        click.echo(f"error: invalid policy: {exc}", err=True)
        sys.exit(2)
    try:
        if server:
            if not token:
                click.echo("error: --url needs --token (see `cairn token create`)", err=True)
                sys.exit(2)
            snapshot = ci.build_snapshot_remote(server, token, rules)
        else:
            if not env.metastore.initialized:
                click.echo(f"error: no catalog at {env.metastore.settings.metastore_url}", err=True)
                sys.exit(2)
            snapshot = ci.build_snapshot(env.cairn(), rules)
        findings = policies.evaluate(rules, snapshot)
    except CairnError as exc:
        click.echo(f"error: the catalog is unreachable or refused the audit: {exc.code}: {exc}", err=True)
        sys.exit(2)
    report = {"text": ci.render_text, "json": ci.render_json, "junit": ci.render_junit}[fmt](findings)
    if output:
        Path(output).write_text(report)
        if fmt != "text":
            click.echo(ci.render_text(findings), nl=False)
    else:
        click.echo(report, nl=False)
    sys.exit(ci.exit_code(findings))


@audit.command("log")
@click.option("--principal", "who")
@click.option("--action")
@click.option("--securable", "prefix", help="A securable and everything below it.")
@click.option("--result", type=click.Choice(["ALLOWED", "DENIED", "FAILED"], case_sensitive=False))
@click.option("--limit", default=100, show_default=True)
@governed
def audit_log(env: Env, who: str | None, action: str | None, prefix: str | None, result: str | None, limit: int) -> None:
    """Audit events (admins see all, others their own)."""
    page = env.cairn().audit.list_events(principal=who, action=action, securable_prefix=prefix, result=result, max_results=limit)
    emit(env, [
        {"id": e.id, "time": e.event_time.isoformat(timespec="seconds"), "principal": e.principal, "action": e.action,
         "securable": e.securable_name, "result": e.result.value, "error": e.error_code, "source": e.source}
        for e in page
    ], "audit")


@audit.command("diff")
@click.option("--base", required=True, help="Git ref or folder before the change.")
@click.option("--head", required=True, help="Git ref or folder after the change.")
@click.option("--path", default="", help="Folder of SQL files inside the refs.")
@click.option("--dialect", default="databricks", show_default=True)
@click.option("--catalog", "default_catalog", help="Catalog that unqualified names resolve in.")
@click.option("--schema", "default_schema", help="Schema that unqualified names resolve in.")
@click.option("--allow-breaking", is_flag=True, help="Report dropped columns still in use without failing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
def audit_diff(env: Env, base: str, head: str, path: str, dialect: str, default_catalog: str | None, default_schema: str | None,
               allow_breaking: bool, fmt: str) -> None:
    """Downstream impact of changed SQL files; exit 1 when a dropped or renamed column is still used."""
    from catalog.errors import CairnError
    from lineage import ci

    try:
        report = ci.diff(env.cairn(), ci.sql_files(base, path), ci.sql_files(head, path), dialect, default_catalog, default_schema)
    except CairnError as exc:
        click.echo(f"error: {exc.code}: {exc}", err=True)
        sys.exit(2)
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"changed: {', '.join(report['changed_files']) or '(nothing)'}")
        click.echo(f"writes: {', '.join(sorted(set(report['targets']))) or '(nothing)'}")
        for t in report["touched"]:
            click.echo(f"  touches {t['kind'].lower()} {t['node']} (depth {t['depth']} from {t['from']})")
        for b in report["breaking"]:
            click.echo(f"  BREAKING {b['file']}: {b['column']} is gone but still used by {', '.join(b['used_by'])}")
        for e in report["errors"]:
            click.echo(f"  error: {e}", err=True)
    sys.exit(1 if report["breaking"] and not allow_breaking else 0)


@cli.command("sql")
@click.argument("statement", required=False)
@click.option("--file", "-f", "script", type=click.File("r"), help="Run the statements of a file ('-' for stdin).")
@governed
def sql_command(env: Env, statement: str | None, script: Any) -> None:
    """Run SQL statements (Databricks dialect); with neither STATEMENT nor --file, an interactive shell."""
    session = env.cairn().sql_session
    if statement is None and script is None:
        from api.sql_shell import run_shell

        run_shell(session, lambda result: _print_result(env, result))
        return
    for result in session.execute(statement if statement is not None else script.read()):
        _print_result(env, result)


def _print_result(env: Env, result: Any) -> None:
    if result.columns:
        emit(env, [dict(zip(result.columns, row)) for row in result.rows] or [], None)
        if not result.rows and not env.as_json:
            click.echo("(0 rows)")
    elif result.message:
        click.echo(json.dumps({"message": result.message}) if env.as_json else result.message)


@cli.group()
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
    """Downstream (or upstream) of a table, or of catalog.schema.table.column with --level COLUMN."""
    svc = env.cairn().lineage
    res = (svc.get_upstream if upstream else svc.get_downstream)(name, level=level.upper(), depth=depth)
    label = {n.id: n.name or "(restricted)" for n in (res.root, *res.nodes)}
    emit(env, [{"depth": n.depth, "node": label[n.id], "kind": n.kind, "path": " > ".join(label[p] for p in n.path)} for n in res.nodes],
         f"{'upstream' if upstream else 'downstream'} of {name}" + (" (truncated)" if res.truncated else ""))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes (one per core is a good start).")
@governed
def serve(env: Env, host: str, port: int, workers: int) -> None:
    """Serve the UC REST API, OpenLineage, /healthz and /metrics on one port."""
    from api.server import serve as run_server

    base = f"http://{host}:{port}"
    click.echo(f"Cairn on {base}: {base}/graphql  {base}/api/2.1/unity-catalog  {base}/api/v1/lineage  {base}/healthz  {base}/metrics")
    who = env.principal or "admin"
    mint = f".venv/bin/cairn --home {env.metastore.settings.home} --as {who} token create --quiet"
    click.echo(f"try: curl -H \"Authorization: Bearer $({mint})\" {base}/api/2.1/unity-catalog/catalogs")
    run_server(env.metastore, host, port, workers)


@cli.group()
def token() -> None:
    """Access tokens for the server."""


@token.command("create")
@click.option("--principal", "who", help="Whose token (default: you; admins may mint for others).")
@click.option("--expires", default="90d", show_default=True, help="Lifetime like 30d, 12h, 90m, or never.")
@click.option("--comment")
@click.option("--quiet", is_flag=True, help="Print only the token.")
@governed
def token_create(env: Env, who: str | None, expires: str, comment: str | None, quiet: bool) -> None:
    raw, info = env.cairn().tokens.create_token(who, expires, comment)
    if quiet:
        click.echo(raw)
        return
    emit(env, {"token": raw, "token_id": info.token_id, "principal": info.principal, "expires_at": info.expires_at})


@token.command("list")
@governed
def token_list(env: Env) -> None:
    emit(env, [{"token_id": t.token_id, "principal": t.principal, "created_at": t.created_at, "expires_at": t.expires_at,
                "revoked_at": t.revoked_at, "comment": t.comment} for t in env.cairn().tokens.list_tokens()], "tokens")


@token.command("revoke")
@click.argument("token_id")
@governed
def token_revoke(env: Env, token_id: str) -> None:
    env.cairn().tokens.revoke_token(token_id)
    click.echo(f"revoked token {token_id}")


@cli.command()
@governed
def demo(env: Env) -> None:
    """Initialize the embedded home if needed and run a short governed scenario."""
    from api.demo import run_demo

    run_demo(env.metastore, env.principal or "admin")


from api.features_cli import features  # noqa: E402

cli.add_command(features)


def main() -> None:
    cli(prog_name="cairn")


if __name__ == "__main__":
    main()
