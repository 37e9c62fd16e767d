"""`ScanPlan.skip`: which files a conjunction of filters may find rows in, by partition values
(exact) and by the Delta log's min and max (ranges; unknown means kept). Every case errs on keeping."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from catalog.entities import Column
from catalog.policies import Policy
from catalog.scan import ScanPlan

FILES = ("f0", "f1", "f2", "f3")  # f3 has no statistics


def plan(**kw: Any) -> ScanPlan:
    ts = pa.timestamp("us", tz="UTC")
    stats = pa.table({
        "min.id": pa.array([0, 10, 20, None], pa.int64()), "max.id": pa.array([9, 19, 29, None], pa.int64()),
        "min.x": pa.array([0.0, 10.0, 20.0, None]), "max.x": pa.array([9.0, 19.0, 29.0, None]),
        "min.s": pa.array(["a", "b", "c", None]), "max.s": pa.array(["az", "bz", "cz", None]),
        "min.ts": pa.array([datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3)] + [None], ts),
        "max.ts": pa.array([datetime(2024, 1, d, 12, tzinfo=UTC) for d in (1, 2, 3)] + [None], ts),
        "min.amount": pa.array([Decimal("0.00"), Decimal("10.00"), Decimal("20.00"), None], pa.decimal128(10, 2)),
        "max.amount": pa.array([Decimal("9.99"), Decimal("19.99"), Decimal("29.99"), None], pa.decimal128(10, 2)),
        "null_count.id": pa.array([0, 3, 10, None], pa.int64()), "num_records": pa.array([10, 10, 10, None], pa.int64()),
    })
    cols = (Column("id", "bigint"), Column("x", "double"), Column("s", "string"), Column("ts", "timestamp"),
            Column("amount", "decimal(10, 2)"), Column("day", "date"))
    base = ScanPlan("main.s.t", 3, FILES, cols, partition_columns=("day",),
                    partitions=((date(2024, 1, 1),), (date(2024, 1, 2),), (date(2024, 1, 2),), (None,)), stats=stats)
    from dataclasses import replace

    return replace(base, **kw)


@pytest.mark.parametrize(("filters", "kept"), [
    ([("id", "=", 15)], ["f1", "f3"]), ([("id", "<", 10)], ["f0", "f3"]), ([("id", "<=", 10)], ["f0", "f1", "f3"]),
    ([("id", ">", 19)], ["f2", "f3"]), ([("id", ">=", 19)], ["f1", "f2", "f3"]), ([("id", "in", [3, 25, None])], ["f0", "f2", "f3"]),
    ([("ID", "=", 15)], ["f1", "f3"]),  # column names are case-insensitive
    ([("id", "!=", 15)], FILES), ([("id", "not in", [1])], FILES),  # not judged by ranges
    ([("id", "is null", None)], ["f1", "f2", "f3"]), ([("id", "is not null", None)], ["f0", "f1", "f3"]),  # by null counts: f0 has no
    ([("x", "is null", None)], FILES), ([("x", "is not null", None)], FILES),  # null, f2 only nulls; x has no counts: kept
    ([("x", "<", 10.0)], ["f0", "f3"]), ([("x", "=", 15.0)], ["f1", "f3"]),
    ([("x", ">", 25.0)], FILES), ([("x", "=", float("nan"))], FILES),  # NaN: above every number, in no min or max
    ([("s", "=", "bq")], ["f1", "f3"]), ([("s", ">=", "c")], ["f2", "f3"]),
    ([("ts", ">", datetime(2024, 1, 3, 12, 0, 0, 500, tzinfo=UTC))], ["f2", "f3"]),  # the log's max is to the ms: 0.5 ms past it kept
    ([("ts", ">", datetime(2024, 1, 3, 12, 0, 1, tzinfo=UTC))], ["f3"]),
    ([("ts", "<", datetime(2024, 1, 2, tzinfo=UTC))], ["f0", "f3"]),
    ([("ts", "<", datetime(2024, 1, 2))], FILES),  # a time without a zone against instants: not judged
    ([("amount", ">=", Decimal("20.5"))], ["f2", "f3"]),
    ([("day", "=", date(2024, 1, 2))], ["f1", "f2"]), ([("day", "is null", None)], ["f3"]), ([("day", "is not null", None)], ["f0", "f1", "f2"]),
    ([("day", "!=", date(2024, 1, 2))], ["f0"]), ([("day", "not in", [date(2024, 1, 1)])], ["f1", "f2"]),
    ([("day", "not in", [date(2024, 1, 1), None])], FILES),  # `NOT IN (.., NULL)` is never true: left to the engine
    ([("day", "in", [date(2024, 1, 1), None])], ["f0"]), ([("day", ">", date(2024, 1, 1)), ("id", "<", 15)], ["f1"]),
    ([("id", "=", "15")], FILES), ([("s", "=", 5)], FILES), ([("day", "=", "2024-01-02")], FILES),  # text vs number or date: not judged
    ([("id", "=", 2**70)], FILES), ([("nope", "=", 1)], FILES), ([("id", "like", "1%")], FILES), ([], FILES),
])
def test_skip(filters: list[tuple[str, str, Any]], kept: Any) -> None:
    assert plan().skip(filters).files == tuple(kept)


def test_skip_keeps_the_plan_in_step() -> None:
    p = plan().skip([("id", ">", 12)])
    assert p.files == ("f1", "f2", "f3") and p.partitions == ((date(2024, 1, 2),), (date(2024, 1, 2),), (None,))
    assert p.stats is not None and p.stats.column("min.id").to_pylist() == [10, 20, None]
    assert plan().skip([("id", ">", -1)]) == plan()
    assert plan().meeting("id", 5, 15).files == ("f0", "f1", "f3")  # meeting: low < id <= high, unchanged


def test_masked_columns_and_row_filters_decide_nothing() -> None:
    masked = plan(policy=Policy(None, {"id": "'***'", "day": "NULL"}))
    assert masked.skip([("id", "=", 15)]).files == FILES and masked.skip([("day", "is null", None)]).files == FILES
    assert masked.skip([("id", "is null", None)]).files == FILES  # where a masked column is null is no business of the reader
    assert masked.skip([("s", "=", "bq")]).files == ("f1", "f3")
    filtered = plan(policy=Policy("s <> 'b'", {}))  # min and max are values of rows the reader may not see
    assert filtered.skip([("id", "=", 15)]).files == FILES and filtered.skip([("id", "is not null", None)]).files == FILES
    assert filtered.skip([("day", "=", date(2024, 1, 1))]).files == ("f0",)  # partition values: every reader's plan holds them


def test_null_counts_from_the_delta_log_skip_files(admin: Any) -> None:
    admin.sql("CREATE CATALOG main; CREATE SCHEMA main.s")
    admin.tables.create_table("main.s.notes", [{"name": "id", "type": "bigint"}, {"name": "note", "type": "string"}])
    for notes in (["a", "b"], ["c", None], [None, None]):  # one file each: no null, some, only nulls
        admin.data.write("main.s.notes", pa.table({"id": pa.array([1, 2], pa.int64()), "note": pa.array(notes, pa.string())}))
    p = admin.data.plan_scan("main.s.notes", stats=True)
    nulls = p.stats.column("null_count.note").to_pylist()
    assert sorted(nulls) == [0, 1, 2] and p.stats.column("num_records").to_pylist() == [2, 2, 2]
    file_with = dict(zip(nulls, p.files))  # a file by its number of null notes
    assert set(p.skip([("note", "is null", None)]).files) == {file_with[1], file_with[2]}
    assert set(p.skip([("note", "is not null", None)]).files) == {file_with[0], file_with[1]}
    assert p.skip([("id", "is null", None)]).files == ()  # no file has a null id
