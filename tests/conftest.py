"""Fixtures: every metastore test runs on SQLite and on a real PostgreSQL (see tests/pg.sh)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from catalog.client import Cairn, Metastore
from catalog.store import db
from catalog.store.tables import metadata

PG_URL = os.environ.get("CAIRN_TEST_PG_URL")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite metastore; each test copies it instead of migrating again."""
    home = tmp_path_factory.mktemp("template")
    Metastore.open(home=home).close()
    return home / "metastore.db"


@pytest.fixture(scope="session")
def pg_url(worker_id: str) -> Iterator[str]:
    """A database of this test worker's own on the shared PostgreSQL, migrated once."""
    if not PG_URL:
        pytest.skip("CAIRN_TEST_PG_URL is not set; `make test` starts PostgreSQL and sets it")
    # CAIRN_TEST_DB_PREFIX keeps two checkouts testing against one server out of each other's databases.
    name = f"{os.environ.get('CAIRN_TEST_DB_PREFIX', 'cairn_test')}_{worker_id}".replace("-", "_")
    admin = db.make_engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    db.upgrade(db.make_engine(url))
    yield url


def _truncate_pg(url: str) -> None:
    engine = db.make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def metastore(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Metastore]:
    """An initialized metastore with admin `admin`, empty otherwise."""
    if backend == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), tmp_path / "metastore.db")
        ms = Metastore.open(home=tmp_path)
    else:
        url = request.getfixturevalue("pg_url")
        _truncate_pg(url)
        ms = Metastore.open(home=tmp_path, url=url)
    ms.initialize("admin")
    yield ms
    ms.close()


@pytest.fixture
def admin(metastore: Metastore) -> Cairn:
    return metastore.as_principal("admin")


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


@contextmanager
def live_server(app: object) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not srv.started and time.time() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(5)


@pytest.fixture
def live() -> object:
    """`live(app)`: a context manager serving an ASGI app on 127.0.0.1 (see live_server)."""
    return live_server
