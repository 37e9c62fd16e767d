"""One invocation, from raw body to predictions: parse, route, predict, log, count.

Only what passed authorization reaches here; every such request (answered or refused for its
content) becomes a row of the endpoint's inference table, with its status and latency.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from orjson import dumps as _dumps
from orjson import loads as _loads

from catalog.errors import CairnError, Internal, InvalidArgument
from pipelines.serving import formats
from pipelines.serving.runtime import Endpoint, Entity, ServingRuntime

log = logging.getLogger("cairn.serving")
MAX_LOGGED = 1 << 20  # request and response text kept per inference row


class Answer:
    __slots__ = ("body", "entity", "error", "status")

    def __init__(self, status: int, body: bytes, entity: Entity | None, error: CairnError | None = None) -> None:
        self.status, self.body, self.entity, self.error = status, body, entity, error


async def invoke(runtime: ServingRuntime, ep: Endpoint, principal: str, raw: bytes, request_id: str,
                 pinned: str | None, status_of: Callable[[str], int]) -> Answer:
    """Answer one request to `ep` (already authorized for `principal`). Errors become an Answer
    with their status (`status_of(code)`), never an exception."""
    started = time.perf_counter()
    entity: Entity | None = None
    client_id = None
    try:
        try:
            body = _loads(raw) if raw else None
        except ValueError as exc:
            raise InvalidArgument(f"the body is not JSON: {exc}") from None
        if isinstance(body, dict) and isinstance(body.get("client_request_id"), str):
            client_id = body["client_request_id"][:200]
        records, rows = formats.parse(body)
        entity = ep.choose(pinned)
        model = await runtime.ready_model(entity)
        predictions = await model.batch(records, rows) if model.batch is not None else model.predict(records, rows)
        answer = Answer(200, _dumps({"predictions": predictions}), entity)
    except CairnError as exc:
        answer = Answer(status_of(exc.code), _dumps({"error_code": exc.code, "message": str(exc), "request_id": request_id}), entity, exc)
    except Exception as exc:
        if type(exc).__name__ == "MlflowException":  # the model refused the input (schema enforcement)
            err: CairnError = InvalidArgument(str(getattr(exc, "message", exc))[:2000])
        else:
            log.exception("internal error answering %s (request id %s)", ep.name, request_id)
            err = Internal(f"internal error (request id {request_id})")
        answer = Answer(status_of(err.code), _dumps({"error_code": err.code, "message": str(err), "request_id": request_id}), entity, err)
    seconds = time.perf_counter() - started
    if entity is not None:
        entity.observe(answer.status, seconds)
    if ep.log is not None:
        ep.log.append(request_id, client_id, answer.status, seconds * 1000, entity.name if entity else None,
                      entity.entity.model_version if entity else None, principal,
                      raw[:MAX_LOGGED].decode("utf-8", "replace"), answer.body[:MAX_LOGGED].decode("utf-8", "replace"))
    return answer
