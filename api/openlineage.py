"""`POST /api/v1/lineage`: the OpenLineage HTTP endpoint, as a small ASGI app.

The service issue mounts it in `cairn serve`; until then `make_app` serves it alone. Requests are
authenticated with `Authorization: Bearer <token>` through the `authenticate` callable the app is
built with (no callable, or an unknown token: 401). Bodies may be gzip-compressed. 201 when stored;
400 with the reason when the event is invalid; 403/404 when the principal may not write or see a
catalog table it names. No tracebacks reach the client.
"""

from __future__ import annotations

import gzip
import json
import logging
import uuid
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from catalog.client import Metastore
from catalog.entities import Source
from catalog.errors import CairnError

log = logging.getLogger("cairn.api")

HTTP_STATUS = {
    "INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
    "CONFLICT": 409, "FAILED_PRECONDITION": 412, "UNAVAILABLE": 503, "INTERNAL": 500,
}


def error(code: str, message: str, request_id: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message, "request_id": request_id}, status_code=HTTP_STATUS.get(code, 500))


def make_app(metastore: Metastore, authenticate: Callable[[str], str | None] | None = None, prefix: str = "/api/v1") -> Starlette:
    async def lineage(request: Request) -> JSONResponse:
        request_id = uuid.uuid4().hex
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        principal = authenticate(token) if (authenticate and token) else None
        if principal is None:
            return error("UNAUTHENTICATED", "send Authorization: Bearer <token> for a known principal", request_id)
        raw = await request.body()
        try:
            if request.headers.get("content-encoding", "").lower() == "gzip":
                raw = gzip.decompress(raw)
            body = json.loads(raw)
        except (OSError, ValueError) as exc:
            return error("INVALID_ARGUMENT", f"the body is not {'gzip ' if 'gzip' in request.headers.get('content-encoding', '') else ''}JSON: {exc}", request_id)
        try:
            client = metastore.as_principal(principal, Source.REST, request_id)
            result = await _run(client.lineage.ingest_openlineage, body)
        except CairnError as exc:
            return error(exc.code, str(exc), request_id)
        except Exception:  # never a traceback to the client
            log.exception("internal error (request id %s)", request_id)
            return error("INTERNAL", f"internal error (request id {request_id})", request_id)
        return JSONResponse(result, status_code=201)

    return Starlette(routes=[Route(f"{prefix}/lineage", lineage, methods=["POST"])])


async def _run(fn, *args):  # type: ignore[no-untyped-def]
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
