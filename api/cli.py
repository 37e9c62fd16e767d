"""The `cairn` command line. Thin commands over the governed services; one error handler.

Heavy modules are imported inside commands so `cairn --help` starts fast.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from api.audit_cli import audit
from api.cli_common import Env, emit, fail, governed, say, securable_row, table_row, with_partition_columns
from api.lineage_cli import lineage
from api.serve_cli import serve, token
from catalog.paging import every

__all__ = ["Env", "cli", "emit", "fail", "governed", "main", "say", "securable_row", "table_row"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="CAIRN_HOME", help="Cairn home (default ./.cairn; env CAIRN_HOME).")
@click.option("--url", envvar="CAIRN_METASTORE_URL", help="Metastore database URL (default SQLite under the home; env CAIRN_METASTORE_URL).")
@click.option("--as", "principal", envvar="CAIRN_PRINCIPAL", help="Act as this principal (env CAIRN_PRINCIPAL).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables (errors too, on stderr).")
@click.pass_context
def cli(ctx: click.Context, home: str | None, url: str | None, principal: str | None, as_json: bool) -> None:
    """Cairn: a governance catalog and lineage service for ML lakehouses.

    Start with `cairn init --admin NAME` (or `cairn demo`), then act as a principal with --as.
    """
    ctx.obj = Env(home, url, principal, as_json, create=ctx.invoked_subcommand in ("init", "demo"))


@cli.command()
@click.option("--admin", required=True, help="Name of the first metastore admin.")
@governed
def init(env: Env, admin: str) -> None:
    """Create the metastore and its first admin."""
    env.metastore.initialize(admin)
    say(env, f"initialized metastore at {env.metastore.settings.metastore_url} with admin '{admin}'",
        metastore=env.metastore.settings.metastore_url, admin=admin)


# namespace -------------------------------------------------------------------------------------
@cli.group()
def catalog() -> None:
    """Create, list and drop catalogs."""


@catalog.command("create")
@click.argument("name")
@click.option("--comment")
@governed
def catalog_create(env: Env, name: str, comment: str | None) -> None:
    """Create catalog NAME (you become its owner)."""
    emit(env, securable_row(env.cairn().catalogs.create_catalog(name, comment=comment)))


@catalog.command("list")
@governed
def catalog_list(env: Env) -> None:
    """Catalogs you may see."""
    emit(env, [securable_row(c) for c in every(env.cairn().catalogs.list_catalogs)], "catalogs")


@catalog.command("drop")
@click.argument("name")
@click.option("--cascade", is_flag=True)
@governed
def catalog_drop(env: Env, name: str, cascade: bool) -> None:
    """Drop catalog NAME (with --cascade, everything in it)."""
    env.cairn().catalogs.delete_catalog(name, cascade=cascade)
    say(env, f"dropped catalog {name}", dropped=name)


@cli.group()
def schema() -> None:
    """Create, list and drop schemas."""


@schema.command("create")
@click.argument("name")
@click.option("--comment")
@governed
def schema_create(env: Env, name: str, comment: str | None) -> None:
    """Create schema CATALOG.SCHEMA."""
    emit(env, securable_row(env.cairn().schemas.create_schema(name, comment=comment)))


@schema.command("list")
@click.argument("catalog_name")
@governed
def schema_list(env: Env, catalog_name: str) -> None:
    """Schemas of CATALOG_NAME that you may see."""
    emit(env, [securable_row(s) for s in every(env.cairn().schemas.list_schemas, catalog_name)], "schemas")


@schema.command("drop")
@click.argument("name")
@click.option("--cascade", is_flag=True)
@governed
def schema_drop(env: Env, name: str, cascade: bool) -> None:
    """Drop schema CATALOG.SCHEMA (with --cascade, everything in it)."""
    env.cairn().schemas.delete_schema(name, cascade=cascade)
    say(env, f"dropped schema {name}", dropped=name)


@cli.group()
def table() -> None:
    """Create, list, show and drop tables."""


@table.command("create")
@click.argument("name")
@click.option("--column", "columns", multiple=True, required=True, help="name:type[:not null], repeatable.")
@click.option("--comment")
@click.option("--primary-key", "primary_keys", multiple=True)
@click.option("--timestamp-key", "timestamp_keys", multiple=True)
@governed
def table_create(env: Env, name: str, columns: tuple[str, ...], comment: str | None, primary_keys: tuple[str, ...], timestamp_keys: tuple[str, ...]) -> None:
    """Create managed Delta table CATALOG.SCHEMA.TABLE with the given columns."""
    cols = []
    for spec in columns:
        parts = spec.split(":")
        if len(parts) < 2:
            raise click.BadParameter(f"{spec!r} is not name:type[:not null]", param_hint="--column")
        cols.append({"name": parts[0], "type": parts[1], "nullable": not (len(parts) > 2 and parts[2].strip().lower() == "not null")})
    t = env.cairn().tables.create_table(name, cols, comment=comment, primary_keys=primary_keys, timestamp_keys=timestamp_keys)
    emit(env, table_row(t, env.as_json))


@table.command("list")
@click.argument("scope")
@governed
def table_list(env: Env, scope: str) -> None:
    """Tables in CATALOG or CATALOG.SCHEMA that you may see."""
    from catalog import names

    fn = names.parse(scope)
    tables = list(every(env.cairn().tables.list_tables, fn.catalog, fn.schema if len(fn.parts) > 1 else None))
    emit(env, [table_row(t, env.as_json) for t in with_partition_columns(env.cairn(), tables)], "tables")


@table.command("get")
@click.argument("name")
@governed
def table_get(env: Env, name: str) -> None:
    """One table and its columns (the same fields as `table list`)."""
    t = env.cairn().tables.get_table(name)
    if env.as_json:
        emit(env, table_row(t, True))
        return
    emit(env, table_row(t, False))  # with its partition columns
    emit(env, [{"column": c.name, "type": c.type_text, "nullable": c.nullable, "comment": c.comment} for c in t.columns])


@table.command("drop")
@click.argument("name")
@governed
def table_drop(env: Env, name: str) -> None:
    """Drop table CATALOG.SCHEMA.TABLE."""
    env.cairn().tables.delete_table(name)
    say(env, f"dropped table {name}", dropped=name)


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
    """Create a user (default), group or service principal."""
    p = env.cairn().principals.create_principal(name, kind, is_admin=is_admin)
    emit(env, {"name": p.name, "kind": p.kind.value, "admin": p.is_admin})


@principal.command("list")
@governed
def principal_list(env: Env) -> None:
    """Every principal, with its kind and whether it is a metastore admin."""
    rows = list(every(env.cairn().principals.list_principals))
    emit(env, [{"name": p.name, "kind": p.kind.value, "admin": p.is_admin} for p in rows], "principals")


@principal.command("add-member")
@click.argument("group")
@click.argument("member")
@governed
def principal_add_member(env: Env, group: str, member: str) -> None:
    """Add MEMBER (a user, service principal or group) to GROUP."""
    members = env.cairn().principals.add_member(group, member)
    say(env, f"{group}: {', '.join(members)}", group=group, members=list(members))


@principal.command("remove-member")
@click.argument("group")
@click.argument("member")
@governed
def principal_remove_member(env: Env, group: str, member: str) -> None:
    """Remove MEMBER from GROUP."""
    members = env.cairn().principals.remove_member(group, member)
    say(env, f"{group}: {', '.join(members) or '(no members)'}", group=group, members=list(members))


# grants ----------------------------------------------------------------------------------------
def _sql_form(env: Env, verb: str, words: tuple[str, ...]) -> bool:
    """`cairn grant SELECT ON TABLE t TO carol` (the SQL habit): run it as the SQL statement it is."""
    upper = [w.upper() for w in words]
    if "ON" not in upper:
        return False
    to = "TO" if verb == "GRANT" else "FROM"
    if to not in upper:
        raise click.UsageError(f"the SQL form is `cairn {verb.lower()} PRIVILEGES ON KIND NAME {to} PRINCIPAL`")
    i = len(upper) - 1 - upper[::-1].index(to)
    who = " ".join(words[i + 1:])
    if who and not who.startswith("`"):
        who = f"`{who}`"  # principal names like ml-engineers need backticks in SQL
    statement = " ".join((verb, *words[:i], to, who))
    for result in env.cairn().sql_session.execute(statement):
        say(env, result.message or statement)
    return True


_GRANT_HELP = """{verb} PRIVILEGES (comma-separated) on KIND NAME {to} PRINCIPAL.

\b
  cairn {lower} "USE CATALOG,USE SCHEMA,SELECT" catalog main carol
or, as in SQL (the same as `cairn sql "{verb} ... "`):
  cairn {lower} SELECT ON TABLE main.features.user_activity {to} carol
"""


@cli.command(help=_GRANT_HELP.format(verb="GRANT", to="TO", lower="grant"), short_help="Grant privileges (also the SQL form).")
@click.argument("words", nargs=-1, required=True, metavar="PRIVILEGES KIND NAME PRINCIPAL")
@governed
def grant(env: Env, words: tuple[str, ...]) -> None:
    if _sql_form(env, "GRANT", words):
        return
    if len(words) != 4:
        raise click.UsageError("give PRIVILEGES KIND NAME PRINCIPAL, e.g. `cairn grant SELECT table main.s.t carol`, "
                               "or the SQL form `cairn grant SELECT ON TABLE main.s.t TO carol`")
    privileges, kind, name, to_principal = words
    grants = env.cairn().grants.grant(kind, name, to_principal, [p.strip() for p in privileges.split(",")])
    emit(env, [{"principal": g.principal, "privilege": g.privilege.value, "on": f"{g.securable_kind.value} {g.securable_name}"} for g in grants])


@cli.command(help=_GRANT_HELP.format(verb="REVOKE", to="FROM", lower="revoke"), short_help="Revoke privileges (also the SQL form).")
@click.argument("words", nargs=-1, required=True, metavar="PRIVILEGES KIND NAME PRINCIPAL")
@governed
def revoke(env: Env, words: tuple[str, ...]) -> None:
    if _sql_form(env, "REVOKE", words):
        return
    if len(words) != 4:
        raise click.UsageError("give PRIVILEGES KIND NAME PRINCIPAL, or the SQL form `cairn revoke SELECT ON TABLE main.s.t FROM carol`")
    privileges, kind, name, from_principal = words
    env.cairn().grants.revoke(kind, name, from_principal, [p.strip() for p in privileges.split(",")])
    say(env, f"revoked {privileges} on {kind} {name} from {from_principal}")


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
    """Set KEY=VALUE tags on KIND NAME (or on one of its columns with --column)."""
    tags = {key: value for key, _, value in (p.partition("=") for p in pairs)}
    rows = env.cairn().tags.set_tags(kind, name, tags, column=column)
    emit(env, [{"column": t.column, "key": t.key, "value": t.value} for t in rows])


@tag.command("list")
@click.argument("kind")
@click.argument("name")
@governed
def tag_list(env: Env, kind: str, name: str) -> None:
    """Tags on KIND NAME and its columns."""
    rows = env.cairn().tags.list_tags(kind, name)
    emit(env, [{"column": t.column, "key": t.key, "value": t.value} for t in rows])


@cli.command("sql", short_help="Run SQL statements, or open a SQL shell.")
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


@cli.command(short_help="Set up a small governed demo and show who sees what, and why.")
@governed
def demo(env: Env) -> None:
    """Initialize the embedded home if needed and run a short governed scenario."""
    from api.demo import run_demo

    summary = run_demo(env.metastore, env.principal or "admin", quiet=env.as_json,
                       hints=[env.command("table", "list", "main", principal="alice"),
                              env.command("audit", "log", "--result", "DENIED", principal=env.principal or "admin")])
    if env.as_json:
        click.echo(json.dumps(summary, indent=2, default=str))


# Each area's commands live in a module of their own.
from api.churn_cli import churn  # noqa: E402
from api.features_cli import features  # noqa: E402
from api.jobs_cli import jobs  # noqa: E402
from api.models_cli import model  # noqa: E402
from api.serving_cli import endpoints  # noqa: E402

for group in (audit, lineage, serve, token, features, model, endpoints, jobs, churn):
    cli.add_command(group)


def main() -> None:
    """The console script: usage errors are one line too (JSON with --json), never a traceback."""
    as_json = "--json" in sys.argv[1:]
    try:
        cli.main(prog_name="cairn", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        if as_json:
            click.echo(json.dumps({"error": {"code": "INVALID_ARGUMENT", "message": exc.format_message()}}), err=True)
            sys.exit(exc.exit_code)
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
