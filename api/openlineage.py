"""`POST /api/v1/lineage`: the OpenLineage HTTP endpoint.

`cairn serve` routes it through the same handler as every other route (api/server.py): bearer
token, bounded body (gzip allowed, bounded after decompression too), audit of refused
authentication. `make_app` serves it alone, for producers that only need lineage. 201 when stored;
400 with the reason when the event is invalid or too big (edges per event); 403/404 when the
principal may not write or see a catalog table it names, by any of the dataset's names. No
tracebacks reach the client.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.errors import error
from api.http import MAX_BODY, json_body
from catalog.client import Cairn, Metastore
from catalog.entities import Source
from catalog.errors import CairnError
from catalog.service.tokens import audit_refused

log = logging.getLogger("cairn.api")


def ingest(c: Cairn, request: Request, body: Any) -> JSONResponse:
    """The route's work, as the request's principal: store the event (201)."""
    return JSONResponse(c.lineage.ingest_openlineage(body), status_code=201)


def make_app(metastore: Metastore, authenticate: Callable[[str], str | None] | None = None, prefix: str = "/api/v1",
             max_body: int = MAX_BODY) -> Starlette:
    async def lineage(request: Request) -> JSONResponse:
        request_id = uuid.uuid4().hex
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        principal = authenticate(token) if (authenticate and token) else None
        try:
            if principal is None:
                reason = "unknown token" if token else "missing token"
                await run_in_threadpool(audit_refused, metastore.audit_log, reason, {"method": request.method, "path": request.url.path},
                                        Source.REST, request_id)
                return error("UNAUTHENTICATED", "send Authorization: Bearer <token> for a known principal", request_id)
            body = await json_body(request, max_body, gzip_ok=True)
            client = metastore.as_principal(principal, Source.REST, request_id)
            return await run_in_threadpool(ingest, client, request, body)
        except CairnError as exc:
            return error(exc.code, str(exc), request_id)
        except Exception:  # never a traceback to the client
            log.exception("internal error (request id %s)", request_id)
            return error("INTERNAL", f"internal error (request id {request_id})", request_id)

    return Starlette(routes=[Route(f"{prefix}/lineage", lineage, methods=["POST"])])
