"""Dynamic batching: requests to one model that reach the event loop in the same turn are
predicted in one call.

xgboost's predict costs about 50 us a call before its first row (it builds its view of the model
from every tree, each time) and about 1 us a row after. Under load several requests become ready
in the same turn of the event loop; answering them in one call shares that fixed cost. No request
waits for others to arrive: the batch runs at the end of the current turn with whatever is there
(a single request when the server is idle). Only models whose rows are predicted independently
are batched (the xgboost fast path): a request's answer never depends on another's rows. A batch
that fails is predicted again request by request, so an error is only ever the failing request's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

Predict = Callable[[list[dict[str, Any]] | None, list[list[Any]] | None], list[Any]]


class Batcher:
    def __init__(self, predict: Predict) -> None:
        self._predict = predict
        self._waiting: list[tuple[list[dict[str, Any]] | None, list[list[Any]] | None, asyncio.Future[list[Any]]]] = []
        self.calls = 0  # predict calls made, and requests answered: their ratio is the mean batch size
        self.requests = 0

    async def __call__(self, records: list[dict[str, Any]] | None, rows: list[list[Any]] | None) -> list[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._run)
        self._waiting.append((records, rows, future))
        return await future

    def _run(self) -> None:
        batch, self._waiting = self._waiting, []
        self.requests += len(batch)
        alone = [item for item in batch if item[0] is None]  # positional rows: each in its own call
        together = [item for item in batch if item[0] is not None]
        if len(together) > 1:
            sizes = [len(records) for records, _rows, _f in together]  # type: ignore[arg-type]
            try:
                self.calls += 1
                out = self._predict([r for records, _rows, _f in together for r in records], None)  # type: ignore[union-attr]
            except Exception:  # each request is predicted alone below, and gets its own error
                out = None
            if out is not None and len(out) == sum(sizes):
                at = 0
                for (_records, _rows, future), n in zip(together, sizes):
                    if not future.done():
                        future.set_result(out[at:at + n])
                    at += n
                together = []
        for records, rows, future in together + alone:
            if future.done():
                continue
            self.calls += 1
            try:
                future.set_result(self._predict(records, rows))
            except Exception as exc:
                future.set_exception(exc)
