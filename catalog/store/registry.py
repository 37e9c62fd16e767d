"""Rows of the registry's own tables: promotion gates, webhooks, and the webhook outbox.

`enqueue` writes one outbox row per matching active webhook in the caller's transaction, so an
event exists exactly when the change it announces committed. The delivery worker claims due rows
with a lease (`claim_due`); a sender that dies mid-way leaves its rows to be claimed again when
the lease ends, so nothing is lost (a receiver dedupes on the delivery id).
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, true, update

from catalog.errors import InvalidArgument
from catalog.store import tables as t

EVENTS = ("registered_model.created", "model_version.created", "model_version_tag.set", "model_version_tag.deleted",
          "model_version_alias.created", "model_version_alias.deleted", "promotion.refused")


@dataclass(frozen=True)
class WebhookRow:
    id: str
    name: str
    securable_id: int | None
    events: tuple[str, ...]
    url: str
    secret: str | None  # encrypted
    status: str
    description: str | None
    owner: str
    created_at: datetime


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    delivery_id: str
    webhook_id: str
    event: str
    body: str
    created_at: float
    status: str
    attempts: int
    next_attempt_at: float
    delivered_at: float | None
    last_status: int | None
    last_error: str | None
    latency_ms: float | None


def _webhook(r: Any) -> WebhookRow:
    created = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC)
    return WebhookRow(r.id, r.name, r.securable_id, tuple(r.events or ()), r.url, r.secret, r.status, r.description, r.owner, created)


def _delivery(r: Any) -> DeliveryRow:
    return DeliveryRow(r.id, r.delivery_id, r.webhook_id, r.event, r.body, r.created_at, r.status, r.attempts, r.next_attempt_at,
                       r.delivered_at, r.last_status, r.last_error, r.latency_ms)


def payload(event: str, data: dict[str, Any]) -> str:
    """The body MLflow sends for an event: entity, action, timestamp, data."""
    entity, _, action = event.rpartition(".")
    return json.dumps({"entity": entity, "action": action, "timestamp": datetime.now(UTC).isoformat(), "data": data})


class RegistryStore:
    """Queries over one connection inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._hooks: dict[int | None, list[Any]] = {}  # active webhooks per model, read once per transaction

    # gates ---------------------------------------------------------------------------------
    def get_gates(self, securable_id: int) -> list[dict[str, Any]]:
        row = self.conn.execute(select(t.model_gates.c.gates).where(t.model_gates.c.securable_id == securable_id)).first()
        return list(row[0]) if row is not None else []

    def set_gates(self, securable_id: int, gates: list[dict[str, Any]], actor: str) -> None:
        g = t.model_gates
        self.conn.execute(delete(g).where(g.c.securable_id == securable_id))
        self.conn.execute(insert(g).values(securable_id=securable_id, gates=gates, updated_at=datetime.now(UTC), updated_by=actor))

    def version_tags(self, securable_id: int, keys: Sequence[str] | None = None) -> dict[str, str]:
        """A securable's own tags (only `keys`, when given: a version's gate records grow with every
        promotion, and a promotion reads just the tags its gates name)."""
        tg = t.tags
        q = select(tg.c.key, tg.c.value).where(tg.c.securable_id == securable_id, tg.c.column_name == "")
        if keys is not None:
            q = q.where(tg.c.key.in_(list(keys)))
        return {r.key: r.value for r in self.conn.execute(q)}

    def put_tags(self, securable_id: int, tags: dict[str, str], clear_prefix: str) -> None:
        """Replace a securable's tags starting with `clear_prefix` by `tags`, in two statements."""
        tg = t.tags
        esc = clear_prefix.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        self.conn.execute(delete(tg).where(tg.c.securable_id == securable_id, tg.c.column_name == "",
                                           or_(tg.c.key.like(esc + "%", escape="\\"), tg.c.key.in_(list(tags)))))
        if tags:
            self.conn.execute(insert(tg), [dict(securable_id=securable_id, column_name="", key=k, value=v) for k, v in tags.items()])

    # webhooks ------------------------------------------------------------------------------
    def insert_webhook(self, name: str, securable_id: int | None, events: Sequence[str], url: str, secret: str | None,
                       description: str | None, owner: str) -> WebhookRow:
        wid = uuid.uuid4().hex
        self.conn.execute(insert(t.webhooks).values(
            id=wid, name=name, securable_id=securable_id, events=list(events), url=url, secret=secret, status="ACTIVE",
            description=description, owner=owner, created_at=datetime.now(UTC)))
        return self.get_webhook(wid)  # type: ignore[return-value]

    def get_webhook(self, webhook_id: str) -> WebhookRow | None:
        row = self.conn.execute(select(t.webhooks).where(t.webhooks.c.id == webhook_id)).first()
        return _webhook(row) if row is not None else None

    def list_webhooks(self, securable_id: int | None = None, every: bool = False) -> list[WebhookRow]:
        w = t.webhooks
        q = select(w).order_by(w.c.created_at, w.c.id)
        if not every:
            q = q.where(w.c.securable_id.is_(None) if securable_id is None else w.c.securable_id == securable_id)
        return [_webhook(r) for r in self.conn.execute(q)]

    def update_webhook(self, webhook_id: str, **values: Any) -> None:
        self.conn.execute(update(t.webhooks).where(t.webhooks.c.id == webhook_id).values(**values))

    def delete_webhook(self, webhook_id: str) -> None:
        self.conn.execute(delete(t.webhooks).where(t.webhooks.c.id == webhook_id))

    # outbox --------------------------------------------------------------------------------
    def enqueue(self, securable_id: int | None, event: str, data: dict[str, Any],
                keep: Callable[[str, int | None], bool] | None = None) -> int:
        """One outbox row per active webhook on the model (or metastore-wide) subscribed to `event`
        and, with `keep(owner, webhook's securable id)`, whose owner may still receive it."""
        w = t.webhooks
        if securable_id not in self._hooks:
            where = w.c.securable_id.is_(None) if securable_id is None else or_(w.c.securable_id == securable_id, w.c.securable_id.is_(None))
            self._hooks[securable_id] = list(self.conn.execute(
                select(w.c.id, w.c.events, w.c.owner, w.c.securable_id).where(where, w.c.status == "ACTIVE")))
        hooks = [r for r in self._hooks[securable_id] if event in (r.events or ()) and (keep is None or keep(r.owner, r.securable_id))]
        if not hooks:
            return 0
        body, at = payload(event, data), time.time()
        self.conn.execute(insert(t.webhook_deliveries), [
            dict(delivery_id=str(uuid.uuid4()), webhook_id=h.id, event=event, body=body, created_at=at, status="PENDING",
                 attempts=0, next_attempt_at=at) for h in hooks])
        return len(hooks)

    def list_deliveries(self, webhook_id: str, after: int | None, limit: int) -> list[DeliveryRow]:
        d = t.webhook_deliveries
        q = select(d).where(d.c.webhook_id == webhook_id).order_by(d.c.id).limit(limit)
        if after is not None:
            q = q.where(d.c.id > after)
        return [_delivery(r) for r in self.conn.execute(q)]

    def any_due(self, now: float, probes: Sequence[str] = ()) -> bool:
        """Whether a row is due, or any row waits for one of the webhooks to probe (`probes`)."""
        d = t.webhook_deliveries
        when = or_(_due(now), and_(_due(now, backed_off=True), d.c.webhook_id.in_(list(probes)))) if probes else _due(now)
        return self.conn.execute(select(d.c.id).where(when).limit(1)).first() is not None

    def claim_due(self, now: float, lease: float, limit: int, resting: dict[str, float] | None = None) -> list[tuple[DeliveryRow, WebhookRow]]:
        """Due rows (pending, their time come, not leased to a live sender), leased for `lease` seconds.
        Webhooks in `resting` (id -> until when; unreachable lately) give none until then, then one
        row, to probe them (their oldest waiting row, backed off or not)."""
        d = t.webhook_deliveries
        due = _due(now)
        resting = resting or {}
        q = select(d.c.id).where(due).order_by(d.c.next_attempt_at, d.c.id).limit(limit)
        if resting:
            q = q.where(d.c.webhook_id.notin_(list(resting)))
        if self.conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        ids: list[int] = list(self.conn.execute(q).scalars())
        waiting = _due(now, backed_off=True)  # a probe does not wait out its row's backoff: the rest paces it
        for hook in [h for h, until in resting.items() if until <= now]:
            probe = select(d.c.id).where(waiting, d.c.webhook_id == hook).order_by(d.c.next_attempt_at, d.c.id).limit(1)
            if self.conn.dialect.name == "postgresql":
                probe = probe.with_for_update(skip_locked=True)
            ids += list(self.conn.execute(probe).scalars())
        if not ids:
            return []
        self.conn.execute(update(d).where(d.c.id.in_(ids), waiting).values(claimed_until=now + lease))
        rows = [_delivery(r) for r in self.conn.execute(select(d).where(d.c.id.in_(ids), d.c.claimed_until == now + lease))]
        hooks = {h.id: h for h in (_webhook(r) for r in self.conn.execute(select(t.webhooks).where(t.webhooks.c.id.in_({r.webhook_id for r in rows}))))}
        return [(r, hooks[r.webhook_id]) for r in rows if r.webhook_id in hooks]

    def finish(self, outcomes: Sequence[dict[str, Any]]) -> None:
        """Record attempts in one statement: each outcome has `rid` (row id), `status` (DELIVERED,
        PENDING or FAILED), `code` (HTTP status), `error`, `ms` (latency) and `next_at` (next try)."""
        if not outcomes:
            return
        d = t.webhook_deliveries
        at = time.time()
        rows = [{"rid": o["rid"], "st": o["status"], "code": o.get("code"), "err": o.get("error"), "ms": o.get("ms"),
                 "next_at": o.get("next_at") or at, "done_at": at if o["status"] == "DELIVERED" else None} for o in outcomes]
        self.conn.execute(update(d).where(d.c.id == bindparam("rid")).values(
            attempts=d.c.attempts + 1, status=bindparam("st"), last_status=bindparam("code"), last_error=bindparam("err"),
            latency_ms=bindparam("ms"), next_attempt_at=bindparam("next_at"), delivered_at=bindparam("done_at"), claimed_until=None), rows)

    def release(self, webhook_ids: set[str], now: float) -> None:
        """Rows of these webhooks waiting out a backoff are due now (their receiver answers again)."""
        d = t.webhook_deliveries
        self.conn.execute(update(d).where(d.c.webhook_id.in_(list(webhook_ids)), d.c.status == "PENDING", d.c.claimed_until.is_(None),
                                          d.c.next_attempt_at > now).values(next_attempt_at=now))

    def pending_count(self) -> int:
        d = t.webhook_deliveries
        return int(self.conn.execute(select(func.count()).select_from(d).where(d.c.status == "PENDING")).scalar_one())


def _due(now: float, backed_off: bool = False) -> Any:
    """Pending rows whose time has come (with `backed_off`, also those waiting out a backoff), not
    leased to a live sender, of an active webhook (a disabled one keeps its rows until it is enabled again)."""
    d, w = t.webhook_deliveries, t.webhooks
    return and_(d.c.status == "PENDING", true() if backed_off else d.c.next_attempt_at <= now,
                or_(d.c.claimed_until.is_(None), d.c.claimed_until < now), d.c.webhook_id.in_(select(w.c.id).where(w.c.status == "ACTIVE")))


# secrets -------------------------------------------------------------------------------------
KEY_ENV = "CAIRN_WEBHOOK_KEY"


def secret_key(home: Path) -> bytes:
    """The key webhook secrets are encrypted with: `CAIRN_WEBHOOK_KEY` (share it between servers on
    one PostgreSQL metastore), else `$CAIRN_HOME/webhook.key`, created owner-only on first use."""
    from cryptography.fernet import Fernet

    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode()
    path = Path(home) / "webhook.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".webhook.key.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
        try:  # the first writer wins; a racing process reads the winner's key
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes().strip()


def encrypt(home: Path, secret: str) -> str:
    from cryptography.fernet import Fernet

    return Fernet(secret_key(home)).encrypt(secret.encode()).decode()


def decrypt(home: Path, token: str) -> str:
    from cryptography.fernet import Fernet

    return Fernet(secret_key(home)).decrypt(token.encode()).decode()


ALLOW_PRIVATE_ENV = "CAIRN_WEBHOOK_ALLOW_PRIVATE"


def check_url(url: Any) -> str:
    """An http(s) URL whose host resolves to public addresses only, unless CAIRN_WEBHOOK_ALLOW_PRIVATE=1
    (tests and on-premises receivers): a webhook must not reach into the server's own network."""
    checked_address(url)
    return url


def checked_address(url: Any) -> str | None:
    """`check_url`, returning the one address a delivery must connect to (None when private addresses
    are allowed): the sender connects to exactly the address checked, so a name that resolves again
    to another address (DNS rebinding) never sends it into the server's network."""
    if not isinstance(url, str) or len(url) > 2000:
        raise InvalidArgument("a webhook URL is an http(s) URL of at most 2000 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise InvalidArgument(f"webhook URL {url!r} must be http(s)://host[:port]/path, without credentials")
    if os.environ.get(ALLOW_PRIVATE_ENV) == "1":
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except OSError:
        raise InvalidArgument(f"webhook host {parts.hostname!r} does not resolve") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if not ip.is_global:
            raise InvalidArgument(f"webhook host {parts.hostname!r} is a private or loopback address ({ip}); set {ALLOW_PRIVATE_ENV}=1 to allow it")
    return str(infos[0][4][0])
