"""Driver errors become Cairn errors in one place (catalog/store/db.py), with real SQLite errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from catalog.errors import Conflict, Unavailable
from catalog.store.db import driver_error, translated


def test_a_broken_constraint_is_a_conflict_and_an_unreachable_database_unavailable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    with pytest.raises(Conflict, match="create_thing conflicted with a concurrent change; retry"), translated("create_thing"), \
            engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1  # nothing half-written

    gone = create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    with pytest.raises(Unavailable, match="cannot open it: .*unable to open database file"), translated(unavailable="cannot open it"):
        gone.connect()
    assert driver_error(ValueError("not a driver error")) is None
