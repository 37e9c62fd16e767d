"""Entry points of the churn job (pipelines/churn/job.yml), each `function(ctx, **parameters)`
running as the job's `run_as` (see pipelines/jobs/task.py).

The weekly chain (train_job.yml): `refresh_features` → `build_training_set` (labels joined point in
time, saved as a governed table) → `train` (xgboost with a hyperopt search, logged with the training
set's feature spec and registered in the catalog) → `deploy` (gates, alias `champion`, features
published online, an endpoint with a canary split and an inference table, batch predictions).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def _time(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def refresh_features(ctx: Any, events: str, features: str, as_of: str | None = None) -> dict[str, Any]:
    """The 15-minute task: bring the feature table to `as_of` (default now) incrementally."""
    from pipelines.churn.incremental import refresh

    return refresh(ctx.cairn, events, features, _time(as_of), run_id=ctx.lineage_run_id).to_dict()


def default_label_times(now: datetime, count: int = 4, every: timedelta = timedelta(days=7)) -> list[datetime]:
    """The label times used when none are given: the newest whose 30-day horizon has passed by
    `now`, and `count - 1` more, `every` apart, before it (whole seconds)."""
    from pipelines.churn.features import as_of_time
    from pipelines.churn.labels import HORIZON

    last = as_of_time(now) - HORIZON
    return [last - every * k for k in reversed(range(count))]


def build_training_set(ctx: Any, events: str, features: str, target: str, label_times: str = "") -> dict[str, Any]:
    """Labels at the given label times (comma-separated ISO times; default `default_label_times`)
    joined point in time, saved as `target` (replacing an earlier one)."""
    from pipelines.churn.labels import labels, training_set

    times = [_time(t.strip()) for t in label_times.split(",") if t.strip()] or default_label_times(datetime.now(UTC))
    rows = labels(ctx.cairn, events, times, run_id=ctx.lineage_run_id)
    ts = training_set(ctx.cairn, features, rows)
    from catalog.errors import NotFound

    try:
        ctx.cairn.tables.delete_table(target)  # last week's; the models trained on it keep its lineage
    except NotFound:
        pass
    ts.save(target)
    return {"rows": rows.num_rows, "table": target}


DEFAULT_GATES: list[dict[str, Any]] = [
    {"kind": "metric", "metric": "auc", "op": ">=", "threshold": 0.7, "description": "validation AUC at least 0.7"},
    {"kind": "signature", "description": "the model declares its input signature"},
    {"kind": "provenance", "description": "point-in-time feature spec, lineage back to the raw tables"},
]


def train(ctx: Any, training_set: str, model: str, features: str | None = None, max_evals: str | int = 4,
          parallelism: str | int = 2, n_estimators: str | int = 60, seed: str | int = 0) -> dict[str, Any]:
    """A TPE search over xgboost on the saved training set `training_set` (its feature tables at the
    versions it pinned), the best model logged with its feature spec and registered as a new version
    of `model`. Returns the version, its run and metrics."""
    from pipelines.training import search_xgboost

    ts = saved_training_set(ctx.cairn, training_set, features, run_id=ctx.lineage_run_id)
    result = search_xgboost(ctx.cairn, ts, max_evals=int(max_evals), parallelism=int(parallelism), seed=int(seed),
                            label="churned", registered_model_name=model, run_name=f"churn-train-{ctx.job_run_id}",
                            fixed_params={"n_estimators": int(n_estimators)})
    mv = result.model_version
    return {"model": model, "version": mv.version, "run_id": result.run_id, "metrics": result.metrics,
            "trials": len(result.trials), "training_set": ts.saved_as}


def saved_training_set(cairn: Any, name: str, features: str | None = None, run_id: str | None = None) -> Any:
    """The TrainingSet a `build_training_set` task saved as table `name`: its label rows, its lookups
    at the feature table versions recorded in the table's spec (so the model learns exactly that)."""
    import json

    from pipelines.churn.labels import training_set

    meta = cairn.tables.get_table(name)
    spec = json.loads(meta.properties.get("cairn.training_set.spec") or "{}")
    tables = [t["table"] for t in spec.get("feature_tables", [])]
    features = features or (tables[0] if tables else None)
    if not features:
        from catalog.errors import InvalidArgument

        raise InvalidArgument(f"table '{meta.full_name}' is not a saved training set (no cairn.training_set.spec)")
    rows = cairn.data.read(meta.full_name, columns=["user_id", "label_ts", "churned"], run_id=run_id)
    ts = training_set(cairn, features, rows).at_versions({t["table"]: int(t["version"]) for t in spec.get("feature_tables", [])})
    ts.saved_as = meta.full_name
    return ts


def deploy(ctx: Any, model: str, endpoint: str = "churn", features: str = "main.churn.user_features",
           predictions: str | None = None, version: str | int | None = None, gates: str | None = None,
           canary_percent: str | int = 10) -> dict[str, Any]:
    """Gate and promote the newest version of `model` (or `version`) to `champion`; publish
    `features` online; point endpoint `endpoint` at the champion (90%) and the previous champion
    (`canary_percent`, when there is one), logging to an inference table; score every user into
    `predictions` (default `<catalog>.<schema>.churn_predictions`). A refused promotion leaves the
    alias and the endpoint where they were, and the result says why."""
    import json

    from catalog.errors import NotFound, PromotionRefused

    c = ctx.cairn
    cat, sch, _name = model.split(".")
    predictions = predictions or f"{cat}.{sch}.churn_predictions"
    if version in (None, ""):
        versions = [v.version for v in every_version(c, model) if v.status == "READY"]
        if not versions:
            raise NotFound(f"model '{model}' has no READY version to deploy")
        version = max(versions)
    version = int(version)  # type: ignore[arg-type]
    c.models.set_gates(model, json.loads(gates) if gates else DEFAULT_GATES)
    try:
        previous: int | None = c.models.get_version_by_alias(model, "champion").version
    except NotFound:
        previous = None
    out: dict[str, Any] = {"model": model, "version": version, "previous_champion": previous}
    try:
        results = c.models.promote(model, "champion", version)
        out["promoted"] = True
    except PromotionRefused as exc:
        out.update(promoted=False, refused=str(exc))
        results = None
    out["gates"] = results
    champion = version if out["promoted"] else previous
    if champion is None:
        return out  # nothing to serve: the first version was refused
    c_features = c.tables.get_table(features).full_name
    from pipelines.features import FeatureEngineeringClient

    FeatureEngineeringClient(c).publish_table(c_features)
    canary = previous if out["promoted"] and previous not in (None, version) else None
    out["endpoint"] = serve(c, endpoint, model, champion, canary, int(canary_percent), cat, sch, change=out["promoted"])
    out["predictions"] = score_all(c, model, champion, c_features, predictions, run_id=ctx.lineage_run_id)
    return out


def every_version(c: Any, model: str) -> list[Any]:
    from catalog.paging import every

    return list(every(lambda **kw: c.models.list_model_versions(model, **kw)))


def serve(c: Any, endpoint: str, model: str, champion: int, canary: int | None, canary_percent: int, cat: str, sch: str,
          change: bool = True) -> dict[str, Any]:
    """Create or update `endpoint`: champion alone, or champion and canary split 100-p / p. With
    `change` false (a refused promotion) an existing endpoint is left as it is."""
    from catalog.errors import NotFound

    short = model.rsplit(".", 1)[1]
    entities = [{"name": f"{short}-{champion}", "entity_name": model, "entity_version": champion}]
    routes = [{"served_model_name": f"{short}-{champion}", "traffic_percentage": 100}]
    if canary is not None and 0 < canary_percent < 100:
        entities.append({"name": f"{short}-{canary}", "entity_name": model, "entity_version": canary})
        routes = [{"served_model_name": f"{short}-{champion}", "traffic_percentage": 100 - canary_percent},
                  {"served_model_name": f"{short}-{canary}", "traffic_percentage": canary_percent}]
    try:
        ep = c.serving.get_endpoint(endpoint)
        if change:
            ep = c.serving.update_config(endpoint, entities, routes)
    except NotFound:
        ep = c.serving.create_endpoint(endpoint, entities, routes, auto_capture_config={
            "catalog_name": cat, "schema_name": sch, "table_name_prefix": endpoint.replace("-", "_")})
    return {"name": ep.name, "routes": {r.served_model_name: r.traffic_percentage for r in ep.routes}, "inference_table": ep.inference_table}


PREDICTION_COLUMNS = [
    {"name": "user_id", "type": "bigint", "nullable": False},
    {"name": "scored_at", "type": "timestamp", "nullable": False},
    {"name": "prediction", "type": "int", "nullable": False},
    {"name": "model_version", "type": "bigint", "nullable": False},
]


def score_all(c: Any, model: str, version: int, features: str, predictions: str, run_id: str | None = None) -> dict[str, Any]:
    """Every user with features, scored by `score_batch` as of the newest feature time, appended to
    the governed table `predictions` (created when missing); lineage: features and the model
    version → predictions, in run `run_id`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from catalog.errors import NotFound
    from pipelines.training import score_batch

    latest = c.data.read(features, columns=["user_id", "ts"], run_id=run_id)
    at = pc.max(latest.column("ts")).as_py()
    users = pc.unique(latest.column("user_id"))
    rows = pa.table({"user_id": users, "label_ts": pa.array([at] * len(users), pa.timestamp("us", tz="UTC"))})
    scored = score_batch(c, f"models:/{model}/{version}", rows)
    out = pa.table({
        "user_id": pa.array(scored["user_id"], pa.int64()),
        "scored_at": pa.array([at] * len(scored), pa.timestamp("us", tz="UTC")),
        "prediction": pa.array([int(p) for p in scored["prediction"]], pa.int32()),
        "model_version": pa.array([version] * len(scored), pa.int64()),
    })
    try:
        c.tables.get_table(predictions)
    except NotFound:
        c.tables.create_table(predictions, PREDICTION_COLUMNS, comment=f"churn predictions of {model}")
    written = c.data.write(predictions, out, run_id=run_id)
    c.lineage.record([features, f"model:{model}/{version}"], [predictions], run_id=run_id)
    return {"table": predictions, "rows": out.num_rows, "as_of": at.isoformat(), "version": getattr(written, "version", None)}
