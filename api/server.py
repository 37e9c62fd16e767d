"""`cairn serve`: one ASGI app with the UC REST API, the OpenLineage endpoint, health and metrics.

Every request runs as the principal of its bearer token (`cairn token create`); a missing or bad
token is 401, and leaves a DENIED `authenticate` audit row. Handlers only parse, call governed
services and serialize; authorization and audit happen in the services. Bodies are bounded and
checked against each route's shape (api/http.py); errors map to HTTP statuses in one table there
and never carry a traceback.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import os
import selectors
import signal
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from api import openlineage, uc_rest
from api.graphql import execute, may_be_long
from api.http import MAX_BODY, MAX_GRAPHQL_BODY, Shape, check, error, json_body
from catalog.client import Cairn, Metastore
from catalog.entities import Source
from catalog.errors import CairnError, InvalidArgument
from catalog.service.base import GroupCommit
from catalog.service.tokens import audit_refused, identify

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


class _OneAtATime:
    """Runs calls on the event loop one at a time, in the order their requests arrived.

    The calls waiting when a turn starts run back to back (up to `BATCH`), their audit rows are
    committed in one transaction (`GroupCommit.holding`), and only then are they answered; then
    the loop reads the sockets, so newly arrived requests queue behind those already waiting (first
    come, first served) and /healthz and /metrics answer between turns.
    """

    BATCH = 16

    def __init__(self, audit_log: GroupCommit) -> None:
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
        ran = []
        with self.audit_log.holding() as held:
            while self.queue and len(ran) < self.BATCH:
                call, done = self.queue.popleft()
                if done.cancelled():  # its client is gone: nothing was done, nothing to answer
                    continue
                first = len(held)
                try:
                    result, failed = call(), None
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
    limiter = anyio.CapacityLimiter(threads) if threads > 0 else None
    long_calls = anyio.CapacityLimiter(int(os.environ.get("CAIRN_API_LONG_THREADS", "4")))
    in_order = _OneAtATime(metastore.audit_log)

    def principal_of(request: Request, source: Source, request_id: str) -> str | None:
        """The request's principal; None (audited with the reason) when its token proves none."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        principal, reason = identify(metastore.engine, token)
        if principal is None:
            if header and not token:
                reason = "malformed Authorization header"
            audit_refused(metastore.audit_log, reason, {"method": request.method, "path": request.url.path}, source, request_id)
        return principal

    def handler(fn: Callable[[Cairn, Request, Any], Any], source: Source = Source.REST, shape: Shape = None, *,
                limit: int | None = None, gzip_ok: bool = False, long: Callable[[Any], bool] | None = None) -> Callable[[Request], Any]:
        """An endpoint around `fn(cairn, request, body)`: read and check the body (`shape`, see
        api.http.check), authenticate (a bad body from an unknown sender is a 401 like any other),
        run the governed call, map errors through the one table.
        `long(body)` says whether the call may be long, so it runs on a thread of its own."""
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
            refused: CairnError | None = None  # a bad request, answered once its sender is known (401 first)
            try:
                if request.method in ("POST", "PATCH", "PUT"):
                    body = check(await json_body(request, limit or max_body, gzip_ok), shape if shape is not None else {})
                for key, value in request.path_params.items():
                    if isinstance(value, int) and not 0 <= value < 2**63:
                        raise InvalidArgument(f"{key} {value} is out of range")
            except CairnError as exc:
                body, refused = {}, exc
            except Exception:  # a client gone mid-body, or a bug: no traceback either way
                log.exception("internal error reading the request (request id %s)", request_id)
                return error("INTERNAL", f"internal error (request id {request_id})", request_id)

            def work() -> Any:  # authenticate, then the governed call
                principal = principal_of(request, source, request_id)
                if principal is None:
                    return error("UNAUTHENTICATED", "send Authorization: Bearer <token>; create one with `cairn token create`", request_id)
                if refused is not None:
                    raise refused
                result = fn(metastore.as_principal(principal, source, request_id), request, body)
                return result if isinstance(result, Response) else JSONResponse(result)

            try:
                if limiter is not None:
                    return await anyio.to_thread.run_sync(work, limiter=limiter)
                if long is not None and long(body):
                    return await anyio.to_thread.run_sync(work, limiter=long_calls)
                return await in_order.run(work)
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
        if not isinstance(body.get("query"), str):
            result = {"errors": [{"message": "POST a JSON body with a 'query' string", "extensions": {"code": "INVALID_ARGUMENT"}}]}
        else:
            result = execute(c, body["query"], body.get("variables"), body.get("operationName"))
        # Refused before it ran (no `data`: unparsable, invalid or over a limit): 400, as the
        # GraphQL-over-HTTP spec has it; errors while running stay in a 200's `errors`.
        return JSONResponse(result, status_code=200 if "data" in result else 400)

    async def graphiql(request: Request) -> Any:
        from starlette.responses import HTMLResponse

        if not all((GRAPHIQL_DIR / f).is_file() for f in GRAPHIQL_FILES):
            return HTMLResponse(GRAPHIQL_MISSING, status_code=503)
        return HTMLResponse(GRAPHIQL)

    graphql_body = {"query": str, "variables": dict, "operationName": str}
    routes = [
        Route("/graphql", graphiql, methods=["GET"]),
        Route("/graphql", handler(graphql, Source.GRAPHQL, graphql_body, limit=max_graphql_body,
                                  long=lambda b: may_be_long(b.get("query") or "")), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/static/graphiql/{name}", graphiql_asset, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        # OpenLineage producers post events with the same bearer tokens; events may be big: a thread.
        Route("/api/v1/lineage", handler(openlineage.ingest, gzip_ok=True, long=lambda b: True), methods=["POST"]),
        *uc_rest.routes(handler),
    ]
    app = Starlette(routes=routes)
    app.state.metrics = metrics
    return app


async def graphiql_asset(request: Request) -> Any:
    """The GraphiQL bundle built at install time (api/web), served from the package: no CDN."""
    from starlette.responses import FileResponse

    name = request.path_params["name"]
    if name == "schema.json":  # GraphiQL takes the schema from here: its introspection query is deeper than queries may be
        from api.graphql import schema

        return JSONResponse(schema.introspect(), headers={"Cache-Control": "no-cache"})
    if name not in GRAPHIQL_FILES or not (GRAPHIQL_DIR / name).is_file():
        return PlainTextResponse("not found", status_code=404)
    kind = "text/css" if name.endswith(".css") else "text/javascript"
    return FileResponse(GRAPHIQL_DIR / name, media_type=kind, headers={"Cache-Control": "public, max-age=3600"})


GRAPHIQL_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
GRAPHIQL_FILES = ("graphiql.js", "graphiql.css")
GRAPHIQL = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Cairn GraphQL</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/graphiql/graphiql.css">
<style>
html, body, #graphiql { height: 100%; margin: 0; }
.cairn-page { display: flex; flex-direction: column; height: 100%; }
.cairn-bar { display: flex; gap: 8px; align-items: center; padding: 6px 12px; font: 14px system-ui, sans-serif; border-bottom: 1px solid #ddd; }
.cairn-bar input { flex: 0 1 28em; font: inherit; padding: 2px 6px; }
.cairn-note { color: #666; }
.cairn-graphiql { flex: 1; min-height: 0; }
</style></head>
<body><div id="graphiql"></div><script src="/static/graphiql/graphiql.js"></script></body></html>"""
GRAPHIQL_MISSING = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Cairn GraphQL</title></head>
<body><p>GraphiQL is not built in this installation: run <code>make install</code> (or <code>cd api/web &amp;&amp; npm ci &amp;&amp;
npm run build</code>). GraphQL itself answers POST requests at this address.</p></body></html>"""


def app_from_env() -> Starlette:
    """The app over the metastore named by CAIRN_HOME / CAIRN_METASTORE_URL (each worker process opens its own)."""
    return make_app(Metastore.open())


def serve(metastore: Metastore, host: str = "127.0.0.1", port: int = 8080, workers: int = 1) -> None:
    """Serve on one port. With several workers, each is a process with its own metastore connection
    pool and authorization cache (kept exact by the change log); this process accepts connections
    and hands each to the worker with the fewest open ones (see `_Balancer`)."""
    from catalog.service.webhook_delivery import start_sender

    if workers <= 1:
        app = make_app(metastore)
        _settle()
        start_sender(metastore)  # registry webhooks leave from the outbox while the server runs
        uvicorn.run(app, host=host, port=port, log_level="warning")
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
        procs.append(spawn.Process(target=_worker, args=(theirs,), daemon=True))
        procs[-1].start()
        theirs.close()
        channels.append(ours)
    balancer = _Balancer(listener, channels, procs)
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


class _Balancer:
    """Accepts on the port and passes each connection (its file descriptor, over a Unix socket) to
    the worker with the fewest open connections, round-robin among equals.

    The kernel's own spreading (SO_REUSEPORT hashes each connection to a worker) is uneven for a few
    dozen long-lived keep-alive connections: 19 against 13 is common, and the busier worker's
    clients wait half again as long. Accepting starts when every worker is ready, so early clients
    do not all land on the first worker up. Workers report each closed connection with one byte.
    """

    def __init__(self, listener: Any, channels: list[Any], procs: list[Any]) -> None:
        self.listener, self.channels, self.procs = listener, channels, procs
        self.open = [0] * len(channels)
        self.ready = [False] * len(channels)
        self.next = 0
        self.stopping = False

    def stop(self, *_: Any) -> None:
        self.stopping = True

    def run(self) -> None:
        self.listener.setblocking(False)
        with selectors.DefaultSelector() as sel:
            for i, ch in enumerate(self.channels):
                sel.register(ch, selectors.EVENT_READ, i)
            listening = False
            while not self.stopping:
                for key, _ in sel.select(0.2):
                    if key.data is None:
                        self._accept()
                        continue
                    self._heard(key.data)
                    if all(self.ready) and not listening:
                        sel.register(self.listener, selectors.EVENT_READ, None)
                        listening = True
                if not all(p.is_alive() for p in self.procs):
                    return

    def _heard(self, i: int) -> None:
        data = self.channels[i].recv(4096)  # empty when the worker is gone; run() notices its exit
        self.open[i] -= data.count(b"x")
        if b"r" in data:
            self.ready[i] = True

    def _accept(self) -> None:
        for _ in range(64):
            try:
                conn, _addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            n = len(self.channels)
            i = min(((self.next + k) % n for k in range(n)), key=lambda j: self.open[j])
            self.next = (i + 1) % n
            with conn:
                socket.send_fds(self.channels[i], [b"c"], [conn.fileno()])
            self.open[i] += 1


def _worker(channel: socket.socket) -> None:
    app = app_from_env()
    _settle()
    _HandedConnections(uvicorn.Config(app, log_level="warning"), channel).run()


def _settle() -> None:
    """Move everything the server holds for its lifetime (modules, schemas, the app) out of the
    garbage collector's sight, so full collections walk only what requests create: a full pass over
    them paused a worker for about 45 ms, which every request queued on it waited out."""
    gc.collect()
    gc.freeze()


class _HandedConnections(uvicorn.Server):
    """A uvicorn server that listens on nothing: its connections arrive from the balancer over
    `channel`, and it reports each closed one back with one byte."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        loop = asyncio.get_running_loop()
        config, channel = self.config, self.channel
        tasks: set[asyncio.Task[Any]] = set()  # strong references until each accept is done

        def protocol() -> asyncio.Protocol:
            proto = config.http_protocol_class(config=config, server_state=self.server_state, app_state=self.lifespan.state)  # type: ignore[call-arg]
            lost = proto.connection_lost

            def connection_lost(exc: Exception | None) -> None:
                lost(exc)
                try:
                    channel.send(b"x")
                except OSError:
                    pass  # the balancer is gone: we are shutting down

            proto.connection_lost = connection_lost  # type: ignore[method-assign]
            return proto

        def receive() -> None:
            try:
                data, fds, _flags, _addr = socket.recv_fds(channel, 256, 256)
            except (BlockingIOError, InterruptedError):
                return
            if not data:  # the balancer exited: finish what is open and stop
                loop.remove_reader(channel.fileno())
                self.should_exit = True
                return
            for fd in fds:
                sock = socket.socket(fileno=fd)
                sock.setblocking(False)
                task = loop.create_task(loop.connect_accepted_socket(protocol, sock))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        channel.setblocking(False)
        loop.add_reader(channel.fileno(), receive)
        channel.send(b"r")
