"""`cairn serve`: one ASGI app with the UC REST API, the OpenLineage endpoint, health and metrics.

Every request runs as the principal of its bearer token (`cairn token create`); a missing or bad
token is 401. Handlers only parse, call governed services and serialize; authorization and audit
happen in the services. Errors map to HTTP statuses in one table (api/openlineage.py) and never
carry a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from api import uc_rest
from api.openlineage import error
from api.openlineage import make_app as openlineage_app
from catalog.client import Cairn, Metastore
from catalog.entities import Source
from catalog.errors import CairnError
from catalog.service.tokens import authenticate

log = logging.getLogger("cairn.api")


class Metrics:
    """Prometheus counters and a latency histogram, per route."""

    BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, list[int]] = defaultdict(lambda: [0] * (len(self.BUCKETS) + 1))
        self.latency_sum: dict[str, float] = defaultdict(float)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(route, method, status)] += 1
            buckets = self.latency[route]
            for i, b in enumerate(self.BUCKETS):
                if seconds <= b:
                    buckets[i] += 1
            buckets[-1] += 1
            self.latency_sum[route] += seconds

    def render(self) -> str:
        out = ["# TYPE cairn_requests_total counter"]
        with self.lock:
            for (route, method, status), n in sorted(self.requests.items()):
                out.append(f'cairn_requests_total{{route="{route}",method="{method}",status="{status}"}} {n}')
            errors = sum(n for (_r, _m, s), n in self.requests.items() if s >= 500)
            denials = sum(n for (_r, _m, s), n in self.requests.items() if s in (401, 403))
            out += ["# TYPE cairn_errors_total counter", f"cairn_errors_total {errors}",
                    "# TYPE cairn_denials_total counter", f"cairn_denials_total {denials}",
                    "# TYPE cairn_request_seconds histogram"]
            for route, buckets in sorted(self.latency.items()):
                for b, n in zip(self.BUCKETS, buckets):
                    out.append(f'cairn_request_seconds_bucket{{route="{route}",le="{b}"}} {n}')
                out.append(f'cairn_request_seconds_bucket{{route="{route}",le="+Inf"}} {buckets[-1]}')
                out.append(f'cairn_request_seconds_sum{{route="{route}"}} {self.latency_sum[route]:.6f}')
                out.append(f'cairn_request_seconds_count{{route="{route}"}} {buckets[-1]}')
        return "\n".join(out) + "\n"


def make_app(metastore: Metastore, threads: int | None = None) -> Starlette:
    """The app. Governed calls run on worker threads, CAIRN_API_THREADS per process (default 1): they
    hold the GIL while they work, so more threads only add switching and tail latency, unless
    requests wait on I/O (long SQL through the API); scale with `cairn serve --workers` instead."""
    metrics = Metrics()
    workers = anyio.CapacityLimiter(threads or int(os.environ.get("CAIRN_API_THREADS", "1")))

    def principal_of(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        return authenticate(metastore.engine, token) if token else None

    def handler(fn: Callable[[Cairn, Request, Any], Any], source: Source = Source.REST) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Any:
            start = time.perf_counter()
            request_id = uuid.uuid4().hex
            route = request.scope.get("route").path if request.scope.get("route") else request.url.path  # type: ignore[union-attr]
            response = await _handle(request, request_id)
            metrics.observe(route, request.method, response.status_code, time.perf_counter() - start)
            response.headers["x-request-id"] = request_id
            return response

        async def _handle(request: Request, request_id: str) -> Any:
            body: Any = {}
            if request.method in ("POST", "PATCH", "PUT"):
                raw = await request.body()
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError as exc:
                        return error("INVALID_ARGUMENT", f"the body is not JSON: {exc}", request_id)

            def work() -> Any:  # one hop to a worker thread: authenticate, then the governed call
                principal = principal_of(request)
                if principal is None:
                    return error("UNAUTHENTICATED", "send Authorization: Bearer <token>; create one with `cairn token create`", request_id)
                return JSONResponse(fn(metastore.as_principal(principal, source, request_id), request, body))

            try:
                return await anyio.to_thread.run_sync(work, limiter=workers)
            except CairnError as exc:
                return error(exc.code, str(exc), request_id)
            except Exception:
                log.exception("internal error (request id %s)", request_id)
                return error("INTERNAL", f"internal error (request id {request_id})", request_id)

        return endpoint

    async def healthz(request: Request) -> JSONResponse:
        try:
            await run_in_threadpool(lambda: metastore.engine.connect().close())
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc)[:200]}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def prometheus(request: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    def graphql(c: Cairn, request: Request, body: Any) -> Any:
        from api.graphql import execute

        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return {"errors": [{"message": "POST a JSON body with a 'query' string", "extensions": {"code": "INVALID_ARGUMENT"}}]}
        return execute(c, body["query"], body.get("variables"), body.get("operationName"))

    async def graphiql(request: Request) -> Any:
        from starlette.responses import HTMLResponse

        return HTMLResponse(GRAPHIQL)

    routes = [
        Route("/graphql", graphiql, methods=["GET"]),
        Route("/graphql", handler(graphql, Source.GRAPHQL), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        *uc_rest.routes(handler),
    ]
    app = Starlette(routes=routes)
    # OpenLineage producers post to /api/v1/lineage with the same bearer tokens.
    app.mount("/api/v1", openlineage_app(metastore, lambda token: authenticate(metastore.engine, token), prefix=""))
    app.state.metrics = metrics
    return app


GRAPHIQL = """<!doctype html><html><head><title>Cairn GraphQL</title>
<link rel="stylesheet" href="https://unpkg.com/graphiql/graphiql.min.css"></head>
<body style="margin:0"><div id="g" style="height:100vh"></div>
<script src="https://unpkg.com/react/umd/react.production.min.js"></script>
<script src="https://unpkg.com/react-dom/umd/react-dom.production.min.js"></script>
<script src="https://unpkg.com/graphiql/graphiql.min.js"></script>
<script>
const token = localStorage.getItem("cairnToken") || prompt("Cairn token (cairn token create)");
localStorage.setItem("cairnToken", token);
const fetcher = GraphiQL.createFetcher({url: "/graphql", headers: {Authorization: "Bearer " + token}});
ReactDOM.render(React.createElement(GraphiQL, {fetcher}), document.getElementById("g"));
</script></body></html>"""


def app_from_env() -> Starlette:
    """The app over the metastore named by CAIRN_HOME / CAIRN_METASTORE_URL (each worker process opens its own)."""
    return make_app(Metastore.open())


def serve(metastore: Metastore, host: str = "127.0.0.1", port: int = 8080, workers: int = 1) -> None:
    """Serve on one port. With several workers, each is a process with its own listening socket on
    the port (SO_REUSEPORT, so the kernel spreads connections across them), its own metastore
    connection pool and authorization cache (kept exact by the change log)."""
    import uvicorn

    if workers <= 1:
        uvicorn.run(make_app(metastore), host=host, port=port, log_level="warning")
        return
    import multiprocessing
    import signal

    os.environ["CAIRN_HOME"] = str(metastore.settings.home)
    os.environ["CAIRN_METASTORE_URL"] = metastore.settings.metastore_url
    metastore.close()
    procs = [multiprocessing.get_context("spawn").Process(target=_worker, args=(host, port), daemon=True) for _ in range(workers)]
    for p in procs:
        p.start()
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping and all(p.is_alive() for p in procs):
        time.sleep(0.2)
    for p in procs:
        p.terminate()
    for p in procs:
        p.join(10)
    failed = [p.exitcode for p in procs if p.exitcode not in (0, -signal.SIGTERM)]
    if failed and not stopping:
        raise SystemExit(f"a server worker exited with {failed[0]}; is port {port} in use?")


def _worker(host: str, port: int) -> None:
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    uvicorn.Server(uvicorn.Config(app_from_env(), log_level="warning")).run(sockets=[sock])
