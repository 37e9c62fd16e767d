"""`cairn audit`: check lineage policies in CI (`--policy`), read the audit log (`audit log`), and
the downstream impact of changed SQL (`audit diff`). Registered in api/cli.py."""

from __future__ import annotations

import json
import sys
from datetime import UTC
from itertools import islice
from pathlib import Path
from typing import Any

import click

from api.cli_common import Env, emit, fail, governed
from catalog.paging import every


@click.group(invoke_without_command=True, short_help="Check lineage policies in CI; also `audit log`, `audit diff`.")
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
    events = list(islice(every(cairn.audit.list_events, **filters, newest_first=True), limit))
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
