"""The inference table writer: requests are queued in memory and appended in batches, off the
request path, through the governed write (MODIFY on the table, as the endpoint's owner).

A batch goes out every `flush_seconds` (CAIRN_SERVING_LOG_FLUSH_SECONDS, 1 s) or as soon as
`max_batch` rows wait. `close` (the server's shutdown, SIGTERM included) writes what is left; a
failed write keeps its rows for the next attempt, so nothing is dropped while the table can be
written at all.

The write itself runs in a process of its own (`ProcessWriter`): turning a second's rows into
Arrow and committing them (about 15 ms of CPU a second at 3,000 requests a second) would otherwise
hold the serving process's GIL in slices the event loop waits behind, which is what the slowest
percent of requests felt. Here the serving process only pickles the rows, once a batch.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("cairn.serving")
# One row: the inference table's columns, in this order (catalog/service/serving.py INFERENCE_COLUMNS).
COLUMNS = ("request_id", "client_request_id", "timestamp", "date", "status_code", "execution_time_ms", "served_entity", "model_version",
           "requester", "request", "response")


class InferenceLog:
    def __init__(self, write: Any, table: str, flush_seconds: float | None = None, max_batch: int = 5000) -> None:
        """`write(table, rows)` appends rows (tuples in COLUMNS order) through the governed write."""
        self.write, self.table = write, table
        self.flush_seconds = flush_seconds if flush_seconds is not None else float(os.environ.get("CAIRN_SERVING_LOG_FLUSH_SECONDS", "1"))
        self.max_batch = max_batch
        self._rows: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.written = 0
        self._thread = threading.Thread(target=self._run, name=f"cairn-inference-log-{table}", daemon=True)
        self._thread.start()

    def append(self, request_id: str, client_request_id: str | None, status: int, ms: float, entity: str | None,
               model_version: str | None, requester: str, request: str, response: str) -> None:
        ts = datetime.now(UTC)
        row = (request_id, client_request_id, ts, ts.date(), status, ms, entity, model_version, requester, request, response)
        with self._lock:
            self._rows.append(row)
            n = len(self._rows)
        if n >= self.max_batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write every queued row now; returns how many were written (0 when the write failed)."""
        with self._flushing:
            with self._lock:
                batch, self._rows = self._rows, []
            if not batch:
                return 0
            try:
                self.write(self.table, batch)
            except Exception as exc:  # kept for the next attempt
                log.warning("inference rows for %s not written yet (%s); will retry", self.table, exc)
                with self._lock:
                    self._rows[:0] = batch
                return 0
            self.written += len(batch)
            return len(batch)

    def close(self, attempts: int = 3) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(30)
        for _ in range(attempts):
            self.flush()
            if not self.pending:
                return
        log.error("%d inference rows for %s could not be written at shutdown", self.pending, self.table)


def rows_table(rows: list[tuple[Any, ...]]) -> Any:
    """Queued rows as an Arrow table (one array per column: far cheaper than row dicts)."""
    import pyarrow as pa

    return pa.table({name: pa.array(values) for name, values in zip(COLUMNS, zip(*rows))})


class ProcessWriter:
    """Governed inference-table writes made by one child process (spawned on first use, made again
    if it dies): `write(principal, table, rows)` returns once the rows are committed, as that
    principal, or raises. The child ignores SIGINT and SIGTERM: a Ctrl-C or a SIGTERM sent to the
    whole process group stops the server, whose shutdown then writes the last rows through it."""

    def __init__(self, home: str, url: str, timeout: float = 300.0) -> None:
        self.home, self.url, self.timeout = home, url, timeout
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                                    initializer=_child_init, initargs=(self.home, self.url))
            return self._pool

    def write(self, principal: str, table: str, rows: list[tuple[Any, ...]]) -> None:
        pool = self._executor()
        try:
            pool.submit(_child_write, principal, table, rows).result(self.timeout)
        except BrokenProcessPool:  # the child died: the next write starts another
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


_child: Any = None


def _child_init(home: str, url: str) -> None:
    global _child
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from catalog.client import Metastore

    _child = Metastore.open(home, url)


def _child_write(principal: str, table: str, rows: list[tuple[Any, ...]]) -> int:
    from catalog.entities import Source

    _child.as_principal(principal, Source.REST).data.write(table, rows_table(rows))
    return len(rows)
