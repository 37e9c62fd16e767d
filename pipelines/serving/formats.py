"""The four pyfunc scoring payloads, as Databricks and `mlflow models serve` accept them.

Each becomes a list of records (column -> value) or, for positional rows (`instances` or `inputs`
given as lists of lists), a list of rows in the model's feature order.

>>> parse({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}})
([{'a': 1, 'b': 2}], None)
>>> parse({"inputs": {"a": [1, 2]}})
([{'a': 1}, {'a': 2}], None)
>>> parse({"instances": [[1.0, 2.0]]})
(None, [[1.0, 2.0]])
"""

from __future__ import annotations

from typing import Any

from catalog.errors import InvalidArgument

FORMATS = ("dataframe_records", "dataframe_split", "instances", "inputs")
MAX_RECORDS = 10_000

Records = list[dict[str, Any]]
Rows = list[list[Any]]


def parse(body: Any) -> tuple[Records | None, Rows | None]:
    """(records, None) or (None, positional rows) of a request body; InvalidArgument naming what is wrong."""
    if not isinstance(body, dict):
        raise InvalidArgument(f"the body must be a JSON object with one of {', '.join(FORMATS)}")
    given = [k for k in FORMATS if k in body]
    if not given:
        raise InvalidArgument(f"the body has none of the keys {', '.join(FORMATS)}; send exactly one")
    if len(given) > 1:
        raise InvalidArgument(f"the body has {' and '.join(given)}; send exactly one of {', '.join(FORMATS)}")
    extra = set(body) - {given[0], "params", "client_request_id", "dataframe_split_orient"}
    if extra:
        raise InvalidArgument(f"unknown key(s) {sorted(extra)} in the body")
    key = given[0]
    value = body[key]
    out: tuple[Records | None, Rows | None]
    if key == "dataframe_records":
        out = _records(value, key)
    elif key == "dataframe_split":
        out = _split(value)
    else:
        out = _tensor(value, key)
    size = len(out[0] if out[0] is not None else out[1])  # type: ignore[arg-type]
    if size == 0:
        raise InvalidArgument(f"{key} holds no rows")
    if size > MAX_RECORDS:
        raise InvalidArgument(f"{key} holds {size:,} rows; at most {MAX_RECORDS:,} per request")
    return out


def _records(value: Any, key: str) -> tuple[Records, None]:
    if isinstance(value, dict):  # a single record, as pandas' to_dict("records") of one row
        value = [value]
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise InvalidArgument(f"{key} must be a list of objects (column -> value)")
    return value, None


def _split(value: Any) -> tuple[Records, None]:
    if not isinstance(value, dict):
        raise InvalidArgument("dataframe_split must be an object with columns and data")
    cols, data = value.get("columns"), value.get("data")
    if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
        raise InvalidArgument("dataframe_split.columns must be a list of column names")
    if not isinstance(data, list) or not all(isinstance(r, list) for r in data):
        raise InvalidArgument("dataframe_split.data must be a list of rows (lists)")
    for i, r in enumerate(data):
        if len(r) != len(cols):
            raise InvalidArgument(f"dataframe_split.data[{i}] has {len(r)} values for {len(cols)} columns")
    return [dict(zip(cols, r)) for r in data], None


def _tensor(value: Any, key: str) -> tuple[Records | None, Rows | None]:
    if isinstance(value, dict):  # columnar: column -> list of values (or one value)
        cols = {c: (v if isinstance(v, list) else [v]) for c, v in value.items()}
        lengths = {len(v) for v in cols.values()}
        if len(lengths) != 1:
            raise InvalidArgument(f"{key}: every column must hold the same number of values")
        n = lengths.pop()
        return [{c: v[i] for c, v in cols.items()} for i in range(n)], None
    if not isinstance(value, list):
        raise InvalidArgument(f"{key} must be a list of rows or an object of columns")
    if all(isinstance(r, dict) for r in value):
        return value, None
    if all(isinstance(r, list) for r in value):
        return None, value
    raise InvalidArgument(f"{key} must be a list of objects or a list of lists, not a mix")
