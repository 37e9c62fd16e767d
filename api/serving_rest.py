"""Serving endpoints over REST, in the Databricks shape, and their invocations.

Management (`/api/2.0/serving-endpoints...`) runs through the server's common handler: bearer
token, bounded body, one governed service call, errors from the one table. Invocations
(`POST /serving-endpoints/{name}/invocations`, and `.../served-models/{entity}/invocations` to pin
one served entity) take a faster path of their own: the token and the CAN QUERY decision are
each reused for a second (`ServingRuntime`), the prediction runs on the event loop, and the
inference row is queued for a background writer. The answering entity is in the
`served-entity` header; bodies past 16 MB are refused with 413 before they are read whole.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from api.errors import HTTP_STATUS, error
from api.http import MAX_BODY, read_body
from catalog.client import Cairn, Metastore
from catalog.entities import Source
from catalog.errors import CairnError
from catalog.paging import every
from pipelines.serving.invoke import invoke
from pipelines.serving.runtime import ServingRuntime
from pipelines.serving.shape import create_args, endpoint_json, update_args

BASE = "/api/2.0/serving-endpoints"
ENTITY_HEADER = "served-entity"


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
            Route("/serving-endpoints/{name}/invocations", self._invocations, methods=["POST"]),
            Route("/serving-endpoints/{name}/served-models/{entity}/invocations", self._invocations, methods=["POST"]),
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
    def _principal(self, request: Request, request_id: str) -> str | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        hit = self._tokens.get(token) if token else None
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = self.metastore.authenticate(token, {"method": request.method, "path": request.url.path}, Source.REST, request_id,
                                                refused="malformed Authorization header" if header and not token else None)
        if principal is None:
            return None
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[token] = (now + self.runtime.authz_ttl, principal)
        return principal

    async def _authorized(self, request: Request, request_id: str) -> Any:
        """(principal, endpoint) or an error Response: 401 without a valid token, 403/404 without CAN QUERY."""
        principal = self._principal(request, request_id)
        if principal is None:
            return None, error("UNAUTHENTICATED", "send Authorization: Bearer <token>; create one with `cairn token create`", request_id)
        name = request.path_params["name"].lower()
        ep = self.runtime.cached(principal, name, request_id)
        if ep is None:
            try:
                ep = await anyio.to_thread.run_sync(self.runtime.authorize, principal, name, request_id)
            except CairnError as exc:
                if exc.code == "NOT_FOUND" and name in self.runtime.endpoints and not getattr(exc, "denied", False):
                    self.runtime.drop(name)  # deleted elsewhere (another server or the CLI)
                return principal, error(exc.code, str(exc), request_id)
        return principal, ep

    async def _invocations(self, request: Request) -> Response:
        request_id = uuid.uuid4().hex
        principal, ep = await self._authorized(request, request_id)
        if isinstance(ep, Response):
            return ep
        try:
            raw = await read_body(request, self.max_body)
        except CairnError as exc:
            return error(exc.code, str(exc), request_id)
        answer = await invoke(self.runtime, ep, principal, raw, request_id, request.path_params.get("entity"), _status)
        headers = {"x-request-id": request_id}
        if answer.entity is not None:
            headers[ENTITY_HEADER] = answer.entity.name
        return Response(answer.body, status_code=answer.status, media_type="application/json", headers=headers)

    async def _metrics(self, request: Request) -> Response:
        request_id = uuid.uuid4().hex
        _principal, ep = await self._authorized(request, request_id)
        if isinstance(ep, Response):
            return ep
        return PlainTextResponse(ep.metrics(), media_type="text/plain; version=0.0.4")
