"""A scan plan's per-file statistics (`plan_scan(stats=True)`, the Delta log's min and max of each
column, its null count, each file's row count) are values of the rows: bob, who reads
`main.s.people` through a row filter (US only) and a mask on `ssn`, gets none under the row filter,
and never a masked column's."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import delta
from catalog.client import Cairn, Metastore
from catalog.errors import FailedPrecondition


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


def test_a_column_mapped_table_shows_no_statistics_under_physical_names(admin: Cairn, metastore: Metastore, ext_dir: Path) -> None:
    """A Delta table with column mapping (as Spark and Databricks write them) keeps its statistics
    under physical names (`max.col-<uuid>`), which no mask names: they are not handed out."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    where = str(ext_dir / "people")
    rows = pa.table({"name": ["ann", "bo"], "ssn": ["111-11-1111", "987-65-4321"]})
    DeltaTable.create(where, rows.schema, configuration={"delta.columnMapping.mode": "name", "delta.minReaderVersion": "2",
                                                         "delta.minWriterVersion": "5"})
    write_deltalake(where, rows, mode="append")
    assert any("987-65-4321" in str(v) for v in pa.table(DeltaTable(where).get_add_actions(flatten=True)).to_pylist()[0].values())
    admin.sql("CREATE CATALOG main; CREATE SCHEMA main.s;"
              "CREATE FUNCTION main.s.hide_ssn(ssn STRING) RETURNS STRING RETURN '***-**-****'")
    admin.tables.create_table("main.s.people", table_type="EXTERNAL", storage_location=where)
    admin.sql("ALTER TABLE main.s.people ALTER COLUMN ssn SET MASK main.s.hide_ssn")
    admin.principals.create_user("bob")
    admin.sql("GRANT USE CATALOG ON CATALOG main TO bob; GRANT USE SCHEMA ON SCHEMA main.s TO bob; GRANT SELECT ON TABLE main.s.people TO bob")
    bob = metastore.as_principal("bob")
    # no reader here maps physical names (each would read every column as NULL): refused, on every read path
    for read in (lambda: bob.data.plan_scan("main.s.people", stats=True), lambda: bob.data.read("main.s.people"),
                 lambda: admin.data.plan_scan("main.s.people")):
        with pytest.raises(FailedPrecondition, match="column mapping"):
            read()
    # and statistics under a name that is no column of the table are never handed out, were such a plan made
    from catalog.entities import Column
    from catalog.policies import Policy
    from catalog.service.data import _visible_stats

    stats = delta.file_stats(DeltaTable(where), tuple(DeltaTable(where).file_uris()))
    assert any(c.startswith("max.col-") for c in stats.column_names)
    shown = _visible_stats(stats, Policy(None, {"ssn": "'***'"}), (Column("name", "string"), Column("ssn", "string")))
    assert shown.column_names == ["num_records"] and "987-65-4321" not in str(shown.to_pylist())
