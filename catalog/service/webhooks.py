"""Registry webhooks: who may create them, what they see, and the delivery log.

A webhook on a registered model needs MANAGE on it (or ownership); a metastore-wide one (every
model) needs a metastore admin. The secret signs each delivery (`X-MLflow-Signature`), so it is
kept encrypted (catalog.store.registry), never returned, and never written to the audit log.
Only the webhook's owner (and admins) see it and its deliveries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from catalog.errors import InvalidArgument, NotFound
from catalog.privileges import Kind
from catalog.service.common import Service, display, parse_for, resolve
from catalog.store.registry import EVENTS, RegistryStore, WebhookRow, check_url, encrypt


@dataclass(frozen=True)
class Webhook:
    id: str
    name: str
    model: str | None  # None: every model in the metastore
    events: tuple[str, ...]
    url: str
    status: str
    description: str | None
    owner: str
    created_at: datetime
    has_secret: bool


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    event: str
    status: str
    attempts: int
    created_at: float
    delivered_at: float | None
    last_status: int | None
    last_error: str | None
    latency_ms: float | None
    cursor: int


class WebhookService(Service):
    def create_webhook(self, name: str, url: str, events: list[str], model: str | None = None, secret: str | None = None,
                       description: str | None = None) -> Webhook:
        """A webhook POSTing `events` of `model` (or of every model, admins only) to `url`. Needs
        ownership or MANAGE on the model. The secret (recommended) signs each delivery."""
        with self._uow("create_webhook", Kind.MODEL if model else Kind.METASTORE, display(model) if model else "metastore",
                       name=name, url=url, events=events) as uow:
            sid, model_name = None, None
            if model:
                fn = parse_for(Kind.MODEL, model)
                sid = resolve(uow, Kind.MODEL, fn.key)
                uow.require_manage(sid, Kind.MODEL, fn.key, "add webhooks to")
                model_name = fn.key
            else:
                uow.require_admin("a metastore-wide webhook")
            if not isinstance(name, str) or not name.strip() or len(name) > 255:
                raise InvalidArgument("a webhook needs a name of at most 255 characters")
            if not isinstance(events, (list, tuple)) or not events or any(e not in EVENTS for e in events):
                raise InvalidArgument(f"events must be a non-empty list of: {', '.join(EVENTS)}")
            if secret is not None and (not isinstance(secret, str) or not 16 <= len(secret) <= 1000):
                raise InvalidArgument("a webhook secret is 16 to 1000 characters")
            if description is not None and (not isinstance(description, str) or len(description) > 1000):
                raise InvalidArgument("description must be text of at most 1000 characters")
            check_url(url)
            sealed = encrypt(self.metastore.settings.home, secret) if secret else None
            row = RegistryStore(uow.conn).insert_webhook(name.strip(), sid, list(dict.fromkeys(events)), url, sealed, description, uow.principal)
            return _view(row, model_name)

    def list_webhooks(self, model: str | None = None) -> list[Webhook]:
        """Webhooks the caller owns (admins: all), on `model` or, without it, metastore-wide and on every model."""
        with self._uow("list_webhooks", Kind.MODEL if model else None, display(model) if model else None, write=False) as uow:
            store = RegistryStore(uow.conn)
            if model:
                fn = parse_for(Kind.MODEL, model)
                sid = resolve(uow, Kind.MODEL, fn.key)
                uow.require_visible(sid, Kind.MODEL, fn.key)
                rows = store.list_webhooks(sid)
            else:
                uow.allow()
                rows = store.list_webhooks(every=True)
            admin = uow.authz.is_admin(uow.principal)
            return [_view(r, self._model_name(uow, r)) for r in rows if admin or r.owner == uow.principal]

    def get_webhook(self, webhook_id: str) -> Webhook:
        with self._uow("get_webhook", None, str(webhook_id), write=False) as uow:
            row = self._own(uow, webhook_id)
            return _view(row, self._model_name(uow, row))

    def update_webhook(self, webhook_id: str, url: str | None = None, events: list[str] | None = None, status: str | None = None,
                       secret: str | None = None) -> Webhook:
        """Change a webhook's URL, events, status (ACTIVE or DISABLED) or secret. Its owner or an admin."""
        with self._uow("update_webhook", None, str(webhook_id), url=url, events=events, status=status) as uow:
            row = self._own(uow, webhook_id)
            values: dict[str, Any] = {}
            if url is not None:
                values["url"] = check_url(url)
            if events is not None:
                if not isinstance(events, (list, tuple)) or not events or any(e not in EVENTS for e in events):
                    raise InvalidArgument(f"events must be a non-empty list of: {', '.join(EVENTS)}")
                values["events"] = list(dict.fromkeys(events))
            if status is not None:
                if status not in ("ACTIVE", "DISABLED"):
                    raise InvalidArgument("status must be ACTIVE or DISABLED")
                values["status"] = status
            if secret is not None:
                if not isinstance(secret, str) or not 16 <= len(secret) <= 1000:
                    raise InvalidArgument("a webhook secret is 16 to 1000 characters")
                values["secret"] = encrypt(self.metastore.settings.home, secret)
            store = RegistryStore(uow.conn)
            if values:
                store.update_webhook(row.id, **values)
            fresh = store.get_webhook(row.id)
            return _view(fresh, self._model_name(uow, fresh))  # type: ignore[arg-type]

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook and its delivery log. Its owner or an admin."""
        with self._uow("delete_webhook", None, str(webhook_id)) as uow:
            row = self._own(uow, webhook_id)
            RegistryStore(uow.conn).delete_webhook(row.id)

    def list_deliveries(self, webhook_id: str, after: int | None = None, max_results: int = 100) -> list[Delivery]:
        """The delivery log of a webhook (status, attempts, latency), oldest first, after cursor `after`.
        Its owner or an admin."""
        with self._uow("list_webhook_deliveries", None, str(webhook_id), write=False) as uow:
            row = self._own(uow, webhook_id)
            if not isinstance(max_results, int) or not 1 <= max_results <= 1000:
                raise InvalidArgument("max_results must be between 1 and 1000")
            return [Delivery(d.delivery_id, d.event, d.status, d.attempts, d.created_at, d.delivered_at, d.last_status,
                             d.last_error, d.latency_ms, d.id) for d in RegistryStore(uow.conn).list_deliveries(row.id, after, max_results)]

    @staticmethod
    def _own(uow: Any, webhook_id: str) -> WebhookRow:
        row = RegistryStore(uow.conn).get_webhook(str(webhook_id)) if isinstance(webhook_id, str) and len(webhook_id) <= 32 else None
        if row is None:
            uow.allow()
            raise NotFound(f"webhook '{webhook_id}' does not exist")
        if row.owner != uow.principal and not uow.authz.is_admin(uow.principal):
            uow.hide("webhook", str(webhook_id))
        uow.allow()
        return row

    @staticmethod
    def _model_name(uow: Any, row: WebhookRow) -> str | None:
        if row.securable_id is None:
            return None
        return uow.authz.chain(row.securable_id)[0].full_name


def _view(row: WebhookRow, model: str | None) -> Webhook:
    return Webhook(row.id, row.name, model, row.events, row.url, row.status, row.description, row.owner, row.created_at, row.secret is not None)
