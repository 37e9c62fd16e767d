"""Entry points of the churn job (pipelines/churn/job.yml), each `function(ctx, **parameters)`
running as the job's `run_as` (see pipelines/jobs/task.py).

`train` and `deploy` belong to the training/registry and serving work (issues 16 and 17), not on this
branch: they are left as marked placeholders the lead wires at merge.
"""

from __future__ import annotations

from datetime import UTC, datetime
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


def build_training_set(ctx: Any, events: str, features: str, target: str, label_times: str) -> dict[str, Any]:
    """Labels at the given label times (comma-separated ISO times) joined point in time, saved as `target`."""
    from pipelines.churn.labels import labels, training_set

    rows = labels(ctx.cairn, events, [_time(t.strip()) for t in label_times.split(",") if t.strip()], run_id=ctx.lineage_run_id)
    ts = training_set(ctx.cairn, features, rows)
    ts.save(target)
    return {"rows": rows.num_rows, "table": target}


def train(ctx: Any, **parameters: Any) -> Any:
    """PLACEHOLDER: built with issue 16 (xgboost + hyperparameter search, registration, gates)."""
    raise NotImplementedError("built with issue 16/17")


def deploy(ctx: Any, **parameters: Any) -> Any:
    """PLACEHOLDER: built with issue 17 (promotion through the gates, endpoint with a canary split)."""
    raise NotImplementedError("built with issue 16/17")
