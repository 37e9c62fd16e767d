"""Engine creation and schema migrations for the metastore (SQLite or PostgreSQL)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import IntegrityError, OperationalError

from catalog.errors import CairnError, Conflict, Unavailable

BUSY_TIMEOUT_MS = 30000
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def driver_error(exc: BaseException, action: str | None = None, unavailable: str = "the metastore is unavailable") -> CairnError | None:
    """The Cairn error a database driver's error stands for, or None for any other exception: a
    constraint broken by a concurrent change (IntegrityError) is Conflict, a database that cannot be
    reached or is locked (OperationalError) is Unavailable, `unavailable` saying what could not be done.
    The one place driver errors are translated (stores translate the constraints they know first)."""
    if isinstance(exc, IntegrityError):
        return Conflict(f"{action or 'the change'} conflicted with a concurrent change; retry")
    if isinstance(exc, OperationalError):
        return Unavailable(f"{unavailable}: {exc.orig}")
    return None


@contextmanager
def translated(action: str | None = None, unavailable: str = "the metastore is unavailable") -> Iterator[None]:
    """Raise driver errors inside the block as the Cairn errors they stand for (see `driver_error`)."""
    try:
        yield
    except (IntegrityError, OperationalError) as exc:
        raise driver_error(exc, action, unavailable) from exc  # type: ignore[misc]


def make_engine(url: str) -> Engine:
    """An engine for `url` with the settings Cairn relies on (foreign keys, WAL, busy timeout)."""
    if url.startswith("sqlite"):
        # SQLite connections are cheap; a generous pool keeps a server's worker threads from waiting.
        engine = create_engine(url, pool_size=32, max_overflow=96, pool_timeout=60)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # Let SQLAlchemy, not pysqlite, decide when transactions begin (see the "begin" listener).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.close()


def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
    # A unit of work that will write takes the write lock at BEGIN, so two writers queue on the
    # busy timeout instead of one failing half-way; readers stay concurrent under WAL.
    if not conn.get_execution_options().get("cairn_write", True):
        try:  # straight to the driver: a statement through SQLAlchemy costs more than the BEGIN itself
            conn.connection.dbapi_connection.execute("BEGIN")
        except sqlite3.Error as exc:
            raise OperationalError("BEGIN", (), exc) from exc
        return
    if _begin_quickly(conn.connection.dbapi_connection):
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE")  # still busy: wait on the busy timeout (errors as usual)


def _begin_quickly(raw) -> bool:  # type: ignore[no-untyped-def]
    """Take the write lock, retrying every 50 us to 1 ms for up to 50 ms. SQLite's own busy handler
    sleeps 1, 2, 5, 10... ms between tries, far longer than the few hundred microseconds a metastore
    transaction holds the lock, so writers in several processes (server workers) would mostly sleep."""
    raw.execute("PRAGMA busy_timeout=0")
    try:
        delay, waited = 0.00005, 0.0
        while waited < 0.05:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return True
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    return False
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.001)
        return False
    finally:
        raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _alembic_config(engine: Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()  # type: ignore[return-value]


def upgrade(engine: Engine) -> None:
    """Bring the metastore schema to the newest revision; a no-op when it is already there."""
    from alembic import command

    with translated(unavailable=f"cannot open the metastore at {engine.url!r}"):  # the database is unreachable or refuses us
        if current_revision(engine) == head_revision():
            return
        command.upgrade(_alembic_config(engine), "head")


def is_initialized(engine: Engine) -> bool:
    return inspect(engine).has_table("settings")
