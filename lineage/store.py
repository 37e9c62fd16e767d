"""Lineage tables and queries. Edges are append-only, so history is kept and any past state can
be asked for by time; readers follow new edges by id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    case,
    func,
    insert,
    select,
)

from catalog.store.metastore import LINEAGE_EDGES_LOCK, now, serialize_appends
from catalog.store.tables import metadata

Id = BigInteger().with_variant(Integer, "sqlite")

nodes = Table(
    "lineage_nodes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # TABLE, COLUMN, MODEL, MODEL_VERSION, FEATURE_TABLE, TRAINING_SET, FUNCTION, ENDPOINT, DATASET
    Column("kind", String(32), nullable=False),
    # "cairn" for catalog securables; an OpenLineage namespace (file, s3://bucket, ...) otherwise.
    Column("namespace", String(400), nullable=False),
    Column("name", String(1000), nullable=False),
    Column("parent_id", Id, ForeignKey("lineage_nodes.id")),  # a column's table
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("namespace", "name", "kind"),
    sqlite_autoincrement=True,
)

symlinks = Table(
    "lineage_symlinks",
    metadata,
    # A physical identity (a path) that is the same dataset as a catalog node.
    Column("namespace", String(400), primary_key=True),
    Column("name", String(1000), primary_key=True),
    Column("node_id", Id, ForeignKey("lineage_nodes.id"), nullable=False),
)

runs = Table(
    "lineage_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("job_namespace", String(400), nullable=False),
    Column("job_name", String(1000), nullable=False),
    Column("state", String(16), nullable=False),  # START RUNNING COMPLETE FAIL ABORT OTHER
    Column("principal", String(255), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("parameters", JSON, nullable=False, default=dict),
    Column("code_ref", String(1000)),
    Index("ix_lineage_runs_job", "job_namespace", "job_name"),
)

run_inputs = Table(
    "lineage_run_inputs",
    metadata,
    Column("run_id", String(64), ForeignKey("lineage_runs.run_id"), primary_key=True),
    Column("node_id", Id, ForeignKey("lineage_nodes.id"), primary_key=True),
    Column("version", BigInteger, primary_key=True, default=-1),
)

edges = Table(
    "lineage_edges",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_id", Id, ForeignKey("lineage_nodes.id"), nullable=False),
    Column("target_id", Id, ForeignKey("lineage_nodes.id"), nullable=False),
    Column("kind", String(8), nullable=False),  # DATASET | COLUMN
    Column("run_id", String(64)),
    Column("source_version", BigInteger),
    Column("target_version", BigInteger),
    Column("transformation_type", String(16)),  # DIRECT | INDIRECT
    Column("transformation_subtype", String(32)),  # IDENTITY, TRANSFORMATION, AGGREGATION, JOIN, ...
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The same instant in microseconds since the epoch: what traversal compares against as-of times.
    Column("created_us", BigInteger, nullable=False),
    Index("ix_lineage_edges_source", "source_id"),
    Index("ix_lineage_edges_target", "target_id"),
    sqlite_autoincrement=True,
)



# Statements every lineage query runs, built once (SQLAlchemy memoizes their cache keys).
_EDGES_AFTER = (select(edges.c.id, edges.c.source_id, edges.c.target_id, case((edges.c.kind == "COLUMN", 1), else_=0), edges.c.created_us)
                .where(edges.c.id > bindparam("last")).order_by(edges.c.id).limit(bindparam("limit")))
_NODES_BY_ID = select(nodes).where(nodes.c.id.in_(bindparam("ids", expanding=True)))
_SYMLINK = select(symlinks.c.node_id).where(symlinks.c.namespace == bindparam("ns"), symlinks.c.name == bindparam("name"))
_NODE = select(nodes.c.id).where(nodes.c.namespace == bindparam("ns"), nodes.c.name == bindparam("name"), nodes.c.kind == bindparam("kind"))

class LineageStore:
    """Queries over one connection inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def node_id(self, kind: str, namespace: str, name: str, parent_id: int | None = None) -> int:
        """The id of a node, created on first sight. Symlinked physical names resolve to their node."""
        if kind != "COLUMN":
            linked = self.conn.execute(
                select(symlinks.c.node_id).where(symlinks.c.namespace == namespace, symlinks.c.name == name)
            ).scalar()
            if linked is not None:
                return linked
        q = select(nodes.c.id).where(nodes.c.namespace == namespace, nodes.c.name == name, nodes.c.kind == kind)
        found = self.conn.execute(q).scalar()
        if found is not None:
            return found
        with self.conn.begin_nested():
            return self.conn.execute(
                insert(nodes).values(kind=kind, namespace=namespace, name=name, parent_id=parent_id, created_at=now()).returning(nodes.c.id)
            ).scalar_one()

    def link(self, namespace: str, name: str, node_id: int) -> None:
        exists = self.conn.execute(select(symlinks.c.node_id).where(symlinks.c.namespace == namespace, symlinks.c.name == name)).scalar()
        if exists is None:
            self.conn.execute(insert(symlinks).values(namespace=namespace, name=name, node_id=node_id))

    def linked_table(self, namespace: str, name: str) -> str | None:
        """The catalog table a physical name was linked to (by an earlier event), or None."""
        nid = self.conn.execute(_SYMLINK, {"ns": namespace, "name": name}).scalar()
        if nid is None:
            return None
        row = self.conn.execute(select(nodes.c.kind, nodes.c.namespace, nodes.c.name).where(nodes.c.id == nid)).first()
        return row.name if row is not None and row.kind == "TABLE" and row.namespace == "cairn" else None

    def upsert_run(self, run_id: str, job_namespace: str, job_name: str, state: str, principal: str,
                   parameters: dict[str, Any] | None = None, code_ref: str | None = None, at: datetime | None = None) -> None:
        row = self.conn.execute(select(runs.c.state).where(runs.c.run_id == run_id)).first()
        ts = at or now()
        if row is None:
            self.conn.execute(insert(runs).values(
                run_id=run_id, job_namespace=job_namespace, job_name=job_name, state=state, principal=principal,
                started_at=ts, ended_at=ts if state in ("COMPLETE", "FAIL", "ABORT") else None,
                parameters=parameters or {}, code_ref=code_ref,
            ))
        else:
            values: dict[str, Any] = {"state": state}
            if state in ("COMPLETE", "FAIL", "ABORT"):
                values["ended_at"] = ts
            self.conn.execute(runs.update().where(runs.c.run_id == run_id).values(**values))

    def get_run(self, run_id: str) -> Any:
        return self.conn.execute(select(runs).where(runs.c.run_id == run_id)).first()

    def add_run_input(self, run_id: str, node_id: int, version: int | None) -> None:
        v = -1 if version is None else version
        q = select(run_inputs.c.run_id).where(run_inputs.c.run_id == run_id, run_inputs.c.node_id == node_id, run_inputs.c.version == v)
        if self.conn.execute(q).first() is None:
            self.conn.execute(insert(run_inputs).values(run_id=run_id, node_id=node_id, version=v))

    def run_inputs_of(self, run_id: str) -> list[tuple[int, int | None]]:
        q = select(run_inputs.c.node_id, run_inputs.c.version).where(run_inputs.c.run_id == run_id)
        return [(r[0], None if r[1] == -1 else r[1]) for r in self.conn.execute(q)]

    def run_outputs_of(self, run_id: str) -> list[tuple[int, int | None]]:
        q = select(edges.c.target_id, func.max(edges.c.target_version)).where(
            edges.c.run_id == run_id, edges.c.kind == "DATASET").group_by(edges.c.target_id)
        return [(r[0], r[1]) for r in self.conn.execute(q)]

    def add_edges(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            serialize_appends(self.conn, LINEAGE_EDGES_LOCK)
            ts = now()
            blank = dict(run_id=None, source_version=None, target_version=None, transformation_type=None, transformation_subtype=None)
            us = int(ts.timestamp() * 1_000_000)
            self.conn.execute(insert(edges), [{**blank, "created_at": ts, "created_us": us, **r} for r in rows])

    def edges_after(self, last_id: int, limit: int = 1_000_000) -> list[tuple[int, int, int, int, int]]:
        """(id, source, target, kind code: 0 dataset / 1 column, created_us) past `last_id`, in id order."""
        return [tuple(r) for r in self.conn.execute(_EDGES_AFTER, {"last": last_id, "limit": limit})]  # type: ignore[misc]

    def max_edge_id(self) -> int:
        return self.conn.execute(select(func.coalesce(func.max(edges.c.id), 0))).scalar_one()

    def nodes_by_id(self, ids: Iterable[int]) -> dict[int, Any]:
        ids = list(ids)
        out: dict[int, Any] = {}
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            out.update({r.id: r for r in self.conn.execute(_NODES_BY_ID, {"ids": chunk})})
        return out

    def find_node(self, kind: str, namespace: str, name: str) -> int | None:
        linked = self.conn.execute(_SYMLINK, {"ns": namespace, "name": name}).scalar()
        if linked is not None:
            return linked
        return self.conn.execute(_NODE, {"ns": namespace, "name": name, "kind": kind}).scalar()

    def edge_details(self, pairs: Iterable[tuple[int, int]], kind: str) -> list[Any]:
        pairs = list(pairs)
        if not pairs:
            return []
        sources = {p[0] for p in pairs}
        wanted = set(pairs)
        q = select(edges).where(edges.c.source_id.in_(list(sources)), edges.c.kind == kind).order_by(edges.c.id)
        return [r for r in self.conn.execute(q) if (r.source_id, r.target_id) in wanted]
