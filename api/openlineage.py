"""`POST /api/v1/lineage`: the OpenLineage HTTP endpoint.

It goes through the one request handler (api/handler.py) like every other route: bearer token,
bounded body (gzip allowed, bounded after decompression too), audit of refused authentication,
request id, metrics, scheduling. `cairn serve` mounts it; `make_app` serves it alone, for producers
that only need lineage. 201 when stored; 400 with the reason when the event is invalid or too big
(edges per event); 403/404 when the principal may not write or see a catalog table it names, by any
of the dataset's names. No tracebacks reach the client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.handler import Handler
from api.http import MAX_BODY
from api.metrics import Metrics
from catalog.client import Cairn, Metastore


def ingest(c: Cairn, request: Request, body: Any) -> JSONResponse:
    """The route's work, as the request's principal: store the event (201)."""
    return JSONResponse(c.lineage.ingest_openlineage(body), status_code=201)


def route(handler: Handler, prefix: str = "/api/v1") -> Route:
    """The lineage route; events may be big, so each runs on a thread of its own."""
    return Route(f"{prefix}/lineage", handler(ingest, gzip_ok=True, long=lambda b: True), methods=["POST"])


def make_app(metastore: Metastore, authenticate: Callable[[str], str | None] | None = None, prefix: str = "/api/v1",
             max_body: int = MAX_BODY) -> Starlette:
    """An app serving only the lineage route; `authenticate(token)` may replace the metastore's tokens."""
    metrics = Metrics()
    app = Starlette(routes=[route(Handler(metastore, metrics, max_body=max_body, authenticate=authenticate), prefix)])
    app.state.metrics = metrics
    return app
