"""Governed lineage: record runs and edges, traverse upstream and downstream, paths and impact.

Callers see only nodes they may see (BROWSE, ownership, or usage and a privilege); a hidden node
comes back as a restricted placeholder with no name, so paths stay connected without leaking.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalog import names
from catalog.errors import InvalidArgument, NotFound
from catalog.privileges import Kind, Privilege
from catalog.service.base import UnitOfWork
from catalog.service.common import Service, display
from lineage.graph import LineageGraph
from lineage.openlineage import MAX_EDGES, locations_of, normalize_location
from lineage.recording import CAIRN, parse_ref, record_edges, split_column
from lineage.store import LineageStore

NODE_KINDS = ("TABLE", "COLUMN", "MODEL", "MODEL_VERSION", "FUNCTION", "ENDPOINT", "DATASET")
SUBTYPES = {"IDENTITY", "TRANSFORMATION", "AGGREGATION", "JOIN", "FILTER", "GROUP_BY", "SORT", "WINDOW", "CONDITIONAL"}
_SECURABLE = {"TABLE": Kind.TABLE, "MODEL": Kind.MODEL, "MODEL_VERSION": Kind.MODEL_VERSION, "FUNCTION": Kind.FUNCTION,
              "ENDPOINT": Kind.SERVING_ENDPOINT}


@dataclass(frozen=True, slots=True)
class NodeView:
    id: int
    kind: str
    namespace: str | None
    name: str | None
    restricted: bool
    depth: int
    path: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LineageResult:
    root: NodeView
    nodes: tuple[NodeView, ...]
    edges: tuple[tuple[int, int], ...]
    truncated: bool


@dataclass(frozen=True, slots=True)
class ColumnEdge:
    source: str  # "catalog.schema.table.column"
    target: str
    transformation_type: str = "DIRECT"
    transformation_subtype: str = "IDENTITY"


@dataclass(frozen=True, slots=True)
class Impact:
    column: str
    columns: tuple[str, ...]
    tables: tuple[str, ...]
    owners: dict[str, str] = field(default_factory=dict)  # table -> owner to notify
    restricted: int = 0


class LineageService(Service):
    @property
    def graph(self) -> LineageGraph:
        return self.metastore.lineage_graph

    # recording -----------------------------------------------------------------------------
    def start_run(self, job_name: str, job_namespace: str = CAIRN, parameters: dict[str, Any] | None = None, code_ref: str | None = None) -> str:
        """Open a run of a job; reads and writes made with its id become its inputs and outputs."""
        with self._uow("start_run", None, job_name, job_namespace=job_namespace, parameters=parameters) as uow:
            uow.allow()
            if not job_name or not isinstance(job_name, str):
                raise InvalidArgument("a run needs a job name")
            run_id = uuid.uuid4().hex
            LineageStore(uow.conn).upsert_run(run_id, job_namespace, job_name, "RUNNING", uow.principal, parameters, code_ref)
        self._emit(run_id, job_name, job_namespace, "START", [], [])
        return run_id

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run: its job, who ran it, when, state, parameters, code reference, and the versions it
        read and wrote. Visible to whoever ran it and to admins."""
        with self._uow("get_run", None, run_id, write=False) as uow:
            store = LineageStore(uow.conn)
            run = store.get_run(run_id)
            if run is None:
                raise NotFound(f"run '{run_id}' does not exist")
            if run.principal != uow.principal and not uow.authz.is_admin(uow.principal):
                uow.hide("run", run_id)
            uow.allow()
            inputs, outputs = store.run_inputs_of(run_id), store.run_outputs_of(run_id)
            rows = store.nodes_by_id([n for n, _ in inputs + outputs])
            return {
                "run_id": run.run_id, "job_namespace": run.job_namespace, "job_name": run.job_name, "state": run.state,
                "principal": run.principal, "started_at": run.started_at, "ended_at": run.ended_at,
                "parameters": dict(run.parameters or {}), "code_ref": run.code_ref,
                "inputs": [(rows[n].name, v) for n, v in inputs], "outputs": [(rows[n].name, v) for n, v in outputs],
            }

    def complete_run(self, run_id: str, state: str = "COMPLETE") -> None:
        with self._uow("complete_run", None, run_id, state=state) as uow:
            store = LineageStore(uow.conn)
            run = store.get_run(run_id)
            if run is None:
                raise NotFound(f"run '{run_id}' does not exist")
            if run.principal != uow.principal and not uow.authz.is_admin(uow.principal):
                uow.hide("run", run_id)  # as get_run does: another's run is not there
            uow.allow()
            if state not in ("COMPLETE", "FAIL", "ABORT"):
                raise InvalidArgument("state must be COMPLETE, FAIL or ABORT")
            store.upsert_run(run_id, run.job_namespace, run.job_name, state, run.principal)
            inputs, outputs = store.run_inputs_of(run_id), store.run_outputs_of(run_id)
            names_ = {nid: row.name for nid, row in store.nodes_by_id([n for n, _ in inputs + outputs]).items()}
        self._emit(run_id, run.job_name, run.job_namespace, state, [(names_[n], v) for n, v in inputs], [(names_[n], v) for n, v in outputs])

    def _emit(self, run_id: str, job: str, namespace: str, state: str, inputs: list[tuple[str, int | None]], outputs: list[tuple[str, int | None]]) -> None:
        from lineage import emit

        if emit.configured():
            from lineage.openlineage import run_event

            emit.emit(run_event(run_id, job, state, inputs, outputs, job_namespace=namespace))

    def record(
        self,
        inputs: Sequence[str],
        outputs: Sequence[str],
        column_edges: Sequence[ColumnEdge] = (),
        run_id: str | None = None,
    ) -> int:
        """Record that `inputs` fed `outputs` (catalog tables), with column edges.

        Needs to see every input and MODIFY on every output: nobody claims lineage into a table
        they may not write. Returns the number of edges written.
        """
        with self._uow("record_lineage", Kind.TABLE, ",".join(map(str, outputs)), inputs=list(inputs), run_id=run_id) as uow:
            name = uow.name
            written = self._record(uow, inputs, outputs, column_edges, run_id)
            uow.kind, uow.name = Kind.TABLE, name
            return written

    def _record(self, uow: UnitOfWork, inputs: Sequence[str], outputs: Sequence[str], column_edges: Sequence[Any], run_id: str | None) -> int:
        if len(inputs) * len(outputs) + len(column_edges) > MAX_EDGES:
            raise InvalidArgument(f"this would add {len(inputs) * len(outputs) + len(column_edges):,} edges; the limit is {MAX_EDGES:,} per call")
        ins = [self._ref(uow, n, output=False) for n in inputs]
        outs = [self._ref(uow, n, output=True) for n in outputs]
        cols = [ColumnEdge(**e) if isinstance(e, dict) else e for e in column_edges]
        for e in cols:
            for ref, need in ((e.source, None), (e.target, Privilege.MODIFY)):
                self._table(uow, ref.rsplit(".", 1)[0], need)
            if e.transformation_type not in ("DIRECT", "INDIRECT") or e.transformation_subtype not in SUBTYPES:
                raise InvalidArgument(f"unknown transformation {e.transformation_type}/{e.transformation_subtype}")
        if not outs and not cols:
            raise InvalidArgument("lineage needs at least one output")
        if run_id:
            self._own_run(uow, LineageStore(uow.conn), run_id)
        return record_edges(LineageStore(uow.conn), run_id, [(i, None) for i in ins], [(o, None) for o in outs], cols)

    def ingest_openlineage(self, body: Any) -> dict[str, Any]:
        """Store an OpenLineage RunEvent, DatasetEvent or JobEvent (spec 2-0-x).

        A dataset that is a catalog table by ANY of its names (namespace `cairn`, a symlink
        identifier, a physical name linked to the table before, or the table's storage location or
        a path inside it, however spelled) is authorized as that table: outputs and dataset events
        need MODIFY (ownership counts), inputs and the input fields of column lineage need sight of
        it. Everything is authorized before anything is written, so a refused event changes
        nothing, and its DENIED audit row names the table. Runs and their states are kept; a
        COMPLETE (or OTHER) run event, or a job event, adds edges from every input to every output,
        and column edges from the columnLineage facet. Raises InvalidArgument naming the first bad
        field or the limit (lineage.openlineage.MAX_EDGES) the event passes.
        """
        from lineage.openlineage import parse

        with self._uow("ingest_openlineage", None, None, event_type=body.get("eventType") if isinstance(body, dict) else None) as uow:
            event = parse(body)
            job = f"{event.job_namespace}/{event.job_name}" if event.job_name else None
            uow.name = job
            uow.params["job"] = job
            store = LineageStore(uow.conn)
            if event.run_id:
                self._own_run(uow, store, event.run_id)
            # 1. Which catalog table each dataset is, authorized; nothing is written yet.
            resolver = _Tables(self, uow, store)
            table_of: dict[tuple[str, str], str | None] = {}
            for role, group in (("input", event.inputs), ("output", event.outputs), ("dataset", event.datasets)):
                for d in group:
                    resolver.claim(table_of, (d.namespace, d.name), [(d.namespace, d.name), *d.symlinks], write=role != "input")
            for o in event.outputs:
                for fl in o.column_lineage:
                    key = (fl.input_namespace, fl.input_name)
                    if key not in table_of:  # a dataset of the event: already authorized (MODIFY implies sight)
                        resolver.claim(table_of, key, [key], write=False)
            uow.allow()
            touched = sorted({t for t in table_of.values() if t})
            if touched:  # the ALLOWED row names the tables the event touched
                uow.kind, uow.name = Kind.TABLE, ",".join(touched)
            # 2. Nodes, links and edges.
            node_of: dict[tuple[str, str], int] = {}
            for key, table in table_of.items():
                node_of[key] = store.node_id("TABLE", CAIRN, table) if table else store.node_id("DATASET", *key)
            for d in (*event.outputs, *event.datasets):
                table = table_of[(d.namespace, d.name)]
                if table is not None:  # physical names of a catalog table are the same node (written by whoever may write it)
                    for ns, name in [(d.namespace, d.name), *d.symlinks]:
                        if ns != CAIRN:
                            store.link(ns, name, node_of[(d.namespace, d.name)])
            if event.kind == "RunEvent":
                store.upsert_run(event.run_id or "", event.job_namespace or "", event.job_name or "", event.event_type or "OTHER",
                                 uow.principal, {"facets": list(event.run_facets)}, None, event.event_time)
            written = 0
            if event.kind == "JobEvent" or event.event_type in ("COMPLETE", "OTHER"):
                rows = []
                for i in event.inputs:
                    for o in event.outputs:
                        src, dst = node_of[(i.namespace, i.name)], node_of[(o.namespace, o.name)]
                        if src != dst:
                            rows.append(dict(source_id=src, target_id=dst, kind="DATASET", run_id=event.run_id))
                for o in event.outputs:
                    dst_table = node_of[(o.namespace, o.name)]
                    for fl in o.column_lineage:
                        src_table = node_of[(fl.input_namespace, fl.input_name)]
                        parents = store.nodes_by_id([src_table, dst_table])
                        src, dst = parents[src_table], parents[dst_table]
                        rows.append(dict(
                            source_id=store.node_id("COLUMN", src.namespace, f"{src.name}.{fl.input_field.lower()}", src_table),
                            target_id=store.node_id("COLUMN", dst.namespace, f"{dst.name}.{fl.output_field.lower()}", dst_table),
                            kind="COLUMN", run_id=event.run_id, transformation_type=fl.type,
                            transformation_subtype=fl.subtype if fl.subtype in SUBTYPES else "TRANSFORMATION",
                        ))
                store.add_edges(rows)
                written = len(rows)
            return {"kind": event.kind, "run_id": event.run_id, "edges": written}

    def extract_sql(self, sql: str, dialect: str | None = None, default_catalog: str | None = None, default_schema: str | None = None) -> Any:
        """Lineage of SQL text, with the columns of the catalog tables it names (so `*` expands).

        Only tables the caller may see lend their columns; names resolve against the defaults
        given (as after USE CATALOG / USE SCHEMA). Returns `lineage.sql.SqlLineage`.
        """
        with self._uow("extract_sql_lineage", None, None, write=False, dialect=dialect) as uow:
            uow.allow()
            return self._extract(uow, sql, dialect, default_catalog, default_schema)

    def _extract(self, uow: UnitOfWork, sql: str, dialect: str | None, catalog: str | None, schema_name: str | None) -> Any:
        from lineage.sql import extract

        first = extract(sql, dialect)
        schema: dict[str, list[str]] = {}
        for name in first.sources | first.targets:
            key = self._qualify_name(name, catalog, schema_name)
            sid = uow.authz.resolve(Kind.TABLE, key) if key else None
            if sid is not None and uow.authz.can_see(uow.principal, sid):
                schema[name] = [c.name for c in uow.store.get_securable_by_id(sid).columns]
        return extract(sql, dialect, schema) if schema else first

    def record_sql(self, sql: str, dialect: str | None = None, run_id: str | None = None,
                   default_catalog: str | None = None, default_schema: str | None = None) -> int:
        """Record the table and column lineage of SQL that wrote catalog tables (the SQL shim's
        writes). Needs MODIFY on every target and sight of every source; returns edges written."""
        with self._uow("record_sql_lineage", Kind.TABLE, None, dialect=dialect, run_id=run_id) as uow:
            lin = self._extract(uow, sql, dialect, default_catalog, default_schema)
            if lin.errors:
                raise InvalidArgument(f"cannot read the SQL: {lin.errors[0]}")

            def q(name: str) -> str:
                return self._qualify_name(name, default_catalog, default_schema) or name

            def col(ref: str) -> str:
                table, _, column = ref.rpartition(".")
                return f"{q(table)}.{column}"

            cols = [ColumnEdge(col(e.source), col(e.target), e.kind, e.subtype or ("TRANSFORMATION" if e.kind == "DIRECT" else "FILTER"))
                    for e in lin.columns]
            targets = sorted({q(n) for n in lin.targets})
            written = self._record(uow, sorted({q(n) for n in lin.sources} - set(targets)), targets, cols, run_id)
            uow.kind, uow.name = Kind.TABLE, ",".join(targets)
            return written

    @staticmethod
    def _qualify_name(name: str, catalog: str | None, schema: str | None) -> str | None:
        parts = name.split(".")
        if len(parts) == 3:
            return name.lower()
        if len(parts) == 2 and catalog:
            return f"{catalog}.{name}".lower()
        if len(parts) == 1 and catalog and schema:
            return f"{catalog}.{schema}.{name}".lower()
        return None

    def _ref(self, uow: UnitOfWork, ref: str, output: bool) -> str:
        """Check a lineage reference: inputs must be visible; outputs writable (MODIFY on a table,
        manage rights on a model or function). Endpoints are not securables yet."""
        kind, name = parse_ref(ref)
        if kind == "TABLE":
            return self._table(uow, name, Privilege.MODIFY if output else None)
        if kind == "ENDPOINT":
            uow.allow()
            return f"endpoint:{name}"
        securable = _SECURABLE[kind]
        sid = uow.authz.resolve(securable, name)
        if sid is None:
            raise NotFound(f"{kind.lower().replace('_', ' ')} '{name}' does not exist")
        if output:
            uow.require_manage(sid, securable, name, "record lineage into")
        else:
            uow.require_visible(sid, securable, name)
        prefix = "model" if kind in ("MODEL", "MODEL_VERSION") else "function"
        return f"{prefix}:{name}"

    @staticmethod
    def _own_run(uow: UnitOfWork, store: LineageStore, run_id: str) -> None:
        """Only a run's own principal (or an admin) adds to it or changes its state: an event must
        not finish, fail or extend somebody else's run by naming its id."""
        run = store.get_run(run_id)
        if run is not None and run.principal != uow.principal and not uow.authz.is_admin(uow.principal):
            uow.deny(f"run '{run_id}' belongs to another principal")

    def _table(self, uow: UnitOfWork, name: str, privilege: Privilege | None) -> str:
        """Authorize a table: sight of it (`privilege` None) or `privilege` on it. The unit of work
        is named after the table first, so a refusal's audit row names what was refused."""
        fn = names.parse(name, 3)
        uow.kind, uow.name = Kind.TABLE, fn.key
        sid = uow.authz.resolve(Kind.TABLE, fn.key)
        if sid is None:
            raise NotFound(f"table '{fn.key}' does not exist")
        if privilege is None:
            uow.require_visible(sid, Kind.TABLE, fn.key)
        else:
            uow.require(privilege, sid, Kind.TABLE, fn.key)
        return fn.key

    # traversal -----------------------------------------------------------------------------
    def get_downstream(self, name: str, **kwargs: Any) -> LineageResult:
        """Everything fed by `name` (a table, or `table.column` with level COLUMN)."""
        return self._walk("get_downstream_lineage", name, True, **kwargs)

    def get_upstream(self, name: str, **kwargs: Any) -> LineageResult:
        """Everything that fed `name`."""
        return self._walk("get_upstream_lineage", name, False, **kwargs)

    def _walk(
        self, action: str, name: str, downstream: bool, level: str = "TABLE", depth: int = 10,
        node_kinds: Sequence[str] | None = None, as_of: datetime | None = None, limit: int = 10_000,
    ) -> LineageResult:
        with self._uow(action, Kind.TABLE, display(name), write=False, level=level, depth=depth, as_of=str(as_of) if as_of else None) as uow:
            if level not in ("TABLE", "COLUMN"):
                raise InvalidArgument("level must be TABLE or COLUMN")
            if not isinstance(depth, int) or depth < 1 or depth > 100:
                raise InvalidArgument("depth must be between 1 and 100")
            for k in node_kinds or ():
                if k not in NODE_KINDS:
                    raise InvalidArgument(f"unknown node kind {k!r}; expected one of {', '.join(NODE_KINDS)}")
            store = LineageStore(uow.conn)
            start = self._start(uow, store, name, level)
            self.graph.sync(store)
            t = self.graph.traverse(start, downstream, "COLUMN" if level == "COLUMN" else "DATASET", depth, as_of, limit)
            return self._view(uow, store, t, node_kinds)

    def _start(self, uow: UnitOfWork, store: LineageStore, name: str, level: str) -> int:
        securable = Kind.TABLE
        if level == "COLUMN":
            table, column = split_column(name)
            key, kind = f"{table}.{column}", "COLUMN"
        else:
            kind, key = parse_ref(name)
            table = key
            securable = _SECURABLE.get(kind, Kind.TABLE)
        sid = uow.authz.resolve(securable, table)
        node = store.find_node(kind, CAIRN, key)
        if sid is None and node is None:  # a typo, for everyone alike: nothing exists to hide
            what = "column" if kind == "COLUMN" else kind.lower().replace("_", " ")
            raise NotFound(f"{what} '{key}' does not exist (and no lineage was recorded under that name)")
        if sid is not None:
            uow.require_visible(sid, securable, table)
        else:
            # A table dropped since keeps its history, under its old name; with no securable left to
            # grant on, only metastore admins may read it (deny by default).
            uow.require_admin("reading lineage of a dropped object")
        if node is None:
            node = store.node_id(kind, CAIRN, key)
        return node

    def _visible(self, uow: UnitOfWork, row: Any, parents: dict[int, Any]) -> bool:
        if row.namespace != CAIRN:
            return True
        kind = row.kind
        name = row.name
        if kind == "COLUMN":
            parent = parents.get(row.parent_id)
            if parent is None:
                return False
            kind, name = "TABLE", parent.name
        securable = _SECURABLE.get(kind)
        if securable is None:
            return True
        sid = uow.authz.resolve(securable, name)
        if sid is None:  # a dropped object: its history stays, visible to admins only
            return uow.authz.is_admin(uow.principal)
        return uow.authz.can_see(uow.principal, sid)

    def _view(self, uow: UnitOfWork, store: LineageStore, t: Any, node_kinds: Sequence[str] | None) -> LineageResult:
        ids = [t.start, *t.depth]
        rows = store.nodes_by_id(ids)
        parents = store.nodes_by_id({r.parent_id for r in rows.values() if r.parent_id})
        visible: dict[int, bool] = {}
        views = []
        for nid in ids:
            row = rows[nid]
            ok = visible.setdefault(nid, self._visible(uow, row, parents))
            d = 0 if nid == t.start else t.depth[nid]
            path = tuple(t.path_to(nid)) if nid != t.start else (nid,)
            views.append(NodeView(nid, row.kind, row.namespace if ok else None, row.name if ok else None, not ok, d, path))
        root, rest = views[0], views[1:]
        if node_kinds:
            rest = [v for v in rest if v.kind in node_kinds or v.restricted]
        edges = tuple((t.parent[v.id], v.id) for v in rest)
        return LineageResult(root, tuple(sorted(rest, key=lambda v: (v.depth, v.id))), edges, t.truncated)

    def list_edges(self, level: str = "TABLE", limit: int = 100_000) -> list[dict[str, Any]]:
        """Edges whose both ends the caller may see (system.access.table_lineage / column_lineage)."""
        from sqlalchemy import select

        from lineage.store import edges as e

        with self._uow("list_lineage_edges", None, None, write=False, level=level) as uow:
            uow.allow()
            if level not in ("TABLE", "COLUMN"):
                raise InvalidArgument("level must be TABLE or COLUMN")
            store = LineageStore(uow.conn)
            rows = list(uow.conn.execute(select(e).where(e.c.kind == ("COLUMN" if level == "COLUMN" else "DATASET")).order_by(e.c.id).limit(limit)))
            nodes = store.nodes_by_id({r.source_id for r in rows} | {r.target_id for r in rows})
            parents = store.nodes_by_id({n.parent_id for n in nodes.values() if n.parent_id})
            seen: dict[int, bool] = {}

            def ok(nid: int) -> bool:
                if nid not in seen:
                    seen[nid] = self._visible(uow, nodes[nid], parents)
                return seen[nid]

            return [dict(source=nodes[r.source_id].name, target=nodes[r.target_id].name, source_kind=nodes[r.source_id].kind,
                         target_kind=nodes[r.target_id].kind, run_id=r.run_id, source_version=r.source_version,
                         target_version=r.target_version, transformation_type=r.transformation_type,
                         transformation_subtype=r.transformation_subtype, created_at=r.created_at)
                    for r in rows if ok(r.source_id) and ok(r.target_id)]

    def get_path(self, source: str, target: str, level: str = "TABLE", as_of: datetime | None = None) -> list[NodeView]:
        """The shortest directed path from source to target; empty when none."""
        with self._uow("get_lineage_path", Kind.TABLE, display(source), write=False, target=target) as uow:
            store = LineageStore(uow.conn)
            s = self._start(uow, store, source, level)
            tnode = self._start(uow, store, target, level)
            self.graph.sync(store)
            path = self.graph.shortest_path(s, tnode, "COLUMN" if level == "COLUMN" else "DATASET", as_of)
            if not path:
                return []
            rows = store.nodes_by_id(path)
            parents = store.nodes_by_id({r.parent_id for r in rows.values() if r.parent_id})
            out = []
            for i, nid in enumerate(path):
                ok = self._visible(uow, rows[nid], parents)
                out.append(NodeView(nid, rows[nid].kind, rows[nid].namespace if ok else None, rows[nid].name if ok else None, not ok, i, tuple(path[: i + 1])))
            return out

    def get_impact(self, column: str, depth: int = 20) -> Impact:
        """Everything downstream that a change to `catalog.schema.table.column` touches, with the
        owners of the affected tables to notify."""
        result = self.get_downstream(column, level="COLUMN", depth=depth)
        cols = [v.name for v in result.nodes if not v.restricted and v.name]
        tables = sorted({c.rsplit(".", 1)[0] for c in cols})
        owners = {}
        with self._uow("get_lineage_impact", Kind.TABLE, display(column), write=False) as uow:
            uow.allow()
            for tname in tables:
                sid = uow.authz.resolve(Kind.TABLE, tname)
                if sid is not None:
                    owners[tname] = uow.authz.chain(sid)[0].owner
        return Impact(column, tuple(sorted(cols)), tuple(tables), owners, sum(v.restricted for v in result.nodes))


class _Tables:
    """Which catalog table an OpenLineage dataset is, by every name it has, authorized as that table.

    A name is a table's when it is `cairn` + the table's name, a physical name linked to the table
    by an earlier event, or the table's storage location or a path inside it (any spelling: `file:`
    URIs, trailing slashes, `..`). Names of one dataset that point at two tables are refused.
    """

    def __init__(self, service: LineageService, uow: UnitOfWork, store: LineageStore) -> None:
        self.service, self.uow, self.store = service, uow, store
        self._locations: dict[str, str] | None = None

    def locations(self) -> dict[str, str]:
        if self._locations is None:  # read once per event, and only when it has physical names
            self._locations = {normalize_location(loc): table for table, loc in self.uow.store.table_locations()}
        return self._locations

    def tables(self, dataset_names: list[tuple[str, str]]) -> set[str]:
        found = set()
        for ns, name in dataset_names:
            if ns == CAIRN:
                found.add(names.parse(name, 3).key)
                continue
            linked = self.store.linked_table(ns, name)
            if linked is not None:
                found.add(linked)
            for path in locations_of(ns, name):
                while path not in self.locations():  # the table whose location holds the path, if any
                    parent = path.rsplit("/", 1)[0] if path.count("/") > (3 if "://" in path else 1) else ""
                    if not parent or parent == path:
                        break
                    path = parent
                else:
                    found.add(self.locations()[path])
        return found

    def claim(self, table_of: dict[tuple[str, str], str | None], key: tuple[str, str], dataset_names: list[tuple[str, str]], write: bool) -> None:
        """Resolve and authorize one dataset; record it in `table_of`."""
        found = self.tables(dataset_names)
        for table in sorted(found):
            if self.uow.authz.resolve(Kind.TABLE, table) is None and table not in {n for ns, n in dataset_names if ns == CAIRN}:
                # linked to a table dropped since: its history is readable by admins only, and so writable
                self.uow.kind, self.uow.name = Kind.TABLE, table
                self.uow.require_admin("recording lineage of a dropped table")
                continue
            self.service._table(self.uow, table, Privilege.MODIFY if write else None)
        if len(found) > 1:
            raise InvalidArgument(f"dataset {key[0]}/{key[1]} names {len(found)} different catalog tables: {', '.join(sorted(found))}")
        claimed = next(iter(found), None)
        if key in table_of and table_of[key] != claimed:
            raise InvalidArgument(f"dataset {key[0]}/{key[1]} is named with symlinks to different tables in one event")
        table_of[key] = claimed
