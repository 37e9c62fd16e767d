"""The DuckDB side of the SQL shim's boundary: databases that reach only authorized files, and a
statement timeout.

A statement runs on one of two kinds of database, neither of which can open a file it was not
handed (external access off, configuration locked, no extension loading):
- the process's shared database, which can open no file at all: the snapshots are handed in as
  Arrow datasets, opened by Arrow. Used the first time a set of snapshot files is read;
- a database made for one set of snapshot files, whose `allowed_paths` are exactly those files,
  read by DuckDB's own Parquet reader (several times faster on small scans). Made the second time
  the same set is read (a repeated query on unchanged tables; opening one costs ~30 ms) and kept
  in a small LRU. A write to any table changes its files and so the set.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from catalog.scan import DUCKDB_CONFIG, duckdb_cursor

log = logging.getLogger("cairn.sql")
POOL_SIZE = 8


class FilePool:
    """DuckDB databases by the exact set of files each may read, least recently used first out."""

    def __init__(self, size: int = POOL_SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._dbs: OrderedDict[frozenset[str], Any] = OrderedDict()
        self._seen: OrderedDict[frozenset[str], None] = OrderedDict()
        self._local = threading.local()

    def cursor(self, files: frozenset[str]) -> tuple[Any, bool]:
        """A cursor for a statement reading `files`, and whether it reads them natively (True) or
        must be handed Arrow datasets (False)."""
        if not files:
            return self._shared(), False
        with self._lock:
            db = self._dbs.get(files)
            if db is not None:
                self._dbs.move_to_end(files)
            elif files in self._seen:
                del self._seen[files]
            else:
                self._seen[files] = None
                if len(self._seen) > 4 * self.size:
                    self._seen.popitem(last=False)
                return self._shared(), False
        if db is None:
            db = _open(files)
            with self._lock:
                self._dbs[files] = db
                while len(self._dbs) > self.size:
                    self._dbs.popitem(last=False)  # dropped; freed once no thread's cursor holds it
        cursors: dict[int, tuple[Any, Any]] = getattr(self._local, "cursors", None) or {}
        self._local.cursors = cursors
        held = cursors.get(id(db))
        if held is None or held[0] is not db:
            if len(cursors) >= self.size:
                cursors.clear()
            held = cursors[id(db)] = (db, db.cursor())
        return held[1], True

    def _shared(self) -> Any:
        # One cursor per thread on the shared database, reused: a fresh one's first query pays for
        # warming its caches (about 0.5 ms). Nothing outlives a query on it but those caches.
        con = getattr(self._local, "shared", None)
        if con is None:
            con = self._local.shared = duckdb_cursor()
        return con


def database(files: frozenset[str]) -> Any:
    """A fresh database that may read exactly `files`, for one large read (a training set build)."""
    return _open(files)


def _open(files: frozenset[str]) -> Any:
    import duckdb

    db = duckdb.connect()
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in sorted(files))
    db.execute(f"SET allowed_paths = [{listed}]")
    for key, value in DUCKDB_CONFIG.items():  # external access off last-but-one, then the lock
        if key != "lock_configuration":
            db.execute(f"SET {key} = {str(value).lower()}")
    db.execute("SET lock_configuration = true")
    return db


class Watchdog:
    """One thread that interrupts DuckDB statements running past their deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Any]] = []
        self._live: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def guard(self, con: Any, seconds: float) -> _Guard:
        return _Guard(self, con, seconds)

    def arm(self, con: Any, seconds: float) -> int:
        token = next(self._ids)
        with self._cond:
            self._live.add(token)
            heapq.heappush(self._heap, (time.monotonic() + seconds, token, con))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cairn-sql-timeout", daemon=True)
                self._thread.start()
            if self._heap[0][1] == token:
                self._cond.notify()
        return token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._live.discard(token)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, token, con = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(token)
                try:
                    con.interrupt()
                except Exception:  # the statement finished between the check and the interrupt
                    log.debug("interrupt of a finished statement", exc_info=True)


class _Guard:
    __slots__ = ("con", "dog", "seconds", "token")

    def __init__(self, dog: Watchdog, con: Any, seconds: float) -> None:
        self.dog, self.con, self.seconds, self.token = dog, con, seconds, -1

    def __enter__(self) -> None:
        self.token = self.dog.arm(self.con, self.seconds)

    def __exit__(self, *exc: object) -> None:
        self.dog.disarm(self.token)


pool = FilePool()
watchdog = Watchdog()
