"""Opening a metastore brings its schema to the newest Alembic revision."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from catalog.client import Metastore
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
