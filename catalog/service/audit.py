"""Reading the audit log. Metastore admins see every event; everyone else sees their own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Literal

from catalog.entities import AuditEvent, AuditResult, Page
from catalog.errors import InvalidArgument
from catalog.privileges import Kind, Privilege
from catalog.relations import FileAccessRefused
from catalog.service.base import UnitOfWork
from catalog.service.common import Service, decode_token, display, encode_token, fetch, page_size, parse_for, resolve

_READS = ("read_", "describe_", "get_", "list_", "plan_")


class AuditService(Service):
    @contextmanager
    def request(self, interface: str, **params: object) -> Iterator[None]:
        """One API request as a unit: the governed calls made inside it decide on one snapshot of the
        metastore, and their audit rows commit together with the request's own (`<interface>_request`,
        with `params`) before the response leaves. Open to every known principal; the calls inside
        check their own privileges."""
        with self._uow(f"{interface}_request", None, None, write=False, **params) as uow:
            uow.allow()
            yield

    @contextmanager
    def statement(self, text: str) -> Iterator[None]:
        """One SQL statement as a unit: an `execute_sql` row with its text, committed with the rows of
        the governed calls it makes (each checks its own privileges). A statement refused for reaching
        a file or the engine's state is audited as DENIED, naming what it tried to reach."""
        with self._uow("execute_sql", None, None, write=False, statement=text) as uow:
            uow.allow()
            try:
                yield
            except FileAccessRefused as exc:
                uow.name = exc.what
                raise

    def list_events(
        self,
        principal: str | None = None,
        action: str | None = None,
        securable_prefix: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        result: AuditResult | str | None = None,
        page_token: str | None = None,
        max_results: int | None = None,
        newest_first: bool = False,
    ) -> Page[AuditEvent]:
        """Audit events, filtered and paged: oldest first, or newest first with `newest_first`
        (what people read; the CLI and GraphQL use it). `since` is inclusive, `until` exclusive.

        `securable_prefix` matches a securable and everything below it (`main.sales` matches
        `main.sales.orders`). Non-admins only ever see their own events. A page token continues
        the order it was issued in.
        """
        params = dict(principal=principal, action=action, securable_prefix=securable_prefix, result=str(getattr(result, "value", result)) if result else None)
        with self._uow("list_audit_events", None, None, write=False, **params) as uow:
            uow.allow()
            mine = self._visible_principal(uow, principal)
            if mine is False:
                return Page(())
            res = _result(result)
            after = decode_token(page_token)
            order = "<" if newest_first else ""
            if after is not None and not (after.startswith(order) and after[len(order):].isdigit()):
                raise InvalidArgument("page_token is not a token this service issued for this order")
            limit = page_size(max_results)
            rows = uow.store.query_audit(
                mine, action, securable_prefix.lower() if securable_prefix else None, since, until, res,
                int(after[len(order):]) if after else None, limit + 1, newest_first=newest_first,
            )
            more = len(rows) > limit
            rows = rows[:limit]
            return Page(tuple(rows), encode_token(f"{order}{rows[-1].id}") if more else None, lambda e: encode_token(f"{order}{e.id}"))

    def count_events(
        self,
        principal: str | None = None,
        action: str | None = None,
        securable_prefix: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        result: AuditResult | str | None = None,
    ) -> int:
        """How many events `list_events` with the same filters would list over all its pages
        (so a reader can say "showing 100 of 2,345"). Same visibility: non-admins count their own."""
        with self._uow("count_audit_events", None, None, write=False, principal=principal, action=action) as uow:
            uow.allow()
            mine = self._visible_principal(uow, principal)
            if mine is False:
                return 0
            return uow.store.count_audit(mine, action, securable_prefix.lower() if securable_prefix else None, since, until, _result(result))

    def list_writers(self, table: str) -> dict[int, str]:
        """Who committed each Delta version of a table (DESCRIBE HISTORY's userName), from the audit
        rows that recorded the version they produced. Needs what reading the history needs: USE
        CATALOG, USE SCHEMA and SELECT on the table; the writers of a readable table are not secret.

        Raises InvalidArgument, NotFound (also when the caller may not see the table), PermissionDenied.
        """
        with self._uow("list_table_writers", Kind.TABLE, display(table), write=False) as uow:
            key = parse_for(Kind.TABLE, table).key
            sid = resolve(uow, Kind.TABLE, key)
            uow.require(Privilege.SELECT, sid, Kind.TABLE, key)
            created = fetch(uow, sid).created_at
            writers: dict[int, str] = {}
            for e in uow.store.query_audit(None, None, key, created, None, AuditResult.ALLOWED, None, 10_000, newest_first=True):
                version = e.parameters.get("delta_version")
                if e.securable_name == key and isinstance(version, int) and not e.action.startswith(_READS):
                    writers.setdefault(version, e.principal)
            return writers

    @staticmethod
    def _visible_principal(uow: UnitOfWork, principal: str | None) -> str | Literal[False] | None:
        """The principal filter the caller may use; False when it asks for someone else's events."""
        if uow.authz.is_admin(uow.principal):
            return principal
        if principal not in (None, uow.principal):
            return False
        return uow.principal


def _result(result: AuditResult | str | None) -> AuditResult | None:
    try:
        return AuditResult(str(getattr(result, "value", result)).upper()) if result else None
    except ValueError:
        raise InvalidArgument(f"result must be ALLOWED, DENIED or FAILED, not {result!r}") from None
