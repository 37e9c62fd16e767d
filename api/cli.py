"""The `cairn` command line. Thin commands over the governed services; one error handler.

Heavy modules are imported inside commands so `cairn --help` starts fast.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import click

from catalog.paging import every


class Env:
    def __init__(self, home: str | None, url: str | None, principal: str | None, as_json: bool, create: bool = False) -> None:
        self.home, self.url, self.principal, self.as_json = home, url, principal, as_json
        self.create = create  # only `init` and `demo` may create a metastore where there is none
        self._metastore = None

    @property
    def metastore(self):  # type: ignore[no-untyped-def]
        if self._metastore is None:
            from catalog.client import Metastore

            self._metastore = Metastore.open(self.home, self.url, create=self.create)
        return self._metastore

    def cairn(self):  # type: ignore[no-untyped-def]
        from catalog.entities import Source

        return self.metastore.as_principal(self.principal, Source.CLI)

    def command(self, *args: str, principal: str | None = None) -> str:
        """A `cairn` command line that works pasted into any shell: the executable by absolute path,
        the metastore and the principal spelled out (nothing left to the environment or to make)."""
        import shlex

        exe = Path(sys.argv[0])
        base = [str(exe.absolute())] if exe.name == "cairn" else [sys.executable, "-m", "api.cli"]
        settings = self.metastore.settings
        if settings.metastore_url == f"sqlite:///{settings.home / 'metastore.db'}":
            where = ["--home", str(settings.home)]
        else:
            where = ["--url", settings.metastore_url]
        who = self.principal if principal is None else principal
        return shlex.join([*base, *where, *(["--as", who] if who else []), *args])


def fail(env: Env | None, code: str, message: str, exit_code: int = 1) -> None:
    """Say what went wrong in one line (JSON with --json) on stderr, and exit non-zero."""
    if env is not None and env.as_json:
        click.echo(json.dumps({"error": {"code": code, "message": message}}), err=True)
    else:
        click.echo(f"error: {code}: {message}", err=True)
    sys.exit(exit_code)


def governed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command with the client as its first argument; turn Cairn errors into one clear line."""

    @click.pass_obj
    @functools.wraps(fn)
    def wrapper(env: Env, *args: Any, **kwargs: Any) -> Any:
        from catalog.errors import CairnError

        try:
            return fn(env, *args, **kwargs)
        except CairnError as exc:
            fail(env, exc.code, str(exc), 2 if exc.code == "INVALID_ARGUMENT" else 1)

    return wrapper


def say(env: Env, message: str, **fields: Any) -> None:
    """A one-line outcome (`dropped table x`), or {"message": ..., **fields} with --json."""
    click.echo(json.dumps({"message": message, **fields}, default=str) if env.as_json else message)


def _text(v: Any) -> str:
    if v is None:
        return ""
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return ", ".join(_text(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, default=str)
    return str(v)


def emit(env: Env, rows: list[dict[str, Any]] | dict[str, Any], title: str | None = None) -> None:
    """Print rows as a rich table, or as JSON with --json. Values are never cut: a table wider than
    the terminal is printed as one `field: value` block per row instead, and a pipe gets full width."""
    if env.as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    if isinstance(rows, dict):
        rows = [{"field": k, "value": _text(v)} for k, v in rows.items()]
    console = Console(highlight=False)
    if not rows:
        console.print("[dim](none)[/dim]")
        return
    keys = list(rows[0])
    cells = [[_text(r.get(k)) for k in keys] for r in rows]
    widths = [max(len(str(k)), *(max((len(line) for line in c[i].splitlines()), default=0) for c in cells)) for i, k in enumerate(keys)]
    needed = sum(widths) + 3 * len(keys) + 1
    if not console.is_terminal:
        console = Console(highlight=False, width=max(needed, 80))
    elif needed > console.width:
        if title:
            console.print(f"[bold]{title}[/bold]", markup=True)
        for row in cells:
            for k, v in zip(keys, row):
                console.print(f"{k}: {v}", markup=False, soft_wrap=True)
            console.print()
        return
    table = Table(title=title)
    for key in keys:
        table.add_column(str(key), overflow="fold")
    for row in cells:
        table.add_row(*row)
    console.print(table)


def securable_row(s: Any) -> dict[str, Any]:
    """One shape for a securable, in `get` and `list` alike."""
    row = {"name": s.full_name, "kind": s.kind.value, "owner": s.owner, "comment": s.comment,
           "type": s.table_type.value if getattr(s, "table_type", None) else None}
    return row


def table_row(t: Any, as_json: bool) -> dict[str, Any]:
    """A table as `table get` and `table list` print it (with --json, its columns too)."""
    row = securable_row(t)
    if as_json:
        row["columns"] = [{"name": c.name, "type": c.type_text, "nullable": c.nullable, "comment": c.comment} for c in t.columns]
    return row


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
    emit(env, [table_row(t, env.as_json) for t in tables], "tables")


@table.command("get")
@click.argument("name")
@governed
def table_get(env: Env, name: str) -> None:
    """One table and its columns (the same fields as `table list`)."""
    t = env.cairn().tables.get_table(name)
    if env.as_json:
        emit(env, table_row(t, True))
        return
    emit(env, securable_row(t))
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
    tags = dict(p.split("=", 1) if "=" in p else (p, "") for p in pairs)
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


# audit ------------------------------------------------------------------------------------------
@cli.group(invoke_without_command=True, short_help="Check lineage policies in CI; also `audit log`, `audit diff`.")
@click.option("--policy", type=click.Path(dir_okay=False), help="Policy file (YAML) to check the catalog against.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), help="Report format (default text; json with --json).")
@click.option("--output", type=click.Path(dir_okay=False), help="Write the report here instead of stdout.")
@click.option("--server", help="Check a running Cairn server (http://host:port, with --token) instead of the metastore.")
@click.option("--token", help="Bearer token for --server (see `cairn token create`).")
@click.option("--fail-on-empty", is_flag=True, help="Fail (exit 1) when a rule checks nothing, instead of warning.")
@click.pass_context
def audit(ctx: click.Context, policy: str | None, fmt: str | None, output: str | None, server: str | None, token: str | None,
          fail_on_empty: bool) -> None:
    """Check lineage policies (exit 0 pass, 1 violations, 2 invalid policy or unreachable catalog).

    Each rule's unknown principals and objects are findings; a rule that checks nothing is a
    warning (an error with --fail-on-empty). Subcommands: `log` (the audit log) and `diff`
    (change impact of SQL).
    """
    if ctx.invoked_subcommand:
        return
    from catalog.errors import CairnError
    from lineage import ci
    from lineage import policy as policies

    env: Env = ctx.obj
    fmt = fmt or ("json" if env.as_json else "text")
    if not policy:
        fail(env, "INVALID_ARGUMENT", "give --policy FILE (or a subcommand: log, diff)", 2)
    try:
        rules = policies.load(Path(policy).read_text())  # type: ignore[arg-type]
    except OSError as exc:
        fail(env, "INVALID_ARGUMENT", f"cannot read the policy: {exc}", 2)
    except policies.PolicyError as exc:
        fail(env, "INVALID_ARGUMENT", f"invalid policy: {exc}", 2)
    try:
        if server:
            if not token:
                fail(env, "INVALID_ARGUMENT", "--server needs --token (see `cairn token create`)", 2)
            snapshot = ci.build_snapshot_remote(server, token, rules)  # type: ignore[arg-type]
        else:
            snapshot = ci.build_snapshot(env.cairn(), rules)
        findings = policies.evaluate(rules, snapshot, fail_on_empty=fail_on_empty)
    except CairnError as exc:
        reason = str(exc) if exc.code == "FAILED_PRECONDITION" else f"the catalog is unreachable or refused the audit: {exc}"
        fail(env, exc.code, reason, 2)
    report = {"text": ci.render_text, "json": ci.render_json, "junit": ci.render_junit}[fmt](findings)
    if output:
        Path(output).write_text(report)
        if fmt != "text":
            click.echo(ci.render_text(findings), nl=False)
    else:
        click.echo(report, nl=False)
    sys.exit(ci.exit_code(findings))


class When(click.ParamType):
    """An ISO date or time (UTC unless it says otherwise), or an age like 30m, 12h, 7d."""

    name = "when"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        import re
        from datetime import datetime, timedelta

        if isinstance(value, datetime):
            return value
        m = re.fullmatch(r"(\d+)([smhdw])", str(value).strip())
        if m:
            unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
            return datetime.now(UTC) - timedelta(**{unit: int(m.group(1))})
        try:
            at = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is neither an ISO date/time (2026-01-31, 2026-01-31T12:00) nor an age (30m, 12h, 7d)", param, ctx)
        return at if at.tzinfo else at.replace(tzinfo=UTC)


@audit.command("log")
@click.option("--principal", "who", help="Only this principal's events.")
@click.option("--action", help="Only this action (create_table, grant, execute_sql, ...).")
@click.option("--securable", "prefix", help="A securable and everything below it.")
@click.option("--result", type=click.Choice(["ALLOWED", "DENIED", "FAILED"], case_sensitive=False))
@click.option("--since", type=When(), help="From this time on: 2026-01-31, 2026-01-31T12:00, or an age like 2h, 7d.")
@click.option("--until", type=When(), help="Before this time (same forms as --since).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000), help="How many events to show.")
@governed
def audit_log(env: Env, who: str | None, action: str | None, prefix: str | None, result: str | None, since: Any, until: Any, limit: int) -> None:
    """Audit events, newest first (admins see all, others their own)."""
    cairn = env.cairn()
    filters = dict(principal=who, action=action, securable_prefix=prefix, result=result, since=since, until=until)
    events, token = [], None
    while len(events) < limit:
        page = cairn.audit.list_events(**filters, page_token=token, max_results=min(1000, limit - len(events)), newest_first=True)
        events += list(page)
        token = page.next_page_token
        if not token:
            break
    total = cairn.audit.count_events(**filters)
    emit(env, [
        {"id": e.id, "time": e.event_time.isoformat(timespec="seconds"), "principal": e.principal, "action": e.action,
         "securable": e.securable_name, "result": e.result.value, "error": e.error_code, "source": e.source}
        for e in events
    ], "audit log, newest first")
    if not env.as_json:
        more = ""
        if total > len(events):
            flags = [f"--{k}={v}" for k, v in (("principal", who), ("action", action), ("securable", prefix), ("result", result)) if v]
            if since:
                flags.append(f"--since={since.isoformat()}")
            older = env.command("audit", "log", *flags, f"--until={events[-1].event_time.isoformat()}")
            more = f"; older ones: {older}"
        click.echo(f"showing {len(events)} of {total} events{more}")


@audit.command("diff")
@click.option("--base", required=True, help="Git ref or folder before the change.")
@click.option("--head", required=True, help="Git ref or folder after the change.")
@click.option("--path", default="", help="Folder of SQL files inside the refs.")
@click.option("--dialect", default="databricks", show_default=True)
@click.option("--catalog", "default_catalog", help="Catalog that unqualified names resolve in.")
@click.option("--schema", "default_schema", help="Schema that unqualified names resolve in.")
@click.option("--allow-breaking", is_flag=True, help="Report dropped columns still in use without failing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Report format (json also with --json).")
@click.pass_obj
def audit_diff(env: Env, base: str, head: str, path: str, dialect: str, default_catalog: str | None, default_schema: str | None,
               allow_breaking: bool, fmt: str) -> None:
    """Downstream impact of changed SQL files; exit 1 when a dropped or renamed column is still used."""
    from catalog.errors import CairnError
    from lineage import ci

    try:
        report = ci.diff(env.cairn(), ci.sql_files(base, path), ci.sql_files(head, path), dialect, default_catalog, default_schema)
    except CairnError as exc:
        fail(env, exc.code, str(exc), 2)
    if fmt == "json" or env.as_json:
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
    """Downstream (or upstream) of a table, or of catalog.schema.table.column with --level COLUMN."""
    svc = env.cairn().lineage
    res = (svc.get_upstream if upstream else svc.get_downstream)(name, level=level.upper(), depth=depth)
    label = {n.id: n.name or "(restricted)" for n in (res.root, *res.nodes)}
    emit(env, [{"depth": n.depth, "node": label[n.id], "kind": n.kind, "path": " > ".join(label[p] for p in n.path)} for n in res.nodes],
         f"{'upstream' if upstream else 'downstream'} of {name}" + (" (truncated)" if res.truncated else ""))


@cli.command(short_help="Serve GraphQL (GraphiQL), UC REST and OpenLineage on one port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes (one per core is a good start).")
@governed
def serve(env: Env, host: str, port: int, workers: int) -> None:
    """Serve GraphQL (with GraphiQL in a browser) at /graphql, the Unity Catalog REST API, OpenLineage,
    /healthz and /metrics on one port. Requests authenticate with `Authorization: Bearer TOKEN`
    (`cairn token create`). Prints a `ready` line once it answers."""
    import socket

    from api.server import serve as run_server

    base = f"http://{host}:{port}"
    try:  # say so before anything else when the port is taken
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        other = str(port + 1 if port else 8081)
        fail(env, "UNAVAILABLE", f"cannot listen on {host}:{port}: {exc.strerror}: the port is taken (another Cairn?); "
                                 f"pick another with `{env.command('serve', '--host', host, '--port', other)}` (or `make run PORT={other}`)", 1)
    metastore = env.metastore
    mint = env.command("token", "create", "--quiet", principal=env.principal or "admin")
    if env.as_json:
        click.echo(json.dumps({"event": "starting", "url": base, "graphql": f"{base}/graphql", "uc_rest": f"{base}/api/2.1/unity-catalog",
                               "openlineage": f"{base}/api/v1/lineage", "token_command": mint}))
    else:
        click.echo(f"Cairn on {base}: GraphQL {base}/graphql  UC REST {base}/api/2.1/unity-catalog  OpenLineage {base}/api/v1/lineage  "
                   f"{base}/healthz  {base}/metrics")
        click.echo(f"try: curl -H \"Authorization: Bearer $({mint})\" {base}/api/2.1/unity-catalog/catalogs")
    _say_when_ready(host, port, env.as_json)
    from pipelines.jobs.scheduler import start_in_background

    if workers == 1:  # job schedules, when serving as an admin (with forked workers: `cairn jobs scheduler` beside it)
        start_in_background(metastore, env.principal)
    run_server(metastore, host, port, workers)


def _say_when_ready(host: str, port: int, as_json: bool = False) -> None:
    """Print `ready: ...` once /healthz answers (from a thread, so the server starts meanwhile)."""
    import socket
    import threading
    import time

    where = f"[{host}]" if ":" in host else host
    probe_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - a probe of the address the user chose

    def answers() -> bool:
        # One keep-alive request, waited for however long the server takes once it accepted, and
        # closed by this side after the answer: nothing is abandoned in the listen queue and the
        # server's port is left with no TIME_WAIT (it can be bound again as soon as the server stops).
        with socket.create_connection((probe_host, port), timeout=2) as conn:
            conn.settimeout(120)
            conn.sendall(f"GET /healthz HTTP/1.1\r\nHost: {where}:{port}\r\n\r\n".encode())
            return conn.recv(64).startswith(b"HTTP/1.1 200")

    def wait() -> None:
        for _ in range(1200):
            try:
                if answers():
                    if as_json:
                        click.echo(json.dumps({"event": "ready", "url": f"http://{where}:{port}"}))
                    else:
                        click.echo(f"ready: Cairn answers on http://{where}:{port} (Ctrl-C stops it)")
                    return
            except OSError:
                pass
            time.sleep(0.1)

    threading.Thread(target=wait, daemon=True, name="cairn-ready").start()


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
    """Mint a bearer token for the server; it is shown once, keep it."""
    raw, info = env.cairn().tokens.create_token(who, expires, comment)
    if quiet:
        click.echo(raw)
        return
    emit(env, {"token": raw, "token_id": info.token_id, "principal": info.principal, "expires_at": info.expires_at})


@token.command("list")
@governed
def token_list(env: Env) -> None:
    """Your tokens (admins: everyone's), never the secrets themselves."""
    emit(env, [{"token_id": t.token_id, "principal": t.principal, "created_at": t.created_at, "expires_at": t.expires_at,
                "revoked_at": t.revoked_at, "comment": t.comment} for t in env.cairn().tokens.list_tokens()], "tokens")


@token.command("revoke")
@click.argument("token_id")
@governed
def token_revoke(env: Env, token_id: str) -> None:
    """Revoke the token TOKEN_ID (from `cairn token list`)."""
    env.cairn().tokens.revoke_token(token_id)
    say(env, f"revoked token {token_id}", revoked=token_id)


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


from api.features_cli import features  # noqa: E402

cli.add_command(features)

from api.jobs_cli import jobs  # noqa: E402

cli.add_command(jobs)


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
