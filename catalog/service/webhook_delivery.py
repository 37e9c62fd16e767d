"""The webhook sender: takes due rows from the outbox and POSTs them, signed as MLflow signs.

Each row is leased before it is sent (`lease` seconds), and marked DELIVERED or rescheduled with
exponential backoff after. A sender killed mid-way (even with SIGKILL) loses nothing: its leases
run out and any sender takes the rows again; a row may then arrive twice, under the same delivery id
(`X-MLflow-Delivery-Id`), which receivers dedupe on. A webhook that cannot be reached rests: it is
probed with one row at a time, at most `probe_max` apart, instead of failing its whole backlog on
every pass, and when it answers again everything waiting for it is due at once. The loop keeps up
to `batch` requests in flight on `workers` threads with keep-alive connections, so a slow receiver
holds a worker, not the others' deliveries. Several senders (processes or servers) can share an outbox.

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
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from catalog.store.registry import DeliveryRow, RegistryStore, WebhookRow, checked_address, decrypt

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
        """Send every row due now (one claimed batch) and wait for them. Returns how many were attempted."""
        claimed = self._claim(self.config.batch, set())
        if claimed:
            self._finish(list(zip(claimed, self.pool.map(lambda pair: self._send(*pair), claimed))))
        return len(claimed)

    def _claim(self, limit: int, probing: set[str]) -> list[tuple[DeliveryRow, WebhookRow]]:
        """Lease up to `limit` due rows, and one row of each resting webhook whose rest is over
        (none of one in `probing`: its probe is still out)."""
        now = time.time()
        resting = {h: (float("inf") if h in probing else until) for h, (until, _) in self._resting.items()}
        # Look first without the write lock: an idle sender must not take SQLite's lock 20 times a second.
        with self.runtime.engine.connect().execution_options(cairn_write=False) as conn, conn.begin():
            if not RegistryStore(conn).any_due(now, [h for h, until in resting.items() if until <= now]):
                return []
        with self.runtime.engine.connect() as conn, conn.begin():
            return RegistryStore(conn).claim_due(now, self.config.lease, limit, resting)

    def _finish(self, done: list[tuple[tuple[DeliveryRow, WebhookRow], tuple[bool, int | None, str | None, float]]]) -> None:
        """Record attempts in one transaction: delivered, or rescheduled with backoff (FAILED once too
        old). A webhook that answers leaves its rest, and its backed-off rows are due at once; one
        that cannot be reached rests (probed with one row at most `probe_max` apart)."""
        woke: set[str] = set()
        outcomes = []
        for (row, hook), (ok, status, error, ms) in done:
            if ok:
                outcomes.append({"rid": row.id, "status": "DELIVERED", "code": status, "ms": ms})
                woke.add(hook.id)
                continue
            delay = min(self.config.base_backoff * 2 ** min(row.attempts, 30), self.config.max_backoff)
            give_up = time.time() - row.created_at > self.config.give_up_after
            outcomes.append({"rid": row.id, "status": "FAILED" if give_up else "PENDING", "code": status, "error": error, "ms": ms,
                             "next_at": time.time() + delay})
        unreachable = {hook.id for (_, hook), (ok, status, _e, _m) in done if not ok and status is None} - woke
        for hook_id in woke:
            self._resting.pop(hook_id, None)
        for hook_id in unreachable:
            times = self._resting.get(hook_id, (0.0, 0))[1] + 1
            pause = min(self.config.base_backoff * 2 ** min(times - 1, 30), self.config.probe_max, self.config.max_backoff)
            self._resting[hook_id] = (time.time() + pause, times)
        with self.runtime.engine.connect() as conn, conn.begin():
            store = RegistryStore(conn)
            store.finish(outcomes)
            if woke:  # the receiver answers again: what waits out a backoff for it goes now
                store.release(woke, time.time())

    def _pump(self) -> None:
        """The sender's loop: keeps up to `batch` requests in flight on the worker pool, claims more
        as they finish, and records finished ones every few milliseconds; a slow receiver holds a
        worker, never the others' deliveries."""
        inflight: dict[Future[Any], tuple[DeliveryRow, WebhookRow]] = {}
        done: list[Any] = []
        while True:
            try:
                if done:
                    self._finish(done)
                    done = []
                if self._stop.is_set():
                    if not inflight:
                        return
                else:
                    room = self.config.batch - len(inflight)
                    if room >= min(self.config.workers, self.config.batch) or not inflight:
                        probing = {hook.id for _, hook in inflight.values() if hook.id in self._resting}
                        for pair in self._claim(room, probing):
                            inflight[self.pool.submit(self._send, *pair)] = pair
            except Exception:  # the metastore is busy or down: try again shortly (leases keep rows safe)
                log.exception("webhook delivery pass failed")
                self._stop.wait(self.config.idle_poll)
            if not inflight:
                self._stop.wait(self.config.idle_poll)
                continue
            finished, _ = wait(list(inflight), timeout=self.config.idle_poll, return_when=FIRST_COMPLETED)
            if finished and len(finished) < len(inflight):  # gather a few more, to write them in one transaction
                finished = wait(list(inflight), timeout=0.005, return_when=ALL_COMPLETED)[0]
            for f in finished:
                done.append((inflight.pop(f), f.result()))

    def _send(self, row: DeliveryRow, hook: WebhookRow) -> tuple[bool, int | None, str | None, float]:
        started = time.perf_counter()
        try:
            address = checked_address(hook.url)  # resolved again at send time: the name may point elsewhere now
            timestamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": row.delivery_id, "X-MLflow-Timestamp": timestamp,
                       "User-Agent": "cairn-webhooks/1"}
            if hook.secret:
                headers["X-MLflow-Signature"] = sign(self._secret(hook), row.delivery_id, timestamp, row.body)
            code = self._post(hook.url, row.body.encode(), headers, address)
            ms = (time.perf_counter() - started) * 1000
            ok = 200 <= code < 300
            return ok, code, None if ok else f"HTTP {code}", ms
        except Exception as exc:  # connection refused, timeout, a URL no longer allowed: retried
            return False, None, f"{type(exc).__name__}: {str(exc)[:200]}", (time.perf_counter() - started) * 1000

    def _post(self, url: str, body: bytes, headers: dict[str, str], address: str | None = None) -> int:
        """POST over this thread's keep-alive connection to the URL's host (http.client: a tenth of
        the CPU of a full-featured client, which matters when a backlog drains). No redirects, no proxies.
        With `address`, the connection goes to that checked address only (TLS still verifies the host name)."""
        import http.client
        import socket
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port, address)
        conns: dict[Any, Any] = self._local.__dict__.setdefault("conns", {})
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for attempt in (0, 1):  # a kept-alive connection the server closed meanwhile: reconnect once
            conn = conns.get(key)
            if conn is None:
                cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                conn = conns[key] = cls(parts.hostname or "", parts.port, timeout=self.config.timeout)
                if address is not None:
                    conn._create_connection = lambda addr, timeout, source, ip=address: socket.create_connection(  # type: ignore[attr-defined]
                        (ip, addr[1]), timeout, source)
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
        """Deliver until `stop()`; what is in flight then is sent and recorded before returning."""
        self._pump()

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
