"""What `cairn serve` answers invocations with: per endpoint, its loaded entities, traffic routing,
scale to zero, metrics per entity and the inference log.

Governance: every invocation is authorized by `serving.authorize_query` (CAN QUERY, audited) for
its principal; a decision is reused for `CAIRN_SERVING_AUTHZ_TTL` seconds (1 s) and renewed in the
background once half of that has passed, so a revoked grant takes effect at most that much later,
no request waits for a check while one is in use, and the audit log holds about two rows per
principal and endpoint per second rather than one per prediction (each prediction is a row of the
inference table, with its requester). Denials are never cached: each one is audited.

Config updates: each authorization returns the endpoint's config; when its version is newer than
the one routed, the entities it adds are loaded in the background and traffic switches only once
they are all ready, so no request fails during a switch. Entities it drops are unloaded after.

Scale to zero: an entity with `scale_to_zero_enabled` that answered nothing for
`CAIRN_SERVING_IDLE_SECONDS` (900) is unloaded; the next request routed to it loads it and waits
(at most `CAIRN_SERVING_LOAD_TIMEOUT`, 30 s, then 503: never a hang).
"""

from __future__ import annotations

import bisect
import concurrent.futures
import functools
import gc
import logging
import os
import random
import re
import sys
import threading
import time
from typing import Any

from catalog.entities import EndpointPlan, ServedEntity, Source
from catalog.errors import NotFound, Unavailable
from pipelines.serving.inference_log import InferenceLog, ProcessWriter

log = logging.getLogger("cairn.serving")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


_QUOTED_PATHS = re.compile(r"""(['"])[^'"\n]*/[^'"\n]*\1""")  # a quoted path, spaces and all
_PATHS = re.compile(r"(?:\b[A-Za-z][\w+.-]*:)?(?<![\w.~])(?:\.{1,2}|~)?/[^\s'\"`,;()\[\]{}<>]+"  # absolute, ./ ../ ~/, URIs
                    r"|(?:\b[A-Za-z]:\\|\\\\)[^\s'\"`,;()\[\]{}<>]+")  # Windows: C:\x, \\server\share
# A traceback inside a message: Python's, or a native library's (xgboost's `Stack trace:` of frames
# with their load addresses): the message before it says what failed.
_TRACES = re.compile(r"Traceback \(most recent call last\)|Stack trace:")


def public_error(exc: BaseException) -> str:
    """A load failure as told to the endpoint's callers: the exception's type and message, with
    every file path and URI (the server's storage layout) replaced by `<path>`. The server's log
    keeps the whole of it.

    >>> public_error(OSError("no MLmodel at '/srv/cairn home/m/1' nor s3://bucket/m/1, see and/or ask"))
    "OSError: no MLmodel at '<path>' nor <path>, see and/or ask"
    """
    # Only the start of a long message is read (it is told in 500 characters): the patterns cost more
    # than linear time on some texts, and a model's files choose what its loader's errors quote.
    text = f"{type(exc).__name__}: {exc}"[:2000]
    trace = _TRACES.search(text)
    text = text[: trace.start()].rstrip() if trace else text
    text = _QUOTED_PATHS.sub(lambda m: f"{m.group(1)}<path>{m.group(1)}", text)
    return _PATHS.sub("<path>", text)[:500]


class Entity:
    """One served entity in this server: its model when loaded, its state and its metrics."""

    def __init__(self, entity: ServedEntity, source: str, spec: str | None, owner: str) -> None:
        self.entity, self.source, self.spec, self.owner = entity, source, spec, owner
        self.name = entity.name
        self.model: Any = None
        self.state = "NOT_LOADED"  # LOADING, READY, SCALED_TO_ZERO, LOAD_FAILED
        self.error: str | None = None
        self.loading: concurrent.futures.Future[Any] | None = None
        self.last_used = time.monotonic()
        self.failed_at = 0.0
        self.lock = threading.Lock()
        self.load_seconds: float | None = None
        self.requests: dict[int, int] = {}
        self.latency = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0

    def observe(self, status: int, seconds: float) -> None:
        self.requests[status] = self.requests.get(status, 0) + 1
        self.latency[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum += seconds


class Endpoint:
    """One endpoint as this server runs it."""

    def __init__(self, runtime: ServingRuntime, plan: EndpointPlan) -> None:
        self.runtime = runtime
        self.name = plan.endpoint.name
        self.id = plan.endpoint.id
        self.entities: dict[str, Entity] = {}
        self.config_version = 0
        self.pending_version = 0
        self.routes: list[tuple[int, str]] = []  # (cumulative percentage, entity name)
        self.owner = plan.endpoint.owner
        self.log: InferenceLog | None = None
        self._lock = threading.Lock()
        self.apply(plan)

    # config --------------------------------------------------------------------------------
    def apply(self, plan: EndpointPlan) -> None:
        """Take a config newer than the one routed: load what it adds, then switch."""
        ep = plan.endpoint
        with self._lock:
            if ep.config_version <= max(self.config_version, self.pending_version):
                return
            self.pending_version = ep.config_version
            self.owner = ep.owner
            if ep.inference_table and (self.log is None or self.log.table != ep.inference_table):
                self.log = InferenceLog(functools.partial(self.runtime.writer.write, ep.owner), ep.inference_table)
            incoming: dict[str, Entity] = {}
            for e in ep.served_entities:
                have = self.entities.get(e.name)
                if have is not None and have.entity.model_version == e.model_version:
                    have.entity = e  # workload size or scale to zero may change in place
                    incoming[e.name] = have
                else:
                    incoming[e.name] = Entity(e, plan.sources[e.name], plan.feature_specs.get(e.name), ep.owner)
            cumulative, routes = 0, []
            for r in ep.routes:
                if r.traffic_percentage:
                    cumulative += r.traffic_percentage
                    routes.append((cumulative, r.served_model_name))
            version = ep.config_version
        fresh = [e for e in incoming.values() if e.model is None and e.name in {n for _c, n in routes}]
        if not self.routes or not fresh:
            self._switch(version, incoming, routes)
            return
        futures = [self.runtime.load(e) for e in fresh]

        def switch_when_ready() -> None:
            concurrent.futures.wait(futures)
            if all(e.state == "READY" for e in fresh):
                self._switch(version, incoming, routes)
            else:
                log.error("config %s of endpoint %s not applied: an entity failed to load", version, self.name)
                with self._lock:
                    self.pending_version = self.config_version

        threading.Thread(target=switch_when_ready, name=f"cairn-switch-{self.name}", daemon=True).start()

    def _switch(self, version: int, incoming: dict[str, Entity], routes: list[tuple[int, str]]) -> None:
        with self._lock:
            if version < self.config_version:
                return
            dropped = [e for n, e in self.entities.items() if incoming.get(n) is not e]
            self.entities, self.routes, self.config_version = incoming, routes, version
        for e in dropped:
            self.runtime.unload(e, "NOT_LOADED")

    # requests ------------------------------------------------------------------------------
    def choose(self, pinned: str | None = None) -> Entity:
        if pinned is not None:
            entity = self.entities.get(pinned)
            if entity is None:
                raise NotFound(f"endpoint '{self.name}' serves no entity '{pinned}'; it serves {', '.join(self.entities)}")
            return entity
        routes = self.routes
        if not routes:
            raise Unavailable(f"endpoint '{self.name}' routes no traffic")
        if len(routes) == 1:
            return self.entities[routes[0][1]]
        pick = random.randrange(routes[-1][0])
        return self.entities[routes[bisect.bisect_right([c for c, _n in routes], pick)][1]]

    def metrics(self) -> str:
        out = []
        for e in list(self.entities.values()):
            labels = f'endpoint="{self.name}",entity="{e.name}",model_version="{e.entity.model_version}"'
            for status, n in sorted(e.requests.items()):
                out.append(f'cairn_serving_requests_total{{{labels},status="{status}"}} {n}')
            for b, n in zip(BUCKETS, _cumulative(e.latency)):
                out.append(f'cairn_serving_request_seconds_bucket{{{labels},le="{b}"}} {n}')
            out.append(f'cairn_serving_request_seconds_bucket{{{labels},le="+Inf"}} {sum(e.latency)}')
            out.append(f"cairn_serving_request_seconds_sum{{{labels}}} {e.latency_sum:.6f}")
            out.append(f"cairn_serving_request_seconds_count{{{labels}}} {sum(e.latency)}")
            out.append(f"cairn_serving_entity_loaded{{{labels}}} {1 if e.state == 'READY' else 0}")
            if e.load_seconds is not None:
                out.append(f"cairn_serving_load_seconds{{{labels}}} {e.load_seconds:.6f}")
        return "\n".join(out) + "\n"


def _cumulative(counts: list[int]) -> list[int]:
    total, out = 0, []
    for n in counts[:-1]:
        total += n
        out.append(total)
    return out


class ServingRuntime:
    """Every endpoint this server has answered for, with the caches that keep invocations fast."""

    def __init__(self, metastore: Any) -> None:
        self.metastore = metastore
        self.endpoints: dict[str, Endpoint] = {}
        self.authz_ttl = _env("CAIRN_SERVING_AUTHZ_TTL", 1.0)
        self.idle_seconds = _env("CAIRN_SERVING_IDLE_SECONDS", 900)
        self.load_timeout = _env("CAIRN_SERVING_LOAD_TIMEOUT", 30)
        # A background thread (inference log, feature leases) holding the GIL makes the event loop wait
        # up to this long before it may answer again: 5 ms by default, 1 ms here.
        sys.setswitchinterval(_env("CAIRN_SERVING_SWITCH_INTERVAL", 0.001))
        self._decisions: dict[tuple[str, str], tuple[float, float, Endpoint]] = {}  # (renew at, expires at, endpoint)
        self._renewing: set[tuple[str, str]] = set()
        self._renewer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="cairn-serving-authz")
        self._lock = threading.Lock()
        self._loader = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="cairn-model-load")
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="cairn-scale-to-zero", daemon=True)
        self._reaper.start()
        settings = metastore.settings
        self.writer = ProcessWriter(str(settings.home), settings.metastore_url)  # inference tables, written from a child process
        self._preloading: concurrent.futures.Future[Any] | None = None
        if os.environ.get("CAIRN_SERVING_PRELOAD") == "1":  # import MLflow and xgboost now, not on the first request
            self._preloading = self._loader.submit(_preload)

    # authorization -------------------------------------------------------------------------
    def cached(self, principal: str, name: str, request_id: str = "") -> Endpoint | None:
        """The endpoint when `principal` was allowed to query it less than `authz_ttl` ago. Past half
        that age the decision is renewed in the background (one renewal at a time): requests keep
        flowing on the valid decision instead of all missing at once when it expires and each
        running (and auditing) the check on its own. A renewal that is refused drops the decision."""
        key = (principal, name)
        hit = self._decisions.get(key)
        if hit is None:
            return None
        now = time.monotonic()
        if hit[1] <= now:
            return None
        if hit[0] <= now and key not in self._renewing:
            self._renewing.add(key)
            self._renewer.submit(self._renew, key, request_id)
        return hit[2]

    def _renew(self, key: tuple[str, str], request_id: str) -> None:
        try:
            self.authorize(key[0], key[1], request_id)
        except Exception:  # refused (audited by the service) or failing: the next request checks for itself
            self._decisions.pop(key, None)
        finally:
            self._renewing.discard(key)

    def authorize(self, principal: str, name: str, request_id: str = "") -> Endpoint:
        """The endpoint, once `principal` is found to hold CAN QUERY on it (audited); a config newer
        than the one routed starts loading."""
        plan = self.metastore.as_principal(principal, Source.REST, request_id).serving.authorize_query(name)
        key = plan.endpoint.name
        with self._lock:
            ep = self.endpoints.get(key)
            if ep is not None and ep.id != plan.endpoint.id:  # dropped and made again under the same name
                self._retire(ep)
                ep = None
            if ep is None:
                ep = self.endpoints[key] = Endpoint(self, plan)
        ep.apply(plan)
        now = time.monotonic()
        self._decisions[(principal, name)] = (now + self.authz_ttl / 2, now + self.authz_ttl, ep)
        return ep

    def drop(self, name: str) -> None:
        """An endpoint was deleted: stop answering for it here, write its log, unload its models."""
        self.forget(name)
        with self._lock:
            ep = self.endpoints.pop(name, None)
        if ep is not None:
            self._retire(ep)

    def forget(self, name: str | None = None) -> None:
        """Drop cached decisions (all, or one endpoint's): the next call is checked again."""
        for key in [k for k in self._decisions if name is None or k[1] == name]:
            self._decisions.pop(key, None)

    # loading -------------------------------------------------------------------------------
    def load(self, entity: Entity) -> concurrent.futures.Future[Any]:
        with entity.lock:
            if entity.state == "READY" and entity.model is not None:
                done: concurrent.futures.Future[Any] = concurrent.futures.Future()
                done.set_result(entity.model)
                return done
            if entity.loading is not None and not entity.loading.done():
                return entity.loading
            entity.state = "LOADING"
            entity.loading = self._loader.submit(self._load, entity)
            return entity.loading

    def _load(self, entity: Entity) -> Any:
        from pipelines.serving.model import LoadedModel

        started = time.perf_counter()
        if self._preloading is not None:  # two threads importing xgboost at once can break the import
            concurrent.futures.wait([self._preloading])
        try:
            owner = self.metastore.as_principal(entity.owner, Source.REST)
            model = LoadedModel(entity.source, entity.spec, owner, _online_store())
        except Exception as exc:
            log.exception("loading %s (%s) failed", entity.name, entity.source)
            with entity.lock:
                entity.state, entity.error, entity.failed_at = "LOAD_FAILED", public_error(exc), time.monotonic()
            raise
        with entity.lock:
            entity.model, entity.state, entity.error = model, "READY", None
            entity.load_seconds = time.perf_counter() - started
            entity.last_used = time.monotonic()
        _settle_heap()
        return model

    async def ready_model(self, entity: Entity) -> Any:
        """The entity's model, loading it (and waiting, bounded) when it is not loaded."""
        import asyncio

        model = entity.model
        if model is not None:
            entity.last_used = time.monotonic()
            return model
        if entity.state == "LOAD_FAILED" and time.monotonic() - entity.failed_at < 5:
            raise Unavailable(f"served entity '{entity.name}' failed to load: {entity.error}")
        future = self.load(entity)
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.load_timeout)
        except TimeoutError:
            raise Unavailable(f"served entity '{entity.name}' is still loading; retry shortly") from None
        except Exception:
            raise Unavailable(f"served entity '{entity.name}' failed to load: {entity.error}") from None

    def unload(self, entity: Entity, state: str, grace: float = 2.0) -> None:
        """Stop routing to the entity's model, and close it (its online readers) after `grace`
        seconds: a request that took the model just before finishes with it."""
        with entity.lock:
            model, entity.model, entity.state = entity.model, None, state
        if model is None:
            return
        if grace <= 0:
            model.close()
            return
        closer = threading.Timer(grace, model.close)
        closer.daemon = True
        closer.start()

    def _reap(self) -> None:
        while not self._stop.wait(max(0.05, min(self.idle_seconds / 4, 5.0))):
            now = time.monotonic()
            for ep in list(self.endpoints.values()):
                for e in list(ep.entities.values()):
                    if e.entity.scale_to_zero_enabled and e.model is not None and now - e.last_used > self.idle_seconds:
                        log.info("scaling %s/%s to zero after %.0f s idle", ep.name, e.name, now - e.last_used)
                        self.unload(e, "SCALED_TO_ZERO")

    def entity_states(self, name: str) -> dict[str, str]:
        ep = self.endpoints.get(name)
        return {n: e.state for n, e in ep.entities.items()} if ep else {}

    def _retire(self, ep: Endpoint) -> None:
        if ep.log is not None:
            ep.log.close()
        for e in ep.entities.values():
            self.unload(e, "NOT_LOADED", grace=0)

    def close(self) -> None:
        """Stop: flush every inference log (no row lost), unload the models."""
        self._stop.set()
        for ep in list(self.endpoints.values()):
            self._retire(ep)
        self.writer.close()
        self._loader.shutdown(wait=False, cancel_futures=True)
        self._renewer.shutdown(wait=False, cancel_futures=True)


def _preload() -> None:
    import mlflow.pyfunc
    import xgboost

    try:
        import deltalake  # noqa: F401  (the inference log's first write would import it)
        import mlflow.xgboost  # noqa: F401
        import xgboost.sklearn  # noqa: F401
    except ImportError:
        pass

    _settle_heap()


def _settle_heap() -> None:
    """Move what is alive now (modules, loaded models) out of the collector's sight: a full
    collection then walks only what requests allocate, not the million objects MLflow, pandas
    and xgboost import, so it no longer stalls every request in flight for tens of milliseconds."""
    gc.collect()
    gc.freeze()


def _online_store() -> Any:
    url = os.environ.get("CAIRN_ONLINE_STORE_URL", "")
    if url.startswith("redis"):
        from pipelines.features.online import RedisOnlineStore

        return RedisOnlineStore(url)
    return None


