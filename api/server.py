"""`cairn serve`: one ASGI app with GraphQL (and its GraphiQL page), the UC REST API, the OpenLineage
endpoint, health and metrics.

Every governed route goes through one request handler (api/handler.py): the principal of its bearer
token (`cairn token create`; a missing or bad token is 401 and leaves a DENIED `authenticate` audit
row), bounded and checked bodies (api/http.py), errors mapped through one table (api/errors.py),
never a traceback. Handlers only parse, call governed services and serialize; authorization and
audit happen in the services. With several workers, api/balancer.py spreads the connections.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from api import features_rest, jobs_rest, openlineage, serving_rest, uc_rest, ui
from api.balancer import Balancer, HandedConnections, settle
from api.graphiql import GRAPHIQL, GRAPHIQL_DIR, GRAPHIQL_FILES, graphiql, graphiql_asset
from api.graphql import execute, may_be_long
from api.handler import Handler
from api.http import MAX_BODY, MAX_GRAPHQL_BODY
from api.metrics import Metrics
from api.transport import CoalescingHttpToolsProtocol
from catalog.client import Cairn, Metastore, start_webhook_sender
from catalog.entities import Source

__all__ = ["GRAPHIQL", "GRAPHIQL_DIR", "GRAPHIQL_FILES", "app_from_env", "make_app", "serve"]


def make_app(metastore: Metastore, threads: int | None = None, max_body: int = MAX_BODY, max_graphql_body: int = MAX_GRAPHQL_BODY) -> Starlette:
    """The app. By default (`threads` / CAIRN_API_THREADS = 0) governed calls run on the event loop,
    one at a time in arrival order: they hold the GIL while they work, and handing each to a thread
    cost a fifth of a request's CPU in lock handoffs and wakeups; scale with `cairn serve --workers`.
    Calls that may be long (SQL through GraphQL's `sql`, long query texts, OpenLineage events) run on
    up to CAIRN_API_LONG_THREADS threads instead, so /healthz, /metrics and short calls answer
    meanwhile. With threads > 0 every call runs on that many threads per process.

    Every body is bounded: `max_body` bytes (CAIRN_API_MAX_BODY, 16 MiB) for REST and OpenLineage,
    `max_graphql_body` (CAIRN_API_MAX_GRAPHQL_BODY, 1 MiB) for GraphQL; past it, 413."""
    metrics = Metrics()
    if threads is None:
        threads = int(os.environ.get("CAIRN_API_THREADS", "0"))
    handler = Handler(metastore, metrics, threads, int(os.environ.get("CAIRN_API_LONG_THREADS", "4")), max_body)

    async def healthz(request: Request) -> JSONResponse:
        try:
            await run_in_threadpool(metastore.ping)
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc)[:200]}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def prometheus(request: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    serving = serving_rest.Serving(metastore, handler, max_body)
    routes = [
        *serving.routes(),  # first: invocations are the hottest path, and Starlette tries routes in order
        Route("/graphql", graphiql, methods=["GET"]),
        Route("/graphql", handler(graphql, Source.GRAPHQL, {"query": str, "variables": dict, "operationName": str}, limit=max_graphql_body,
                                  long=lambda b: may_be_long(b.get("query") or "")), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/static/graphiql/{name}", graphiql_asset, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        openlineage.route(handler),  # OpenLineage producers post events with the same bearer tokens
        *uc_rest.routes(handler),
        *features_rest.routes(handler),
        *(jobs := jobs_rest.JobsRest(metastore, handler)).routes(),
        *ui.routes(),  # the web UI at /
    ]
    app = Starlette(routes=routes, lifespan=_both(serving.lifespan, jobs.lifespan),
                    middleware=[Middleware(serving_rest.Invocations, serving=serving)])
    app.state.metrics = metrics
    return app


def _both(first: Any, second: Any) -> Any:
    """One app lifespan running two (the second closes first)."""
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with first(app), second(app):
            yield

    return lifespan


def graphql(c: Cairn, request: Request, body: Any) -> JSONResponse:
    """POST /graphql as the request's principal."""
    if not isinstance(body.get("query"), str):
        result = {"errors": [{"message": "POST a JSON body with a 'query' string", "extensions": {"code": "INVALID_ARGUMENT"}}]}
    else:
        result = execute(c, body["query"], body.get("variables"), body.get("operationName"))
    # Refused before it ran (no `data`: unparsable, invalid or over a limit): 400, as the
    # GraphQL-over-HTTP spec has it; errors while running stay in a 200's `errors`.
    return JSONResponse(result, status_code=200 if "data" in result else 400)


def app_from_env() -> Starlette:
    """The app over the metastore named by CAIRN_HOME / CAIRN_METASTORE_URL (each worker process opens its own)."""
    return make_app(Metastore.open())


def serve(metastore: Metastore, host: str = "127.0.0.1", port: int = 8080, workers: int = 1) -> None:
    """Serve on one port. With several workers, each is a process with its own metastore connection
    pool and authorization cache (kept exact by the change log); this process accepts connections
    and hands each to the worker with the fewest open ones (see api/balancer.py)."""
    if workers <= 1:
        app = make_app(metastore)
        settle()
        start_webhook_sender(metastore)  # registry webhooks leave from the outbox while the server runs
        uvicorn.run(app, host=host, port=port, log_level="warning", http=CoalescingHttpToolsProtocol)
        return
    import multiprocessing

    try:
        listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET, backlog=2048)
    except OSError as exc:
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    os.environ["CAIRN_HOME"] = str(metastore.settings.home)
    os.environ["CAIRN_METASTORE_URL"] = metastore.settings.metastore_url
    metastore.close()
    spawn = multiprocessing.get_context("spawn")
    channels, procs = [], []
    for _ in range(workers):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # not daemonic: a worker starts a child of its own (the inference-table writer); it stops
        # when this process closes its channel, and is terminated and joined below
        procs.append(spawn.Process(target=_worker, args=(theirs,)))
        procs[-1].start()
        theirs.close()
        channels.append(ours)
    balancer = Balancer(listener, channels, procs)
    signal.signal(signal.SIGTERM, balancer.stop)
    signal.signal(signal.SIGINT, balancer.stop)
    try:
        balancer.run()
    finally:
        listener.close()
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(10)
    failed = [p.exitcode for p in procs if p.exitcode not in (0, -signal.SIGTERM)]
    if failed and not balancer.stopping:
        raise SystemExit(f"a server worker exited with {failed[0]}")


def _worker(channel: socket.socket) -> None:
    app = app_from_env()
    settle()
    HandedConnections(uvicorn.Config(app, log_level="warning", http=CoalescingHttpToolsProtocol), channel).run()
