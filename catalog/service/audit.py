"""Reading the audit log. Metastore admins see every event; everyone else sees their own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from catalog.entities import AuditEvent, AuditResult, Page
from catalog.errors import InvalidArgument
from catalog.service.common import Service, decode_token, encode_token, page_size


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
    ) -> Page[AuditEvent]:
        """Audit events, oldest first, filtered and paged.

        `securable_prefix` matches a securable and everything below it (`main.sales` matches
        `main.sales.orders`). Non-admins only ever see their own events.
        """
        params = dict(principal=principal, action=action, securable_prefix=securable_prefix, result=str(getattr(result, "value", result)) if result else None)
        with self._uow("list_audit_events", None, None, write=False, **params) as uow:
            uow.allow()
            if not uow.authz.is_admin(uow.principal):
                if principal not in (None, uow.principal):
                    return Page(())
                principal = uow.principal
            try:
                res = AuditResult(str(getattr(result, "value", result)).upper()) if result else None
            except ValueError:
                raise InvalidArgument(f"result must be ALLOWED, DENIED or FAILED, not {result!r}") from None
            after = decode_token(page_token)
            if after is not None and not after.isdigit():
                raise InvalidArgument("page_token is not a token this service issued")
            limit = page_size(max_results)
            rows = uow.store.query_audit(
                principal, action, securable_prefix.lower() if securable_prefix else None, since, until, res,
                int(after) if after else None, limit + 1,
            )
            more = len(rows) > limit
            rows = rows[:limit]
            return Page(tuple(rows), encode_token(str(rows[-1].id)) if more else None)
