"""The one table from an error's stable code to what a client sees, for every transport.

REST (UC REST), OpenLineage and GraphQL answer errors through these functions only: REST and
OpenLineage as `{"error_code", "message", "request_id"}` with the HTTP status of the code, GraphQL as
an `errors` entry whose `extensions.code` is the code. Anything that is not a CairnError is logged
here and answered as INTERNAL with the request id, never with a traceback.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from graphql import GraphQLError
from starlette.responses import JSONResponse

from catalog.errors import CairnError

log = logging.getLogger("cairn.api")

HTTP_STATUS = {
    "INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
    "CONFLICT": 409, "FAILED_PRECONDITION": 412, "PAYLOAD_TOO_LARGE": 413, "UNAVAILABLE": 503, "INTERNAL": 500,
}


class TooLarge(CairnError):
    """The body passed the route's size limit (HTTP 413)."""

    code = "PAYLOAD_TOO_LARGE"


def status_of(code: str) -> int:
    """The HTTP status of an error code (500 for a code the table does not know)."""
    return HTTP_STATUS.get(code, 500)


def describe(exc: BaseException, request_id: str) -> tuple[str, str]:
    """(code, message) a client may see for `exc`: a CairnError's own, INTERNAL for anything else
    (logged with its traceback here, answered with the request id only)."""
    if isinstance(exc, CairnError):
        return exc.code, str(exc)
    log.error("internal error (request id %s)", request_id, exc_info=exc)
    return "INTERNAL", f"internal error (request id {request_id})"


def error(code: str, message: str, request_id: str) -> JSONResponse:
    """A REST / OpenLineage error response."""
    return JSONResponse({"error_code": code, "message": message, "request_id": request_id}, status_code=status_of(code))


def response_for(exc: BaseException, request_id: str) -> JSONResponse:
    """The REST / OpenLineage response for an exception a route raised."""
    return error(*describe(exc, request_id), request_id)


def graphql_error(exc: GraphQLError, request_id: str) -> dict[str, Any]:
    """A GraphQL `errors` entry: a resolver's CairnError keeps its message and code; a validation
    error of the query itself is INVALID_ARGUMENT; anything else is INTERNAL with the request id."""
    ext = dict(exc.extensions or {})
    message = exc.message
    original = exc.original_error
    if "code" not in ext:
        if original is None:
            ext["code"] = "INVALID_ARGUMENT"  # a validation error in the query itself
        else:
            ext["code"], message = describe(original, request_id or uuid.uuid4().hex)
    out: dict[str, Any] = {"message": message, "extensions": ext}
    if exc.path:
        out["path"] = exc.path
    if exc.locations and ext["code"] != "INTERNAL":
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in exc.locations]
    return out


def refusal(message: str, locations: Any = None) -> dict[str, Any]:
    """The GraphQL body of a query refused before it ran (INVALID_ARGUMENT)."""
    error: dict[str, Any] = {"message": message, "extensions": {"code": "INVALID_ARGUMENT"}}
    if locations:
        error["locations"] = [{"line": loc.line, "column": loc.column} for loc in locations]
    return {"errors": [error]}
