"""`cairn jobs ...`: job definitions, runs and the scheduler, over the governed job service.

Registered on the main command group in api/cli.py; uses its context object and error handling.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from api.cli_common import governed, say

Env = Any  # api.cli.Env (not imported: api/cli.py imports this module)




def emit(env: Any, rows: list[dict[str, Any]] | dict[str, Any], title: str | None = None) -> None:
    if env.as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    rows = [{"field": k, "value": v} for k, v in rows.items()] if isinstance(rows, dict) else rows
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    if not rows:
        console.print("[dim](none)[/dim]")
        return
    table = Table(title=title)
    for key in rows[0]:
        table.add_column(str(key), overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else v.isoformat(timespec="seconds") if hasattr(v, "isoformat") else str(v) for v in row.values()))
    console.print(table)


def _job_row(j: Any) -> dict[str, Any]:
    s = j.settings.schedule
    return {"name": j.name, "job_id": j.job_id, "owner": j.owner, "run_as": j.run_as, "tasks": len(j.settings.tasks),
            "schedule": f"{s.quartz_cron_expression} {s.timezone_id} {s.pause_status}" if s else None, "permission": j.permission}


def _run_row(r: Any) -> dict[str, Any]:
    return {"run_id": r.run_id, "job": r.job_name, "trigger": r.trigger, "state": r.state, "result": r.result_state,
            "run_as": r.run_as, "started": r.started_at, "ended": r.ended_at, "message": r.state_message}


def _task_rows(r: Any) -> list[dict[str, Any]]:
    return [{"task": t.task_key, "attempt": t.attempt, "state": t.state, "result": t.result_state, "lineage_run": t.lineage_run_id,
             "message": (t.state_message or "")[:300]} for t in r.tasks]


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    from catalog.errors import InvalidArgument

    out = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise InvalidArgument(f"--param takes key=value, not {p!r}")
        out[k] = v
    return out


@click.group()
def jobs() -> None:
    """Jobs of tasks (Databricks Jobs shape), run as a service principal; runs and the scheduler."""


@jobs.command("create")
@click.argument("definition", type=click.Path(exists=True, dir_okay=False))
@governed
def jobs_create(env: Env, definition: str) -> None:
    """Create a job from a YAML definition (SQL files are read in)."""
    from pipelines.jobs.loader import load

    emit(env, _job_row(env.cairn().jobs.create_job(load(definition))))


@jobs.command("update")
@click.argument("definition", type=click.Path(exists=True, dir_okay=False))
@governed
def jobs_update(env: Env, definition: str) -> None:
    """Replace a job's settings from its YAML definition (matched by name)."""
    from pipelines.jobs.loader import load

    settings = load(definition)
    emit(env, _job_row(env.cairn().jobs.update_job(settings.name, settings)))


@jobs.command("list")
@governed
def jobs_list(env: Env) -> None:
    """The jobs you may see."""
    from catalog.paging import every

    emit(env, [_job_row(j) for j in every(env.cairn().jobs.list_jobs)], "jobs")


@jobs.command("get")
@click.argument("name")
@governed
def jobs_get(env: Env, name: str) -> None:
    """A job's settings, as JSON."""
    j = env.cairn().jobs.get_job(name)
    click.echo(json.dumps({**_job_row(j), "settings": j.settings.to_dict()}, indent=2, default=str))


@jobs.command("delete")
@click.argument("name")
@governed
def jobs_delete(env: Env, name: str) -> None:
    """Delete a job and its runs."""
    env.cairn().jobs.delete_job(name)
    say(env, f"deleted job {name}")


@jobs.command("run")
@click.argument("name")
@click.option("--param", "params", multiple=True, help="key=value, a job parameter for this run (repeatable).")
@click.option("--no-wait", is_flag=True, help="Only queue the run (a scheduler or `cairn jobs run-pending` executes it).")
@governed
def jobs_run(env: Env, name: str, params: tuple[str, ...], no_wait: bool) -> None:
    """Run a job now, here, and wait for it (its tasks run in subprocesses as the job's run_as)."""
    from pipelines.jobs.runner import Runner

    cairn = env.cairn()
    run = cairn.jobs.run_now(name, _params(params))
    if run.state == "PENDING" and not no_wait:
        run = Runner(env.metastore, cairn.principal).run(run.run_id)
    emit(env, _run_row(run) | ({"tasks": _task_rows(run)} if env.as_json else {}), f"run {run.run_id}")
    if not env.as_json and run.tasks:
        emit(env, _task_rows(run), "tasks")
    if run.result_state not in (None, "SUCCESS", "SUCCESS_WITH_FAILURES"):
        raise SystemExit(1)


@jobs.command("runs")
@click.argument("name", required=False)
@click.option("--active", is_flag=True, help="Only runs not finished yet.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@governed
def jobs_runs(env: Env, name: str | None, active: bool, limit: int) -> None:
    """Runs of a job (or of every job you may see), newest first."""
    page = env.cairn().jobs.list_runs(name, active_only=active, max_results=limit)
    emit(env, [_run_row(r) for r in page], f"runs of {name}" if name else "runs")


@jobs.command("run-get")
@click.argument("run_id", type=int)
@governed
def jobs_run_get(env: Env, run_id: int) -> None:
    """One run with its task runs (every attempt, with its lineage run)."""
    run = env.cairn().jobs.get_run(run_id)
    emit(env, _run_row(run) | ({"tasks": _task_rows(run)} if env.as_json else {}), f"run {run_id}")
    if not env.as_json:
        emit(env, _task_rows(run), "tasks")


@jobs.command("cancel")
@click.argument("run_id", type=int)
@governed
def jobs_cancel(env: Env, run_id: int) -> None:
    """Cancel a run: its runner kills the running tasks' process groups."""
    run = env.cairn().jobs.cancel_run(run_id)
    say(env, f"run {run_id}: {run.state} {run.result_state or ''}".strip(), run_id=run_id, state=run.state)


@jobs.command("permission")
@click.argument("name")
@click.argument("principal")
@click.argument("level", type=click.Choice(["CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE", "NONE"], case_sensitive=False))
@governed
def jobs_permission(env: Env, name: str, principal: str, level: str) -> None:
    """Give a principal CAN_VIEW, CAN_MANAGE_RUN or CAN_MANAGE on a job (NONE removes it)."""
    perms = env.cairn().jobs.set_permission(name, principal, None if level.upper() == "NONE" else level.upper())
    emit(env, [{"principal": p, "level": lvl} for p, lvl in sorted(perms.items())], f"permissions on {name}")


@jobs.command("sp-user")
@click.argument("service_principal")
@click.argument("principal")
@click.option("--revoke", is_flag=True)
@governed
def jobs_sp_user(env: Env, service_principal: str, principal: str, revoke: bool) -> None:
    """Let PRINCIPAL make jobs run as SERVICE_PRINCIPAL (the Service Principal User role; admins only)."""
    users = env.cairn().jobs.set_service_principal_user(service_principal, principal, not revoke)
    say(env, f"users of {service_principal}: {', '.join(users) or '(none)'}", users=users)


@jobs.command("scheduler")
@click.option("--tick", default=1.0, show_default=True, type=click.FloatRange(0.05, 3600), help="Seconds between checks.")
@click.option("--once", is_flag=True, help="Start what is due now, wait for those runs, and exit.")
@governed
def jobs_scheduler(env: Env, tick: float, once: bool) -> None:
    """Run job schedules (acting as an admin: --as ADMIN); `cairn serve` runs this too."""
    from pipelines.jobs.scheduler import Scheduler

    scheduler = Scheduler(env.metastore, env.cairn().principal, tick)
    if once:
        started = scheduler.tick()
        scheduler.close(wait=True)
        say(env, f"started {len(started)} run(s): {', '.join(map(str, started)) or '-'}", runs=started)
        return
    click.echo(f"job scheduler running as {scheduler.principal} (Ctrl-C stops it)")
    try:
        scheduler.serve_forever()
    except KeyboardInterrupt:
        scheduler.close(wait=False)
