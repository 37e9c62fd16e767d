"""Workflows: jobs of tasks in the Databricks Jobs shape, run in subprocesses as the job's `run_as`.

- `pipelines.jobs.loader`: job definitions from YAML (SQL files read in) or Python dicts.
- `pipelines.jobs.runner`: runs one job run: the task DAG, run_if, retries, timeouts, cancel.
- `pipelines.jobs.task`: the subprocess one task attempt runs in (`python -m pipelines.jobs.task`).
- `pipelines.jobs.scheduler`: fires Quartz schedules (inside `cairn serve`, or `cairn jobs scheduler`).
"""
