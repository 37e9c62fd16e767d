"""Job definitions: Quartz schedules, run_if, validation (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from catalog.errors import InvalidArgument
from catalog.jobspec import RUN_IF, Schedule, decide, next_fire, parse_settings, previous_fire, quartz_to_cron, run_result


@pytest.mark.parametrize(("quartz", "cron"), [
    ("0 0/15 * * * ?", "0 0/15 * * * *"),          # every 15 minutes, seconds field first
    ("0 0 3 ? * 1", "0 0 3 * * 0"),                 # Quartz 1 = Sunday = cron 0
    ("0 0 3 ? * 7", "0 0 3 * * 6"),                 # Quartz 7 = Saturday
    ("30 0 9 ? * 2-6", "30 0 9 * * 1-5"),           # Monday..Friday
    ("0 0 9 ? * 2,4,6", "0 0 9 * * 1,3,5"),
    ("0 0 9 ? * MON-FRI", "0 0 9 * * MON-FRI"),
    ("0 0 12 ? * 6#3", "0 0 12 * * 5#3"),           # third Friday
    ("0 0 12 ? * 6L", "0 0 12 * * L5"),             # last Friday
    ("0 0 0 1 * ?", "0 0 0 1 * *"),
    ("0 0 0 L * ? *", "0 0 0 L * *"),
])
def test_quartz_converts_to_croniter(quartz: str, cron: str) -> None:
    assert quartz_to_cron(quartz) == cron


@pytest.mark.parametrize(("quartz", "why"), [
    ("0 0/15 * * *", "6 or 7 fields"), ("0 0 3 1 * 1", "'?'"), ("0 0 3 ? * 8", "1-7"), ("0 0 3 ? * 0", "1-7"),
    ("0 0 3 LW * ?", "'W'"), ("0 0 3 ? * 1 2027", "year"), ("61 0 3 ? * 1", "not a valid"),
])
def test_bad_quartz_is_refused_with_the_reason(quartz: str, why: str) -> None:
    with pytest.raises(InvalidArgument, match=why):
        quartz_to_cron(quartz)


def test_fire_times_follow_the_timezone_and_weekdays() -> None:
    weekly = Schedule("0 0 3 ? * 1", "America/New_York")  # Sundays 03:00 in New York
    fire = next_fire(weekly, datetime(2026, 11, 26, 12, 0, tzinfo=UTC))  # a Thursday
    assert fire.isoformat() == "2026-11-29T03:00:00-05:00" and fire.weekday() == 6
    every15 = Schedule("0 0/15 * * * ?")
    assert previous_fire(every15, datetime(2026, 11, 26, 3, 7, 12, tzinfo=UTC)) == datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    assert previous_fire(every15, datetime(2026, 11, 26, 3, 15, tzinfo=UTC)) == datetime(2026, 11, 26, 3, 15, tzinfo=UTC)
    # Across the spring DST change in Berlin, 02:30 does not exist: the daily 02:30 run is not doubled or lost twice
    daily = Schedule("0 30 1 ? * *", "Europe/Berlin")
    assert next_fire(daily, datetime(2026, 3, 28, 12, 0, tzinfo=UTC)).isoformat() == "2026-03-29T01:30:00+01:00"
    assert next_fire(daily, datetime(2026, 3, 29, 12, 0, tzinfo=UTC)).isoformat() == "2026-03-30T01:30:00+02:00"


# run_if: (dependency outcomes) -> what the task does, for all six conditions
CASES = {
    ("SUCCESS", "SUCCESS"): dict(ALL_SUCCESS="RUN", AT_LEAST_ONE_SUCCESS="RUN", NONE_FAILED="RUN", ALL_DONE="RUN",
                                 AT_LEAST_ONE_FAILED="EXCLUDED", ALL_FAILED="EXCLUDED"),
    ("SUCCESS", "FAILED"): dict(ALL_SUCCESS="UPSTREAM_FAILED", AT_LEAST_ONE_SUCCESS="RUN", NONE_FAILED="UPSTREAM_FAILED", ALL_DONE="RUN",
                                AT_LEAST_ONE_FAILED="RUN", ALL_FAILED="EXCLUDED"),
    ("FAILED", "TIMEDOUT"): dict(ALL_SUCCESS="UPSTREAM_FAILED", AT_LEAST_ONE_SUCCESS="UPSTREAM_FAILED", NONE_FAILED="UPSTREAM_FAILED",
                                 ALL_DONE="RUN", AT_LEAST_ONE_FAILED="RUN", ALL_FAILED="RUN"),
    ("SUCCESS", "EXCLUDED"): dict(ALL_SUCCESS="RUN", AT_LEAST_ONE_SUCCESS="RUN", NONE_FAILED="RUN", ALL_DONE="RUN",
                                  AT_LEAST_ONE_FAILED="EXCLUDED", ALL_FAILED="EXCLUDED"),
    ("EXCLUDED", "EXCLUDED"): dict.fromkeys(RUN_IF, "EXCLUDED"),  # all dependencies excluded: excluded
    ("UPSTREAM_FAILED", "EXCLUDED"): dict(ALL_SUCCESS="UPSTREAM_FAILED", AT_LEAST_ONE_SUCCESS="RUN", NONE_FAILED="UPSTREAM_FAILED",
                                          ALL_DONE="RUN", AT_LEAST_ONE_FAILED="RUN", ALL_FAILED="EXCLUDED"),
}


@pytest.mark.parametrize("upstream", list(CASES))
def test_run_if_follows_databricks(upstream: tuple[str, ...]) -> None:
    assert {c: decide(c, list(upstream)) for c in RUN_IF} == CASES[upstream]


def test_run_result_is_decided_by_the_leaves() -> None:
    assert run_result({"a": "FAILED", "b": "SUCCESS"}, ["b"]) == "SUCCESS_WITH_FAILURES"
    assert run_result({"a": "SUCCESS", "b": "UPSTREAM_FAILED"}, ["b"]) == "FAILED"
    assert run_result({"a": "SUCCESS", "b": "EXCLUDED"}, ["b"]) == "SUCCESS"
    assert run_result({"a": "CANCELED", "b": "SUCCESS"}, ["b"]) == "CANCELED"


def _job(**over: object) -> dict:
    base = {"name": "j", "tasks": [{"task_key": "a", "python_task": {"entry_point": "pipelines.jobs.samples:echo"}}]}
    return {**base, **over}


@pytest.mark.parametrize(("definition", "why"), [
    (_job(tasks=[{"task_key": "a", "depends_on": ["b"], "python_task": {"entry_point": "pipelines.x:f"}},
                 {"task_key": "b", "depends_on": ["a"], "python_task": {"entry_point": "pipelines.x:f"}}]), "cycle"),
    (_job(tasks=[{"task_key": "a", "depends_on": ["zz"], "python_task": {"entry_point": "pipelines.x:f"}}]), "'zz', which is not a task"),
    (_job(tasks=[{"task_key": "a", "run_if": "SOMETIMES", "python_task": {"entry_point": "pipelines.x:f"}}]), "run_if must be one of"),
    (_job(tasks=[{"task_key": "a", "python_task": {"entry_point": "os:system", "parameters": {"command": "id"}}}]), "outside the packages"),
    (_job(tasks=[{"task_key": "a", "python_task": {"entry_point": "pipelines.x:_private"}}]), "module:function"),
    (_job(tasks=[{"task_key": "a"}]), "exactly one of python_task or sql_task"),
    (_job(tasks=[{"task_key": "a", "python_task": {"entry_point": "pipelines.x:f"}},
                 {"task_key": "a", "python_task": {"entry_point": "pipelines.x:f"}}]), "appears twice"),
    (_job(max_concurrent_runs=0), "max_concurrent_runs"),
    (_job(schedule={"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "Mars/Base"}), "timezone_id"),
    (_job(schedule={"quartz_cron_expression": "0 0 * * * ?", "pause_status": "MAYBE"}), "pause_status"),
    (_job(tasks=[{"task_key": "a", "python_task": {"entry_point": "pipelines.x:f"}, "timeout_seconds": -1}]), "timeout_seconds"),
    (_job(owner="eve"), "unknown field"),
])
def test_bad_definitions_are_refused_naming_the_problem(definition: dict, why: str) -> None:
    with pytest.raises(InvalidArgument, match=why):
        parse_settings(definition)


def test_settings_round_trip() -> None:
    d = _job(run_as={"service_principal_name": "sp"}, parameters=[{"name": "x", "default": "1"}],
             schedule={"quartz_cron_expression": "0 0/15 * * * ?", "timezone_id": "UTC", "pause_status": "PAUSED"})
    s = parse_settings(d)
    assert s.run_as == "sp" and s.parameters == {"x": "1"} and s.schedule.pause_status == "PAUSED"
    assert parse_settings(s.to_dict()) == s
