"""Job definitions in the Databricks Jobs shape: validation, Quartz schedules, and run_if. Pure, no I/O.

A job is a DAG of tasks (`task_key`, `depends_on`, `run_if`), each a Python entry point
(`python_task: {entry_point: "module:function", parameters: {...}}`) or SQL run through the shim
(`sql_task: {query: "...", file: "path it came from"}`), with retries and a timeout; the job has a
schedule (Quartz cron, timezone, pause status), `max_concurrent_runs`, `parameters` and `run_as`.

>>> quartz_to_cron("0 0/15 * * * ?")
'0 0/15 * * * *'
>>> quartz_to_cron("30 0 9 ? * 2-6")
'30 0 9 * * 1-5'
>>> decide("AT_LEAST_ONE_FAILED", ["SUCCESS", "SUCCESS"])
'EXCLUDED'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalog.errors import InvalidArgument

RUN_IF = ("ALL_SUCCESS", "AT_LEAST_ONE_SUCCESS", "NONE_FAILED", "ALL_DONE", "AT_LEAST_ONE_FAILED", "ALL_FAILED")
PAUSE = ("UNPAUSED", "PAUSED")
PERMISSION_LEVELS = ("CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE")  # IS_OWNER is the job's owner
# Task outcomes (Databricks result states). EXCLUDED counts as a success downstream.
FAILED_STATES = frozenset({"FAILED", "TIMEDOUT", "UPSTREAM_FAILED"})
SUCCESS_STATES = frozenset({"SUCCESS", "EXCLUDED"})
TERMINAL_TASK_STATES = FAILED_STATES | SUCCESS_STATES | {"CANCELED"}
MAX_TASKS = 100
MAX_TIMEOUT = 7 * 24 * 3600
_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")
_ENTRY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*):([A-Za-z][A-Za-z0-9_]*)")
_JOB_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")


def allowed_entry_modules() -> tuple[str, ...]:
    """The packages a Python task may name (`CAIRN_JOB_MODULES`, comma-separated; default `pipelines`).

    A task runs code on the machine that runs the scheduler; naming `os:system` must not be possible."""
    raw = os.environ.get("CAIRN_JOB_MODULES", "pipelines")
    return tuple(p.strip() for p in raw.split(",") if p.strip())


@dataclass(frozen=True, slots=True)
class Task:
    task_key: str
    depends_on: tuple[str, ...] = ()
    run_if: str = "ALL_SUCCESS"
    entry_point: str | None = None  # module:function
    sql: str | None = None  # the SQL text (a file's content is read when the job is loaded)
    sql_file: str | None = None  # where the SQL came from, for people
    parameters: dict[str, Any] = field(default_factory=dict)
    max_retries: int = 0
    min_retry_interval_millis: int = 0
    retry_on_timeout: bool = False
    timeout_seconds: int = 0  # 0: none

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task_key": self.task_key}
        if self.depends_on:
            out["depends_on"] = [{"task_key": d} for d in self.depends_on]
        out["run_if"] = self.run_if
        if self.entry_point:
            out["python_task"] = {"entry_point": self.entry_point, "parameters": dict(self.parameters)}
        else:
            out["sql_task"] = {"query": self.sql, **({"file": self.sql_file} if self.sql_file else {}), "parameters": dict(self.parameters)}
        out.update(max_retries=self.max_retries, min_retry_interval_millis=self.min_retry_interval_millis,
                   retry_on_timeout=self.retry_on_timeout, timeout_seconds=self.timeout_seconds)
        return out


@dataclass(frozen=True, slots=True)
class Schedule:
    quartz_cron_expression: str
    timezone_id: str = "UTC"
    pause_status: str = "UNPAUSED"

    def to_dict(self) -> dict[str, Any]:
        return {"quartz_cron_expression": self.quartz_cron_expression, "timezone_id": self.timezone_id, "pause_status": self.pause_status}


@dataclass(frozen=True, slots=True)
class JobSettings:
    name: str
    tasks: tuple[Task, ...]
    run_as: str | None = None
    schedule: Schedule | None = None
    max_concurrent_runs: int = 1
    parameters: dict[str, str] = field(default_factory=dict)  # name -> default
    timeout_seconds: int = 0
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.run_as:
            out["run_as"] = self.run_as
        if self.schedule:
            out["schedule"] = self.schedule.to_dict()
        out.update(max_concurrent_runs=self.max_concurrent_runs, timeout_seconds=self.timeout_seconds,
                   parameters=[{"name": k, "default": v} for k, v in self.parameters.items()],
                   tasks=[t.to_dict() for t in self.tasks])
        return out

    def task(self, key: str) -> Task:
        return next(t for t in self.tasks if t.task_key == key)


# parsing -------------------------------------------------------------------------------------
def _int(value: Any, what: str, low: int = 0, high: int = 10**9) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{what} must be an integer from {low} to {high}, not {value!r}")
    return value


def _only(d: dict[str, Any], allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise InvalidArgument(f"{what}: unknown field(s) {unknown}; expected some of {sorted(allowed)}")


def _params(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, list):  # [{name, default}] (job) or [{key, value}]
        out = {}
        for item in value:
            if not isinstance(item, dict) or "name" not in item:
                raise InvalidArgument(f"{what}: each parameter is {{name: ..., default: ...}}, not {item!r}")
            out[str(item["name"])] = "" if item.get("default") is None else str(item["default"])
        value = out
    if not isinstance(value, dict) or not all(isinstance(k, str) and _KEY.fullmatch(k) for k in value):
        raise InvalidArgument(f"{what} must map parameter names (letters, digits, _ and -) to values")
    for k, v in value.items():
        if not isinstance(v, (str, int, float, bool)) and v is not None:
            raise InvalidArgument(f"{what}: parameter '{k}' must be a string, number or boolean")
    return dict(value)


def parse_entry_point(entry: Any) -> str:
    """Check `module:function` names a public function inside an allowed package (not imported here)."""
    m = _ENTRY.fullmatch(entry) if isinstance(entry, str) else None
    if m is None:
        raise InvalidArgument(f"entry_point must be 'module:function', not {entry!r}")
    allowed = allowed_entry_modules()
    if not any(m[1] == p or m[1].startswith(p + ".") for p in allowed):
        raise InvalidArgument(f"entry_point {entry!r} is outside the packages tasks may run ({', '.join(allowed)}; set CAIRN_JOB_MODULES)")
    return entry


_PLACEHOLDER = re.compile(r"\{\{([^}]*)\}\}")


def sql_placeholders(sql: str) -> list[re.Match[str]]:
    """The `{{name}}` placeholders of a SQL task, in order. Each must stand where a value may (it is
    bound as a quoted literal): one inside a quoted string, a quoted identifier or a comment is
    refused, since a value bound there would end it and the rest of the value would run as SQL.

    >>> [m[1] for m in sql_placeholders("SELECT * FROM t WHERE a = {{x}} AND b = '{}' -- note")]
    ['x']
    >>> sql_placeholders("SELECT * FROM t WHERE a = '{{x}}'")
    Traceback (most recent call last):
    catalog.errors.InvalidArgument: the SQL has parameter {{x}} inside a quoted string or identifier; write it bare (a = {{x}}): its value is bound as a quoted literal
    """
    found: list[re.Match[str]] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "{" and (m := _PLACEHOLDER.match(sql, i)):
            found.append(m)
            i = m.end()
            continue
        if c in "'\"`":
            j = i + 1
            while j < n and sql[j] != c:
                j += 2 if sql[j] == "\\" and c != "`" else 1
            _none_inside(sql, i, j, "a quoted string or identifier")
            i = j + 1  # a doubled quote ('') closes and reopens: the same scan covers it
            continue
        end = (n if sql.find("\n", i) < 0 else sql.find("\n", i)) if sql.startswith("--", i) else \
            (n if sql.find("*/", i + 2) < 0 else sql.find("*/", i + 2) + 2) if sql.startswith("/*", i) else None
        if end is not None:
            _none_inside(sql, i, end, "a comment")
            i = end
            continue
        i += 1
    return found


def _none_inside(sql: str, start: int, end: int, what: str) -> None:
    m = _PLACEHOLDER.search(sql, start, end + 1)
    if m is not None:
        raise InvalidArgument(f"the SQL has parameter {{{{{m[1].strip()}}}}} inside {what}; write it bare (a = {{{{{m[1].strip()}}}}}): "
                              "its value is bound as a quoted literal")


def parse_task(d: Any) -> Task:
    if not isinstance(d, dict):
        raise InvalidArgument(f"a task is a mapping, not {d!r}")
    key = d.get("task_key")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidArgument(f"task_key must be 1-100 letters, digits, _ or -, not {key!r}")
    what = f"task '{key}'"
    _only(d, ("task_key", "depends_on", "run_if", "python_task", "sql_task", "max_retries", "min_retry_interval_millis",
              "retry_on_timeout", "timeout_seconds", "description"), what)
    deps = []
    for dep in d.get("depends_on") or []:
        dk = dep.get("task_key") if isinstance(dep, dict) else dep
        if not isinstance(dk, str):
            raise InvalidArgument(f"{what}: depends_on entries are {{task_key: ...}}, not {dep!r}")
        deps.append(dk)
    run_if = str(d.get("run_if") or "ALL_SUCCESS").upper()
    if run_if not in RUN_IF:
        raise InvalidArgument(f"{what}: run_if must be one of {', '.join(RUN_IF)}, not {d.get('run_if')!r}")
    py, sq = d.get("python_task"), d.get("sql_task")
    if (py is None) == (sq is None):
        raise InvalidArgument(f"{what} needs exactly one of python_task or sql_task")
    entry = sql = sql_file = None
    if py is not None:
        if not isinstance(py, dict):
            raise InvalidArgument(f"{what}: python_task is {{entry_point: 'module:function', parameters: {{...}}}}")
        _only(py, ("entry_point", "parameters"), f"{what} python_task")
        entry = parse_entry_point(py.get("entry_point"))
        params = _params(py.get("parameters"), f"{what} parameters")
    else:
        if not isinstance(sq, dict):
            raise InvalidArgument(f"{what}: sql_task is {{query: '...'}} or {{file: path}} (read when the job is loaded)")
        _only(sq, ("query", "file", "parameters"), f"{what} sql_task")
        sql, sql_file = sq.get("query"), sq.get("file")
        if isinstance(sql_file, dict):
            sql_file = sql_file.get("path")
        if not isinstance(sql, str) or not sql.strip():
            raise InvalidArgument(f"{what}: sql_task has no SQL (give query, or a file the loader reads)")
        if len(sql) > 1_000_000:
            raise InvalidArgument(f"{what}: the SQL is longer than 1,000,000 characters")
        params = _params(sq.get("parameters"), f"{what} parameters")
    return Task(
        key, tuple(deps), run_if, entry, sql, str(sql_file) if sql_file else None, params,
        _int(d.get("max_retries", 0), f"{what} max_retries", -1, 100),
        _int(d.get("min_retry_interval_millis", 0), f"{what} min_retry_interval_millis", 0, 3_600_000),
        bool(d.get("retry_on_timeout", False)),
        _int(d.get("timeout_seconds", 0), f"{what} timeout_seconds", 0, MAX_TIMEOUT),
    )


def parse_settings(d: Any) -> JobSettings:
    """Validate a job definition (a mapping, as from YAML or JSON) and return its settings.

    Raises InvalidArgument naming the first thing wrong."""
    if isinstance(d, JobSettings):
        return d
    if not isinstance(d, dict):
        raise InvalidArgument("a job definition is a mapping with name and tasks")
    _only(d, ("name", "description", "tasks", "run_as", "schedule", "max_concurrent_runs", "parameters", "timeout_seconds"), "job")
    name = d.get("name")
    if not isinstance(name, str) or not _JOB_NAME.fullmatch(name):
        raise InvalidArgument(f"job name must be 1-200 letters, digits, '.', '_' or '-', not {name!r}")
    raw_tasks = d.get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise InvalidArgument(f"job '{name}' needs a list of tasks")
    if len(raw_tasks) > MAX_TASKS:
        raise InvalidArgument(f"job '{name}' has {len(raw_tasks)} tasks; at most {MAX_TASKS}")
    tasks = tuple(parse_task(t) for t in raw_tasks)
    keys = [t.task_key for t in tasks]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise InvalidArgument(f"job '{name}': task_key {dup[0]!r} appears twice")
    for t in tasks:
        for dep in t.depends_on:
            if dep not in keys:
                raise InvalidArgument(f"task '{t.task_key}' depends on '{dep}', which is not a task of job '{name}'")
    topological_order(tasks)
    run_as = d.get("run_as")
    if isinstance(run_as, dict):  # Databricks: {service_principal_name: ...} or {user_name: ...}
        run_as = run_as.get("service_principal_name") or run_as.get("user_name")
    if run_as is not None and (not isinstance(run_as, str) or not run_as.strip()):
        raise InvalidArgument("run_as must name a service principal (or user)")
    schedule = None
    if d.get("schedule") is not None:
        s = d["schedule"]
        if not isinstance(s, dict):
            raise InvalidArgument("schedule is {quartz_cron_expression, timezone_id, pause_status}")
        _only(s, ("quartz_cron_expression", "timezone_id", "pause_status"), "schedule")
        schedule = Schedule(str(s.get("quartz_cron_expression") or ""), str(s.get("timezone_id") or "UTC"),
                            str(s.get("pause_status") or "UNPAUSED").upper())
        quartz_to_cron(schedule.quartz_cron_expression)
        _zone(schedule.timezone_id)
        if schedule.pause_status not in PAUSE:
            raise InvalidArgument(f"pause_status must be UNPAUSED or PAUSED, not {s.get('pause_status')!r}")
    description = d.get("description")
    return JobSettings(
        name, tasks, run_as.strip() if run_as else None, schedule,
        _int(d.get("max_concurrent_runs", 1), "max_concurrent_runs", 1, 1000),
        {k: "" if v is None else str(v) for k, v in _params(d.get("parameters"), "job parameters").items()},
        _int(d.get("timeout_seconds", 0), "timeout_seconds", 0, MAX_TIMEOUT),
        str(description) if description else None,
    )


def merge_settings(current: dict[str, Any], new: Any, remove: Any = None) -> dict[str, Any]:
    """Databricks' partial update (`jobs/update`): the top-level fields of `new` replace the current
    ones, except `tasks`, merged by `task_key` (a task given replaces the task of that key whole);
    `remove` names top-level fields, or `tasks/KEY`, to drop. Returns the merged definition.

    >>> merge_settings({"name": "j", "max_concurrent_runs": 1, "tasks": [{"task_key": "a"}, {"task_key": "b"}]},
    ...                {"max_concurrent_runs": 2, "tasks": [{"task_key": "b", "run_if": "ALL_DONE"}]}, ["tasks/a"])
    {'name': 'j', 'max_concurrent_runs': 2, 'tasks': [{'task_key': 'b', 'run_if': 'ALL_DONE'}]}
    """
    if not isinstance(new, dict):
        raise InvalidArgument("new_settings is a mapping of the job settings to change")
    if remove is not None and (not isinstance(remove, list) or not all(isinstance(f, str) for f in remove)):
        raise InvalidArgument("fields_to_remove is a list of field names (or tasks/KEY)")
    out = {k: v for k, v in current.items()}
    tasks = {t["task_key"]: t for t in current.get("tasks") or []}
    for k, v in new.items():
        if k != "tasks":
            out[k] = v
            continue
        if not isinstance(v, list) or not all(isinstance(t, dict) and isinstance(t.get("task_key"), str) for t in v):
            raise InvalidArgument("new_settings.tasks is a list of tasks, each with its task_key")
        for t in v:
            tasks[t["task_key"]] = t
    for f in remove or []:
        kind, _, key = f.partition("/")
        if kind == "tasks" and key:
            if key not in tasks:
                raise InvalidArgument(f"fields_to_remove: the job has no task '{key}'")
            del tasks[key]
        elif f in ("name", "tasks"):
            raise InvalidArgument(f"fields_to_remove: '{f}' cannot be removed")
        else:
            out.pop(f, None)
    out["tasks"] = list(tasks.values())
    return out


def topological_order(tasks: Iterable[Task]) -> list[str]:
    """Task keys in an order where each comes after its dependencies; a cycle is refused."""
    from graphlib import CycleError, TopologicalSorter

    try:
        return list(TopologicalSorter({t.task_key: t.depends_on for t in tasks}).static_order())
    except CycleError as exc:
        raise InvalidArgument(f"the tasks' dependencies make a cycle: {' -> '.join(exc.args[1])}") from None


# run_if ---------------------------------------------------------------------------------------
def decide(run_if: str, upstream: list[str]) -> str:
    """What a task does once its dependencies are done: "RUN", "EXCLUDED" or "UPSTREAM_FAILED".

    Databricks' rules: unmet ALL_SUCCESS / AT_LEAST_ONE_SUCCESS / NONE_FAILED mark the task
    UPSTREAM_FAILED, unmet AT_LEAST_ONE_FAILED / ALL_FAILED mark it EXCLUDED; an excluded task counts
    as a success downstream, and a task whose dependencies were all excluded is excluded too.
    """
    if not upstream:
        return "RUN"
    if all(s == "EXCLUDED" for s in upstream):
        return "EXCLUDED"
    failed = sum(s in FAILED_STATES for s in upstream)
    ok = sum(s in SUCCESS_STATES for s in upstream)
    executed = sum(s not in ("EXCLUDED", "UPSTREAM_FAILED") for s in upstream)
    met = {
        "ALL_SUCCESS": ok == len(upstream),
        "AT_LEAST_ONE_SUCCESS": ok > 0,
        "NONE_FAILED": failed == 0 and executed > 0,
        "ALL_DONE": True,
        "AT_LEAST_ONE_FAILED": failed > 0,
        "ALL_FAILED": failed == len(upstream),
    }[run_if]
    if met:
        return "RUN"
    return "EXCLUDED" if run_if in ("AT_LEAST_ONE_FAILED", "ALL_FAILED") else "UPSTREAM_FAILED"


def run_result(states: dict[str, str], leaves: Iterable[str]) -> str:
    """A job run's result from its tasks': SUCCESS, SUCCESS_WITH_FAILURES (only non-leaf tasks
    failed), FAILED (a leaf failed), CANCELED."""
    if any(s == "CANCELED" for s in states.values()):
        return "CANCELED"
    if any(states.get(k) in FAILED_STATES for k in leaves):
        return "FAILED"
    if any(s in FAILED_STATES for s in states.values()):
        return "SUCCESS_WITH_FAILURES"
    return "SUCCESS"


# Quartz cron -----------------------------------------------------------------------------------
_DOW_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def _dow_number(text: str, expr: str) -> str:
    """A Quartz day of week (1-7 = SUN-SAT, or a name) as croniter's (0-6 = SUN-SAT)."""
    if text.upper() in _DOW_NAMES:
        return text.upper()
    if not text.isdigit() or not 1 <= int(text) <= 7:
        raise InvalidArgument(f"cron {expr!r}: day of week {text!r} is not 1-7 (SUN-SAT) or SUN..SAT")
    return str(int(text) - 1)


def _dow_field(field_: str, expr: str) -> str:
    if field_ in ("?", "*"):
        return "*"
    out = []
    for part in field_.split(","):
        step = ""
        if "/" in part:
            part, step = part.split("/", 1)
            step = "/" + step
        if part.endswith("L") and len(part) > 1:  # 6L: the last Friday of the month
            out.append("L" + _dow_number(part[:-1], expr))
            continue
        if "#" in part:  # 6#3: the third Friday
            day, nth = part.split("#", 1)
            out.append(f"{_dow_number(day, expr)}#{nth}")
            continue
        if part == "*":
            out.append("*" + step)
            continue
        bounds = part.split("-")
        if len(bounds) > 2:
            raise InvalidArgument(f"cron {expr!r}: bad day-of-week range {part!r}")
        out.append("-".join(_dow_number(b, expr) for b in bounds) + step)
    return ",".join(out)


def quartz_to_cron(expr: str) -> str:
    """A Quartz cron expression (seconds minutes hours day-of-month month day-of-week [year]) as
    croniter's six-field form with the seconds first. `?` means "no specific value"; Quartz numbers
    the days of the week 1-7 from Sunday, croniter 0-6. Years other than `*` and `W` are refused."""
    from croniter import croniter  # type: ignore[import-untyped]  # no stubs published

    if not isinstance(expr, str) or not expr.strip():
        raise InvalidArgument("a schedule needs a quartz_cron_expression")
    fields = expr.split()
    if len(fields) not in (6, 7):
        raise InvalidArgument(f"cron {expr!r}: Quartz has 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year])")
    if len(fields) == 7 and fields[6] != "*":
        raise InvalidArgument(f"cron {expr!r}: a year other than * is not supported")
    sec, minute, hour, dom, month, dow = fields[:6]
    if "?" not in (dom, dow):
        raise InvalidArgument(f"cron {expr!r}: Quartz needs '?' in day-of-month or day-of-week")
    if "W" in dom.upper():
        raise InvalidArgument(f"cron {expr!r}: 'W' (nearest weekday) is not supported")
    out = " ".join([sec, minute, hour, "*" if dom == "?" else dom, month, _dow_field(dow, expr)])
    if not croniter.is_valid(out, second_at_beginning=True):
        raise InvalidArgument(f"cron {expr!r} is not a valid Quartz expression")
    return out


def _zone(tz: str) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"timezone_id {tz!r} is not a known time zone (e.g. UTC, Europe/Berlin)") from None


def previous_fire(schedule: Schedule, at: datetime) -> datetime:
    """The latest time at or before `at` the schedule fires (aware, in the schedule's time zone)."""
    from croniter import croniter

    local = at.astimezone(_zone(schedule.timezone_id))
    it = croniter(quartz_to_cron(schedule.quartz_cron_expression), local, second_at_beginning=True)
    if croniter.match(quartz_to_cron(schedule.quartz_cron_expression), local.replace(microsecond=0), second_at_beginning=True) \
            and local.microsecond == 0:
        return local
    return it.get_prev(datetime)


def next_fire(schedule: Schedule, after: datetime) -> datetime:
    """The first time strictly after `after` the schedule fires."""
    from croniter import croniter

    local = after.astimezone(_zone(schedule.timezone_id))
    return croniter(quartz_to_cron(schedule.quartz_cron_expression), local, second_at_beginning=True).get_next(datetime)


def substitute(value: Any, refs: dict[str, str]) -> Any:
    """Replace `{{job.parameters.x}}`, `{{job.run_id}}`, `{{task.name}}` ... in a parameter value."""
    if not isinstance(value, str) or "{{" not in value:
        return value

    def one(m: re.Match[str]) -> str:
        key = m[1].strip()
        if key not in refs:
            raise InvalidArgument(f"unknown reference {{{{{key}}}}}; known: {', '.join(sorted(refs))}")
        return refs[key]

    return re.sub(r"\{\{([^}]*)\}\}", one, value)


# entities handed across the service boundary ------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Job:
    job_id: int
    name: str
    owner: str
    run_as: str
    settings: JobSettings
    created_at: datetime
    created_by: str
    updated_at: datetime
    permission: str  # the caller's level: IS_OWNER, CAN_MANAGE, CAN_MANAGE_RUN or CAN_VIEW


@dataclass(frozen=True, slots=True)
class TaskRun:
    task_run_id: int
    run_id: int
    task_key: str
    attempt: int
    state: str
    result_state: str | None
    state_message: str | None
    lineage_run_id: str | None
    started_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobRun:
    run_id: int
    job_id: int
    job_name: str
    trigger: str
    scheduled_for: datetime | None
    triggered_by: str
    run_as: str
    state: str
    result_state: str | None
    state_message: str | None
    parameters: dict[str, str]
    settings: JobSettings
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    cancel_requested: bool
    tasks: tuple[TaskRun, ...] = ()
