"""`cairn churn demo`: the seed's churn chain, built end to end on generated data (what `make run` shows).

Raw events for N users → the feature history (incremental refreshes) → the weekly job
(pipelines/churn/train_job.yml) run as its service principal: features refreshed, labels joined
point in time and saved, xgboost searched with hyperopt and registered, gated promotion to
`champion`, features published online, endpoint `churn` (canary split once there is a previous
champion) with an inference table, batch predictions. Then it prints the champion's lineage back to
the raw table versions, a curl that scores a user through the endpoint, and a GraphQL query.

Registered on the main command group in api/cli.py; uses its context object and error handling.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

import click

from api.cli_common import Env, governed

TASKS = ("refresh_features", "training_set", "train", "deploy")


def graphql_query(model: str, version: int, endpoint: str) -> str:
    """The GraphQL query that shows the chain: the model, its gates and versions, the champion's
    upstream lineage, and the endpoint serving it."""
    return (
        "{ model(name: \"%s\") { aliases { alias version } gates { kind metric op threshold }\n"
        "    versions(first: 5) { edges { node { version runId trainingSet gateResults { gate passed detail } } } } }\n"
        "  lineage(name: \"model:%s/%d\", upstream: true, depth: 10) { nodes { kind name depth } }\n"
        "  servingEndpoint(name: \"%s\") { state routes { servedModelName trafficPercentage } inferenceTable } }"
    ) % (model, model, version, endpoint)


@click.group()
def churn() -> None:
    """The seed's churn pipeline: features, training, gated deployment, serving."""


@churn.command("demo")
@click.option("--users", default=50_000, show_default=True, help="users to generate")
@click.option("--events", default=3_000_000, show_default=True, help="events to generate (about)")
@click.option("--days", default=120, show_default=True, help="days of history, ending now")
@click.option("--max-evals", default=4, show_default=True, help="hyperopt trials")
@click.option("--parallelism", default=1, show_default=True, help="trials at a time (each in its own process)")
@click.option("--host", default="127.0.0.1", show_default=True, help="where `cairn serve` will listen (for the printed curl)")
@click.option("--port", default=8080, show_default=True)
@governed
def demo(env: Env, users: int, events: int, days: int, max_evals: int, parallelism: int, host: str, port: int) -> None:
    """Build the churn chain on generated data as the service principal `churn-pipeline`, and print
    how to see it: lineage, a scoring curl, the GraphQL query. Run again: new events are not added,
    the job trains a new version and a promoted one is served with the previous champion as canary."""
    import faulthandler

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from catalog.errors import FailedPrecondition
    from pipelines.churn.setup import SP, build_world, model_lineage
    from pipelines.jobs.runner import Runner

    faulthandler.enable()  # a native abort (e.g. a library's thread at exit) shows every thread's Python stack
    ms = env.metastore
    admin = env.principal or "admin"
    started = time.monotonic()
    columns = (TextColumn("{task.description:<28}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())
    with Progress(*columns, disable=env.as_json) as progress:
        bars: dict[str, Any] = {}

        def step(what: str, done: int, total: int) -> None:
            if what not in bars:
                bars[what] = progress.add_task(what, total=total)
            progress.update(bars[what], completed=done)

        names = build_world(ms, admin, users, events, days=days, step=step)
        c = ms.as_principal(admin)
        run = c.jobs.run_now("churn-train", {"max_evals": str(max_evals), "parallelism": str(parallelism)})
        job = progress.add_task(f"job churn-train run {run.run_id}", total=len(TASKS))
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.5):
                tasks = [t for t in c.jobs.get_run(run.run_id).tasks if t.task_key in TASKS]
                running = [t.task_key for t in tasks if not t.result_state]
                progress.update(job, completed=len({t.task_key for t in tasks if t.result_state}),
                                description=f"job: {running[0] if running else 'done'}")

        # The run goes on the main thread, the progress watcher (metastore reads only) beside it: a
        # DuckDB connection left in a finished thread can abort the interpreter at exit (duckdb#13904).
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            final = Runner(ms, admin).run(run.run_id)
        finally:
            stop.set()
            watcher.join()
    if final.result_state != "SUCCESS":
        failed = "; ".join(f"{t.task_key}: {t.state_message}" for t in final.tasks if t.result_state not in ("SUCCESS", "EXCLUDED"))
        raise FailedPrecondition(f"the churn job run {run.run_id} ended {final.result_state}: {failed}")
    build_seconds = time.monotonic() - started
    model = names["model"]
    champion = c.models.get_version_by_alias(model, "champion").version
    edges = model_lineage(c, model, champion)
    token = ms.as_principal(admin).tokens.create_token(SP, expires="1d", comment="cairn churn demo")[0]
    user = c.data.read(names["predictions"], columns=["user_id"]).column("user_id")[0].as_py()
    base = f"http://{host}:{port}"
    curl = (f"curl -s -X POST {base}/serving-endpoints/churn/invocations -H 'Authorization: Bearer {token}' "
            f"-H 'Content-Type: application/json' -d '{{\"dataframe_records\": [{{\"user_id\": {user}}}]}}'")
    query = graphql_query(model, champion, "churn")
    gql = f"curl -s {base}/graphql -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d {json.dumps(json.dumps({'query': query}))}"
    if env.as_json:
        click.echo(json.dumps({"names": names, "champion": champion, "build_seconds": round(build_seconds, 1), "lineage": edges,
                               "curl": curl, "graphql": query}, default=str, indent=2))
        _leave()
    ep = c.serving.get_endpoint("churn")
    click.echo(f"\nbuilt in {build_seconds:.0f} s: {users:,} users, {c.data.read(names['events'], columns=['user_id']).num_rows:,} events; "
               f"champion {model}/{champion}, endpoint churn routes "
               + ", ".join(f"{r.served_model_name} {r.traffic_percentage}%" for r in ep.routes))
    click.echo(f"\nlineage of the champion {model}/{champion}, back to the raw table versions (source@version -> target@version):")
    for e in edges:
        at = lambda v: "" if v is None else f"@{v}"  # noqa: E731
        click.echo(f"  {'  ' * e['depth']}{e['source']}{at(e['source_version'])} -> {e['target']}{at(e['target_version'])}")
    click.echo(f"\nscore user {user} through the endpoint (token of {SP}, valid one day), once `cairn serve` is up:\n  {curl}")
    click.echo(f"\nthe chain in GraphQL (paste into {base}/graphql, or run):\n{query}\n\n  {gql}\n")
    _leave()


def _leave() -> None:
    """Exit now, without the interpreter's teardown: everything the demo made is committed (the
    metastore, Delta, MLflow), and at teardown a native thread pool left by a finished thread can
    abort the process ('terminate called without an active exception', duckdb#13904), which CI
    saw a few times under load even with the job on the main thread."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
