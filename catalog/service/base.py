"""The unit of work every service method runs in: authorize, mutate, audit, commit — or nothing.

Fail closed twice: a method must record an authorization decision (`require`, `allow`,
`require_admin`, ...) before it can commit; a unit of work that ends without one is rolled back
and reported as an internal error. A denial is rolled back and then written to the audit log in
a transaction of its own, so the log shows it although nothing changed.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Literal, NoReturn

from sqlalchemy import Connection, Engine, RootTransaction
from sqlalchemy.exc import OperationalError

from catalog.authz import AuthzCache, AuthzView
from catalog.entities import AuditResult, Context
from catalog.errors import CairnError, Internal, NotFound, PermissionDenied
from catalog.privileges import Kind, Privilege
from catalog.store.db import driver_error, translated
from catalog.store.metastore import MetastoreStore

log = logging.getLogger("cairn")

_SECRET_WORDS = ("password", "secret", "token", "credential", "private_key", "access_key", "authorization")


def redact(value: Any) -> Any:
    """Parameters as they go into the audit log: secrets masked, long values shortened."""
    if isinstance(value, dict):
        return {
            str(k): ("***" if any(w in str(k).lower() for w in _SECRET_WORDS) else redact(v)) for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        return [redact(v) for v in items[:100]] + (["..."] if len(items) > 100 else [])
    if isinstance(value, str):
        return value if len(value) <= 2000 else value[:2000] + "..."
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(getattr(value, "value", value))


class GroupCommit:
    """Audit rows written apart from their unit of work (reads, denials, failures), group-committed.

    Each caller blocks until its row is committed, so nothing is answered before it is logged; while
    one transaction commits, the rows of concurrent callers queue up and the next caller to take the
    commit lock writes them all in one transaction. A batch that fails is retried row by row, so one
    bad row fails only its own caller.

    A server that runs calls one after another on one thread gets the same effect with `holding`:
    the rows of several calls wait, are committed together, and only then are the calls answered.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._mutex = threading.Lock()
        self._commit = threading.Lock()
        self._queue: list[_Pending] = []
        self._held = threading.local()

    @contextmanager
    def holding(self) -> Iterator[list[_Pending]]:
        """While open, rows written on this thread wait in the yielded list, committed by `commit`;
        the caller must not answer a call before its rows are committed without error."""
        held: list[_Pending] = []
        self._held.items = held
        try:
            yield held
        finally:
            self._held.items = None

    def commit(self, items: list[_Pending]) -> None:
        """Commit held rows in one transaction; a row that fails gets its `error` (the rest commit)."""
        if items:
            with self._commit:
                self._flush(items)

    @staticmethod
    def failure(items: list[_Pending]) -> CairnError | None:
        """Why the first of committed `items` that failed did, as the error its caller gets."""
        for item in items:
            if isinstance(item.error, OperationalError):  # the database is gone; any other failure of the row is Internal
                return driver_error(item.error)
            if item.error is not None:
                return item.error if isinstance(item.error, CairnError) else Internal(f"the audit row was not written: {type(item.error).__name__}")
        return None

    def write(self, work: Callable[[MetastoreStore], None], conn: Connection | None = None) -> None:
        """Commit `work`'s rows (with those of concurrent callers) before returning; raises what
        failed it. `conn`, an idle connection the caller holds, saves taking another from the pool."""
        item = _Pending(work)
        held = getattr(self._held, "items", None)
        if held is not None:
            held.append(item)
            return
        with self._mutex:
            self._queue.append(item)
        with self._commit:
            if not item.done:
                with self._mutex:
                    batch, self._queue = self._queue, []
                self._flush(batch, conn)
        if item.error is not None:
            raise item.error

    def _flush(self, batch: list[_Pending], conn: Connection | None = None) -> None:
        try:
            self._transaction(batch, conn)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for item in batch:
                    try:
                        self._transaction([item])
                    except Exception as one:
                        item.error = one
        for item in batch:
            item.done = True

    def _transaction(self, batch: list[_Pending], conn: Connection | None = None) -> None:
        if conn is None:
            with self.engine.connect() as own:
                self._transaction(batch, own)
            return
        with conn.execution_options(cairn_write=True).begin():
            store = MetastoreStore(conn)
            store.gather_audit()
            for item in batch:
                item.work(store)
            store.flush_audit()


class _Pending:
    __slots__ = ("done", "error", "work")

    def __init__(self, work: Callable[[MetastoreStore], None]) -> None:
        self.work = work
        self.done = False
        self.error: BaseException | None = None


_scope = threading.local()


class UnitOfWork:
    """One transaction around one service call. Use as a context manager.

    A read that runs inside another read on the same thread (the tables a SQL statement reads,
    inside the statement) hands its audit row to the outer one, which commits them all together
    when it ends; nothing reaches the caller before they are committed.
    """

    def __init__(
        self,
        engine: Engine,
        cache: AuthzCache,
        audit_log: GroupCommit,
        ctx: Context,
        action: str,
        kind: Kind | None,
        name: str | None,
        params: dict[str, Any],
        write: bool,
    ) -> None:
        self.engine = engine
        self.cache = cache
        self.audit_log = audit_log
        self.ctx = ctx
        self.action = action
        self.kind = kind
        self.name = name
        self.params = params
        self.write = write
        self.request_id = ctx.request_id or uuid.uuid4().hex
        self.decided = False
        self._hidden_denial = False
        # Metastore changes that follow work done outside the database (a Delta commit): they
        # are applied in the same transaction as the audit row.
        self.deferred: list[Callable[[MetastoreStore], None]] = []
        self.pending: list[Callable[[MetastoreStore], object]] = []  # audit work of reads nested in this one
        self._outer: UnitOfWork | None = None
        self._writes_at = -1
        self._shared = False  # a nested read working in its outer read's transaction
        # Set by __enter__ (shared with the outer read when nested).
        self.conn: Connection
        self.tx: RootTransaction
        self.store: MetastoreStore
        self.authz: AuthzView

    # lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> UnitOfWork:
        writes = getattr(_scope, "writes", 0)
        if self.write:
            _scope.writes = writes + 1
        else:
            self._outer = getattr(_scope, "uow", None)
            if self._outer is None:
                _scope.uow = self
                self._writes_at = writes
            elif self._outer._writes_at == writes:
                # Nothing was written on this thread since the outer read began: decide on the same
                # snapshot of the metastore (a statement's checks see one state, as of its start).
                self._shared = True
                self.conn, self.store, self.authz = self._outer.conn, self._outer.store, self._outer.authz
                return self
        try:
            self.conn = self.engine.connect().execution_options(cairn_write=self.write)
            self.tx = self.conn.begin()
        except OperationalError as exc:
            self._leave_scope()
            raise driver_error(exc) from exc  # type: ignore[misc]
        self.store = MetastoreStore(self.conn)
        try:
            self.authz = self.cache.view(self.store)
        except BaseException:
            self.tx.rollback()
            self.conn.close()
            self._leave_scope()
            raise
        return self

    def _leave_scope(self) -> None:
        if getattr(_scope, "uow", None) is self:
            _scope.uow = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        # The connection goes back to the pool before the audit row takes another one, so a
        # request never holds two at once (that would let a busy pool deadlock on itself).
        try:
            if exc is None:
                if not self.decided:
                    self._release(commit=False)
                    self._audit_apart(AuditResult.FAILED, "INTERNAL", "no authorization decision was recorded")
                    raise Internal(f"{self.action} made no authorization decision (request id {self.request_id})")
                if self.write:
                    nested, self.pending = self.pending, []
                    for apply in nested:
                        apply(self.store)
                    self._audit(self.store, AuditResult.ALLOWED, None, None)
                    self._release(commit=True)
                else:
                    # Reads change nothing; their audit row goes in a short write transaction of its
                    # own so readers never hold SQLite's write lock while they work (on the same
                    # connection: taking another from the pool costs more than the row).
                    if self._outer is not None:
                        self._release(commit=True)
                        self._outer.pending.append(self._audit_work(AuditResult.ALLOWED, None, None, self.deferred))
                    else:
                        self._release(commit=True, keep=True)
                        self._audit_apart(AuditResult.ALLOWED, None, None, self.deferred, self.conn)
                return False
            self._release(commit=False)
            if isinstance(exc, CairnError) and (
                isinstance(exc, PermissionDenied) or (isinstance(exc, NotFound) and self._hidden_denial) or exc.denied
            ):
                # Marked so an enclosing unit of work (a SQL statement) audits it as a denial too.
                exc.denied = True
                # A refusal raised with its own code (a FailedPrecondition marked `denied`) keeps it;
                # a hidden NotFound is logged as the denial it is.
                code = exc.code if not isinstance(exc, NotFound) else PermissionDenied.code
                self._audit_apart(AuditResult.DENIED, code, str(exc))
                return False
            if isinstance(exc, CairnError):
                self._audit_apart(AuditResult.FAILED, exc.code, str(exc))
                return False
            driver = driver_error(exc, self.action)
            if driver is not None:
                self._audit_apart(AuditResult.FAILED, driver.code, str(driver))
                raise driver from exc
            log.exception("internal error in %s (request id %s)", self.action, self.request_id)
            self._audit_apart(AuditResult.FAILED, Internal.code, type(exc).__name__)
            raise Internal(f"internal error (request id {self.request_id})") from exc
        finally:
            if not self._shared:
                self.conn.close()
            self._leave_scope()

    def _release(self, commit: bool, keep: bool = False) -> None:
        """End the transaction; close the connection unless `keep` (its owner closes it later)."""
        if self._shared:
            return
        try:
            if commit:
                self.tx.commit()
            elif self.tx.is_active:
                self.tx.rollback()
        except BaseException:
            self.conn.close()
            raise
        if not keep:
            self.conn.close()

    def _audit(self, store: MetastoreStore, result: AuditResult, code: str | None, message: str | None) -> None:
        store.insert_audit(
            principal=self.ctx.principal,
            action=self.action,
            securable_kind=self.kind.value if self.kind else None,
            securable_name=_fit(self.name, 800),  # the column's length: a call naming many tables still logs
            parameters=redact(self.params),
            result=result.value,
            error_code=code,
            error_message=message,
            request_id=self.request_id,
            source=self.ctx.source.value,
        )

    def _audit_work(
        self, result: AuditResult, code: str | None, message: str | None, deferred: Sequence[Callable[[MetastoreStore], None]] = ()
    ) -> Callable[[MetastoreStore], None]:
        def work(store: MetastoreStore) -> None:
            for apply in deferred:
                apply(store)
            self._audit(store, result, code, message)

        return work

    def _audit_apart(
        self,
        result: AuditResult,
        code: str | None,
        message: str | None,
        deferred: Sequence[Callable[[MetastoreStore], None]] = (),
        conn: Connection | None = None,
    ) -> None:
        nested, self.pending = self.pending, []
        own = self._audit_work(result, code, message, deferred)

        def work(store: MetastoreStore) -> None:
            for apply in nested:
                apply(store)
            own(store)

        with translated():
            self.audit_log.write(work, conn)

    def with_audit(self, work: Callable[[MetastoreStore], object]) -> None:
        """Apply `work` in the transaction of this call's audit row, whatever the outcome (a refused
        call's own record, such as the event announcing the refusal)."""
        self.pending.append(work)

    # authorization decisions ---------------------------------------------------------------
    @property
    def principal(self) -> str:
        return self.ctx.principal

    def allow(self) -> None:
        """Record that this call needs no privilege beyond being a known principal (lists filter)."""
        self.authz.principals(self.principal)
        self.decided = True

    def deny(self, message: str) -> None:
        self.decided = True
        raise PermissionDenied(message)

    def require_admin(self, what: str) -> None:
        if not self.authz.is_admin(self.principal):
            self.deny(f"{self.principal} is not a metastore admin; {what} needs one")
        self.decided = True

    def hide(self, what: str, name: str) -> NoReturn:
        """Refuse without revealing that the object exists: NotFound to the caller, a DENIED audit row."""
        self.decided = True
        self._hidden_denial = True
        raise NotFound(f"{what} '{name}' does not exist")

    def require_visible(self, sid: int, kind: Kind, name: str) -> None:
        """NotFound (audited as a denial) when the caller may not see the securable."""
        if not self.authz.can_see(self.principal, sid):
            self.decided = True
            self._hidden_denial = True
            raise NotFound(f"{_label(kind)} '{name}' does not exist")
        self.decided = True

    def require(self, privilege: Privilege, sid: int, kind: Kind, name: str, *, usage: bool = True) -> None:
        """`privilege` on `sid`, plus USE CATALOG / USE SCHEMA on its containers when `usage`."""
        a, p = self.authz, self.principal
        if usage and not a.has_usage(p, sid if kind in (Kind.CATALOG, Kind.SCHEMA) else a.chain(sid)[1].id):
            self._deny_or_hide(sid, kind, name, self._usage_message(sid))
        if not a.has(p, privilege, sid):
            self._deny_or_hide(sid, kind, name, f"{p} lacks {privilege.value} on {_label(kind)} '{name}'")
        self.decided = True

    def require_manage(self, sid: int, kind: Kind, name: str, what: str) -> None:
        if not self.authz.can_manage(self.principal, sid):
            self._deny_or_hide(
                sid, kind, name, f"{self.principal} may not {what} {_label(kind)} '{name}': needs ownership or MANAGE"
            )
        self.decided = True

    def require_tagging(self, sid: int, kind: Kind, name: str) -> None:
        a, p = self.authz, self.principal
        ok = a.is_admin(p) or a.owns(p, sid) or (a.has(p, Privilege.APPLY_TAG, sid) and a.has_usage(p, a.chain(sid)[1].id if kind not in (Kind.CATALOG,) else sid))
        if not ok:
            self._deny_or_hide(sid, kind, name, f"{p} lacks APPLY TAG on {_label(kind)} '{name}'")
        self.decided = True

    def refuse(self, exc: CairnError) -> CairnError:
        """Mark an error as a refusal: it is audited as DENIED (with its own code), then raised."""
        self.decided = True
        exc.denied = True
        return exc

    def _deny_or_hide(self, sid: int, kind: Kind, name: str, message: str) -> None:
        self.decided = True
        if not self.authz.can_see(self.principal, sid):
            self._hidden_denial = True
            raise NotFound(f"{_label(kind)} '{name}' does not exist")
        raise PermissionDenied(message)

    def _usage_message(self, sid: int) -> str:
        for node in reversed(self.authz.chain(sid)):
            if node.kind is Kind.CATALOG and not self.authz.has(self.principal, Privilege.USE_CATALOG, node.id):
                return f"{self.principal} lacks USE CATALOG on catalog '{node.full_name}'"
            if node.kind is Kind.SCHEMA and not self.authz.has(self.principal, Privilege.USE_SCHEMA, node.id):
                return f"{self.principal} lacks USE SCHEMA on schema '{node.full_name}'"
        return f"{self.principal} lacks usage on the containers of '{self.name}'"


def _fit(text: str | None, size: int) -> str | None:
    """`text` cut to `size` characters, marked with an ellipsis when cut."""
    return text if text is None or len(text) <= size else text[: size - 3] + "..."


def _label(kind: Kind) -> str:
    """A kind in words, for messages: "registered model", "external location"."""
    return "registered model" if kind is Kind.MODEL else kind.value.lower().replace("_", " ")


label = _label
