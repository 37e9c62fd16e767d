"""Jobs, their permissions, runs and task runs in the metastore (SQLAlchemy Core). Knows nothing of principals' rights."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)

from catalog.errors import NotFound
from catalog.store.metastore import _aware, now
from catalog.store.tables import Id, metadata

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("owner", String(255), nullable=False),
    Column("run_as", String(255), nullable=False),
    Column("settings", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(255), nullable=False),
    sqlite_autoincrement=True,
)

job_permissions = Table(
    "job_permissions",
    metadata,
    Column("job_id", Id, ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True),
    Column("principal", String(255), primary_key=True),
    Column("level", String(32), nullable=False),  # CAN_VIEW | CAN_MANAGE_RUN | CAN_MANAGE
)

# Databricks' "Service Principal User" role: who may make a job run as a service principal.
service_principal_users = Table(
    "service_principal_users",
    metadata,
    Column("service_principal", String(255), ForeignKey("principals.name", ondelete="CASCADE"), primary_key=True),
    Column("principal", String(255), primary_key=True),
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("run_id", Id, primary_key=True, autoincrement=True),
    Column("job_id", Id, ForeignKey("jobs.job_id", ondelete="CASCADE"), nullable=False),
    Column("trigger", String(16), nullable=False),  # ONE_TIME | PERIODIC
    Column("scheduled_for", DateTime(timezone=True)),  # the fire time of a PERIODIC run: claimed once
    Column("triggered_by", String(255), nullable=False),
    Column("run_as", String(255), nullable=False),
    Column("state", String(16), nullable=False),  # PENDING RUNNING TERMINATING TERMINATED SKIPPED
    Column("result_state", String(32)),  # SUCCESS SUCCESS_WITH_FAILURES FAILED TIMEDOUT CANCELED
    Column("state_message", Text),
    Column("parameters", JSON, nullable=False),
    Column("settings", JSON, nullable=False),  # the job's settings as this run saw them
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    UniqueConstraint("job_id", "scheduled_for"),
    Index("ix_job_runs_job_state", "job_id", "state"),
    sqlite_autoincrement=True,
)

job_task_runs = Table(
    "job_task_runs",
    metadata,
    Column("task_run_id", Id, primary_key=True, autoincrement=True),
    Column("run_id", Id, ForeignKey("job_runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("task_key", String(100), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # PENDING RUNNING TERMINATED
    Column("result_state", String(32)),  # SUCCESS FAILED TIMEDOUT CANCELED EXCLUDED UPSTREAM_FAILED
    Column("state_message", Text),
    Column("lineage_run_id", String(64)),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    UniqueConstraint("run_id", "task_key", "attempt"),
    sqlite_autoincrement=True,
)

ACTIVE = ("PENDING", "RUNNING", "TERMINATING")


def _row(r: Any) -> dict[str, Any]:
    return {k: (_aware(v) if isinstance(v, datetime) else v) for k, v in r._mapping.items()}


class JobStore:
    """Queries over one connection inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # jobs -------------------------------------------------------------------------------------
    def find_job(self, name: str) -> dict[str, Any] | None:
        r = self.conn.execute(select(jobs).where(jobs.c.name == name)).first()
        return _row(r) if r else None

    def find_job_by_id(self, job_id: int) -> dict[str, Any] | None:
        r = self.conn.execute(select(jobs).where(jobs.c.job_id == job_id)).first()
        return _row(r) if r else None

    def job_by_id(self, job_id: int) -> dict[str, Any]:
        r = self.conn.execute(select(jobs).where(jobs.c.job_id == job_id)).first()
        if r is None:
            raise NotFound(f"job {job_id} does not exist")
        return _row(r)

    def lock_job(self, job_id: int) -> None:
        """Serialize run starts of one job (PostgreSQL row lock; SQLite writers are serialized already)."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(select(jobs.c.job_id).where(jobs.c.job_id == job_id).with_for_update())

    def insert_job(self, name: str, owner: str, run_as: str, settings: dict[str, Any]) -> int:
        ts = now()
        return _key(self.conn.execute(insert(jobs).values(
            name=name, owner=owner, run_as=run_as, settings=settings, created_at=ts, created_by=owner, updated_at=ts, updated_by=owner,
        )))

    def update_job(self, job_id: int, by: str, **values: Any) -> None:
        self.conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(updated_at=now(), updated_by=by, **values))

    def delete_job(self, job_id: int) -> None:
        for table in (job_permissions,):
            self.conn.execute(delete(table).where(table.c.job_id == job_id))
        run_ids = select(job_runs.c.run_id).where(job_runs.c.job_id == job_id)
        self.conn.execute(delete(job_task_runs).where(job_task_runs.c.run_id.in_(run_ids)))
        self.conn.execute(delete(job_runs).where(job_runs.c.job_id == job_id))
        self.conn.execute(delete(jobs).where(jobs.c.job_id == job_id))

    def list_jobs(self, after: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        q = select(jobs).order_by(jobs.c.name).limit(limit)
        if after is not None:
            q = q.where(jobs.c.name > after)
        return [_row(r) for r in self.conn.execute(q)]

    # permissions ------------------------------------------------------------------------------
    def permissions(self, job_ids: list[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {j: {} for j in job_ids}
        if job_ids:
            for r in self.conn.execute(select(job_permissions).where(job_permissions.c.job_id.in_(job_ids))):
                out[r.job_id][r.principal] = r.level
        return out

    def set_permission(self, job_id: int, principal: str, level: str | None) -> None:
        self.conn.execute(delete(job_permissions).where(job_permissions.c.job_id == job_id, job_permissions.c.principal == principal))
        if level:
            self.conn.execute(insert(job_permissions).values(job_id=job_id, principal=principal, level=level))

    def service_principal_users(self, service_principal: str) -> set[str]:
        q = select(service_principal_users.c.principal).where(service_principal_users.c.service_principal == service_principal)
        return set(self.conn.execute(q).scalars())

    def set_service_principal_user(self, service_principal: str, principal: str, grant: bool) -> None:
        t = service_principal_users
        self.conn.execute(delete(t).where(t.c.service_principal == service_principal, t.c.principal == principal))
        if grant:
            self.conn.execute(insert(t).values(service_principal=service_principal, principal=principal))

    # runs -------------------------------------------------------------------------------------
    def count_active_runs(self, job_id: int) -> int:
        q = select(func.count()).select_from(job_runs).where(job_runs.c.job_id == job_id, job_runs.c.state.in_(ACTIVE))
        return int(self.conn.execute(q).scalar() or 0)

    def scheduled_run_exists(self, job_id: int, at: datetime) -> bool:
        q = select(job_runs.c.run_id).where(job_runs.c.job_id == job_id, job_runs.c.scheduled_for == at)
        return self.conn.execute(q).first() is not None

    def insert_run(self, **values: Any) -> int:
        return _key(self.conn.execute(insert(job_runs).values(created_at=now(), cancel_requested=False, **values)))

    def get_run(self, run_id: int) -> dict[str, Any]:
        r = self.conn.execute(select(job_runs).where(job_runs.c.run_id == run_id)).first()
        if r is None:
            raise NotFound(f"job run {run_id} does not exist")
        return _row(r)

    def update_run(self, run_id: int, **values: Any) -> None:
        self.conn.execute(update(job_runs).where(job_runs.c.run_id == run_id).values(**values))

    def list_runs(self, job_ids: list[int] | None, before: int | None, limit: int, active_only: bool = False) -> list[dict[str, Any]]:
        q = select(job_runs).order_by(job_runs.c.run_id.desc()).limit(limit)
        if job_ids is not None:
            q = q.where(job_runs.c.job_id.in_(job_ids))
        if before is not None:
            q = q.where(job_runs.c.run_id < before)
        if active_only:
            q = q.where(job_runs.c.state.in_(ACTIVE))
        return [_row(r) for r in self.conn.execute(q)]

    def last_scheduled(self, job_id: int) -> datetime | None:
        q = select(func.max(job_runs.c.scheduled_for)).where(job_runs.c.job_id == job_id)
        v = self.conn.execute(q).scalar()
        return _aware(v) if v else None

    # task runs --------------------------------------------------------------------------------
    def insert_task_run(self, run_id: int, task_key: str, attempt: int, **values: Any) -> int:
        return _key(self.conn.execute(insert(job_task_runs).values(run_id=run_id, task_key=task_key, attempt=attempt, **values)))

    def update_task_run(self, task_run_id: int, **values: Any) -> None:
        self.conn.execute(update(job_task_runs).where(job_task_runs.c.task_run_id == task_run_id).values(**values))

    def get_task_run(self, task_run_id: int) -> dict[str, Any]:
        r = self.conn.execute(select(job_task_runs).where(job_task_runs.c.task_run_id == task_run_id)).first()
        if r is None:
            raise NotFound(f"task run {task_run_id} does not exist")
        return _row(r)

    def task_runs(self, run_ids: list[int]) -> list[dict[str, Any]]:
        if not run_ids:
            return []
        q = select(job_task_runs).where(job_task_runs.c.run_id.in_(run_ids)).order_by(job_task_runs.c.task_run_id)
        return [_row(r) for r in self.conn.execute(q)]


def _key(result: Any) -> int:
    """The primary key an insert generated."""
    key = result.inserted_primary_key
    return int(key[0])  # an insert always has one
