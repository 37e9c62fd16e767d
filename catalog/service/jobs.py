"""Jobs (Databricks Jobs shape): definitions, permissions and runs, governed.

Permissions follow Databricks' job ACLs: the owner (IS_OWNER) and CAN_MANAGE may change, delete and
share a job; CAN_MANAGE_RUN may run and cancel it; CAN_VIEW may see it and its runs. Metastore admins
may do everything. Any known principal may create a job, running as itself or as a service
principal it is a "Service Principal User" of (granted by an admin): a job never lets anyone act as
a principal they could not act as anyway, and every task acts as `run_as` through the governed
services. Changing the tasks of a job checks `run_as` again, for the one changing it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from catalog.entities import Page, PrincipalKind
from catalog.errors import FailedPrecondition, InvalidArgument, NotFound
from catalog.jobspec import (
    PERMISSION_LEVELS,
    TERMINAL_TASK_STATES,
    Job,
    JobRun,
    JobSettings,
    TaskRun,
    parse_settings,
    previous_fire,
    sql_placeholders,
)
from catalog.service.base import UnitOfWork
from catalog.service.common import Service, decode_token, encode_token, page_size
from catalog.store.jobs import ACTIVE, JobStore
from catalog.store.metastore import now

_RANK = {"CAN_VIEW": 1, "CAN_MANAGE_RUN": 2, "CAN_MANAGE": 3, "IS_OWNER": 4}
_RUN_RESULTS = ("SUCCESS", "SUCCESS_WITH_FAILURES", "FAILED", "TIMEDOUT", "CANCELED")


def _job(row: dict[str, Any], level: str) -> Job:
    return Job(row["job_id"], row["name"], row["owner"], row["run_as"], parse_settings(row["settings"]), row["created_at"],
               row["created_by"], row["updated_at"], level)


def _task_run(r: dict[str, Any]) -> TaskRun:
    return TaskRun(r["task_run_id"], r["run_id"], r["task_key"], r["attempt"], r["state"], r["result_state"], r["state_message"],
                   r["lineage_run_id"], r["started_at"], r["ended_at"])


def _run(r: dict[str, Any], job_name: str, tasks: list[dict[str, Any]] = ()) -> JobRun:  # type: ignore[assignment]
    return JobRun(r["run_id"], r["job_id"], job_name, r["trigger"], r["scheduled_for"], r["triggered_by"], r["run_as"], r["state"],
                  r["result_state"], r["state_message"], dict(r["parameters"] or {}), parse_settings(r["settings"]), r["created_at"],
                  r["started_at"], r["ended_at"], bool(r["cancel_requested"]), tuple(_task_run(t) for t in tasks))


def _job_cursor(job: Job) -> str:
    return encode_token(job.name)


def _run_cursor(run: JobRun) -> str:
    return encode_token(str(run.run_id))


def _check_sql(settings: JobSettings) -> None:
    """Every `{{parameter}}` of a SQL task stands where a value may: whoever may run the job (CAN
    MANAGE RUN) sets the values, and the SQL runs as `run_as`."""
    for task in settings.tasks:
        if task.sql:
            try:
                sql_placeholders(task.sql)
            except InvalidArgument as exc:
                raise InvalidArgument(f"task '{task.task_key}': {exc}") from None


class JobService(Service):
    # access --------------------------------------------------------------------------------
    def _level(self, uow: UnitOfWork, row: dict[str, Any], perms: dict[str, str] | None = None) -> str | None:
        p = uow.principal
        if row["owner"] == p:
            return "IS_OWNER"
        if uow.authz.is_admin(p):
            return "CAN_MANAGE"
        mine = uow.authz.principals(p)
        perms = perms if perms is not None else JobStore(uow.conn).permissions([row["job_id"]])[row["job_id"]]
        levels = [lvl for who, lvl in perms.items() if who in mine]
        return max(levels, key=_RANK.__getitem__) if levels else None

    def _open(self, uow: UnitOfWork, name: Any, need: str) -> dict[str, Any]:
        """The job named `name` (or with job id `name`) if the caller holds `need` on it; NotFound if
        it may not even see it."""
        if isinstance(name, int) and not isinstance(name, bool):
            row = JobStore(uow.conn).find_job_by_id(name)
        elif isinstance(name, str):
            row = JobStore(uow.conn).find_job(name)
        else:
            raise InvalidArgument(f"a job is named by its name (a string) or its job_id (an integer), not {name!r}")
        if row is None:  # the same answer as for a job the caller may not see
            uow.decided = True
            raise NotFound(f"job '{name}' does not exist")
        level = self._level(uow, row)
        if level is None:
            uow.hide("job", str(name))  # by what the caller named: an id must not reveal the name
        if _RANK[level] < _RANK[need]:
            uow.deny(f"{uow.principal} has {level} on job '{row['name']}'; this needs {need}")
        uow.decided = True
        uow.params["job_id"] = row["job_id"]
        return row

    def _check_run_as(self, uow: UnitOfWork, run_as: str) -> None:
        """The caller may make a job run as `run_as`: itself, or a service principal it may use."""
        target = uow.store.find_principal(run_as)
        if target is None:
            raise InvalidArgument(f"run_as: principal '{run_as}' does not exist")
        if target.kind is PrincipalKind.GROUP:
            raise InvalidArgument(f"run_as: '{run_as}' is a group; a job runs as a service principal or a user")
        p = uow.principal
        if not self._may_act_as(uow, p, run_as, target.kind):
            uow.deny(f"{p} may not run jobs as '{run_as}': needs the Service Principal User role on it (granted by an admin)")

    @staticmethod
    def _may_act_as(uow: UnitOfWork, who: str, run_as: str, kind: PrincipalKind) -> bool:
        if run_as == who or uow.authz.is_admin(who):
            return True
        return kind is PrincipalKind.SERVICE_PRINCIPAL and bool(JobStore(uow.conn).service_principal_users(run_as) & uow.authz.principals(who))

    def _require_run_as_still_allowed(self, uow: UnitOfWork, job: dict[str, Any]) -> None:
        """Whoever last set the job's `run_as` (its `updated_by`) may still act as it. A revoked
        Service Principal User role stops the jobs it let someone set up, rather than living on in them."""
        target = uow.store.find_principal(job["run_as"])
        if target is None or not self._may_act_as(uow, job["updated_by"], job["run_as"], target.kind):
            uow.deny(f"job '{job['name']}' runs as '{job['run_as']}', which {job['updated_by']} (who set it) may no longer act as; "
                     "an admin or a Service Principal User of it must update the job")

    # definitions ---------------------------------------------------------------------------
    def create_job(self, definition: dict[str, Any] | JobSettings) -> Job:
        """Create a job from its settings (Databricks Jobs shape). The caller becomes its owner;
        `run_as` defaults to the caller. Raises InvalidArgument, PermissionDenied, AlreadyExists."""
        name = definition.name if isinstance(definition, JobSettings) else (definition or {}).get("name") if isinstance(definition, dict) else None
        with self._uow("create_job", None, f"job:{name}") as uow:
            uow.allow()
            settings = parse_settings(definition)
            _check_sql(settings)
            run_as = settings.run_as or uow.principal
            self._check_run_as(uow, run_as)
            store = JobStore(uow.conn)
            if store.find_job(settings.name) is not None:
                from catalog.errors import AlreadyExists

                raise AlreadyExists(f"job '{settings.name}' already exists")
            job_id = store.insert_job(settings.name, uow.principal, run_as, settings.to_dict())
            uow.params["job_id"] = job_id
            return _job(store.job_by_id(job_id), "IS_OWNER")

    def update_job(self, name: str | int, definition: dict[str, Any] | JobSettings) -> Job:
        """Replace a job's settings (its name stays). Needs CAN_MANAGE; `run_as` is checked for the caller."""
        with self._uow("update_job", None, f"job:{name}") as uow:
            row = self._open(uow, name, "CAN_MANAGE")
            settings = parse_settings(definition)
            _check_sql(settings)
            if settings.name != row["name"]:
                raise InvalidArgument(f"the definition names job '{settings.name}', not '{row['name']}'; a job keeps its name")
            run_as = settings.run_as or row["run_as"]
            self._check_run_as(uow, run_as)
            store = JobStore(uow.conn)
            store.update_job(row["job_id"], uow.principal, run_as=run_as, settings=settings.to_dict())
            return _job(store.job_by_id(row["job_id"]), self._level(uow, row) or "CAN_MANAGE")

    def delete_job(self, name: str | int) -> None:
        """Delete a job with its runs. Needs CAN_MANAGE; refused while a run is active."""
        with self._uow("delete_job", None, f"job:{name}") as uow:
            row = self._open(uow, name, "CAN_MANAGE")
            store = JobStore(uow.conn)
            if store.count_active_runs(row["job_id"]):
                raise FailedPrecondition(f"job '{name}' has active runs; cancel them first")
            store.delete_job(row["job_id"])

    def get_job(self, name: str | int) -> Job:
        """A job the caller may see (CAN_VIEW or more); NotFound otherwise."""
        with self._uow("get_job", None, f"job:{name}", write=False) as uow:
            row = self._open(uow, name, "CAN_VIEW")
            return _job(row, self._level(uow, row) or "CAN_VIEW")

    def list_jobs(self, page_token: str | None = None, max_results: int | None = None) -> Page[Job]:
        """The jobs the caller may see, by name."""
        with self._uow("list_jobs", None, None, write=False, page_token=page_token) as uow:
            uow.allow()
            store, limit, after = JobStore(uow.conn), page_size(max_results), decode_token(page_token)
            out: list[Job] = []
            while True:  # one more than the page, so a next page is promised only when there is one
                batch = store.list_jobs(after, 500)
                perms = store.permissions([r["job_id"] for r in batch])
                for r in batch:
                    level = self._level(uow, r, perms[r["job_id"]])
                    if level:
                        if len(out) == limit:
                            return Page(tuple(out), encode_token(out[-1].name), _job_cursor)
                        out.append(_job(r, level))
                if len(batch) < 500:
                    return Page(tuple(out), None, _job_cursor)
                after = batch[-1]["name"]

    def set_permission(self, name: str | int, principal: str, level: str | None) -> dict[str, str]:
        """Give `principal` CAN_VIEW, CAN_MANAGE_RUN or CAN_MANAGE on a job (None removes it). Needs CAN_MANAGE."""
        with self._uow("set_job_permission", None, f"job:{name}", principal=principal, level=level) as uow:
            row = self._open(uow, name, "CAN_MANAGE")
            if level is not None and level not in PERMISSION_LEVELS:
                raise InvalidArgument(f"permission level must be one of {', '.join(PERMISSION_LEVELS)}, not {level!r}")
            uow.store.get_principal(principal)
            store = JobStore(uow.conn)
            store.set_permission(row["job_id"], principal, level)
            return store.permissions([row["job_id"]])[row["job_id"]]

    def set_permissions(self, name: str | int, levels: dict[str, str | None], replace: bool = False) -> dict[str, str]:
        """Set several principals' levels on a job at once (None removes one); with `replace`, every
        other direct permission is removed too (the owner keeps IS_OWNER). Needs CAN_MANAGE.
        All or nothing: an unknown principal or level changes nothing."""
        with self._uow("set_job_permissions", None, f"job:{name}", levels=levels, replace=replace) as uow:
            row = self._open(uow, name, "CAN_MANAGE")
            if not isinstance(levels, dict):
                raise InvalidArgument("permissions map principals to a level")
            for who, level in levels.items():
                if level is not None and level not in PERMISSION_LEVELS:
                    raise InvalidArgument(f"permission level must be one of {', '.join(PERMISSION_LEVELS)}, not {level!r} (for '{who}')")
                uow.store.get_principal(who)
            store = JobStore(uow.conn)
            current = store.permissions([row["job_id"]])[row["job_id"]]
            for who in current:
                if replace and who not in levels:
                    store.set_permission(row["job_id"], who, None)
            for who, level in levels.items():
                store.set_permission(row["job_id"], who, level)
            return {**store.permissions([row["job_id"]])[row["job_id"]], row["owner"]: "IS_OWNER"}

    def get_permissions(self, name: str | int) -> dict[str, str]:
        """Who holds what on a job (the owner as IS_OWNER). Needs CAN_VIEW."""
        with self._uow("get_job_permissions", None, f"job:{name}", write=False) as uow:
            row = self._open(uow, name, "CAN_VIEW")
            return {**JobStore(uow.conn).permissions([row["job_id"]])[row["job_id"]], row["owner"]: "IS_OWNER"}

    def set_service_principal_user(self, service_principal: str, principal: str, grant: bool = True) -> list[str]:
        """Let `principal` (a user or group) make jobs run as `service_principal`, or stop it. Needs an admin."""
        with self._uow("set_service_principal_user", None, service_principal, principal=principal, grant=grant) as uow:
            uow.require_admin("granting the Service Principal User role")
            sp = uow.store.get_principal(service_principal)
            if sp.kind is not PrincipalKind.SERVICE_PRINCIPAL:
                raise InvalidArgument(f"'{service_principal}' is a {sp.kind.value.lower()}, not a service principal")
            uow.store.get_principal(principal)
            store = JobStore(uow.conn)
            store.set_service_principal_user(service_principal, principal, grant)
            return sorted(store.service_principal_users(service_principal))

    # runs ------------------------------------------------------------------------------------
    def run_now(self, name: str | int, parameters: dict[str, Any] | None = None) -> JobRun:
        """Queue a run (ONE_TIME) with job parameters overridden by `parameters`. Needs CAN_MANAGE_RUN.

        At `max_concurrent_runs` the run is recorded as SKIPPED, as in Databricks."""
        with self._uow("run_job", None, f"job:{name}", parameters=parameters) as uow:
            row = self._open(uow, name, "CAN_MANAGE_RUN")
            return self._start(uow, row, parameters, "ONE_TIME", None)

    def run_scheduled(self, name: str, fire_time: datetime) -> JobRun | None:
        """Claim the PERIODIC run of a job for one fire time of its schedule; None if another
        scheduler claimed it already. Needs CAN_MANAGE_RUN (schedulers act as the job's owner)."""
        with self._uow("run_job", None, f"job:{name}", trigger="PERIODIC", scheduled_for=str(fire_time)) as uow:
            row = self._open(uow, name, "CAN_MANAGE_RUN")
            settings = parse_settings(row["settings"])
            if settings.schedule is None or settings.schedule.pause_status != "UNPAUSED":
                raise FailedPrecondition(f"job '{name}' has no unpaused schedule")
            if not isinstance(fire_time, datetime) or fire_time.tzinfo is None or previous_fire(settings.schedule, fire_time) != fire_time:
                raise InvalidArgument(f"{fire_time.isoformat()} is not a fire time of job '{name}''s schedule")
            fire_time = fire_time.astimezone(UTC)
            store = JobStore(uow.conn)
            store.lock_job(row["job_id"])
            if store.scheduled_run_exists(row["job_id"], fire_time):
                return None
            return self._start(uow, row, None, "PERIODIC", fire_time)

    def _start(self, uow: UnitOfWork, row: dict[str, Any], parameters: dict[str, Any] | None, trigger: str, at: datetime | None) -> JobRun:
        self._require_run_as_still_allowed(uow, row)
        settings = parse_settings(row["settings"])
        params = dict(settings.parameters)
        for k, v in (parameters or {}).items():
            if k not in params:
                known = ", ".join(sorted(params)) or "none"
                raise InvalidArgument(f"job '{row['name']}' has no parameter '{k}' (its parameters: {known})")
            params[k] = "" if v is None else str(v)
        store = JobStore(uow.conn)
        store.lock_job(row["job_id"])
        full = store.count_active_runs(row["job_id"]) >= settings.max_concurrent_runs
        run_id = store.insert_run(
            job_id=row["job_id"], trigger=trigger, scheduled_for=at, triggered_by=uow.principal, run_as=row["run_as"],
            state="SKIPPED" if full else "PENDING", result_state=None,
            state_message=f"skipped: {settings.max_concurrent_runs} run(s) already active (max_concurrent_runs)" if full else None,
            parameters=params, settings=row["settings"], ended_at=now() if full else None,
        )
        uow.params["run_id"] = run_id
        return _run(store.get_run(run_id), row["name"])

    def _open_run(self, uow: UnitOfWork, run_id: Any, need: str) -> tuple[dict[str, Any], dict[str, Any]]:
        if isinstance(run_id, bool) or not isinstance(run_id, int):
            raise InvalidArgument(f"a run id is an integer, not {run_id!r}")
        store = JobStore(uow.conn)
        try:
            run = store.get_run(run_id)
        except NotFound:  # the same answer as for a run the caller may not see
            uow.decided = True
            raise NotFound(f"job run '{run_id}' does not exist") from None
        job = store.job_by_id(run["job_id"])
        level = self._level(uow, job)
        if level is None:
            uow.hide("job run", str(run_id))
        if _RANK[level] < _RANK[need]:
            uow.deny(f"{uow.principal} has {level} on job '{job['name']}'; this needs {need}")
        uow.decided = True
        return run, job

    def get_run(self, run_id: int) -> JobRun:
        """A run with its task runs (every attempt). Needs CAN_VIEW on its job."""
        with self._uow("get_job_run", None, f"run:{run_id}", write=False) as uow:
            run, job = self._open_run(uow, run_id, "CAN_VIEW")
            return _run(run, job["name"], JobStore(uow.conn).task_runs([run_id]))

    def list_runs(self, name: str | int | None = None, active_only: bool = False, page_token: str | None = None,
                  max_results: int | None = None) -> Page[JobRun]:
        """Runs, newest first, of one job or of every job the caller may see, with their task runs."""
        with self._uow("list_job_runs", None, f"job:{name}" if name else None, write=False, page_token=page_token) as uow:
            store = JobStore(uow.conn)
            if name is not None:
                jobs = [self._open(uow, name, "CAN_VIEW")]
            else:
                uow.allow()
                jobs = []
                after = None
                while True:
                    batch = store.list_jobs(after, 500)
                    perms = store.permissions([r["job_id"] for r in batch])
                    jobs += [r for r in batch if self._level(uow, r, perms[r["job_id"]])]
                    if len(batch) < 500:
                        break
                    after = batch[-1]["name"]
            names = {j["job_id"]: j["name"] for j in jobs}
            token = decode_token(page_token)
            before = int(token) if token and token.isdigit() else None
            limit = page_size(max_results)
            rows = store.list_runs(list(names), before, limit + 1, active_only)
            more, rows = len(rows) > limit, rows[:limit]
            tasks: dict[int, list[dict[str, Any]]] = {}
            for t in store.task_runs([r["run_id"] for r in rows]):
                tasks.setdefault(t["run_id"], []).append(t)
            return Page(tuple(_run(r, names[r["job_id"]], tasks.get(r["run_id"], [])) for r in rows),
                        encode_token(str(rows[-1]["run_id"])) if more else None, _run_cursor)

    def cancel_run(self, run_id: int) -> JobRun:
        """Ask a run to stop: its runner kills the running tasks' process groups and marks the rest
        CANCELED. A run not started yet is canceled at once. Needs CAN_MANAGE_RUN."""
        with self._uow("cancel_job_run", None, f"run:{run_id}") as uow:
            run, job = self._open_run(uow, run_id, "CAN_MANAGE_RUN")
            store = JobStore(uow.conn)
            if run["state"] not in ACTIVE:
                raise FailedPrecondition(f"run {run_id} is {run['state']}; only active runs can be canceled")
            if run["state"] == "PENDING":
                store.update_run(run_id, state="TERMINATED", result_state="CANCELED", state_message=f"canceled by {uow.principal}",
                                 cancel_requested=True, ended_at=now())
            else:
                store.update_run(run_id, state="TERMINATING", cancel_requested=True, state_message=f"canceled by {uow.principal}")
            return _run(store.get_run(run_id), job["name"])

    # the runner's bookkeeping: only the principal that started a run (or an admin) records it ------
    def _own_run(self, uow: UnitOfWork, run_id: int) -> dict[str, Any]:
        run, _job_row = self._open_run(uow, run_id, "CAN_VIEW")
        if run["triggered_by"] != uow.principal and not uow.authz.is_admin(uow.principal):
            uow.deny(f"run {run_id} was started by {run['triggered_by']}; only its runner records its progress")
        return run

    def begin_run(self, run_id: int) -> JobRun:
        """Mark a PENDING run RUNNING (the runner picked it up); FailedPrecondition if it is not pending."""
        with self._uow("begin_job_run", None, f"run:{run_id}") as uow:
            run = self._own_run(uow, run_id)
            if run["state"] != "PENDING":
                raise FailedPrecondition(f"run {run_id} is {run['state']}, not PENDING")
            store = JobStore(uow.conn)
            store.update_run(run_id, state="RUNNING", started_at=now())
            return _run(store.get_run(run_id), store.job_by_id(run["job_id"])["name"])

    def record_task(self, run_id: int, task_key: str, attempt: int, state: str, result_state: str | None = None,
                    message: str | None = None, lineage_run_id: str | None = None, task_run_id: int | None = None) -> int:
        """Create (task_run_id None) or update a task run of an active run; returns its id."""
        with self._uow("record_task_run", None, f"run:{run_id}", task_key=task_key, attempt=attempt, state=state,
                       result_state=result_state) as uow:
            run = self._own_run(uow, run_id)
            if run["state"] not in ACTIVE:
                raise FailedPrecondition(f"run {run_id} is {run['state']}; its tasks can no longer change")
            if task_key not in {t.task_key for t in parse_settings(run["settings"]).tasks}:
                raise InvalidArgument(f"run {run_id} has no task '{task_key}'")
            if state not in ("PENDING", "RUNNING", "TERMINATED") or (result_state is not None and result_state not in TERMINAL_TASK_STATES):
                raise InvalidArgument(f"bad task state {state}/{result_state}")
            store = JobStore(uow.conn)
            ts = now()
            values: dict[str, Any] = dict(state=state, result_state=result_state, state_message=(message or None) and message[:10000])
            if lineage_run_id:
                values["lineage_run_id"] = lineage_run_id
            if state == "RUNNING":
                values["started_at"] = ts
            if state == "TERMINATED":
                values["ended_at"] = ts
            if task_run_id is None:
                return store.insert_task_run(run_id, task_key, attempt, **values)
            if store.get_task_run(task_run_id)["run_id"] != run_id:
                raise InvalidArgument(f"task run {task_run_id} is not part of run {run_id}")
            store.update_task_run(task_run_id, **values)
            return task_run_id

    def finish_run(self, run_id: int, result_state: str, message: str | None = None) -> JobRun:
        """Mark a run TERMINATED with its result (SUCCESS, SUCCESS_WITH_FAILURES, FAILED, TIMEDOUT, CANCELED)."""
        with self._uow("finish_job_run", None, f"run:{run_id}", result_state=result_state) as uow:
            run = self._own_run(uow, run_id)
            if result_state not in _RUN_RESULTS:
                raise InvalidArgument(f"result_state must be one of {', '.join(_RUN_RESULTS)}")
            if run["state"] not in ACTIVE:
                raise FailedPrecondition(f"run {run_id} is already {run['state']}")
            store = JobStore(uow.conn)
            store.update_run(run_id, state="TERMINATED", result_state=result_state, ended_at=now(),
                             state_message=(message or run["state_message"] or None))
            return _run(store.get_run(run_id), store.job_by_id(run["job_id"])["name"], store.task_runs([run_id]))

    def cancel_requested(self, run_id: int) -> bool:
        """Whether someone asked the run to stop (the runner polls this)."""
        with self._uow("get_job_run", None, f"run:{run_id}", write=False, poll=True) as uow:
            run, _ = self._open_run(uow, run_id, "CAN_VIEW")
            return bool(run["cancel_requested"])

    # the scheduler -------------------------------------------------------------------------
    def list_due(self, at: datetime) -> list[tuple[str, str, datetime]]:
        """(job name, owner, fire time) of every unpaused schedule whose latest fire time at or
        before `at` came after the job was last changed and has no run yet. Needs an admin (the scheduler)."""
        with self._uow("list_due_jobs", None, None, write=False) as uow:
            uow.require_admin("reading every job's schedule")
            store = JobStore(uow.conn)
            out, after = [], None
            while True:
                batch = store.list_jobs(after, 500)
                for r in batch:
                    s = parse_settings(r["settings"]).schedule
                    if s is None or s.pause_status != "UNPAUSED":
                        continue
                    fire = previous_fire(s, at)
                    if fire > r["updated_at"] and not store.scheduled_run_exists(r["job_id"], fire.astimezone(UTC)):
                        out.append((r["name"], r["owner"], fire))
                if len(batch) < 500:
                    return out
                after = batch[-1]["name"]
