"""What an engine needs to read or write a table's data itself, below the services: a snapshot's
scan plan (files, columns, the reader's row filter and masks), the files it wrote, and the locked
DuckDB that applies a policy. Pure data and helpers with no service or store dependency, so the
services, the SQL shim and the pipelines' engines (DuckDB, Spark) share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from catalog import delta
from catalog.entities import Column
from catalog.errors import InvalidArgument
from catalog.policies import Policy


@dataclass(frozen=True, slots=True)
class ScanPlan:
    """What an engine needs to read one snapshot of a table itself: files, schema, version."""

    table: str
    version: int
    files: tuple[str, ...]
    columns: tuple[Column, ...]
    policy: Policy = Policy(None, {})  # noqa: RUF009 - immutable; applied by the engine to every batch it reads
    partition_columns: tuple[str, ...] = ()
    partitions: tuple[tuple[Any, ...], ...] = ()  # per file, its partition values from the Delta log (not in the files)
    stats: Any = None  # per file, its `min.<column>` and `max.<column>` from the Delta log (Arrow), when planned with stats

    def meeting(self, column: str, low: Any, high: Any) -> ScanPlan:
        """This plan with only the files that may hold rows with `low < column <= high`, by the
        Delta log's statistics (Delta's data skipping); a file without them stays. The rows read
        still need the condition applied."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.stats is None or f"max.{column}" not in self.stats.column_names:
            return self
        lows, highs = self.stats.column(f"min.{column}"), self.stats.column(f"max.{column}")
        if pa.types.is_timestamp(highs.type):  # kept to the millisecond in the log: a max may be up to 1 ms short
            highs = pc.add(highs, pa.scalar(1000 if highs.type.unit == "us" else 1, pa.duration(highs.type.unit)))
        try:
            keep = pc.fill_null(pc.and_kleene(pc.greater(highs, low), pc.less_equal(lows, high)), True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
            raise InvalidArgument(f"cannot compare column '{column}' ({highs.type}) with {low!r} and {high!r}") from None
        index = pc.indices_nonzero(keep)
        picked = index.to_pylist()
        return replace(self, files=tuple(self.files[i] for i in picked), stats=self.stats.take(index),
                       partitions=tuple(self.partitions[i] for i in picked) if self.partitions else ())

    def skip(self, filters: Sequence[tuple[str, str, Any]]) -> ScanPlan:
        """This plan without the files no row of which can match all of `filters` (a conjunction of
        (column, op, value), op one of `SKIP_OPS`): judged by a partition column's value in the Delta
        log, exactly, by another column's min and max in the log (a plan with `stats`) for =, <,
        <=, >, >= and in, and by its null count for is null (none: skipped) and is not null (all of
        the file's rows: skipped). A file the log has no value or statistics for stays, and so does every
        file for a filter this cannot judge: an unknown column or op, a value not of the column's
        type, a float column's > and >= (NaN sorts above every number and is in no min or max), and
        a masked column (its rows show the mask, so skipping by the values beneath would both lose
        rows and tell the reader what the mask hides). The rows read still need every filter applied.

        >>> from catalog.entities import Column
        >>> plan = ScanPlan("t", 0, ("a", "b"), (Column("d", "string"), Column("x", "bigint")), partition_columns=("d",),
        ...                 partitions=(("x",), (None,)))
        >>> plan.skip([("d", "is null", None)]).files, plan.skip([("d", "in", ["x", "y"])]).files
        (('b',), ('a',))
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        if not self.files or not filters:
            return self
        types = {c.name.lower(): c.type_text for c in self.columns}
        masked = {m.lower() for m in self.policy.masks}
        keep = pa.array([True] * len(self.files))
        for column, op, value in filters:
            c, o = column.lower(), str(op).lower()
            if c not in types or c in masked or o not in SKIP_OPS:
                continue
            try:
                if c in self.partition_columns and self.partitions:
                    values = pa.array([p[self.partition_columns.index(c)] for p in self.partitions], delta.arrow_type(types[c]))
                    test = _exact(values, o, value)
                elif self.stats is not None and not self.policy.row_filter and o in ("is null", "is not null"):
                    test = _nulls(self.stats, c, o)
                elif self.stats is not None and not self.policy.row_filter and {f"min.{c}", f"max.{c}"} <= set(self.stats.column_names):
                    test = _ranged(self.stats.column(f"min.{c}"), self.stats.column(f"max.{c}"), o, value)
                else:
                    continue
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                continue  # a value this cannot compare with the column: every file may hold a match
            if test is not None:
                keep = pc.and_(keep, test.combine_chunks() if isinstance(test, pa.ChunkedArray) else test)
        if keep.true_count == len(self.files):
            return self
        index = pc.indices_nonzero(keep)
        picked = index.to_pylist()
        return replace(self, files=tuple(self.files[i] for i in picked), stats=self.stats.take(index) if self.stats is not None else None,
                       partitions=tuple(self.partitions[i] for i in picked) if self.partitions else ())

    @property
    def snapshot(self) -> delta.Snapshot:
        return delta.Snapshot(self.files, self.columns, self.partition_columns, self.partitions)

    def source(self, options: str = "") -> str:
        """DuckDB SQL reading the snapshot's rows, partition columns restored (`delta.parquet_source`)."""
        return delta.parquet_source(self.snapshot, options)


# What `ScanPlan.skip` judges: all on partition values, the first six on min and max, the last two on null counts.
SKIP_OPS = ("=", "<", "<=", ">", ">=", "in", "!=", "not in", "is null", "is not null")


def _scalar(value: Any, dtype: Any) -> Any:
    """`value` as an Arrow scalar of `dtype`; never text read as a number or a date, nor the other way
    round (an engine compares those as something else)."""
    from datetime import datetime

    import pyarrow as pa

    text = pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
    if isinstance(value, str) != text or isinstance(value, bool) != pa.types.is_boolean(dtype):
        raise TypeError(f"{value!r} is not a {dtype}")
    if isinstance(value, datetime) and pa.types.is_timestamp(dtype) and (value.tzinfo is None) != (dtype.tz is None):
        raise TypeError(f"{value!r} is not a {dtype}: a time without a zone is no instant, and the other way round")
    return pa.scalar(value).cast(dtype)


def _exact(values: Any, op: str, value: Any) -> Any:
    """Which partition values (one per file, the value of all its rows) meet `op value`: a
    comparison with NULL is never true."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if op == "is null":
        return pc.is_null(values)
    if op == "is not null":
        return pc.is_valid(values)
    if op in ("in", "not in"):
        wanted = pa.array([_scalar(v, values.type) if v is not None else None for v in value], values.type)
        if op == "not in" and wanted.null_count:
            return None  # `x NOT IN (.., NULL)` is never true; leave that to the engine
        found = pc.is_in(values, value_set=wanted.drop_null())
        return pc.fill_null(pc.and_(pc.is_valid(values), found if op == "in" else pc.invert(found)), False)
    compare = {"=": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal}[op]
    return pc.fill_null(compare(values, _scalar(value, values.type)), False)


def _nulls(stats: Any, column: str, op: str) -> Any:
    """Which files, by the log's null count of `column` and their row count (null: unknown, the
    file stays), may hold a row where it is null (`is null`) or not (`is not null`)."""
    import pyarrow.compute as pc

    if f"null_count.{column}" not in stats.column_names or "num_records" not in stats.column_names:
        return None
    nulls, rows = stats.column(f"null_count.{column}"), stats.column("num_records")
    test = pc.greater(nulls, 0) if op == "is null" else pc.less(nulls, rows)
    return pc.fill_null(test, True)


def _ranged(lows: Any, highs: Any, op: str, value: Any) -> Any:
    """Which files, by their min and max (null: unknown, the file stays), may hold a row meeting `op value`."""
    import math

    import pyarrow as pa
    import pyarrow.compute as pc

    if op not in ("=", "<", "<=", ">", ">=", "in"):
        return None
    wanted = [v for v in (value if op == "in" else [value]) if v is not None]
    if pa.types.is_floating(highs.type) and (op in (">", ">=") or any(isinstance(v, float) and math.isnan(v) for v in wanted)):
        return None  # NaN is above every number for Spark, and the log's min and max leave it out
    if not wanted:
        return None
    if pa.types.is_timestamp(highs.type):  # kept to the millisecond in the log: a max may be up to 1 ms short
        highs = pc.add(highs, pa.scalar(1000 if highs.type.unit == "us" else 1, pa.duration(highs.type.unit)))
    if op == "<":
        test = pc.less(lows, _scalar(wanted[0], lows.type))
    elif op == "<=":
        test = pc.less_equal(lows, _scalar(wanted[0], lows.type))
    elif op == ">":
        test = pc.greater(highs, _scalar(wanted[0], highs.type))
    elif op == ">=":
        test = pc.greater_equal(highs, _scalar(wanted[0], highs.type))
    else:
        test = None
        for v in wanted:
            one = pc.and_kleene(pc.less_equal(lows, _scalar(v, lows.type)), pc.greater_equal(highs, _scalar(v, highs.type)))
            test = one if test is None else pc.or_kleene(test, one)
    return pc.fill_null(test, True)


@dataclass(frozen=True, slots=True)
class DataFile:
    """A Parquet file an engine wrote into a table's location, to be committed by `commit_files`."""

    path: str
    size: int
    num_records: int
    modification_time: int
    partition_values: dict[str, str | None] | None = None  # for a partitioned table, as the Delta log holds them


_OPS = {"=": "=", "==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "in": "IN", "not in": "NOT IN"}


def policy_sql(policy: Policy, source: str, schema_names: list[str], columns: list[str] | None = None) -> str:
    """DuckDB SQL reading `source` as the policy allows: masked columns, filtered rows."""
    wanted = columns or schema_names
    select = ", ".join(f'{policy.masks[c]} AS "{c}"' if c in policy.masks else f'"{c}"' for c in wanted)
    return f"SELECT {select} FROM {source}" + (f" WHERE {policy.row_filter}" if policy.row_filter else "")


_duck: Any = None
_duck_lock = __import__("threading").Lock()


# The engine reaches no file by itself, and no statement can change that: what it reads is handed
# in as Arrow data by the governed services.
DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {"enable_external_access": False, "autoinstall_known_extensions": False, "autoload_known_extensions": False,
                 "allow_community_extensions": False, "lock_configuration": True}


def duckdb_cursor() -> Any:
    """A fresh DuckDB connection to one in-memory database per process (opening one costs ~10 ms,
    a cursor well under one), with external access off and its configuration locked. Temporary
    views live and die with the cursor."""
    global _duck
    import duckdb

    with _duck_lock:
        if _duck is None:
            _duck = duckdb.connect(config=DUCKDB_CONFIG)
        return _duck.cursor()


def apply_policy(source: Any, policy: Policy, columns: list[str] | None, filters: list[tuple[str, str, Any]] | None) -> Any:
    """Run the policy over an Arrow dataset, table or batch in DuckDB; then the caller's filters."""
    con = duckdb_cursor()
    try:
        con.register("src", source)
        names_ = [f.name for f in source.schema]
        inner = policy_sql(policy, "src", names_)
        sql = f"SELECT {', '.join(chr(34) + c + chr(34) for c in columns) if columns else '*'} FROM ({inner}) AS p"
        params: list[Any] = []
        if filters:
            conds = []
            for col, op, value in filters:
                sql_op = _OPS.get(str(op).lower())
                if sql_op is None:
                    raise InvalidArgument(f"filter operator {op!r} is not one of {', '.join(_OPS)}")
                if sql_op in ("IN", "NOT IN"):
                    conds.append(f'"{col.lower()}" {sql_op} (SELECT unnest(?))')
                else:
                    conds.append(f'"{col.lower()}" {sql_op} ?')
                params.append(list(value) if sql_op in ("IN", "NOT IN") else value)
            sql += " WHERE " + " AND ".join(conds)
        return con.execute(sql, params).to_arrow_table()
    finally:
        con.close()
