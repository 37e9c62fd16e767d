"""Jobs over REST, in the shape of the Databricks Jobs API 2.1 / 2.2 and its permissions API.

`/api/2.1/jobs/...` and `/api/2.2/jobs/...` (the same routes: what the databricks-sdk calls) create,
reset, update, get, list and delete jobs, run them now, and list, get and cancel their runs;
`/api/2.0/permissions/jobs/{job_id}` reads (GET), adds to (PATCH) and replaces (PUT) a job's access
control list. Every route goes through the server's one request handler (api/handler.py) and calls
the governed job service as the request's principal, so checks and audit rows (source REST) are
those of the CLI and Python API; errors come back as `{"error_code", "message"}` (api/errors.py).

A run started here executes in this server process (pipelines/jobs/background.py), as the CLI's
`cairn jobs run` does: the runner records its progress as the principal who started it, and its tasks run
in subprocesses as the job's `run_as`. Job definitions are taken as given: a `sql_task` names its
SQL in `query` (a `file` is a label; the server reads no file named in a request).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.routing import Route

from catalog.client import Cairn, Metastore
from catalog.errors import InvalidArgument, NotFound
from catalog.jobspec import Job, JobRun, TaskRun, merge_settings
from pipelines.jobs import background

VERSIONS = ("2.1", "2.2")
PERMISSIONS = "/api/2.0/permissions/jobs/{job_id}"
_PRINCIPAL_FIELDS = {"USER": "user_name", "GROUP": "group_name", "SERVICE_PRINCIPAL": "service_principal_name"}
_SETTINGS = {"name": str, "description": str, "tasks": [dict], "schedule": dict, "max_concurrent_runs": int, "parameters": list,
             "run_as": (dict, str), "timeout_seconds": int}
_ACL = {"access_control_list": [{"user_name": str, "group_name": str, "service_principal_name": str, "permission_level": str}]}


# serialization ---------------------------------------------------------------------------------
def ms(at: datetime | None) -> int | None:
    return int(at.timestamp() * 1000) if at else None


class _Kinds:
    """Principals' kinds for one request (run_as and ACL entries name them by kind)."""

    def __init__(self, c: Cairn) -> None:
        self.c, self.seen = c, {}  # type: ignore[var-annotated]

    def field(self, name: str) -> str:
        if name not in self.seen:
            try:
                self.seen[name] = _PRINCIPAL_FIELDS[self.c.principals.get_principal(name).kind.value]
            except NotFound:  # removed since: still shown, as a user
                self.seen[name] = "user_name"
        return str(self.seen[name])


def job_json(j: Job, kinds: _Kinds, expand_tasks: bool = True) -> dict[str, Any]:
    settings = j.settings.to_dict()
    settings["run_as"] = {kinds.field(j.run_as): j.run_as}
    if not expand_tasks:
        settings.pop("tasks")
    return {"job_id": j.job_id, "creator_user_name": j.created_by, "run_as_user_name": j.run_as, "created_time": ms(j.created_at),
            "settings": settings, "permission_level": j.permission}


# A run's states as Databricks shows them: 2.1's `state` and 2.2's `status`.
_RUN_TERMINATION = {"SUCCESS": ("SUCCESS", "SUCCESS"), "SUCCESS_WITH_FAILURES": ("SUCCESS_WITH_FAILURES", "SUCCESS"),
                    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"), "TIMEDOUT": ("CANCELED", "CLIENT_ERROR"),
                    "CANCELED": ("USER_CANCELED", "SUCCESS"), "EXCLUDED": ("SKIPPED", "SUCCESS"),
                    "UPSTREAM_FAILED": ("SKIPPED", "CLIENT_ERROR")}


def states(life_cycle: str, result: str | None, message: str | None) -> dict[str, Any]:
    """`state` (life_cycle_state, result_state, state_message) and `status` (state, termination_details)."""
    if life_cycle == "SKIPPED":  # a run refused at max_concurrent_runs
        code, kind = "MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR"
    else:
        code, kind = _RUN_TERMINATION.get(result or "", ("", ""))
    state: dict[str, Any] = {"life_cycle_state": life_cycle, "state_message": message or ""}
    if result:
        state["result_state"] = result
    state["user_cancelled_or_timedout"] = result in ("CANCELED", "TIMEDOUT")
    status: dict[str, Any] = {"state": "TERMINATED" if life_cycle == "SKIPPED" else life_cycle}
    if code and life_cycle in ("TERMINATED", "SKIPPED"):
        status["termination_details"] = {"code": code, "type": kind, "message": message or ""}
    return {"state": state, "status": status}


def _task_json(t: TaskRun, depends_on: tuple[str, ...]) -> dict[str, Any]:
    never_ran = t.result_state in ("EXCLUDED", "UPSTREAM_FAILED")
    out: dict[str, Any] = {"run_id": t.task_run_id, "task_key": t.task_key, "attempt_number": t.attempt,
                           **states("SKIPPED" if never_ran else t.state, t.result_state, t.state_message),
                           "start_time": ms(t.started_at) or 0, "end_time": ms(t.ended_at) or 0}
    if never_ran:
        out["status"] = {"state": "TERMINATED", "termination_details": {
            "code": "SKIPPED", "type": _RUN_TERMINATION[t.result_state or ""][1], "message": t.state_message or ""}}
    if depends_on:
        out["depends_on"] = [{"task_key": d} for d in depends_on]
    if t.lineage_run_id:
        out["lineage_run_id"] = t.lineage_run_id
    return out


def run_json(r: JobRun, expand_tasks: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "job_id": r.job_id, "run_id": r.run_id, "number_in_job": r.run_id, "run_name": r.job_name, "creator_user_name": r.triggered_by,
        "run_as": r.run_as, "run_type": "JOB_RUN", "trigger": r.trigger, **states(r.state, r.result_state, r.state_message),
        "start_time": ms(r.started_at or r.created_at), "end_time": ms(r.ended_at) or 0,
        "job_parameters": [{"name": k, "default": r.settings.parameters.get(k, ""), "value": v} for k, v in r.parameters.items()],
    }
    if r.started_at and r.ended_at:
        out["run_duration"] = ms(r.ended_at) - ms(r.started_at)  # type: ignore[operator]
    if r.scheduled_for:
        out["scheduled_for"] = ms(r.scheduled_for)
    if expand_tasks:
        latest: dict[str, TaskRun] = {}
        for t in r.tasks:  # the latest attempt of each task, as Databricks lists them
            if t.task_key not in latest or t.attempt >= latest[t.task_key].attempt:
                latest[t.task_key] = t
        out["tasks"] = []
        for task in r.settings.tasks:
            if task.task_key in latest:
                out["tasks"].append(_task_json(latest[task.task_key], task.depends_on))
            else:  # not started yet
                waiting = {"task_key": task.task_key, "attempt_number": 0, **states("PENDING", None, None)}
                if task.depends_on:
                    waiting["status"] = {"state": "BLOCKED"}
                    waiting["depends_on"] = [{"task_key": d} for d in task.depends_on]
                out["tasks"].append(waiting)
    return out


# request parsing ----------------------------------------------------------------------------------
def _query_int(r: Request, name: str, low: int, high: int, default: int | None = None) -> int | None:
    raw = r.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidArgument(f"{name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise InvalidArgument(f"{name} must be from {low} to {high}, not {value}")
    return value


def _query_bool(r: Request, name: str) -> bool:
    raw = (r.query_params.get(name) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise InvalidArgument(f"{name} must be true or false, not {raw!r}")
    return raw in ("true", "1")


def _need(body: dict[str, Any], key: str) -> Any:
    if body.get(key) is None:
        raise InvalidArgument(f"{key} is required")
    return body[key]


def _job_id(value: Any, what: str = "job_id") -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise InvalidArgument(f"{what} must be a positive integer, not {value!r}")
    return value


def _acl(body: Any, owner: str) -> dict[str, str | None]:
    """{principal: level} of an access_control_list; IS_OWNER may only restate the owner."""
    out: dict[str, str | None] = {}
    for i, entry in enumerate(_need(body, "access_control_list")):
        names = [entry[f] for f in _PRINCIPAL_FIELDS.values() if entry.get(f)]
        if len(names) != 1:
            raise InvalidArgument(f"access_control_list[{i}] names one of user_name, group_name or service_principal_name")
        level = _need(entry, "permission_level")
        if level == "IS_OWNER":
            if names[0] != owner:
                raise InvalidArgument(f"access_control_list[{i}]: ownership cannot be transferred here; '{owner}' owns the job")
            continue
        out[names[0]] = level
    return out


# routes ---------------------------------------------------------------------------------------------
class JobsRest:
    """The jobs routes of one app, and the pool that executes the runs started through them."""

    def __init__(self, metastore: Metastore, handler: Any) -> None:
        self.metastore, self.handler = metastore, handler

    def close(self) -> None:
        background.shutdown()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(self.close)

    def routes(self) -> list[Route]:
        h = self.handler
        out = []
        for v in VERSIONS:
            base = f"/api/{v}/jobs"
            out += [
                Route(base + "/create", h(self._create, shape=_SETTINGS), methods=["POST"]),
                Route(base + "/reset", h(self._reset, shape={"job_id": (int, str), "new_settings": _SETTINGS}), methods=["POST"]),
                Route(base + "/update", h(self._update, shape={"job_id": (int, str), "new_settings": dict, "fields_to_remove": [str]}),
                      methods=["POST"]),
                Route(base + "/get", h(self._get), methods=["GET"]),
                Route(base + "/list", h(self._list), methods=["GET"]),
                Route(base + "/delete", h(self._delete, shape={"job_id": (int, str)}), methods=["POST"]),
                Route(base + "/run-now", h(self._run_now, shape={"job_id": (int, str), "job_parameters": dict, "idempotency_token": str}),
                      methods=["POST"]),
                Route(base + "/runs/list", h(self._runs_list), methods=["GET"]),
                Route(base + "/runs/get", h(self._runs_get), methods=["GET"]),
                Route(base + "/runs/cancel", h(self._runs_cancel, shape={"run_id": (int, str)}), methods=["POST"]),
            ]
        out += [
            Route(PERMISSIONS, h(self._permissions), methods=["GET"]),
            Route(PERMISSIONS, h(self._patch_permissions, shape=_ACL), methods=["PATCH"]),
            Route(PERMISSIONS, h(self._put_permissions, shape=_ACL), methods=["PUT"]),
        ]
        return out

    # jobs ---------------------------------------------------------------------------------------
    def _create(self, c: Cairn, r: Request, b: Any) -> Any:
        return {"job_id": c.jobs.create_job(b).job_id}

    def _reset(self, c: Cairn, r: Request, b: Any) -> Any:
        job_id, new = _job_id(_need(b, "job_id")), _need(b, "new_settings")
        if "name" not in new:  # the job keeps its name
            new = {**new, "name": c.jobs.get_job(job_id).name}
        c.jobs.update_job(job_id, new)
        return {}

    def _update(self, c: Cairn, r: Request, b: Any) -> Any:
        job_id = _job_id(_need(b, "job_id"))
        current = c.jobs.get_job(job_id)
        c.jobs.update_job(job_id, merge_settings(current.settings.to_dict(), b.get("new_settings") or {}, b.get("fields_to_remove")))
        return {}

    def _get(self, c: Cairn, r: Request, b: Any) -> Any:
        return job_json(c.jobs.get_job(_job_id(r.query_params.get("job_id"))), _Kinds(c))

    def _list(self, c: Cairn, r: Request, b: Any) -> Any:
        limit = _query_int(r, "limit", 1, 100, 20)
        expand, kinds = _query_bool(r, "expand_tasks"), _Kinds(c)
        name = r.query_params.get("name")
        if name:  # an exact name: that job if the caller may see it
            try:
                return {"jobs": [job_json(c.jobs.get_job(name), kinds, expand)], "has_more": False}
            except NotFound:
                return {"jobs": [], "has_more": False}
        page = c.jobs.list_jobs(r.query_params.get("page_token") or None, limit)
        out: dict[str, Any] = {"jobs": [job_json(j, kinds, expand) for j in page], "has_more": page.next_page_token is not None}
        if page.next_page_token:
            out["next_page_token"] = page.next_page_token
        return out

    def _delete(self, c: Cairn, r: Request, b: Any) -> Any:
        c.jobs.delete_job(_job_id(_need(b, "job_id")))
        return {}

    # runs ---------------------------------------------------------------------------------------
    def _run_now(self, c: Cairn, r: Request, b: Any) -> Any:
        run = c.jobs.run_now(_job_id(_need(b, "job_id")), b.get("job_parameters") or None)
        if run.state == "PENDING":
            background.execute(self.metastore, c.principal, run.run_id)
        return {"run_id": run.run_id, "number_in_job": run.run_id}

    def _runs_list(self, c: Cairn, r: Request, b: Any) -> Any:
        limit = _query_int(r, "limit", 1, 25, 20)
        raw_job = r.query_params.get("job_id")
        page = c.jobs.list_runs(_job_id(raw_job) if raw_job else None, _query_bool(r, "active_only"),
                                r.query_params.get("page_token") or None, limit)
        expand = _query_bool(r, "expand_tasks")
        out: dict[str, Any] = {"runs": [run_json(x, expand) for x in page], "has_more": page.next_page_token is not None}
        if page.next_page_token:
            out["next_page_token"] = page.next_page_token
        return out

    def _runs_get(self, c: Cairn, r: Request, b: Any) -> Any:
        return run_json(c.jobs.get_run(_job_id(r.query_params.get("run_id"), "run_id")))

    def _runs_cancel(self, c: Cairn, r: Request, b: Any) -> Any:
        c.jobs.cancel_run(_job_id(_need(b, "run_id"), "run_id"))
        return {}

    # permissions ----------------------------------------------------------------------------------
    def _acl_json(self, c: Cairn, job_id: int, perms: dict[str, str]) -> Any:
        kinds = _Kinds(c)
        return {"object_id": f"/jobs/{job_id}", "object_type": "job", "access_control_list": [
            {kinds.field(p): p, "all_permissions": [{"permission_level": lvl, "inherited": False}]} for p, lvl in sorted(perms.items())]}

    def _permissions(self, c: Cairn, r: Request, b: Any) -> Any:
        job_id = _job_id(r.path_params["job_id"])
        return self._acl_json(c, job_id, c.jobs.get_permissions(job_id))

    def _patch_permissions(self, c: Cairn, r: Request, b: Any) -> Any:
        return self._set_permissions(c, r, b, replace=False)

    def _put_permissions(self, c: Cairn, r: Request, b: Any) -> Any:
        return self._set_permissions(c, r, b, replace=True)

    def _set_permissions(self, c: Cairn, r: Request, b: Any, replace: bool) -> Any:
        job_id = _job_id(r.path_params["job_id"])
        owner = c.jobs.get_job(job_id).owner
        return self._acl_json(c, job_id, c.jobs.set_permissions(job_id, _acl(b, owner), replace=replace))
