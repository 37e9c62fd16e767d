"""GraphQL of jobs, mixed into the root Query and Mutation (api/graphql/schema.py): `jobs(first, after)`,
`job(name | id)` with its tasks, schedule and permissions, `jobRuns(job, first, after)` with their
task runs; the mutations `createJob(spec)` (YAML or JSON, Databricks Jobs shape), `runJob(job,
parameters)` and `cancelJobRun(runId)`. Every field calls the governed job service as the request's
principal; errors carry its stable code (mapped once, in api/graphql/execution.py).

A run started here executes in the server (pipelines/jobs/background.py), as REST's `run-now` does.
A spec's `sql_task` carries its SQL in `query`: the server reads no file a spec names.
"""

from __future__ import annotations

import json
from typing import Any

import graphene

from api.graphql.paging import connection, connection_of, page
from catalog.errors import InvalidArgument
from catalog.jobspec import parse_settings

MAX_SPEC = 1_000_000


class JobParameter(graphene.ObjectType):
    name = graphene.String(required=True)
    default = graphene.String(required=True)


class JobSchedule(graphene.ObjectType):
    quartz_cron_expression = graphene.String(required=True)
    timezone_id = graphene.String(required=True)
    pause_status = graphene.String(required=True)


class JobTask(graphene.ObjectType):
    task_key = graphene.String(required=True)
    depends_on = graphene.List(graphene.NonNull(graphene.String), required=True)
    run_if = graphene.String(required=True)
    entry_point = graphene.String(description="module:function of a Python task")
    sql = graphene.String(description="the SQL of a SQL task")
    sql_file = graphene.String()
    parameters = graphene.JSONString(required=True)
    max_retries = graphene.Int(required=True)
    min_retry_interval_millis = graphene.Int(required=True)
    retry_on_timeout = graphene.Boolean(required=True)
    timeout_seconds = graphene.Int(required=True)


class JobPermission(graphene.ObjectType):
    principal = graphene.String(required=True)
    level = graphene.String(required=True, description="IS_OWNER, CAN_MANAGE, CAN_MANAGE_RUN or CAN_VIEW")


class TaskRun(graphene.ObjectType):
    task_run_id = graphene.Int(required=True)
    task_key = graphene.String(required=True)
    attempt = graphene.Int(required=True)
    state = graphene.String(required=True, description="PENDING, RUNNING or TERMINATED")
    result_state = graphene.String()
    state_message = graphene.String()
    lineage_run_id = graphene.String(description="the lineage run this attempt recorded")
    started_at = graphene.DateTime()
    ended_at = graphene.DateTime()


class JobRunParameter(graphene.ObjectType):
    name = graphene.String(required=True)
    value = graphene.String(required=True)


class JobRun(graphene.ObjectType):
    run_id = graphene.Int(required=True)
    job_id = graphene.Int(required=True)
    job_name = graphene.String(required=True)
    trigger = graphene.String(required=True, description="ONE_TIME or PERIODIC")
    scheduled_for = graphene.DateTime()
    triggered_by = graphene.String(required=True)
    run_as = graphene.String(required=True)
    state = graphene.String(required=True, description="PENDING, RUNNING, TERMINATING, TERMINATED or SKIPPED")
    result_state = graphene.String()
    state_message = graphene.String()
    parameters = graphene.List(graphene.NonNull(JobRunParameter), required=True)
    created_at = graphene.DateTime(required=True)
    started_at = graphene.DateTime()
    ended_at = graphene.DateTime()
    cancel_requested = graphene.Boolean(required=True)
    tasks = graphene.List(graphene.NonNull(TaskRun), required=True, description="every attempt of every task started so far")


class Job(graphene.ObjectType):
    job_id = graphene.Int(required=True)
    name = graphene.String(required=True)
    description = graphene.String()
    owner = graphene.String(required=True)
    run_as = graphene.String(required=True)
    permission = graphene.String(required=True, description="the caller's level on the job")
    created_by = graphene.String(required=True)
    created_at = graphene.DateTime(required=True)
    updated_at = graphene.DateTime(required=True)
    max_concurrent_runs = graphene.Int(required=True)
    timeout_seconds = graphene.Int(required=True)
    parameters = graphene.List(graphene.NonNull(JobParameter), required=True)
    schedule = graphene.Field(JobSchedule)
    tasks = graphene.List(graphene.NonNull(JobTask), required=True)
    permissions = graphene.List(graphene.NonNull(JobPermission), required=True, description="who holds what on the job")
    settings = graphene.JSONString(required=True, description="the whole definition, Databricks Jobs shape")

    def resolve_permissions(self, info: Any) -> list[JobPermission]:
        perms = info.context["cairn"].jobs.get_permissions(self.job_id)
        return [JobPermission(principal=p, level=lvl) for p, lvl in sorted(perms.items())]


def _job(j: Any) -> Job:
    s = j.settings
    tasks = [JobTask(task_key=t.task_key, depends_on=list(t.depends_on), run_if=t.run_if, entry_point=t.entry_point, sql=t.sql,
                     sql_file=t.sql_file, parameters=dict(t.parameters), max_retries=t.max_retries,
                     min_retry_interval_millis=t.min_retry_interval_millis, retry_on_timeout=t.retry_on_timeout,
                     timeout_seconds=t.timeout_seconds) for t in s.tasks]
    schedule = JobSchedule(quartz_cron_expression=s.schedule.quartz_cron_expression, timezone_id=s.schedule.timezone_id,
                           pause_status=s.schedule.pause_status) if s.schedule else None
    return Job(job_id=j.job_id, name=j.name, description=s.description, owner=j.owner, run_as=j.run_as, permission=j.permission,
               created_by=j.created_by, created_at=j.created_at, updated_at=j.updated_at, max_concurrent_runs=s.max_concurrent_runs,
               timeout_seconds=s.timeout_seconds, parameters=[JobParameter(name=k, default=v) for k, v in s.parameters.items()],
               schedule=schedule, tasks=tasks, settings=s.to_dict())


def _run(r: Any) -> JobRun:
    tasks = [TaskRun(task_run_id=t.task_run_id, task_key=t.task_key, attempt=t.attempt, state=t.state, result_state=t.result_state,
                     state_message=t.state_message, lineage_run_id=t.lineage_run_id, started_at=t.started_at, ended_at=t.ended_at)
             for t in sorted(r.tasks, key=lambda t: (t.started_at is None, t.started_at, t.task_run_id))]
    return JobRun(run_id=r.run_id, job_id=r.job_id, job_name=r.job_name, trigger=r.trigger, scheduled_for=r.scheduled_for,
                  triggered_by=r.triggered_by, run_as=r.run_as, state=r.state, result_state=r.result_state, state_message=r.state_message,
                  parameters=[JobRunParameter(name=k, value=v) for k, v in r.parameters.items()], created_at=r.created_at,
                  started_at=r.started_at, ended_at=r.ended_at, cancel_requested=r.cancel_requested, tasks=tasks)


def parse_spec(spec: str) -> Any:
    """A job definition from YAML or JSON text (JSON is YAML), validated; no file is read."""
    import yaml

    if len(spec) > MAX_SPEC:
        raise InvalidArgument(f"the spec is longer than {MAX_SPEC} characters")
    try:
        definition = yaml.safe_load(spec)
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"the spec is not valid YAML or JSON: {exc}") from None
    return parse_settings(definition)


JobConnection = connection_of(Job)
JobRunConnection = connection_of(JobRun)


class _JobPage:
    """Adapts the service's pages of entities to GraphQL objects, keeping their cursors."""

    def __init__(self, fn: Any, wrap: Any) -> None:
        self.fn, self.wrap = fn, wrap

    def __call__(self, *args: Any, **kw: Any) -> Any:
        from catalog.entities import Page

        got = self.fn(*args, **kw)
        items = tuple(self.wrap(x) for x in got)
        cursors = {id(w): got.cursor(i) for i, w in enumerate(items)}
        return Page(items, got.next_page_token, lambda w: cursors[id(w)])


class JobQuery(graphene.ObjectType):
    jobs = connection(JobConnection, description="the jobs the caller may see, by name")
    job = graphene.Field(Job, name=graphene.String(), id=graphene.Int(description="the job_id"))
    job_runs = connection(JobRunConnection, job=graphene.String(description="a job's name; every job the caller may see if omitted"),
                          description="runs, newest first, with their task runs")

    def resolve_jobs(self, info: Any, **kw: Any) -> Any:
        return page(JobConnection, info, kw, _JobPage(info.context["cairn"].jobs.list_jobs, _job), prime=False)

    def resolve_job(self, info: Any, name: str | None = None, id: int | None = None) -> Any:
        if (name is None) == (id is None):
            raise InvalidArgument("give the job's name or its id")
        return _job(info.context["cairn"].jobs.get_job(name if name is not None else id))

    def resolve_job_runs(self, info: Any, job: str | None = None, **kw: Any) -> Any:
        return page(JobRunConnection, info, kw, _JobPage(info.context["cairn"].jobs.list_runs, _run), job, False, prime=False)


class JobParameterInput(graphene.InputObjectType):
    name = graphene.String(required=True)
    value = graphene.String(required=True)


class JobMutation(graphene.ObjectType):
    create_job = graphene.Field(Job, spec=graphene.String(required=True, description="the definition, YAML or JSON (Databricks Jobs shape)"))
    run_job = graphene.Field(JobRun, job=graphene.String(required=True), parameters=graphene.List(graphene.NonNull(JobParameterInput)),
                             description="start a run now (it executes in the server); CAN_MANAGE_RUN")
    cancel_job_run = graphene.Field(JobRun, run_id=graphene.Int(required=True))

    def resolve_create_job(self, info: Any, spec: str) -> Any:
        return _job(info.context["cairn"].jobs.create_job(parse_spec(spec)))

    def resolve_run_job(self, info: Any, job: str, parameters: Any = None) -> Any:
        from pipelines.jobs import background

        cairn = info.context["cairn"]
        params = {p.name: p.value for p in parameters or []}
        if parameters and len(params) != len(parameters):
            raise InvalidArgument(f"a parameter is given twice: {json.dumps([p.name for p in parameters])}")
        run = cairn.jobs.run_now(job, params or None)
        if run.state == "PENDING":
            background.execute(cairn.metastore, cairn.principal, run.run_id)
        return _run(run)

    def resolve_cancel_job_run(self, info: Any, run_id: int) -> Any:
        return _run(info.context["cairn"].jobs.cancel_run(run_id))
