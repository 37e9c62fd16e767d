"""Delta table storage through `deltalake` (delta-rs): type mapping, schema checks, opening tables.

Pure helpers; the governed operations are in `catalog/service/data.py`.

>>> import pyarrow as pa
>>> arrow_type("decimal(10, 2)")
Decimal128Type(decimal128(10, 2))
>>> type_text(pa.list_(pa.int64()))
'array<bigint>'
"""

from __future__ import annotations

import operator
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from catalog.entities import Column
from catalog.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

_SIMPLE = {
    "bigint": "int64", "int": "int32", "smallint": "int16", "tinyint": "int8", "double": "float64", "float": "float32",
    "boolean": "bool_", "string": "string", "binary": "binary", "date": "date32",
}


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def arrow_type(text: str) -> pa.DataType:
    """The Arrow type of a (normalized) Databricks SQL type."""
    import pyarrow as pa

    t = text.strip().lower()
    if t in _SIMPLE:
        return getattr(pa, _SIMPLE[t])()
    if t == "timestamp":
        return pa.timestamp("us", tz="UTC")
    if t == "timestamp_ntz":
        return pa.timestamp("us")
    if m := re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", t):
        return pa.decimal128(int(m[1]), int(m[2]))
    if t == "decimal":
        return pa.decimal128(10, 0)
    if m := re.fullmatch(r"(?:varchar|char)\(\d+\)", t):
        return pa.string()
    if t.startswith("array<") and t.endswith(">"):
        return pa.list_(arrow_type(t[6:-1]))
    if t.startswith("map<") and t.endswith(">"):
        k, v = _split_top(t[4:-1])
        return pa.map_(arrow_type(k), arrow_type(v))
    if t.startswith("struct<") and t.endswith(">"):
        fields = []
        for part in _split_top(t[7:-1]):
            name, _, ftype = part.partition(":")
            fields.append(pa.field(name.strip().strip("`"), arrow_type(ftype)))
        return pa.struct(fields)
    raise InvalidArgument(f"type {text!r} has no Delta equivalent")


def type_text(dtype: pa.DataType) -> str:
    """The Databricks SQL type of an Arrow type."""
    import pyarrow as pa
    import pyarrow.types as pt

    if pt.is_int64(dtype):
        return "bigint"
    if pt.is_int32(dtype):
        return "int"
    if pt.is_int16(dtype):
        return "smallint"
    if pt.is_int8(dtype):
        return "tinyint"
    if pt.is_float64(dtype):
        return "double"
    if pt.is_float32(dtype):
        return "float"
    if pt.is_boolean(dtype):
        return "boolean"
    if pt.is_string(dtype) or pt.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "string"
    if pt.is_binary(dtype) or pt.is_large_binary(dtype):
        return "binary"
    if pt.is_date(dtype):
        return "date"
    if pt.is_timestamp(dtype):
        return "timestamp" if dtype.tz else "timestamp_ntz"
    if pt.is_decimal(dtype):
        return f"decimal({dtype.precision}, {dtype.scale})"
    if pt.is_list(dtype) or pt.is_large_list(dtype):
        return f"array<{type_text(dtype.value_type)}>"
    if pt.is_map(dtype):
        return f"map<{type_text(dtype.key_type)}, {type_text(dtype.item_type)}>"
    if pt.is_struct(dtype):
        return "struct<" + ", ".join(f"{f.name}: {type_text(f.type)}" for f in dtype) + ">"
    if pt.is_uint64(dtype) or pt.is_uint32(dtype):
        return "bigint"
    if pt.is_uint16(dtype) or pt.is_uint8(dtype):
        return "int"
    raise InvalidArgument(f"Arrow type {dtype} has no Delta equivalent")


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([pa.field(c.name, arrow_type(c.type_text), nullable=c.nullable) for c in columns])


def columns_of(schema: pa.Schema, comments: dict[str, str | None] | None = None) -> list[Column]:
    comments = comments or {}
    return [Column(f.name.lower(), type_text(f.type), f.nullable, comments.get(f.name.lower()), i) for i, f in enumerate(schema)]


def to_arrow(data: Any) -> pa.Table:
    """Accept an Arrow table, record batch, pandas DataFrame, or a list of row dicts."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, list):
        return pa.Table.from_pylist(data)
    if type(data).__name__ == "DataFrame" and hasattr(data, "to_dict"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise InvalidArgument(f"cannot write {type(data).__name__}; give an Arrow table, a pandas DataFrame or a list of dicts")


def conform(data: pa.Table, target: pa.Schema, table: str, allow_new: bool) -> pa.Table:
    """Cast incoming data to the table's schema, or fail naming the column that does not fit.

    Unknown columns fail unless `allow_new` (schema evolution); missing nullable columns are
    filled with nulls; a missing or null value in a NOT NULL column fails.
    """
    import pyarrow as pa

    incoming = {f.name.lower(): i for i, f in enumerate(data.schema)}
    if len(incoming) != len(data.schema):
        raise InvalidArgument(f"write to '{table}': column names repeat (case-insensitively)")
    extra = [data.schema[i].name for name, i in incoming.items() if target.get_field_index(name) < 0]
    if extra and not allow_new:
        raise InvalidArgument(f"write to '{table}': unknown column '{extra[0]}'; pass merge_schema=True to add it")
    arrays, fields = [], []
    for f in target:
        if f.name in incoming:
            col = data.column(incoming[f.name])
            if col.type != f.type:
                try:
                    col = col.cast(f.type, safe=True)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise InvalidArgument(
                        f"write to '{table}': column '{f.name}' is {type_text(f.type)}, got {data.schema[incoming[f.name]].type}"
                    ) from None
        else:
            if not f.nullable:
                raise InvalidArgument(f"write to '{table}': NOT NULL column '{f.name}' is missing")
            col = pa.nulls(data.num_rows, f.type)
        if not f.nullable and col.null_count:
            raise InvalidArgument(f"write to '{table}': NOT NULL column '{f.name}' has {col.null_count} null value(s)")
        arrays.append(col)
        fields.append(f)
    for name in extra:
        col = data.column(name)
        arrays.append(col)
        fields.append(pa.field(name.lower(), col.type, nullable=True))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# Rows per Parquet row group of the files Cairn writes: DuckDB's own size, the unit it reads in
# parallel and skips by statistics (delta-rs would put up to a million rows in one).
ROW_GROUP_ROWS = 122_880


def writer_properties() -> Any:
    """The deltalake WriterProperties of every governed write."""
    from deltalake import WriterProperties

    return WriterProperties(max_row_group_size=ROW_GROUP_ROWS)


_open = threading.local()
# A directory mtime younger than this when we looked may still change within the same clock tick
# without its mtime moving (the "racy git" problem); only an older one proves nothing changed.
_RACY_NS = 100_000_000


def _log_stamp(location: str) -> int | None:
    """The mtime of a local table's _delta_log directory: it moves whenever a commit adds a file."""
    path = location[len("file://"):] if location.startswith("file://") else location
    if "://" in path:
        return None  # object stores: always ask the log
    try:
        return os.stat(os.path.join(path, "_delta_log")).st_mtime_ns
    except OSError:
        return None


def parse_timestamp(text: str) -> datetime:
    """A `TIMESTAMP AS OF` value: an ISO date or date-time; one without a zone is UTC.

    >>> parse_timestamp("2000-01-01")
    datetime.datetime(2000, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidArgument(f"{text!r} is not a timestamp: give an ISO date or date-time such as '2024-05-01 12:00:00'") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def open_table(location: str, version: int | None = None, timestamp: Any = None) -> DeltaTable:
    """The table at `location`: the latest snapshot (kept per thread and brought up to date
    incrementally, which costs a log listing rather than a log replay; skipped altogether for a local
    table whose log directory has not changed since a listing that began well after its last change),
    or one version or time."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    if version is None and timestamp is None:
        cache = getattr(_open, "tables", None)
        if cache is None:
            cache = _open.tables = {}
        stamp = _log_stamp(location)
        started = time.time_ns()
        entry = cache.get(location)
        if entry is not None:
            dt, trusted = entry
            if trusted is not None and stamp == trusted:
                return dt
            try:
                dt.update_incremental()
                cache[location] = (dt, stamp if stamp is not None and started - stamp > _RACY_NS else None)
                return dt
            except Exception:
                cache.pop(location, None)
        try:
            dt = DeltaTable(location)
        except TableNotFoundError:
            raise NotFound(f"no Delta table at {location}") from None
        cache[location] = (dt, stamp if stamp is not None and started - stamp > _RACY_NS else None)
        return dt
    if version is not None:
        try:
            return DeltaTable(location, version=version)  # replays the log up to `version` only
        except TableNotFoundError:
            raise NotFound(f"no Delta table at {location}") from None
        except Exception:  # noqa: S110 - no such version: the latest, opened next, says which exist
            pass
    try:
        dt = DeltaTable(location)
    except TableNotFoundError:
        raise NotFound(f"no Delta table at {location}") from None
    if version is not None:
        try:
            dt.load_as_version(version)
        except Exception as exc:
            raise InvalidArgument(f"version {version} does not exist (latest is {dt.version()}): {exc}") from None
    elif timestamp is not None:
        if isinstance(timestamp, str):
            timestamp = parse_timestamp(timestamp)
        earliest = min((h["timestamp"] for h in dt.history() if "timestamp" in h), default=None)
        if earliest is not None and isinstance(timestamp, datetime) and timestamp.timestamp() * 1000 < earliest:
            first = datetime.fromtimestamp(earliest / 1000, UTC).isoformat()
            raise InvalidArgument(f"no version at or before {timestamp.isoformat()}: the table's first version is from {first}")
        try:
            dt.load_as_version(timestamp)
        except Exception as exc:
            raise InvalidArgument(f"no version at or before {timestamp}: {exc}") from None
    return dt


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The data files of one table version, its columns and, for a partitioned table, each file's
    partition values: typed, from the Delta log (they are not in the files)."""

    files: tuple[str, ...]
    columns: tuple[Column, ...]
    partition_columns: tuple[str, ...] = ()
    partitions: tuple[tuple[Any, ...], ...] = ()


_snapshots: dict[tuple[str, str, int], Snapshot] = {}
_snapshots_lock = threading.Lock()


def snapshot_files(location: str, dt: DeltaTable) -> Snapshot:
    """The data files, columns and partition values of the loaded snapshot. A version never changes,
    so they are kept per (location, table id, version); the table id tells a table recreated at the
    same path apart."""
    key = (location, str(dt.metadata().id), dt.version())  # a UUID string (deltalake's stub says int)
    hit = _snapshots.get(key)
    if hit is None:
        columns = tuple(columns_of(table_schema(dt)))
        parts = tuple(p.lower() for p in dt.metadata().partition_columns)
        hit = Snapshot(tuple(dt.file_uris()), columns, parts, _partition_values(dt, parts) if parts else ())
        with _snapshots_lock:
            if len(_snapshots) >= 512:
                _snapshots.pop(next(iter(_snapshots)))
            _snapshots[key] = hit
    return hit


_parts_at: dict[str, tuple[int, tuple[str, ...]]] = {}


def partition_columns_at(location: str) -> tuple[str, ...]:
    """The partition columns (lower case) of the latest snapshot of the table at `location`, () where
    there is none. Kept per location while its `_delta_log` directory's mtime holds still (a change of
    metadata is a commit, which adds a file there), so a warm lookup costs one stat."""
    stamp = _log_stamp(location)
    hit = _parts_at.get(location)
    if hit is not None and stamp is not None and hit[0] == stamp:
        return hit[1]
    path = location.removeprefix("file://")
    if stamp is None and "://" not in path:
        return ()  # a local path without a log: no Delta table (yet)
    started = time.time_ns()
    try:
        parts = tuple(p.lower() for p in open_table(location).metadata().partition_columns)
    except NotFound:
        return ()
    if stamp is not None and started - stamp > _RACY_NS:
        with _snapshots_lock:
            if len(_parts_at) >= 4096:
                _parts_at.pop(next(iter(_parts_at)), None)
            _parts_at[location] = (stamp, parts)
    return parts


def file_stats(dt: DeltaTable, files: tuple[str, ...]) -> Any:
    """The Delta log's statistics of each file of `files` (file URIs of `dt`'s snapshot, in their
    order) as an Arrow table with a `min.<column>`, `max.<column>` and `null_count.<column>` per
    column and the file's `num_records`: null where the writer kept none. Read from the loaded log,
    no data file is opened."""
    from urllib.parse import unquote

    import pyarrow as pa

    actions = pa.table(dt.get_add_actions(flatten=True))
    wanted = [c for c in actions.column_names if c.startswith(("min.", "max.", "null_count.")) or c == "num_records"]
    root = dt.table_uri.rstrip("/") + "/"
    index = {unquote(p): i for i, p in enumerate(actions.column("path").to_pylist())}
    rows = [index.get(f, index.get(f.removeprefix(root), index.get(f.removeprefix(root.removeprefix("file://")), -1))) for f in files]
    if -1 in rows:  # a file the log's paths do not name as expected: no statistics for any (nothing is skipped)
        return None
    return actions.select(wanted).take(pa.array(rows, pa.int64()))


def _partition_values(dt: DeltaTable, parts: tuple[str, ...]) -> tuple[tuple[Any, ...], ...]:
    """Each file's partition values, in `file_uris()` order, typed by deltalake from the log."""
    from urllib.parse import unquote

    import pyarrow as pa

    actions = pa.table(dt.get_add_actions(flatten=True))
    uris = dt.file_uris()
    paths = actions.column("path").to_pylist()
    by_name = {c.lower(): c for c in dt.metadata().partition_columns}
    values = list(zip(*(actions.column(f"partition.{by_name[p]}").to_pylist() for p in parts)))
    if len(paths) != len(uris) or not all(u.endswith(unquote(p)) for u, p in zip(uris, paths)):
        # Never pair a file with another's values: match them by path instead.
        found = {unquote(p): v for p, v in zip(paths, values)}
        return tuple(next(v for p, v in found.items() if u.endswith(p)) for u in uris)
    return tuple(values)


# Types Delta tables may be partitioned by here: exact values that read back from the log's text.
_PARTITION_TYPES = re.compile(r"string|tinyint|smallint|int|bigint|boolean|date|timestamp|timestamp_ntz|decimal\(\d+, ?\d+\)")


def partition_columns(columns: Sequence[Column], partition_by: Sequence[str], table: str) -> list[str]:
    """The partition columns, lower case, once each is found a column of a type a table can be
    partitioned by (not float, binary or nested: their values do not round-trip through a path).

    >>> partition_columns([Column("id", "bigint", False, None, 0), Column("d", "date", True, None, 1)], ["D"], "t")
    ['d']
    """
    types = {c.name.lower(): c.type_text for c in columns}
    out: list[str] = []
    for p in partition_by:
        if not isinstance(p, str) or p.lower() not in types:
            raise InvalidArgument(f"partition column {p!r} is not a column of '{table}' (columns: {', '.join(types)})")
        if not _PARTITION_TYPES.fullmatch(types[p.lower()]):
            raise InvalidArgument(f"partition column '{p.lower()}' of '{table}' is {types[p.lower()]}; partition by a string, integer, "
                                  "boolean, decimal, date or timestamp column")
        if p.lower() in out:
            raise InvalidArgument(f"partition column '{p.lower()}' is named twice")
        out.append(p.lower())
    if out and len(out) == len(types):
        raise InvalidArgument(f"'{table}' cannot be partitioned by all of its columns: a data file needs one column at least")
    return out


_DUCK_TYPES = {"boolean": "BOOLEAN", "tinyint": "TINYINT", "smallint": "SMALLINT", "int": "INT", "bigint": "BIGINT",
               "float": "REAL", "double": "DOUBLE", "string": "TEXT", "binary": "BLOB", "date": "DATE",
               "timestamp": "TIMESTAMPTZ", "timestamp_ntz": "TIMESTAMP"}


def duck_type(type_text: str) -> str:
    """A Databricks type as DuckDB's (the common ones without loading sqlglot's dialects: ~0.15 s)."""
    simple = _DUCK_TYPES.get(type_text)
    if simple is not None:
        return simple
    from sqlglot import exp

    return exp.DataType.build(type_text, dialect="databricks").sql("duckdb")


def duck_literal(value: Any, type_text: str) -> str:
    """A Python value (a partition value as deltalake types it) as a typed DuckDB literal; a time
    carries its offset, so DuckDB's session time zone plays no part.

    >>> duck_literal("a'b", "string"), duck_literal(None, "int"), duck_literal(True, "boolean")
    ("CAST('a''b' AS TEXT)", 'CAST(NULL AS INT)', 'CAST(TRUE AS BOOLEAN)')
    """
    if value is None:
        text = "NULL"
    elif isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    else:
        raw = value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat() if hasattr(value, "isoformat") else str(value)
        text = "'" + raw.replace("'", "''") + "'"
    return f"CAST({text} AS {duck_type(type_text)})"


def _sql_files(files: Sequence[str]) -> str:
    return ", ".join("'" + local_path(f).replace("'", "''") + "'" for f in files)


def local_path(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def parquet_source(snapshot: Snapshot, options: str = "") -> str:
    """A DuckDB relation reading a snapshot's files (`options` are more `read_parquet` options),
    with its partition columns restored from the log's values: one `read_parquet` per partition,
    each adding its values as constants (a filter on a partition column then drops whole branches
    unread). Files are matched by name, so files written before a schema change read its new
    columns as NULL, as Delta does; that costs a schema read per file, skipped for a single one."""
    if not snapshot.files:
        typed = ", ".join(f'CAST(NULL AS {duck_type(c.type_text)}) AS "{c.name}"' for c in snapshot.columns)
        return f"(SELECT {typed} WHERE false)"
    # Never what DuckDB would guess from `col=value/` in a path: paths are not trusted input.
    options = ", hive_partitioning = false" + options
    if not snapshot.partition_columns:
        many = ", union_by_name = true" if len(snapshot.files) > 1 else ""
        return f"read_parquet([{_sql_files(snapshot.files)}]{many}{options})"
    types = {c.name: c.type_text for c in snapshot.columns}
    groups: dict[tuple[Any, ...], list[str]] = {}
    for f, values in zip(snapshot.files, snapshot.partitions):
        groups.setdefault(values, []).append(f)
    branches = []
    for values, files in groups.items():
        consts = ", ".join(f'{duck_literal(v, types[p])} AS "{p}"' for p, v in zip(snapshot.partition_columns, values))
        many = ", union_by_name = true" if len(files) > 1 else ""
        branches.append(f"SELECT *, {consts} FROM read_parquet([{_sql_files(files)}]{many}{options})")
    return "(" + " UNION ALL BY NAME ".join(branches) + ")"


def arrow_dataset(snapshot: Snapshot) -> Any:
    """The snapshot as one Arrow dataset in the table's schema (every field nullable), each file a
    fragment whose partition values, from the log, fill its partition columns (an engine filtering
    on them skips the other files)."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    schema = pa.schema([f.with_nullable(True) for f in arrow_schema(snapshot.columns)])
    files = [local_path(f) for f in snapshot.files]
    if not snapshot.partition_columns:
        return ds.dataset(files, schema=schema, format="parquet")
    exprs = []
    for values in snapshot.partitions:
        conds = [ds.field(p).is_null() if v is None else ds.field(p) == pa.scalar(v, schema.field(p).type)
                 for p, v in zip(snapshot.partition_columns, values)]
        expr = conds[0]
        for c in conds[1:]:
            expr = expr & c
        exprs.append(expr)
    return ds.FileSystemDataset.from_paths(files, schema=schema, format=ds.ParquetFileFormat(), filesystem=pafs.LocalFileSystem(),
                                           partitions=exprs)


def partition_text(value: Any) -> str | None:
    """A partition value as the Delta log holds it (times in UTC, without a zone).

    >>> partition_text(datetime(2024, 1, 2, 3, tzinfo=UTC)), partition_text(True), partition_text(None)
    ('2024-01-02 03:00:00.000000', 'true', None)
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="microseconds")
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def partition_dir(partition_columns: Sequence[str], texts: Sequence[str | None]) -> str:
    """The directory of a partition's files, `col=value/...` (values percent-encoded, as delta-rs does)."""
    from urllib.parse import quote

    return "/".join(f"{p}={'__HIVE_DEFAULT_PARTITION__' if v is None else quote(v, safe='')}" for p, v in zip(partition_columns, texts))


def check_partition_values(values: dict[str, str | None], target: pa.Schema, partition_columns: Sequence[str], table: str) -> None:
    """A data file's partition values (Delta text) name exactly the partition columns, each a value of its type."""
    import pyarrow as pa

    if sorted(values) != sorted(partition_columns):
        raise InvalidArgument(f"'{table}' is partitioned by ({', '.join(partition_columns)}); a data file gave values for "
                              f"({', '.join(sorted(values))})")
    for p, text in values.items():
        t = target.field(p).type
        try:
            if text is not None:
                pa.array([text], pa.string()).cast(pa.timestamp("us") if pa.types.is_timestamp(t) else t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
            raise InvalidArgument(f"partition value {text!r} is not a {type_text(t)} (column '{p}' of '{table}')") from None


_PRUNE_OPS = {"=": operator.eq, "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def prune(snapshot: Snapshot, filters: Sequence[tuple[str, str, Any]]) -> Snapshot:
    """The snapshot without the files whose partition values no row could match `filters` (a
    conjunction of (column, op, value), op in =, !=, <, <=, >, >=, in, not in). Filters on other
    columns keep every file; the rows kept still need the filters applied."""
    import pyarrow as pa

    if not snapshot.partition_columns:
        return snapshot
    types = {c.name: c.type_text for c in snapshot.columns}
    tests = []
    for col, op, value in filters:
        c, o = col.lower(), str(op).lower()
        if c not in snapshot.partition_columns or (o not in _PRUNE_OPS and o not in ("in", "not in")):
            continue
        t = arrow_type(types[c])
        try:
            wanted = pa.array(list(value) if o in ("in", "not in") else [value]).cast(t).to_pylist()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
            raise InvalidArgument(f"filter value {value!r} is not a {types[c]} (partition column '{c}')") from None
        tests.append((snapshot.partition_columns.index(c), o, wanted))

    def keep(values: tuple[Any, ...]) -> bool:
        for i, o, wanted in tests:
            v = values[i]
            if v is None:  # a comparison with NULL is never true
                return False
            if (o == "in" and v not in wanted) or (o == "not in" and v in wanted):
                return False
            if o in _PRUNE_OPS and not _PRUNE_OPS[o](v, wanted[0]):
                return False
        return True

    kept = [(f, v) for f, v in zip(snapshot.files, snapshot.partitions) if keep(v)]
    return Snapshot(tuple(f for f, _ in kept), snapshot.columns, snapshot.partition_columns, tuple(v for _, v in kept))


def is_delta(location: str) -> bool:
    from deltalake import DeltaTable

    try:
        return DeltaTable.is_deltatable(location)
    except Exception:
        return False


def table_schema(dt: DeltaTable) -> pa.Schema:
    """The Delta table's schema as a pyarrow schema (deltalake hands out arro3 objects)."""
    import pyarrow as pa

    return pa.schema(dt.schema().to_arrow())
