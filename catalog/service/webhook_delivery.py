"""The webhook sender: takes due rows from the outbox and POSTs them, signed as MLflow signs.

Each row is leased before it is sent (`lease` seconds), and marked DELIVERED or rescheduled with
exponential backoff after. A sender killed mid-way (even with SIGKILL) loses nothing: its leases
run out and any sender takes the rows again; a row may then arrive twice, under the same delivery id
(`X-MLflow-Delivery-Id`), which receivers dedupe on. A webhook that cannot be reached rests: it is
probed with one row at a time on an exponential backoff instead of failing its whole backlog on
every pass, and when it answers again everything waiting for it is sent at once. Several senders (processes or servers) can share an outbox.

Headers: `X-MLflow-Delivery-Id`, `X-MLflow-Timestamp` (unix seconds), and, with a secret,
`X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "{delivery_id}.{timestamp}.{body}">`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from catalog.store import tables as t
from catalog.store.registry import DeliveryRow, RegistryStore, WebhookRow, check_url, decrypt

log = logging.getLogger(__name__)


def sign(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """MLflow's webhook signature.

    >>> sign("s" * 16, "d", "1", "{}")
    'v1,XyKaTkja8Nn89FFZMn7ggWjnjaQ2k2jOB/u2dc8RUQo='
    """
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass
class SenderConfig:
    workers: int = 16  # concurrent requests
    batch: int = 200  # rows claimed at a time
    lease: float = 30.0  # seconds a claimed row is this sender's
    timeout: float = 5.0  # per request
    base_backoff: float = 0.25
    max_backoff: float = 30.0
    # A webhook that cannot be reached is probed with one row at most this far apart (from base_backoff
    # up): a probe is one request, and it bounds how long a receiver that is back waits for its backlog.
    probe_max: float = 0.25
    give_up_after: float = 3 * 86400.0  # seconds after the event: the row is FAILED
    idle_poll: float = 0.05


class WebhookSender:
    """Deliver the outbox of one metastore (a Runtime). `run_once` sends what is due; `start` runs
    a background thread; `run_forever` blocks (the `cairn model webhooks send` command)."""

    def __init__(self, runtime: Any, config: SenderConfig | None = None) -> None:
        self.runtime = runtime
        self.config = config or SenderConfig()
        self._local = threading.local()  # each worker thread keeps its own keep-alive connections
        # Webhooks that could not be reached lately: hook id -> (rest until, times in a row). A resting
        # webhook is probed with one row at a time instead of failing its whole backlog on every pass.
        self._resting: dict[str, tuple[float, int]] = {}
        self.pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="cairn-webhook")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._secrets: dict[str, str] = {}

    def run_once(self) -> int:
        """Send every row due now (one claimed batch). Returns how many were attempted."""
        now = time.time()
        # Look first without the write lock: an idle sender must not take SQLite's lock 20 times a second.
        with self.runtime.engine.connect().execution_options(cairn_write=False) as conn, conn.begin():
            if not RegistryStore(conn).any_due(now, [h for h, (until, _) in self._resting.items() if until <= now]):
                return 0
        with self.runtime.engine.connect() as conn, conn.begin():
            claimed = RegistryStore(conn).claim_due(now, self.config.lease, self.config.batch,
                                                    {h: until for h, (until, _) in self._resting.items()})
        if not claimed:
            return 0
        results = list(self.pool.map(lambda pair: self._send(*pair), claimed))
        woke: set[str] = set()
        outcomes = []
        for (row, hook), (ok, status, error, ms) in zip(claimed, results):
            if ok:
                outcomes.append({"rid": row.id, "status": "DELIVERED", "code": status, "ms": ms})
                woke.add(hook.id)
                continue
            delay = min(self.config.base_backoff * 2 ** min(row.attempts, 30), self.config.max_backoff)
            give_up = time.time() - row.created_at > self.config.give_up_after
            outcomes.append({"rid": row.id, "status": "FAILED" if give_up else "PENDING", "code": status, "error": error, "ms": ms,
                             "next_at": time.time() + delay})
        unreachable = {hook.id for (_, hook), (ok, status, _e, _m) in zip(claimed, results) if not ok and status is None} - woke
        for hook_id in woke:
            self._resting.pop(hook_id, None)
        for hook_id in unreachable:
            times = self._resting.get(hook_id, (0.0, 0))[1] + 1
            pause = min(self.config.base_backoff * 2 ** min(times - 1, 30), self.config.probe_max, self.config.max_backoff)
            self._resting[hook_id] = (time.time() + pause, times)
        with self.runtime.engine.connect() as conn, conn.begin():
            RegistryStore(conn).finish(outcomes)
            if woke:  # the receiver answers again: what waits out a backoff for it goes now
                d = t.webhook_deliveries
                conn.execute(update(d).where(d.c.webhook_id.in_(woke), d.c.status == "PENDING", d.c.claimed_until.is_(None),
                                             d.c.next_attempt_at > time.time()).values(next_attempt_at=time.time()))
        return len(claimed)

    def _send(self, row: DeliveryRow, hook: WebhookRow) -> tuple[bool, int | None, str | None, float]:
        started = time.perf_counter()
        try:
            check_url(hook.url)  # resolved again at send time: the name may point elsewhere now
            timestamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": row.delivery_id, "X-MLflow-Timestamp": timestamp,
                       "User-Agent": "cairn-webhooks/1"}
            if hook.secret:
                headers["X-MLflow-Signature"] = sign(self._secret(hook), row.delivery_id, timestamp, row.body)
            code = self._post(hook.url, row.body.encode(), headers)
            ms = (time.perf_counter() - started) * 1000
            ok = 200 <= code < 300
            return ok, code, None if ok else f"HTTP {code}", ms
        except Exception as exc:  # connection refused, timeout, a URL no longer allowed: retried
            return False, None, f"{type(exc).__name__}: {str(exc)[:200]}", (time.perf_counter() - started) * 1000

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST over this thread's keep-alive connection to the URL's host (http.client: a tenth of
        the CPU of a full-featured client, which matters when a backlog drains). No redirects, no proxies."""
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port)
        conns: dict[Any, Any] = self._local.__dict__.setdefault("conns", {})
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for attempt in (0, 1):  # a kept-alive connection the server closed meanwhile: reconnect once
            conn = conns.get(key)
            if conn is None:
                cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                conn = conns[key] = cls(parts.hostname or "", parts.port, timeout=self.config.timeout)
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.will_close:
                    conn.close()
                    conns.pop(key, None)
                return resp.status
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest):
                conn.close()
                conns.pop(key, None)
                if attempt:
                    raise
            except Exception:
                conn.close()
                conns.pop(key, None)
                raise
        raise AssertionError("unreachable")

    def _secret(self, hook: WebhookRow) -> str:
        if hook.secret not in self._secrets:
            self._secrets[hook.secret] = decrypt(self.runtime.settings.home, hook.secret)  # type: ignore[index,arg-type]
        return self._secrets[hook.secret]  # type: ignore[index]

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
            except Exception:  # the metastore is busy or down: try again shortly
                log.exception("webhook delivery pass failed")
                sent = 0
            if not sent:
                self._stop.wait(self.config.idle_poll)

    def start(self) -> WebhookSender:
        self._thread = threading.Thread(target=self.run_forever, name="cairn-webhook-sender", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.pool.shutdown(wait=True)


def start_sender(runtime: Any) -> WebhookSender | None:
    """The sender `cairn serve` runs beside its workers (`CAIRN_WEBHOOK_SENDER=0` turns it off, e.g. on
    all but one of several servers; any number may run, though)."""
    import os

    if os.environ.get("CAIRN_WEBHOOK_SENDER", "1") == "0":
        return None
    return WebhookSender(runtime).start()
