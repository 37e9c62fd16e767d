"""The one request handler every governed route goes through (GraphQL, UC REST, OpenLineage).

`Handler(...)(fn, ...)` makes an endpoint around `fn(cairn, request, body)`: it gives the request an
id (the `x-request-id` header), reads and checks the body, authenticates the bearer token (a refusal
is audited), runs the governed call where the scheduling policy says, maps errors through the one
table (api/errors.py) and records the route's metrics.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.errors import error, response_for
from api.http import MAX_BODY, Shape, check, json_body
from api.metrics import Metrics
from catalog.client import Cairn, Metastore
from catalog.entities import Source
from catalog.errors import CairnError, InvalidArgument

log = logging.getLogger("cairn.api")
Endpoint = Callable[[Request], Any]
Work = Callable[[Cairn, Request, Any], Any]


class InOrder:
    """Runs calls on the event loop one at a time, in the order their requests arrived.

    The calls waiting when a turn starts run back to back (up to `BATCH`), their audit rows are
    committed in one transaction (the audit log's `holding`), and only then are they answered; then
    the loop reads the sockets, so newly arrived requests queue behind those already waiting (first
    come, first served) and /healthz and /metrics answer between turns.
    """

    BATCH = 16

    def __init__(self, audit_log: Any) -> None:  # the metastore's audit log (its group commit)
        self.audit_log = audit_log
        self.queue: collections.deque[tuple[Callable[[], Any], asyncio.Future[Any]]] = collections.deque()
        self.draining = False
        self.drainer: asyncio.Task[None] | None = None

    async def run(self, call: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self.queue.append((call, done))
        if not self.draining:
            self.draining = True
            self.drainer = loop.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        try:
            while self.queue:
                self._turn()
                await asyncio.sleep(0)  # one loop turn: answer, read what arrived
        finally:
            self.draining = False

    def _turn(self) -> None:
        ran: list[tuple[asyncio.Future[Any], Any, BaseException | None, list[Any]]] = []
        with self.audit_log.holding() as held:
            while self.queue and len(ran) < self.BATCH:
                call, done = self.queue.popleft()
                if done.cancelled():  # its client is gone: nothing was done, nothing to answer
                    continue
                first = len(held)
                failed: BaseException | None = None
                try:
                    result = call()
                except Exception as exc:
                    result, failed = None, exc
                ran.append((done, result, failed, held[first:]))
        self.audit_log.commit(held)
        for done, result, failed, rows in ran:
            failed = self.audit_log.failure(rows) or failed  # answered only once logged
            if done.done():
                continue
            if failed is not None:
                done.set_exception(failed)
            else:
                done.set_result(result)


class Handler:
    """Makes the endpoints of one app (see the module's docstring).

    Scheduling: with `threads` > 0 every call runs on that many threads; otherwise calls run on the
    event loop in arrival order (`InOrder`), except those `long(body)` says may be long, which run
    on up to `long_threads` threads. `authenticate(token)` replaces the metastore's tokens (a
    lineage-only app with its own); its refusals are audited all the same.
    """

    def __init__(self, metastore: Metastore, metrics: Metrics, threads: int = 0, long_threads: int = 4, max_body: int = MAX_BODY,
                 authenticate: Callable[[str], str | None] | None = None) -> None:
        self.metastore, self.metrics, self.max_body = metastore, metrics, max_body
        self.limiter = anyio.CapacityLimiter(threads) if threads > 0 else None
        self.long_calls = anyio.CapacityLimiter(long_threads)
        self.in_order = InOrder(metastore.audit_log)
        self.tokens = authenticate

    def principal_of(self, request: Request, source: Source, request_id: str) -> str | None:
        """The request's principal; None (audited with the reason) when its token proves none."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        attempted = {"method": request.method, "path": request.url.path}
        malformed = "malformed Authorization header" if header and not token else None
        if self.tokens is None:
            return self.metastore.authenticate(token, attempted, source, request_id, refused=malformed)
        principal = self.tokens(token) if token else None
        if principal is None:
            reason = malformed or ("unknown token" if token else "missing token")
            self.metastore.refuse_authentication(reason, attempted, source, request_id)
        return principal

    def __call__(self, fn: Work, source: Source = Source.REST, shape: Shape = None, *, limit: int | None = None, gzip_ok: bool = False,
                 long: Callable[[Any], bool] | None = None) -> Endpoint:
        """An endpoint around `fn(cairn, request, body)`: read and check the body (`shape`, see
        api.http.check), authenticate (a bad body from an unknown sender is a 401 like any other),
        run the governed call, map errors through the one table.
        `long(body)` says whether the call may be long, so it runs on a thread of its own."""
        async def endpoint(request: Request) -> Response:
            start = time.perf_counter()
            request_id = uuid.uuid4().hex
            route = request.scope["route"].path if request.scope.get("route") else request.url.path
            response = await self._handle(fn, request, request_id, source, shape, limit or self.max_body, gzip_ok, long)
            self.metrics.observe(route, request.method, response.status_code, time.perf_counter() - start)
            response.headers["x-request-id"] = request_id
            return response

        return endpoint

    async def _handle(self, fn: Work, request: Request, request_id: str, source: Source, shape: Shape, limit: int, gzip_ok: bool,
                      long: Callable[[Any], bool] | None) -> Response:
        body: Any = {}
        refused: CairnError | None = None  # a bad request, answered once its sender is known (401 first)
        try:
            if request.method in ("POST", "PATCH", "PUT"):
                body = check(await json_body(request, limit, gzip_ok), shape if shape is not None else {})
            for key, value in request.path_params.items():
                if isinstance(value, int) and not 0 <= value < 2**63:
                    raise InvalidArgument(f"{key} {value} is out of range")
        except CairnError as exc:
            body, refused = {}, exc
        except Exception as exc:  # a client gone mid-body, or a bug: no traceback either way
            return response_for(exc, request_id)

        def work() -> Response:  # authenticate, then the governed call
            principal = self.principal_of(request, source, request_id)
            if principal is None:
                return error("UNAUTHENTICATED", "send Authorization: Bearer <token>; create one with `cairn token create`", request_id)
            if refused is not None:
                raise refused
            result = fn(self.metastore.as_principal(principal, source, request_id), request, body)
            return result if isinstance(result, Response) else JSONResponse(result)

        try:
            if self.limiter is not None:
                return await anyio.to_thread.run_sync(work, limiter=self.limiter)
            if long is not None and long(body):
                return await anyio.to_thread.run_sync(work, limiter=self.long_calls)
            response: Response = await self.in_order.run(work)
            return response
        except Exception as exc:
            return response_for(exc, request_id)
