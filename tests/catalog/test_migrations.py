"""Opening a metastore brings its schema to the newest Alembic revision."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from catalog.client import Cairn, Metastore
from catalog.store import db
from catalog.store.tables import metadata


def test_open_creates_and_stamps_a_new_metastore(tmp_path: Path) -> None:
    ms = Metastore.open(home=tmp_path)
    assert db.current_revision(ms.engine) == db.head_revision()
    assert set(inspect(ms.engine).get_table_names()) >= {t.name for t in metadata.sorted_tables}


def test_opening_an_older_metastore_upgrades_it_and_keeps_data(tmp_path: Path) -> None:
    from alembic import command

    ms = Metastore.open(home=tmp_path)
    ms.initialize("admin")
    ms.as_principal("admin").catalogs.create_catalog("kept")
    # Roll the schema back to 0001 (before lineage), as a release of that time left it.
    command.downgrade(db._alembic_config(ms.engine), "0001")
    assert db.current_revision(ms.engine) == "0001"
    assert "lineage_edges" not in inspect(ms.engine).get_table_names()
    ms.close()
    reopened = Metastore.open(home=tmp_path)
    assert db.current_revision(reopened.engine) == db.head_revision()
    assert "lineage_edges" in inspect(reopened.engine).get_table_names()
    assert [c.name for c in reopened.as_principal("admin").catalogs.list_catalogs()] == ["kept"]


def test_reopening_at_head_is_a_no_op(tmp_path: Path) -> None:
    ms = Metastore.open(home=tmp_path)
    ms.initialize("admin")
    ms.as_principal("admin").catalogs.create_catalog("kept")
    ms.close()
    again = Metastore.open(home=tmp_path)
    assert [c.name for c in again.as_principal("admin").catalogs.list_catalogs()] == ["kept"]


def test_0004_registers_the_paths_of_existing_external_tables(metastore: Metastore, admin: Cairn, ext_dir: Path) -> None:
    """On SQLite and PostgreSQL: a metastore from before storage paths gets its external tables'
    paths registered; of two legacy tables sharing a folder (the old attack) the older keeps it."""
    from alembic import command
    from sqlalchemy import select

    from catalog.entities import TableType
    from catalog.errors import PermissionDenied
    from catalog.privileges import Kind
    from catalog.store import tables as t
    from catalog.store.metastore import MetastoreStore

    admin.sql("CREATE CATALOG main; CREATE SCHEMA main.s")
    cols = [{"name": "a", "type": "int"}]
    first = admin.tables.create_table("main.s.first", cols, table_type="EXTERNAL", storage_location=str(ext_dir / "shared"))
    command.downgrade(db._alembic_config(metastore.engine), "0003")
    assert "storage_paths" not in inspect(metastore.engine).get_table_names()
    with metastore.engine.begin() as conn:  # what an old release let a second table do
        store = MetastoreStore(conn)
        schema = store.find_securable(Kind.SCHEMA, "main.s")
        second = store.insert_securable(Kind.TABLE, schema.id, "second", "main.s.second", "admin", "admin",  # type: ignore[union-attr]
                                        spec={"table_type": TableType.EXTERNAL.value, "storage_location": str(ext_dir / "shared") + "/"})
    db.upgrade(metastore.engine)
    assert db.current_revision(metastore.engine) == db.head_revision()
    with metastore.engine.connect() as conn:
        rows = sorted(tuple(r) for r in conn.execute(select(t.storage_paths.c.securable_id, t.storage_paths.c.kind, t.storage_paths.c.path)))
    location = admin.external_locations.get_external_location("ext_files")
    assert rows == sorted([(location.id, "EXTERNAL_LOCATION", str(ext_dir)), (first.id, "TABLE", str(ext_dir / "shared"))])
    assert second.id not in [r[0] for r in rows]
    with pytest.raises(PermissionDenied, match="overlaps"):
        admin.tables.create_table("main.s.third", cols, table_type="EXTERNAL", storage_location=str(ext_dir / "shared"))
