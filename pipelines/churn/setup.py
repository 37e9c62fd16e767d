"""Build the churn chain's world on generated data: raw events, the service principal that runs
the jobs, its grants, the feature history, and the two jobs (job.yml, train_job.yml). Used by
`cairn churn demo` (api/churn_cli.py) and the end-to-end test (tests/pipelines/test_churn_chain.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.churn import data
from pipelines.churn import features as F

SP = "churn-pipeline"
HERE = Path(__file__).parent
Step = Callable[[str, int, int], None]  # (what, done, total)


def _quiet(what: str, done: int, total: int) -> None:
    return None


def build_world(metastore: Any, admin: str, users: int, events: int, days: int = 120, seed: int = 7,
                catalog: str = "main", schema: str = "churn", now: datetime | None = None, step: Step = _quiet) -> dict[str, Any]:
    """Everything the churn jobs need, as `admin` and as the service principal: returns the names."""
    from catalog.errors import AlreadyExists, NotFound
    from pipelines.churn.chain import default_label_times
    from pipelines.churn.incremental import refresh
    from pipelines.jobs.loader import load

    now = F.as_of_time(now or datetime.now(UTC))
    c = metastore.as_principal(admin)
    s = f"{catalog}.{schema}"
    names = {"events": f"{s}.events", "features": f"{s}.user_features", "training_set": f"{s}.training_set",
             "model": f"{s}.churn_model", "predictions": f"{s}.churn_predictions", "principal": SP}
    for make in (lambda: c.catalogs.create_catalog(catalog), lambda: c.schemas.create_schema(s)):
        try:
            make()
        except AlreadyExists:
            pass
    try:
        c.principals.create_service_principal(SP)
    except AlreadyExists:
        pass
    try:
        c.tables.get_table(names["events"])
        fresh = False  # built before: the jobs carry it forward from here
    except NotFound:
        fresh = True
    if fresh:
        step("generate raw events", 0, 1)
        raw = data.generate(users, events, days=days, seed=seed, start=now - timedelta(days=days))
        data.create_raw_table(c, names["events"], raw, batch_days=max(1, days // 8))  # a few versions, as ingestion lands
        step("generate raw events", 1, 1)
    c.sql(f"GRANT USE CATALOG ON CATALOG {catalog} TO `{SP}`; GRANT USE SCHEMA, CREATE TABLE, CREATE MODEL ON SCHEMA {s} TO `{SP}`;"
          f"GRANT SELECT ON TABLE {names['events']} TO `{SP}`")
    sp = metastore.as_principal(SP)
    if fresh:
        try:
            sp.tables.get_table(names["features"])
        except NotFound:
            F.create_feature_table(sp, names["features"])
        times = default_label_times(now)  # the feature history the training set's label times look up
        for i, t in enumerate(times):
            step("feature history", i, len(times))
            refresh(sp, names["events"], names["features"], t)
        step("feature history", len(times), len(times))
    for job in ("job.yml", "train_job.yml"):
        spec = load(HERE / job)
        try:
            c.jobs.create_job(spec)
        except AlreadyExists:
            pass
    return names


def model_lineage(c: Any, model: str, version: int, depth: int = 20) -> list[dict[str, Any]]:
    """The recorded lineage edges upstream of a model version, each `source`@`source_version` →
    `target`@`target_version`, through the governed lineage service (what `c` may see), from the
    version back to the raw tables, nearest first; repeated edges (several runs) kept once each."""
    up = c.lineage.get_upstream(f"model:{model}/{version}", depth=depth)
    depth_of = {n.name: n.depth for n in up.nodes} | {up.root.name: 0}
    seen: set[tuple[Any, ...]] = set()
    out = []
    for e in c.lineage.list_edges():
        if e["source"] in depth_of and e["target"] in depth_of:
            key = (e["source"], e["source_version"], e["target"], e["target_version"])
            if key not in seen:
                seen.add(key)
                out.append({k: e[k] for k in ("source", "source_version", "target", "target_version", "run_id")} | {"depth": depth_of[e["source"]]})
    versioned = {(e["source"], e["target"]) for e in out if e["source_version"] is not None}
    out = [e for e in out if e["source_version"] is not None or (e["source"], e["target"]) not in versioned]
    return sorted(out, key=lambda e: (e["depth"], e["source"], e["source_version"] or 0, e["target"]))
