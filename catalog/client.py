"""The process-wide metastore handle and the principal-bound client every transport uses.

>>> import tempfile
>>> home = tempfile.mkdtemp()
>>> ms = Metastore.open(home=home)
>>> _ = ms.initialize(admin="admin")
>>> cairn = ms.as_principal("admin")
>>> cairn.catalogs.create_catalog("main").full_name
'main'
"""

from __future__ import annotations

from pathlib import Path

from catalog.entities import Context, Source
from catalog.errors import InvalidArgument, Unavailable
from catalog.runtime import Runtime
from catalog.service.gates import describe as describe_gate
from catalog.service.tokens import audit_refused, identify
from catalog.service.webhook_delivery import WebhookSender, start_sender
from catalog.services import Services
from catalog.sql.parsing import SqlResult
from catalog.sql.shim import SqlService

__all__ = ["Cairn", "Metastore", "WebhookSender", "connect", "describe_gate", "start_webhook_sender"]


class Metastore(Runtime):
    """One metastore (see Runtime), and the door to it: `as_principal` binds a caller.

    Open one per process and share it; bind a principal with `as_principal` per caller.
    """

    def as_principal(self, principal: str | None = None, source: Source | str = Source.PYTHON, request_id: str = "") -> Cairn:
        """A client acting as `principal` (default: `CAIRN_PRINCIPAL`)."""
        who = principal or self.settings.principal
        if not who:
            raise InvalidArgument("no principal: pass one or set CAIRN_PRINCIPAL")
        src = source if isinstance(source, Source) else Source(source)
        return Cairn(self, Context(who, src, request_id))

    def authenticate(self, token: str, attempted: dict[str, str], source: Source = Source.REST, request_id: str = "",
                     refused: str | None = None) -> str | None:
        """The principal a bearer token proves, or None; a refusal (missing, malformed, unknown,
        revoked or expired token, or the transport's own `refused` reason) leaves a DENIED
        `authenticate` audit row with what was `attempted` (method, path), written before this returns."""
        principal, reason = identify(self.engine, token)
        if refused is not None:
            principal, reason = None, refused
        if principal is None:
            audit_refused(self.audit_log, reason, attempted, source, request_id)
        return principal

    def refuse_authentication(self, reason: str, attempted: dict[str, str], source: Source = Source.REST, request_id: str = "") -> None:
        """Audit a refused authentication decided by the transport (DENIED, by ANONYMOUS)."""
        audit_refused(self.audit_log, reason, attempted, source, request_id)

    def ping(self) -> None:
        """Unavailable unless the metastore database answers (health checks)."""
        try:
            self.engine.connect().close()
        except Exception as exc:
            raise Unavailable(f"the metastore is unavailable: {str(exc)[:200]}") from exc


class Cairn(Services):
    """All governed services, acting as one principal from one source, and SQL over them."""

    def __init__(self, metastore: Runtime, ctx: Context) -> None:
        super().__init__(metastore, ctx)
        self._sql: SqlService | None = None

    @property
    def sql_session(self) -> SqlService:
        """The SQL session of this client: USE CATALOG / USE SCHEMA persist across calls."""
        if self._sql is None:
            self._sql = SqlService(self)
        return self._sql

    def sql(self, script: str) -> SqlResult:
        """Run one or more SQL statements; returns the result of the last one (rows, or a message)."""
        return self.sql_session.execute(script)[-1]


def connect(home: str | Path | None = None, url: str | None = None, principal: str | None = None) -> Cairn:
    """Open the metastore and return a client acting as `principal` (or `CAIRN_PRINCIPAL`)."""
    return Metastore.open(home, url).as_principal(principal)


def start_webhook_sender(metastore: Metastore) -> WebhookSender | None:
    """Start delivering registry webhooks from the outbox in the background (what `cairn serve` runs)."""
    return start_sender(metastore)
