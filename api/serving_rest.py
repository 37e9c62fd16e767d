"""Serving endpoints over REST, in the Databricks shape, and their invocations.

Management (`/api/2.0/serving-endpoints...`) runs through the server's common handler: bearer
token, bounded body, one governed service call, errors from the one table. Invocations
(`POST /serving-endpoints/{name}/invocations`, and `.../served-models/{entity}/invocations` to pin
one served entity) take a faster path of their own: they are answered at the ASGI level by
`Invocations`, ahead of the app's routing and request objects; the token and the CAN QUERY
decision are each reused for a second (`ServingRuntime`), the prediction runs on the event loop,
and the inference row is queued for a background writer. The answering entity is in the
`served-entity` header; bodies past 16 MB are refused with 413 before they are read whole.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
from orjson import dumps as _dumps
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import HTTP_STATUS, error
from api.http import MAX_BODY, Disconnected, receive_body
from catalog.client import Cairn, Metastore
from catalog.entities import Source
from catalog.errors import CairnError, Unauthenticated
from catalog.paging import every
from pipelines.serving.invoke import invoke
from pipelines.serving.runtime import Endpoint, ServingRuntime
from pipelines.serving.shape import create_args, endpoint_json, update_args

BASE = "/api/2.0/serving-endpoints"
ENTITY_HEADER = "served-entity"
ENTITY_HEADER_BYTES = ENTITY_HEADER.encode()
log = logging.getLogger("cairn.serving")


def _status(code: str) -> int:
    return HTTP_STATUS.get(code, 500)


class Serving:
    """The serving routes of one app, and the runtime behind its invocations."""

    def __init__(self, metastore: Metastore, handler: Callable[..., Any], max_body: int = MAX_BODY) -> None:
        self.metastore, self.handler, self.max_body = metastore, handler, max_body
        self.runtime = ServingRuntime(metastore)
        self._tokens: dict[str, tuple[float, str]] = {}

    def close(self) -> None:
        self.runtime.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """The app's lifespan: on shutdown (SIGTERM included) every inference row is written."""
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(self.close)

    def routes(self) -> list[Route]:
        h = self.handler
        return [
            Route(BASE, h(self._create), methods=["POST"]),
            Route(BASE, h(self._list), methods=["GET"]),
            Route(BASE + "/{name}", h(self._get), methods=["GET"]),
            Route(BASE + "/{name}", h(self._delete), methods=["DELETE"]),
            Route(BASE + "/{name}/config", h(self._update), methods=["PUT"]),
            Route(BASE + "/{name}/metrics", self._metrics, methods=["GET"]),
            # answered by `Invocations` ahead of routing (these answer the same, for an app built
            # without it); listed so that other methods get 405
            Route("/serving-endpoints/{name}/invocations", _Routed(self), methods=["POST"]),
            Route("/serving-endpoints/{name}/served-models/{entity}/invocations", _Routed(self), methods=["POST"]),
        ]

    # management ------------------------------------------------------------------------------
    def _create(self, c: Cairn, request: Request, body: Any) -> Any:
        ep = c.serving.create_endpoint(**create_args(body))
        return endpoint_json(ep, self.runtime.entity_states(ep.name))

    def _list(self, c: Cairn, request: Request, body: Any) -> Any:
        return {"endpoints": [endpoint_json(ep, self.runtime.entity_states(ep.name))
                              for ep in every(c.serving.list_endpoints)]}

    def _get(self, c: Cairn, request: Request, body: Any) -> Any:
        ep = c.serving.get_endpoint(request.path_params["name"])
        return endpoint_json(ep, self.runtime.entity_states(ep.name))

    def _delete(self, c: Cairn, request: Request, body: Any) -> Any:
        c.serving.delete_endpoint(request.path_params["name"])
        self.runtime.drop(request.path_params["name"].lower())
        return {}

    def _update(self, c: Cairn, request: Request, body: Any) -> Any:
        ep = c.serving.update_config(request.path_params["name"], **update_args(body))
        self.runtime.forget(ep.name)  # the next query sees the new config at once
        return endpoint_json(ep, self.runtime.entity_states(ep.name))

    # queries ---------------------------------------------------------------------------------
    def _principal(self, header: str, method: str, path: str, request_id: str) -> str | None:
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        hit = self._tokens.get(token) if token else None
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = self.metastore.authenticate(token, {"method": method, "path": path}, Source.REST, request_id,
                                                refused="malformed Authorization header" if header and not token else None)
        if principal is None:
            return None
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[token] = (now + self.runtime.authz_ttl, principal)
        return principal

    async def _authorized(self, header: str, method: str, path: str, name: str, request_id: str) -> tuple[str, Endpoint] | CairnError:
        """(principal, endpoint), or the error: UNAUTHENTICATED without a valid token,
        PERMISSION_DENIED / NOT_FOUND without CAN QUERY."""
        principal = self._principal(header, method, path, request_id)
        if principal is None:
            return Unauthenticated("send Authorization: Bearer <token>; create one with `cairn token create`")
        name = name.lower()
        ep = self.runtime.cached(principal, name, request_id)
        if ep is None:
            try:
                ep = await anyio.to_thread.run_sync(self.runtime.authorize, principal, name, request_id)
            except CairnError as exc:
                if exc.code == "NOT_FOUND" and name in self.runtime.endpoints and not getattr(exc, "denied", False):
                    self.runtime.drop(name)  # deleted elsewhere (another server or the CLI)
                return exc
        return principal, ep

    async def answer(self, scope: Scope, receive: Receive, send: Send, name: str, entity: str | None) -> None:
        """One invocation, from ASGI to ASGI. Every failure is a JSON answer with its status and the
        request id; none escapes (a client that went away gets nothing)."""
        request_id = uuid.uuid4().hex
        headers = dict(scope["headers"])
        extra: list[tuple[bytes, bytes]] = []
        try:
            allowed = await self._authorized(headers.get(b"authorization", b"").decode("latin-1"), scope["method"], scope["path"],
                                             name, request_id)
            if isinstance(allowed, CairnError):
                status, body = _status(allowed.code), _error_body(allowed.code, str(allowed), request_id)
            else:
                raw = await receive_body(receive, headers.get(b"content-length", b"").decode("latin-1"), self.max_body)
                got = await invoke(self.runtime, allowed[1], allowed[0], raw, request_id, entity, _status)
                status, body = got.status, got.body
                if got.entity is not None:
                    extra.append((ENTITY_HEADER_BYTES, got.entity.name.encode()))
        except Disconnected:
            return
        except CairnError as exc:  # the body: too large
            status, body = _status(exc.code), _error_body(exc.code, str(exc), request_id)
        except Exception:
            log.exception("internal error answering an invocation of %s (request id %s)", name, request_id)
            status, body = 500, _error_body("INTERNAL", f"internal error (request id {request_id})", request_id)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
                                (b"x-request-id", request_id.encode()), *extra]})
        await send({"type": "http.response.body", "body": body})

    async def _metrics(self, request: Request) -> Response:
        request_id = uuid.uuid4().hex
        allowed = await self._authorized(request.headers.get("authorization", ""), request.method, request.url.path,
                                         request.path_params["name"], request_id)
        if isinstance(allowed, CairnError):
            return error(allowed.code, str(allowed), request_id)
        return PlainTextResponse(allowed[1].metrics(), media_type="text/plain; version=0.0.4")


def _error_body(code: str, message: str, request_id: str) -> bytes:
    return _dumps({"error_code": code, "message": message, "request_id": request_id})


_INVOCATION = re.compile(r"/serving-endpoints/([^/]+)(?:/served-models/([^/]+))?/invocations")


class _Routed:
    """An invocation reached through the router: an ASGI app, answered as `Invocations` does."""

    def __init__(self, serving: Serving) -> None:
        self.serving = serving

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = scope["path_params"]
        await self.serving.answer(scope, receive, send, params["name"], params.get("entity"))


class Invocations:
    """ASGI middleware: invocations are answered here, before the app's routing, exception
    middleware and request/response objects (the hottest path; everything else passes through)."""

    def __init__(self, app: ASGIApp, serving: Serving) -> None:
        self.app, self.serving = app, serving

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            m = _INVOCATION.fullmatch(scope["path"])
            if m is not None:
                await self.serving.answer(scope, receive, send, m[1], m[2])
                return
        await self.app(scope, receive, send)
