"""A governed check renewed in the background, for loops that must not pay it on every call."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Lease:
    """`check()` (a governed, audited call) runs now, raising if refused, then again every `ttl / 2`
    seconds on a daemon thread. `ensure()` is what each call pays: it raises the last renewal's error,
    so a revoked grant takes effect at most `ttl` seconds later; with `ttl <= 0` it checks every time.
    `value` is the last successful check's result. `checked=True`: the caller just made the first
    check itself (as part of its own set-up)."""

    def __init__(self, check: Callable[[], Any], ttl: float, name: str, checked: bool = False) -> None:
        self._fn, self.ttl = check, ttl
        self.value: Any = None if checked else check()
        self._error: Exception | None = None
        self._valid_until = time.monotonic() + ttl
        self._stop = threading.Event()
        if ttl > 0:
            threading.Thread(target=self._renew, name=name, daemon=True).start()

    def _check(self) -> None:
        try:
            self.value = self._fn()
            self._error, self._valid_until = None, time.monotonic() + self.ttl
        except Exception as exc:  # kept, and raised by every call until a renewal succeeds
            self._error = exc

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 2):
            self._check()

    def ensure(self) -> None:
        if self.ttl <= 0 or time.monotonic() > self._valid_until:
            self._check()  # every call when ttl is 0; otherwise only when renewals fell behind
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        self._stop.set()
