"""The inference table writer: requests are queued in memory and appended in batches, off the
request path, through the governed write (MODIFY on the table, as the endpoint's owner).

A batch goes out every `flush_seconds` (CAIRN_SERVING_LOG_FLUSH_SECONDS, 1 s) or as soon as
`max_batch` rows wait. `close` (the server's shutdown, SIGTERM included) writes what is left; a
failed write keeps its rows for the next attempt, so nothing is dropped while the table can be
written at all.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("cairn.serving")


class InferenceLog:
    def __init__(self, write: Any, table: str, flush_seconds: float | None = None, max_batch: int = 5000) -> None:
        """`write(table, rows)` appends rows (a governed `data.write` bound to the owner)."""
        self.write, self.table = write, table
        self.flush_seconds = flush_seconds if flush_seconds is not None else float(os.environ.get("CAIRN_SERVING_LOG_FLUSH_SECONDS", "1"))
        self.max_batch = max_batch
        self._rows: list[dict[str, Any]] = []
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
        row = dict(request_id=request_id, client_request_id=client_request_id, timestamp=ts, date=ts.date(), status_code=status,
                   execution_time_ms=ms, served_entity=entity, model_version=model_version, requester=requester,
                   request=request, response=response)
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
