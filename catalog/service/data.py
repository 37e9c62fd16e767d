"""Governed reads and writes of Delta table data, through `deltalake`.

Every operation is checked (SELECT to read; MODIFY to write; both for merge, update and delete),
audited with the Delta version it read or produced, and committed atomically by the Delta log.
The metastore transaction is not held open while data moves: the check runs first, the Delta
commit follows, and the audit row (with any column change schema evolution made) is written last
in one transaction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlglot

from catalog import delta
from catalog.entities import Securable, TableType
from catalog.errors import CairnError, Conflict, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from catalog.policies import Policy, bind_identity, quote, render_function
from catalog.privileges import Kind, Privilege
from catalog.relations import as_of, catalog_relations, qualify
from catalog.scan import DataFile, ScanPlan, apply_policy
from catalog.service.base import UnitOfWork
from catalog.service.common import Service, display, fetch, parse_for, resolve
from catalog.store.metastore import MetastoreStore

MIN_VACUUM_RETENTION_HOURS = 168


@dataclass(frozen=True, slots=True)
class ViewPlan:
    """A view a statement reads, as Databricks runs views: what it reads is checked with its owner's
    privileges, while row filters, masks and `current_user()` / group tests in its definition are
    the reader's. `definition` is rendered for the reader; `reads` holds a plan for each
    (table, version, timestamp) it names."""

    table: str
    owner: str
    definition: str
    reads: dict[tuple[str, int | None, str | None], ScanPlan | ViewPlan]


MAX_VIEW_DEPTH = 16


@dataclass(frozen=True, slots=True)
class WriteResult:
    table: str
    version: int
    operation: str
    metrics: dict[str, Any]


def _delta_errors(table: str, exc: Exception) -> CairnError:
    """Translate a delta-rs failure into Cairn's errors, naming the table."""
    from deltalake.exceptions import CommitFailedError, DeltaError, SchemaMismatchError

    if isinstance(exc, CommitFailedError):
        return Conflict(f"'{table}' was changed by a concurrent writer; retry: {exc}")
    if isinstance(exc, SchemaMismatchError):
        return InvalidArgument(f"write to '{table}': {exc}")
    if isinstance(exc, (DeltaError, ValueError, TypeError)):
        return InvalidArgument(f"'{table}': {exc}")
    raise exc


_LITERAL = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")


def redact_literals(value: Any) -> Any:
    """A history parameter with the literal values in it (strings, numbers) replaced by `?`.

    >>> redact_literals("ssn = '987-65-4321' AND age > 40")
    'ssn = ? AND age > ?'
    """
    if isinstance(value, (list, dict)):
        return [redact_literals(v) for v in value] if isinstance(value, list) else {k: redact_literals(v) for k, v in value.items()}
    if not isinstance(value, str):
        return value if isinstance(value, bool) or value is None else "?"
    if value[:1] in ("[", "{"):  # delta-rs keeps some predicates as JSON: redact inside, keep the shape
        try:
            return json.dumps(redact_literals(json.loads(value)))
        except ValueError:
            pass
    return _LITERAL.sub("?", value)



def _visible_stats(stats: Any, policy: Policy, columns: tuple[Any, ...]) -> Any:
    """File statistics the reader may see: none under a row filter (a file's min and max are values
    of rows it may not read, and its counts count them), none of a masked column (its min and max
    are values the mask hides, its null count tells where the hidden values are null), and none the
    log keeps under a name that is no column of the table (`columns`): a table with Delta column
    mapping keeps them under physical names (`min.col-<uuid>`), which no mask names."""
    if stats is None or policy.row_filter:
        return None
    masked = tuple(m.lower() for m in policy.masks)
    known = {c.name.lower() for c in columns}

    def shown(stat: str) -> bool:  # `min.<column>` or, for a struct's field, `min.<column>.<field>`; `num_records`
        if stat == "num_records":
            return True
        kind, _, name = stat.lower().partition(".")
        if kind not in ("min", "max", "null_count") or name.split(".", 1)[0] not in known:
            return False
        return not any(name == m or name.startswith(m + ".") for m in masked)

    return stats.select([c for c in stats.column_names if shown(c)])


def _readable(table: Securable, dt: Any) -> Any:
    """`dt`, unless its Parquet files name columns by Delta column mapping's physical names: no
    reader here (delta-rs's Arrow datasets, DuckDB, Spark's executors) maps them, and each would
    read every column as NULL. Refused with a clear error rather than answered wrongly."""
    mode = dt.metadata().configuration.get("delta.columnMapping.mode", "none")
    if mode not in ("none", ""):
        raise FailedPrecondition(f"'{table.full_name}' uses Delta column mapping (mode {mode}), which Cairn cannot read yet: "
                                 "its readers would see every column as NULL; rewrite the table without column mapping")
    return dt


class TableDataService(Service):
    def _open(self, uow: UnitOfWork, name: str, *privileges: Privilege) -> Securable:
        fn = parse_for(Kind.TABLE, name)
        sid = resolve(uow, Kind.TABLE, fn.key)
        for p in privileges:
            uow.require(p, sid, Kind.TABLE, fn.key)
        table = fetch(uow, sid)
        if (table.data_source_format or "") != "DELTA" or not table.storage_location:  # after the checks: a view needs SELECT too
            raise FailedPrecondition(f"'{fn.key}' is not a Delta table")
        return table

    def _no_policy_bypass(self, uow: UnitOfWork, table: Securable, what: str) -> None:
        """Changes that read the table's rows (UPDATE, DELETE, MERGE, replace_where) would see them
        past its row filter and masks (`SET name = ssn` copies a masked value out; a DELETE's row
        count answers a question about a hidden row). On such a table only its owners and metastore
        admins may make them."""
        if table.row_filter is None and not table.column_masks:
            return
        if uow.authz.is_admin(uow.principal) or uow.authz.owns(uow.principal, table.id):
            return
        raise FailedPrecondition(f"'{table.full_name}' has a row filter or column masks, which {what} cannot apply: "
                                 "only its owner or a metastore admin may run it; append with write() instead")

    def _policy(self, uow: UnitOfWork, table: Securable) -> Policy:
        """The row filter and masks of `table` rendered for the caller (see catalog/policies.py)."""
        if table.row_filter is None and not table.column_masks:
            return Policy(None, {})
        # Admins are readers like any other here, as in Databricks.
        groups = set(uow.authz.principals(uow.principal))

        def render(function: str, args: list[str]) -> str:
            fid = uow.authz.resolve(Kind.FUNCTION, function)
            if fid is None:  # a policy whose function was dropped hides everything: fail closed
                return "NULL"
            fn = uow.store.get_securable_by_id(fid)
            return render_function(fn.routine_definition or "NULL", [c.name for c in fn.columns], [quote(a) for a in args], uow.principal, groups)

        row = None
        if table.row_filter:
            row = render(table.row_filter["function"], list(table.row_filter["columns"]))
        masks = {col: render(m["function"], [col, *m.get("using", [])]) for col, m in table.column_masks.items()}
        return Policy(row, masks)

    def _lineage(self, uow: UnitOfWork, run_id: str | None, table: Securable, version: int, is_output: bool) -> None:
        """Record the read or write in the run's lineage, in the audit row's transaction."""
        if not run_id:
            return
        from lineage.recording import record_run_io
        from lineage.store import LineageStore

        uow.params["run_id"] = run_id
        uow.deferred.append(lambda store: record_run_io(LineageStore(store.conn), run_id, uow.principal, table.full_name, version, is_output))

    def _sync_columns(self, uow: UnitOfWork, table: Securable, dt: Any) -> None:
        """Make the catalog's columns follow the Delta schema, the source of truth: after schema
        evolution, and after a writer died between its Delta commit and its metastore update."""
        cols = delta.columns_of(delta.table_schema(dt), {c.name: c.comment for c in table.columns})
        if [(c.name, c.type_text, c.nullable) for c in cols] != [(c.name, c.type_text, c.nullable) for c in table.columns]:
            def follow(store: MetastoreStore) -> None:
                store.replace_columns(table.id, cols)
                store.update_securable(table.id, uow.principal)

            uow.deferred.append(follow)

    # reads ---------------------------------------------------------------------------------
    def read(
        self,
        name: str,
        columns: list[str] | None = None,
        filters: list[tuple[str, str, Any]] | None = None,
        version: int | None = None,
        timestamp: datetime | str | None = None,
        run_id: str | None = None,
    ) -> Any:
        """Read a table as an Arrow table, projected and filtered, optionally as of a version or time.

        `filters` is a conjunction of (column, op, value) with op in =, !=, <, <=, >, >=, in, not in.
        With `run_id`, the version read becomes an input of that lineage run.
        Needs USE CATALOG, USE SCHEMA and SELECT.
        """
        with self._uow("read_table", Kind.TABLE, display(name), write=False, columns=columns, version=version,
                       timestamp=str(timestamp) if timestamp else None) as uow:
            table = self._open(uow, name, Privilege.SELECT)
            if version is not None and timestamp is not None:
                raise InvalidArgument("give a version or a timestamp, not both")
            dt = _readable(table, delta.open_table(table.storage_location or "", version, timestamp))
            if version is None and timestamp is None:
                self._sync_columns(uow, table, dt)
            known = {c.name for c in table.columns} | {f.name for f in delta.table_schema(dt)}
            for c in (columns or []) + [f[0] for f in (filters or [])]:
                if c.lower() not in known:
                    raise InvalidArgument(f"table '{table.full_name}' has no column '{c}'")
            policy = self._policy(uow, table)
            try:
                if policy.empty:
                    out = dt.to_pyarrow_table(columns=[c.lower() for c in columns] if columns else None,
                                              filters=[(c.lower(), op, v) for c, op, v in filters] if filters else None)
                else:
                    out = apply_policy(dt.to_pyarrow_dataset(), policy, [c.lower() for c in columns] if columns else None, filters)
            except CairnError:
                raise
            except Exception as exc:
                raise _delta_errors(table.full_name, exc) from None
            uow.params["delta_version"] = dt.version()
            self._lineage(uow, run_id, table, dt.version(), is_output=False)
            return out

    def read_pandas(self, name: str, **kwargs: Any) -> Any:
        return self.read(name, **kwargs).to_pandas()

    def history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The Delta log of a table, newest first (DESCRIBE HISTORY). Needs SELECT.

        Predicates in the log (`operationParameters`) carry the values other users wrote in their
        DML; anyone but the table's owners and metastore admins sees their literals as `?`."""
        with self._uow("describe_history", Kind.TABLE, display(name), write=False) as uow:
            table = self._open(uow, name, Privilege.SELECT)
            return self._redacted_history(uow, table, limit)

    def history_many(self, tables: list[Securable], limit: int | None = None) -> dict[int, list[dict[str, Any]] | CairnError]:
        """`history` of many tables (as returned by governed lists) in one call and one audit row
        (batch loaders): for each id, its Delta log, or the error the single call would raise
        (NotFound or PermissionDenied without SELECT, FailedPrecondition for a non-Delta table).
        The refused ones are named in the audit row."""
        with self._uow("describe_history", None, f"{len(tables)} tables", write=False) as uow:
            uow.allow()
            out: dict[int, list[dict[str, Any]] | CairnError] = {}
            current = uow.store.get_securables_by_ids([s.id for s in tables], columns=False)
            for s in tables:
                try:
                    table = current.get(s.id)
                    if table is None or table.kind is not Kind.TABLE:
                        raise NotFound(f"table '{s.full_name}' does not exist")
                    uow.require(Privilege.SELECT, s.id, Kind.TABLE, s.full_name)
                    if (table.data_source_format or "") != "DELTA" or not table.storage_location:
                        raise FailedPrecondition(f"'{table.full_name}' is not a Delta table")
                    out[s.id] = self._redacted_history(uow, table, limit)
                except CairnError as exc:
                    out[s.id] = exc
            refused = sorted(s.full_name for s in tables if isinstance(out[s.id], CairnError))
            if refused:
                uow.params["refused"] = refused
            return out

    def _redacted_history(self, uow: UnitOfWork, table: Securable, limit: int | None) -> list[dict[str, Any]]:
        history = delta.open_table(table.storage_location or "").history(limit)
        if uow.authz.is_admin(uow.principal) or uow.authz.owns(uow.principal, table.id):
            return history
        return [{**h, "operationParameters": {k: redact_literals(v) for k, v in (h.get("operationParameters") or {}).items()}}
                for h in history]

    def read_changes(self, name: str, starting_version: int, ending_version: int | None = None) -> Any:
        """Change data feed rows between versions (`_change_type`, `_commit_version`). Needs SELECT.

        The reader's row filter and column masks apply to every change row, as to any read."""
        with self._uow("read_table_changes", Kind.TABLE, display(name), write=False, starting_version=starting_version,
                       ending_version=ending_version) as uow:
            table = self._open(uow, name, Privilege.SELECT)
            dt = _readable(table, delta.open_table(table.storage_location or ""))
            if dt.metadata().configuration.get("delta.enableChangeDataFeed") != "true":
                raise FailedPrecondition(f"change data feed is not enabled on '{table.full_name}'")
            try:
                changes = dt.load_cdf(starting_version=starting_version, ending_version=ending_version).read_all()
            except Exception as exc:
                raise _delta_errors(table.full_name, exc) from None
            policy = self._policy(uow, table)
            return changes if policy.empty else apply_policy(changes, policy, None, None)

    def plan_scan(self, name: str, version: int | None = None, timestamp: datetime | str | None = None, run_id: str | None = None,
                  partition_filters: list[tuple[str, str, Any]] | None = None, stats: bool = False) -> ScanPlan:
        """The files of one snapshot, for an engine (Spark) that reads them on its executors.
        `partition_filters` ((column, op, value), as `read` takes) skip the files of partitions no
        row of which could match; the engine still applies them to the rows. With `stats`, the plan
        carries each file's min and max per column from the Delta log (`ScanPlan.meeting` skips by them).

        Checked and audited like `read`: needs USE CATALOG, USE SCHEMA and SELECT.
        """
        with self._uow("read_table", Kind.TABLE, display(name), write=False, version=version,
                       timestamp=str(timestamp) if timestamp else None, plan="scan") as uow:
            table = self._open(uow, name, Privilege.SELECT)
            plan = self._scan(uow, table, version, timestamp, partition_filters, stats)
            uow.params["delta_version"] = plan.version
            self._lineage(uow, run_id, table, plan.version, is_output=False)
            return plan

    def _scan(self, uow: UnitOfWork, table: Securable, version: int | None, timestamp: datetime | str | None,
              partition_filters: list[tuple[str, str, Any]] | None = None, stats: bool = False) -> ScanPlan:
        location = table.storage_location or ""
        dt = _readable(table, delta.open_table(location, version, timestamp))
        snap = delta.snapshot_files(location, dt)
        if partition_filters:
            snap = delta.prune(snap, partition_filters)
        policy = self._policy(uow, table)
        return ScanPlan(table.full_name, dt.version(), snap.files, snap.columns, policy, snap.partition_columns,
                        snap.partitions, _visible_stats(delta.file_stats(dt, snap.files), policy, snap.columns) if stats else None)

    def plan_scans(self, requests: list[tuple[str, int | None, datetime | str | None]], run_id: str | None = None) -> list[ScanPlan | ViewPlan]:
        """`plan_scan` for every table a statement reads, in one unit of work: all are checked
        before any is read (one denial refuses the statement), and each read gets its audit row.

        A view gives a ViewPlan: the reader needs SELECT on the view; what it reads needs its
        owner's SELECT (definer's rights) and is filtered and masked for the reader."""
        with self._uow("read_tables", Kind.TABLE, ",".join(r[0] for r in requests), write=False, tables=[r[0] for r in requests]) as uow:
            keys = []
            for name, _v, _ts in requests:
                key = parse_for(Kind.TABLE, name).key
                sid = resolve(uow, Kind.TABLE, key)
                uow.require(Privilege.SELECT, sid, Kind.TABLE, key)
                keys.append((sid, key))
            found = uow.store.get_securables_by_ids([sid for sid, _k in keys], columns=False)  # a scan reads the Delta schema
            plans: list[ScanPlan | ViewPlan] = []
            reads: list[tuple[str, int | None, str | None]] = []
            for (sid, key), (_name, version, timestamp) in zip(keys, requests):
                table = found.get(sid)
                if table is None:
                    raise NotFound(f"table '{key}' does not exist")
                plans.append(self._plan(uow, table, version, timestamp, reads, None, 0))
                if run_id and isinstance(plans[-1], ScanPlan):  # with a run, each table read is an input of it
                    self._lineage(uow, run_id, table, plans[-1].version, is_output=False)
            ctx, rid = uow.ctx, uow.request_id

            def audit_reads(store: Any) -> None:
                store.insert_audits([dict(principal=ctx.principal, action="read_table", securable_kind=Kind.TABLE.value, securable_name=table_name,
                                          parameters={"delta_version": version, "via": via or "read_tables"}, result="ALLOWED", error_code=None,
                                          error_message=None, request_id=rid, source=ctx.source.value) for table_name, version, via in reads])

            uow.deferred.append(audit_reads)
            return plans

    def _plan(self, uow: UnitOfWork, table: Securable, version: int | None, timestamp: datetime | str | None,
              reads: list[tuple[str, int | None, str | None]], via: str | None, depth: int) -> ScanPlan | ViewPlan:
        if table.table_type is TableType.VIEW:
            return self._view_plan(uow, table, reads, depth)
        if (table.data_source_format or "") != "DELTA" or not table.storage_location:
            raise FailedPrecondition(f"'{table.full_name}' is not a Delta table")
        plan = self._scan(uow, table, version, timestamp)
        reads.append((plan.table, plan.version, via))
        return plan

    def _view_plan(self, uow: UnitOfWork, view: Securable, reads: list[tuple[str, int | None, str | None]], depth: int) -> ViewPlan:
        if depth >= MAX_VIEW_DEPTH:
            raise InvalidArgument(f"view '{view.full_name}' nests views deeper than {MAX_VIEW_DEPTH} levels")
        try:
            tree = sqlglot.parse_one(view.view_definition or "", read="databricks")
            relations = catalog_relations(tree)
        except (sqlglot.errors.SqlglotError, RecursionError, CairnError):
            raise FailedPrecondition(f"view '{view.full_name}' has a definition that cannot be read; its owner must recreate it") from None
        cat, sch = view.full_name.split(".")[:2]
        owner = view.owner
        plans: dict[tuple[str, int | None, str | None], ScanPlan | ViewPlan] = {}
        reads.append((view.full_name, None, None))
        for rel in relations:
            key = qualify(rel, cat, sch)
            version, timestamp = as_of(rel)
            sid = uow.authz.resolve(Kind.TABLE, key)
            if sid is None or not (uow.authz.has_usage(owner, uow.authz.chain(sid)[1].id) and uow.authz.has(owner, Privilege.SELECT, sid)):
                # Not naming the table: the reader may not be allowed to know what the view reads.
                raise PermissionDenied(f"view '{view.full_name}' cannot be read: its owner {owner} may no longer read everything it reads")
            plans[(key, version, timestamp)] = self._plan(uow, fetch(uow, sid), version, timestamp, reads, view.full_name, depth + 1)
        rendered = bind_identity(tree, uow.principal, set(uow.authz.principals(uow.principal))).sql("databricks")
        return ViewPlan(view.full_name, owner, rendered, plans)

    def prepare_write(self, name: str, mode: str = "append") -> ScanPlan:
        """Where and in which schema an engine may write files for a later `commit_files`. Needs MODIFY."""
        if mode not in ("append", "overwrite"):
            raise InvalidArgument(f"mode must be append or overwrite, not {mode!r}")
        with self._uow("prepare_write", Kind.TABLE, display(name), write=False, mode=mode) as uow:
            table = self._open(uow, name, Privilege.MODIFY)
            dt = delta.open_table(table.storage_location or "")
            return ScanPlan(table.full_name, dt.version(), (table.storage_location or "",), tuple(delta.columns_of(delta.table_schema(dt))),
                            partition_columns=tuple(p.lower() for p in dt.metadata().partition_columns))

    def commit_files(self, name: str, files: list[DataFile], mode: str = "append", run_id: str | None = None) -> WriteResult:
        """Commit Parquet files written by an engine's executors to the Delta log, in one transaction.

        The files must lie in the table's location and match its schema. Needs MODIFY.
        """
        import json
        import os

        import pyarrow as pa
        import pyarrow.parquet as pq
        from deltalake.transaction import AddAction, RemoveAction

        if mode not in ("append", "overwrite"):
            raise InvalidArgument(f"mode must be append or overwrite, not {mode!r}")
        with self._uow("write_table", Kind.TABLE, display(name), write=False, mode=mode, files=len(files), engine_files=True) as uow:
            table = self._open(uow, name, Privilege.MODIFY)
            location = (table.storage_location or "").rstrip("/")
            dt = delta.open_table(location)
            schema = delta.table_schema(dt)
            parts = list(dt.metadata().partition_columns)
            file_schema = pa.schema([f for f in schema if f.name not in parts])  # partition values live in the log
            actions: list[AddAction | RemoveAction] = []
            for f in files:
                full = f.path if os.path.isabs(f.path) else os.path.join(location, f.path)
                if not os.path.realpath(full).startswith(os.path.realpath(location) + os.sep):
                    raise InvalidArgument(f"file {f.path} is not inside the location of '{table.full_name}'")
                delta.check_partition_values(f.partition_values or {}, schema, parts, table.full_name)
                delta.conform(pq.read_schema(full).empty_table(), file_schema, table.full_name, allow_new=False)
                rel = os.path.relpath(full, location)
                actions.append(AddAction(rel, f.size, dict(f.partition_values or {}), f.modification_time, True,
                                         json.dumps({"numRecords": f.num_records})))
            try:
                dt.create_write_transaction(actions, mode, schema, partition_by=parts or None)
            except Exception as exc:
                raise _delta_errors(table.full_name, exc) from None
            version = delta.open_table(location).version()
            uow.params["delta_version"] = version
            self._lineage(uow, run_id, table, version, is_output=True)
            return WriteResult(table.full_name, version, mode.upper(), {"num_rows": sum(f.num_records for f in files), "num_files": len(files)})

    # writes --------------------------------------------------------------------------------
    def write(
        self, name: str, data: Any, mode: str = "append", merge_schema: bool = False, replace_where: str | None = None,
        run_id: str | None = None,
    ) -> WriteResult:
        """Append to or overwrite a table (optionally only the rows matching `replace_where`).

        Data that does not fit the schema fails naming the column and writes nothing; with
        `merge_schema=True` new columns are added and the catalog's columns follow. Needs MODIFY.
        """
        from deltalake import write_deltalake

        if mode not in ("append", "overwrite"):
            raise InvalidArgument(f"mode must be append or overwrite, not {mode!r}")
        if replace_where and mode != "overwrite":  # deltalake ignores a predicate on append
            raise InvalidArgument("replace_where needs mode='overwrite'")
        with self._uow("write_table", Kind.TABLE, display(name), write=False, mode=mode, merge_schema=merge_schema,
                       replace_where=replace_where) as uow:
            table = self._open(uow, name, Privilege.MODIFY)
            if replace_where:
                self._no_policy_bypass(uow, table, "an overwrite with replace_where")
            location = table.storage_location or ""
            dt = delta.open_table(location)
            incoming = delta.conform(delta.to_arrow(data), delta.table_schema(dt), table.full_name, allow_new=merge_schema)
            try:
                schema_mode: Literal["merge"] | None = "merge" if merge_schema else None
                if mode == "overwrite":
                    write_deltalake(dt, incoming, mode="overwrite", schema_mode=schema_mode, predicate=replace_where,
                                    writer_properties=delta.writer_properties())
                else:
                    write_deltalake(dt, incoming, mode="append", schema_mode=schema_mode, writer_properties=delta.writer_properties())
            except Exception as exc:
                raise _delta_errors(table.full_name, exc) from None
            dt = delta.open_table(location)
            self._sync_columns(uow, table, dt)
            uow.params["delta_version"] = dt.version()
            self._lineage(uow, run_id, table, dt.version(), is_output=True)
            return WriteResult(table.full_name, dt.version(), mode.upper(), {"num_rows": incoming.num_rows})

    def merge(
        self,
        name: str,
        source: Any,
        on: list[str],
        when_matched_update: dict[str, str] | str | None = "*",
        when_matched_update_condition: str | None = None,
        when_matched_delete_condition: str | None = None,
        when_not_matched_insert: bool = True,
        when_not_matched_insert_condition: str | None = None,
        merge_schema: bool = False,
        run_id: str | None = None,
    ) -> WriteResult:
        """Upsert `source` by key columns `on` (MERGE INTO): update or delete matches, insert the rest.

        `when_matched_update` is "*" (all columns), a mapping of column to SQL expression over
        `source.` and `target.`, or None. Needs SELECT and MODIFY.
        """
        with self._uow("merge_table", Kind.TABLE, display(name), write=False, on=on, merge_schema=merge_schema) as uow:
            table = self._open(uow, name, Privilege.SELECT, Privilege.MODIFY)
            self._no_policy_bypass(uow, table, "MERGE")
            if not on:
                raise InvalidArgument("merge needs the key columns to match on")
            location = table.storage_location or ""
            dt = delta.open_table(location)
            src = delta.conform(delta.to_arrow(source), delta.table_schema(dt), table.full_name, allow_new=merge_schema) \
                if not merge_schema else delta.to_arrow(source)
            names_ = {f.name.lower() for f in delta.table_schema(dt)}
            for key in on:
                if key.lower() not in names_:
                    raise InvalidArgument(f"merge key '{key}' is not a column of '{table.full_name}'")
            predicate = " AND ".join(f"target.{k.lower()} = source.{k.lower()}" for k in on)
            try:
                merger = dt.merge(src, predicate, source_alias="source", target_alias="target", merge_schema=merge_schema,
                                  writer_properties=delta.writer_properties())
                if when_matched_delete_condition:
                    merger = merger.when_matched_delete(when_matched_delete_condition)
                if when_matched_update == "*":
                    merger = merger.when_matched_update_all(when_matched_update_condition)
                elif isinstance(when_matched_update, dict):
                    merger = merger.when_matched_update(dict(when_matched_update), when_matched_update_condition)
                elif when_matched_update:
                    raise InvalidArgument(f"when_matched_update must be '*', a mapping or None, not {when_matched_update!r}")
                if when_not_matched_insert:
                    merger = merger.when_not_matched_insert_all(when_not_matched_insert_condition)
                metrics = merger.execute()
            except CairnError:
                raise
            except Exception as exc:
                raise _delta_errors(table.full_name, exc) from None
            dt = delta.open_table(location)
            self._sync_columns(uow, table, dt)
            uow.params["delta_version"] = dt.version()
            self._lineage(uow, run_id, table, dt.version(), is_output=True)
            return WriteResult(table.full_name, dt.version(), "MERGE", dict(metrics))

    def delete(self, name: str, where: str) -> WriteResult:
        """Delete the rows matching a SQL predicate. Needs SELECT and MODIFY."""
        return self._dml("delete_rows", name, lambda dt: dt.delete(where), where=where)

    def update(self, name: str, set: dict[str, str], where: str | None = None) -> WriteResult:
        """Set columns to SQL expressions on the rows matching `where`. Needs SELECT and MODIFY."""
        if not set:
            raise InvalidArgument("update needs at least one column to set")
        return self._dml("update_rows", name, lambda dt: dt.update(updates=dict(set), predicate=where), where=where, set=set)

    def optimize(self, name: str, zorder_by: list[str] | None = None) -> WriteResult:
        """Compact small files, or Z-order them by the given columns. Needs MODIFY."""
        def run(dt: Any) -> dict[str, Any]:
            return dt.optimize.z_order(zorder_by) if zorder_by else dt.optimize.compact()
        return self._dml("optimize_table", name, run, privileges=(Privilege.MODIFY,), zorder_by=zorder_by)

    def vacuum(self, name: str, retention_hours: int = MIN_VACUUM_RETENTION_HOURS, force: bool = False, dry_run: bool = False) -> list[str]:
        """Remove files no version within the retention needs. Under 7 days is refused unless forced,
        because it breaks time travel and concurrent readers. Needs MODIFY."""
        with self._uow("vacuum_table", Kind.TABLE, display(name), write=False, retention_hours=retention_hours, force=force) as uow:
            table = self._open(uow, name, Privilege.MODIFY)
            if retention_hours < MIN_VACUUM_RETENTION_HOURS and not force:
                raise FailedPrecondition(
                    f"retention of {retention_hours} hours is under the {MIN_VACUUM_RETENTION_HOURS}-hour minimum; pass force=True to vacuum anyway"
                )
            dt = delta.open_table(table.storage_location or "")
            return dt.vacuum(retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=False)

    def restore(self, name: str, version: int) -> WriteResult:
        """Restore the table to an earlier version, as a new commit. Needs MODIFY."""
        return self._dml("restore_table", name, lambda dt: dt.restore(version), privileges=(Privilege.MODIFY,), to_version=version)

    def _dml(self, action: str, name: str, run: Any, privileges: tuple[Privilege, ...] = (Privilege.SELECT, Privilege.MODIFY), **params: Any) -> WriteResult:
        with self._uow(action, Kind.TABLE, display(name), write=False, **params) as uow:
            table = self._open(uow, name, *privileges)
            if Privilege.SELECT in privileges:  # the changes that read rows: UPDATE, DELETE
                self._no_policy_bypass(uow, table, action.split("_")[0].upper())
            location = table.storage_location or ""
            dt = delta.open_table(location)
            try:
                metrics = run(dt)
            except CairnError:
                raise
            except Exception as exc:
                raise _delta_errors(table.full_name, exc) from None
            version = delta.open_table(location).version()
            uow.params["delta_version"] = version
            return WriteResult(table.full_name, version, action.split("_")[0].upper(), dict(metrics or {}))
