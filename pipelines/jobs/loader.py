"""Job definitions from YAML files or Python mappings, with SQL files read in.

A `sql_task: {file: path}` is read when the definition is loaded, relative to the YAML file, so the
stored job holds the SQL it runs (a later edit of the file changes nothing until `cairn jobs update`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from catalog.errors import InvalidArgument
from catalog.jobspec import JobSettings, parse_settings


def load(definition: dict[str, Any] | str | Path, base: Path | None = None) -> JobSettings:
    """Validate a definition (a mapping, a YAML file path, or YAML text) into job settings."""
    import yaml

    if isinstance(definition, Path) or (isinstance(definition, str) and "\n" not in definition and definition.endswith((".yml", ".yaml"))):
        path = Path(definition)
        try:
            text = path.read_text()
        except OSError as exc:
            raise InvalidArgument(f"cannot read job definition {path}: {exc.strerror}") from None
        base = path.resolve().parent
        definition = text
    if isinstance(definition, str):
        try:
            definition = yaml.safe_load(definition)
        except yaml.YAMLError as exc:
            raise InvalidArgument(f"the job definition is not valid YAML: {exc}") from None
    if not isinstance(definition, dict):
        raise InvalidArgument("a job definition is a mapping with name and tasks")
    d = copy.deepcopy(definition)
    for task in d.get("tasks") or []:
        sql = task.get("sql_task") if isinstance(task, dict) else None
        if isinstance(sql, dict) and sql.get("file") and not sql.get("query"):
            f = sql["file"].get("path") if isinstance(sql["file"], dict) else sql["file"]
            path = Path(str(f))
            if not path.is_absolute():
                path = (base or Path.cwd()) / path
            try:
                sql["query"] = path.read_text()
            except OSError as exc:
                raise InvalidArgument(f"task '{task.get('task_key')}': cannot read SQL file {path}: {exc.strerror}") from None
            sql["file"] = str(f)
    return parse_settings(d)
