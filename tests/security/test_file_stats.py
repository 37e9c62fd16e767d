"""A scan plan's per-file statistics (`plan_scan(stats=True)`, the Delta log's min and max of each
column, its null count, each file's row count) are values of the rows: bob, who reads `main.s.people` through a row filter (US only) and a
mask on `ssn`, gets none under the row filter, and never a masked column's."""

from __future__ import annotations

from catalog.client import Cairn


def test_file_statistics_never_show_filtered_rows_or_masked_values(redteam: Cairn, admin: Cairn) -> None:
    import pyarrow as pa

    from catalog import delta

    # the log holds them: its max ssn is bo's, in the EU row bob may not read
    dt = delta.open_table(admin.tables.get_table("main.s.people").storage_location or "")
    assert "987-65-4321" in pa.table(dt.get_add_actions(flatten=True)).column("max.ssn").to_pylist()
    assert redteam.data.plan_scan("main.s.people", stats=True).stats is None  # a row filter: no statistics at all
    # with the row filter gone the mask remains: every column's statistics but the masked one's
    admin.sql("ALTER TABLE main.s.people DROP ROW FILTER")
    stats = redteam.data.plan_scan("main.s.people", stats=True).stats
    assert stats is not None
    assert sorted(stats.column_names) == ["max.name", "max.region", "min.name", "min.region", "null_count.name", "null_count.region",
                                          "num_records"]  # nothing of ssn: not even where it is null
    assert "987-65-4321" not in str(stats.to_pylist())
