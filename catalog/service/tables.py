"""Table metadata: columns, type, storage, feature-table keys. Data access lives with Delta."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlglot
from sqlglot import exp

from catalog import delta, names, storage
from catalog.authz import Node
from catalog.entities import Column, Page, Securable, TableType, TemporaryCredentials
from catalog.errors import CairnError, FailedPrecondition, InvalidArgument, NotFound
from catalog.privileges import Kind, Privilege
from catalog.relations import catalog_relations, qualify, qualify_definition
from catalog.service.base import UnitOfWork
from catalog.service.common import (
    CREDENTIAL_TTL,
    TIME_TYPES,
    Service,
    claim_table_path,
    decode_token,
    delete_securable,
    display,
    encode_token,
    fetch,
    holding_location,
    page_size,
    parse_for,
    resolve,
    storage_path,
    update_securable,
    validate_columns,
    validate_comment,
    validate_properties,
)
from catalog.store.metastore import now


def _validate_keys(columns: list[Column], primary_keys: Sequence[str], timestamp_keys: Sequence[str]) -> tuple[list[str], list[str]]:
    by_name = {c.name: c for c in columns}
    pks = [k.lower() for k in primary_keys]
    tks = [k.lower() for k in timestamp_keys]
    for k in pks:
        if k not in by_name:
            raise InvalidArgument(f"primary key column '{k}' is not a column of the table")
        if by_name[k].nullable:
            raise InvalidArgument(f"primary key column '{k}' must be NOT NULL")
    for k in tks:
        if k not in by_name:
            raise InvalidArgument(f"timestamp key column '{k}' is not a column of the table")
        if by_name[k].type_text not in TIME_TYPES:
            raise InvalidArgument(f"timestamp key column '{k}' must be a timestamp or date, not {by_name[k].type_text}")
        if k not in pks:
            raise InvalidArgument(f"timestamp key column '{k}' must also be part of the primary key")
    if len(set(pks)) != len(pks):
        raise InvalidArgument("primary key columns repeat")
    return pks, tks


def create_delta(table: Securable, data: Any, change_data_feed: bool, partition_by: Sequence[str] = ()) -> int:
    """Create (or, for an external location, adopt) the Delta table behind a catalog table,
    partitioned by `partition_by` (already checked by `delta.partition_columns`)."""
    from deltalake import DeltaTable, write_deltalake

    location = table.storage_location or ""
    schema = delta.arrow_schema(table.columns)
    # A checkpoint every 10 commits, Delta Lake's default (delta-rs writes one every 100): opening a
    # table or one of its versions replays at most 9 JSON commits after the checkpoint, not 99.
    config = {"delta.checkpointInterval": "10"} | ({"delta.enableChangeDataFeed": "true"} if change_data_feed else {})
    if delta.is_delta(location):
        if table.table_type is not TableType.EXTERNAL:
            raise FailedPrecondition(f"a Delta table already exists at {location}")
        existing = delta.columns_of(delta.table_schema(delta.open_table(location)))
        if [(c.name, c.type_text) for c in existing] != [(c.name, c.type_text) for c in table.columns]:
            raise InvalidArgument(f"the columns given do not match the Delta table at {location}; leave them out to import them")
        if data is not None:
            raise InvalidArgument(f"a Delta table already exists at {location}; append to it instead")
        found = [p.lower() for p in DeltaTable(location).metadata().partition_columns]
        if partition_by and list(partition_by) != found:
            raise InvalidArgument(f"the Delta table at {location} is partitioned by ({', '.join(found)}), not ({', '.join(partition_by)})")
        return DeltaTable(location).version()
    parts = list(partition_by) or None
    if data is not None:
        write_deltalake(location, delta.conform(data, schema, table.full_name, allow_new=False), mode="error", configuration=config,
                        partition_by=parts, writer_properties=delta.writer_properties())
    else:
        DeltaTable.create(location, schema, mode="error", configuration=config, partition_by=parts)
    return DeltaTable(location).version()


def with_partitions(table: Securable) -> Securable:
    """`table` with its partition columns, from the metadata of its latest snapshot in the Delta log
    (`delta.partition_columns_at`): () for a view, a table in another format or one without a log;
    None (unknown) when its storage cannot be read: a metadata call does not fail on the data's store."""
    if (table.data_source_format or "") != "DELTA" or not table.storage_location:
        return replace(table, partition_columns=())
    try:
        return replace(table, partition_columns=delta.partition_columns_at(table.storage_location))
    except Exception:  # an object store's errors are many (credentials, network); the rest of the table stands
        return replace(table, partition_columns=None)


def _checked_view(uow: Any, definition: Any, catalog: str, schema: str) -> str:
    """The view's definition with every table it reads qualified, once its creator is found to hold
    SELECT on each (and usage on their containers): a view never reads what its creator could not."""
    if not isinstance(definition, str):
        raise InvalidArgument("view_definition must be a SQL query")
    try:
        tree = sqlglot.parse_one(definition, read="databricks")
    except (sqlglot.errors.SqlglotError, RecursionError):
        raise InvalidArgument("view_definition is not a query Cairn can read") from None
    if not isinstance(tree, exp.Query):
        raise InvalidArgument("view_definition must be a query (SELECT ...)")
    for rel in catalog_relations(tree):
        key = qualify(rel, catalog, schema)
        uow.require(Privilege.SELECT, resolve(uow, Kind.TABLE, key), Kind.TABLE, key)
    return qualify_definition(tree, catalog, schema)


class TableService(Service):
    def create_table(
        self,
        name: str,
        columns: Sequence[Column | dict[str, Any]] = (),
        table_type: TableType | str = TableType.MANAGED,
        storage_location: str | None = None,
        comment: str | None = None,
        properties: dict[str, str] | None = None,
        primary_keys: Sequence[str] = (),
        timestamp_keys: Sequence[str] = (),
        view_definition: str | None = None,
        data_source_format: str = "DELTA",
        data: Any = None,
        enable_change_data_feed: bool = False,
        partition_columns: Sequence[str] = (),
    ) -> Securable:
        """Create a table or view in `catalog.schema`. Needs USE CATALOG, USE SCHEMA, CREATE TABLE.

        Managed tables get a Delta table under the warehouse; external tables name a location,
        and an existing Delta table there is registered with its schema. `data` (Arrow, pandas or
        a list of dicts) fills the new table and, without `columns`, defines them. Views carry
        their SQL. Feature tables declare primary keys (NOT NULL columns) and timestamp keys.
        `partition_columns` partition the Delta table (files under `col=value/`, the values in its
        log): columns of a string, integer, boolean, decimal, date or timestamp type.
        Raises InvalidArgument, PermissionDenied, NotFound (schema), AlreadyExists.
        """
        with self._uow(
            "create_table", Kind.TABLE, display(name), columns=[getattr(c, "name", c) for c in columns],
            table_type=str(getattr(table_type, "value", table_type)), storage_location=storage_location,
        ) as uow:
            fn = parse_for(Kind.TABLE, name)
            try:
                ttype = TableType(str(getattr(table_type, "value", table_type)).upper())
            except ValueError:
                raise InvalidArgument(f"table_type must be MANAGED, EXTERNAL or VIEW, not {table_type!r}") from None
            schema_id = resolve(uow, Kind.SCHEMA, f"{fn.catalog}.{fn.schema}")
            uow.require(Privilege.CREATE_TABLE, schema_id, Kind.SCHEMA, f"{fn.catalog}.{fn.schema}")
            if ttype is TableType.EXTERNAL and storage_location:
                # Before anything looks at the path (even to read a Delta schema there): it must be
                # inside an external location the caller may create tables in, and no one else's.
                storage_location = storage_path(uow, storage_location)
                claim_table_path(uow, storage_location, self.metastore.settings.home)
            delta_format = ttype is not TableType.VIEW and data_source_format.upper() == "DELTA"
            incoming = None
            if data is not None:
                if not delta_format:
                    raise InvalidArgument("only Delta tables can be created with data")
                incoming = delta.to_arrow(data)
                if not columns:
                    columns = delta.columns_of(incoming.schema)
            elif not columns and ttype is TableType.EXTERNAL and storage_location and delta_format and delta.is_delta(storage_location):
                columns = delta.columns_of(delta.table_schema(delta.open_table(storage_location)))
            cols = validate_columns(columns)
            if not cols and ttype is not TableType.VIEW:
                raise InvalidArgument(f"table '{fn.key}' needs at least one column")
            pks, tks = _validate_keys(cols, primary_keys, timestamp_keys)
            parts = delta.partition_columns(cols, [partition_columns] if isinstance(partition_columns, str) else list(partition_columns),
                                            fn.key)
            if parts and not delta_format:
                raise InvalidArgument("only Delta tables can be partitioned")
            if ttype is TableType.EXTERNAL and not storage_location:
                raise InvalidArgument("an EXTERNAL table needs a storage_location")
            if ttype is TableType.MANAGED and storage_location:
                raise InvalidArgument("a MANAGED table's location is chosen by Cairn; use EXTERNAL to give one")
            if ttype is TableType.VIEW and not view_definition:
                raise InvalidArgument("a VIEW needs a view_definition")
            if ttype is TableType.VIEW and storage_location:
                raise InvalidArgument("a VIEW has no storage_location")
            if ttype is TableType.VIEW:
                view_definition = _checked_view(uow, view_definition, fn.catalog, fn.schema)
            spec = dict(
                table_type=ttype.value,
                data_source_format=None if ttype is TableType.VIEW else data_source_format.upper(),
                storage_location=storage_location,
                primary_keys=pks or None,
                timestamp_keys=tks or None,
                view_definition=view_definition,
            )
            table = uow.store.insert_securable(
                Kind.TABLE, schema_id, fn.name, fn.key, uow.principal, uow.principal,
                validate_comment(comment), validate_properties(properties), spec, cols,
            )
            if ttype is TableType.EXTERNAL:
                uow.store.insert_storage_path(table.id, Kind.TABLE, storage_location)  # type: ignore[arg-type]
            if ttype is TableType.MANAGED:
                location = self.metastore.managed_location(fn.catalog, fn.schema, table.id)
                uow.store.update_securable(table.id, uow.principal, storage_location=location)
                # Registered like an external table's: another replica (another home) still sees it taken.
                uow.store.insert_storage_path(table.id, Kind.TABLE, storage.canonical(location))
                table = fetch(uow, table.id)
            if delta_format:
                # The Delta commit comes last: if it fails, the metastore rolls back with it.
                version = create_delta(table, incoming, enable_change_data_feed, parts)
                uow.params["delta_version"] = version
                # An external table over an existing Delta table keeps that table's partitioning.
                return replace(table, partition_columns=tuple(parts)) if parts or ttype is TableType.MANAGED else with_partitions(table)
            return replace(table, partition_columns=())

    def get_table(self, name: str) -> Securable:
        """A table the caller may see (BROWSE, ownership, or usage and any privilege on it), with
        its partition columns (from the Delta log)."""
        with self._uow("get_table", Kind.TABLE, display(name), write=False) as uow:
            fn = parse_for(Kind.TABLE, name)
            sid = resolve(uow, Kind.TABLE, fn.key)
            uow.require_visible(sid, Kind.TABLE, fn.key)
            return with_partitions(fetch(uow, sid))

    def get_table_by_id(self, table_id: str) -> Securable:
        """A table by its id (the UC REST `table_id`), if the caller may see it."""
        with self._uow("get_table", Kind.TABLE, str(table_id), write=False) as uow:
            if not str(table_id).isdigit() or int(table_id) >= 2**63:
                raise InvalidArgument(f"table_id {table_id!r} is not a table id")
            rows = uow.store.securable_rows([int(table_id)])
            if not rows or rows[0].kind != Kind.TABLE.value:
                raise NotFound(f"table {table_id} does not exist")
            sid = uow.authz.resolve(Kind.TABLE, rows[0].full_name)
            uow.require_visible(sid, Kind.TABLE, rows[0].full_name)  # type: ignore[arg-type]
            return with_partitions(fetch(uow, sid))  # type: ignore[arg-type]

    def partition_columns_many(self, tables: list[Securable]) -> dict[int, tuple[str, ...] | CairnError | None]:
        """The partition columns of many tables (as returned by governed lists) in one call and one
        audit row (batch loaders): for each id, what `get_table` would give, or NotFound where the
        caller may not see the table (any more)."""
        with self._uow("get_table", None, f"{len(tables)} tables", write=False) as uow:
            uow.allow()
            current = uow.store.get_securables_by_ids([s.id for s in tables], columns=False)
            out: dict[int, tuple[str, ...] | CairnError | None] = {}
            for s in tables:
                table = current.get(s.id)
                if table is None or table.kind is not Kind.TABLE or not uow.authz.can_see(uow.principal, s.id):
                    out[s.id] = NotFound(f"table '{s.full_name}' does not exist")
                else:
                    out[s.id] = with_partitions(table).partition_columns
            return out

    def list_tables(
        self, catalog: str, schema: str | None = None, page_token: str | None = None, max_results: int | None = None
    ) -> Page[Securable]:
        """The tables the caller may see in one schema, or in every schema of a catalog (in schema,
        then table name order), a page at a time.

        One query reads the candidate tables of the whole scope and one the grants the caller holds
        on them; only the tables on the page are read in full. Raises NotFound for a catalog or
        schema the caller may not see (audited as a denial).
        """
        scope = f"{catalog}.{schema}" if schema is not None else catalog
        with self._uow("list_tables", Kind.SCHEMA if schema else Kind.CATALOG, display(scope), write=False, page_token=page_token) as uow:
            limit = page_size(max_results)
            if schema is not None:
                fn = parse_for(Kind.SCHEMA, f"{names.quote(catalog)}.{names.quote(schema)}" if "." not in catalog else catalog)
                parent = resolve(uow, Kind.SCHEMA, fn.key)
                uow.require_visible(parent, Kind.SCHEMA, fn.key)
            else:
                cat = parse_for(Kind.CATALOG, catalog)
                parent = resolve(uow, Kind.CATALOG, cat.key)
                uow.require_visible(parent, Kind.CATALOG, cat.key)
            return _visible_tables(uow, parent, schema is None, decode_token(page_token), limit)

    def update_table(
        self,
        name: str,
        comment: str | None = None,
        properties: dict[str, str] | None = None,
        new_name: str | None = None,
        column_comments: dict[str, str] | None = None,
    ) -> Securable:
        """Alter a table's comment, properties, name or column comments. Needs ownership or MANAGE."""
        with self._uow("update_table", Kind.TABLE, display(name), comment=comment, properties=properties, new_name=new_name, column_comments=column_comments) as uow:
            fn = parse_for(Kind.TABLE, name)
            sid = resolve(uow, Kind.TABLE, fn.key)
            if column_comments:
                uow.require_manage(sid, Kind.TABLE, fn.key, "alter")
                current = fetch(uow, sid)
                by_name = {c.name: c for c in current.columns}
                for col, text in column_comments.items():
                    if col.lower() not in by_name:
                        raise InvalidArgument(f"table '{fn.key}' has no column '{col}'")
                    c = by_name[col.lower()]
                    by_name[c.name] = Column(c.name, c.type_text, c.nullable, validate_comment(text), c.position)
                uow.store.replace_columns(sid, sorted(by_name.values(), key=lambda c: c.position))
                if comment is None and properties is None and new_name is None:
                    uow.store.update_securable(sid, uow.principal)
                    return fetch(uow, sid)
            return update_securable(uow, sid, Kind.TABLE, fn.key, comment=comment, properties=properties, new_name=new_name)

    def generate_temporary_credentials(self, name: str, operation: str = "READ") -> TemporaryCredentials:
        """Access to a table's files for an engine outside Cairn (Unity Catalog credential vending).

        READ needs SELECT, READ_WRITE also MODIFY; both need USE CATALOG, USE SCHEMA and EXTERNAL USE
        SCHEMA on the table's schema (never part of ALL PRIVILEGES). An engine given the files applies
        no row filter or column mask, so tables with either are refused, as are views (no files) and
        READ_WRITE in a read-only external location. Raises InvalidArgument, NotFound,
        PermissionDenied, FailedPrecondition; every refusal is audited as DENIED.
        """
        with self._uow("generate_temporary_table_credentials", Kind.TABLE, display(name), operation=operation) as uow:
            fn = parse_for(Kind.TABLE, name)
            op = str(operation).upper()
            if op not in ("READ", "READ_WRITE"):
                raise InvalidArgument(f"operation must be READ or READ_WRITE, not {operation!r}")
            sid = resolve(uow, Kind.TABLE, fn.key)
            uow.require(Privilege.SELECT, sid, Kind.TABLE, fn.key)
            if op == "READ_WRITE":
                uow.require(Privilege.MODIFY, sid, Kind.TABLE, fn.key)
            schema = f"{fn.catalog}.{fn.schema}"
            uow.require(Privilege.EXTERNAL_USE_SCHEMA, resolve(uow, Kind.SCHEMA, schema), Kind.SCHEMA, schema)
            table = fetch(uow, sid)
            if not table.storage_location or table.table_type is TableType.VIEW:
                raise uow.refuse(FailedPrecondition(
                    f"table '{fn.key}' is a {table.table_type.value if table.table_type else 'table'} without storage"))
            why = [f"row filter {table.row_filter['function']}"] if table.row_filter else []
            why += [f"column mask on {col}" for col in sorted(table.column_masks)]
            if why:
                raise uow.refuse(FailedPrecondition(
                    f"table '{fn.key}' has a {' and a '.join(why)}; an engine reading its files directly would not apply "
                    "them, so its files are not vended: read it through Cairn (SQL, Python, Spark data source)"))
            if op == "READ_WRITE" and table.table_type is TableType.EXTERNAL:
                loc = holding_location(uow, table.storage_location)
                if loc is not None and loc.read_only:
                    raise uow.refuse(FailedPrecondition(f"table '{fn.key}' is in read-only external location '{loc.full_name}'"))
            return TemporaryCredentials(table.storage_location, op, now() + CREDENTIAL_TTL)

    def set_row_filter(self, name: str, function: str, columns: Sequence[str]) -> Securable:
        """ALTER TABLE t SET ROW FILTER f ON (cols): readers see only rows where f(cols) is true.

        Needs ownership or MANAGE on the table and EXECUTE on the function.
        """
        with self._uow("set_row_filter", Kind.TABLE, display(name), function=function, columns=list(columns)) as uow:
            sid, table, fn = self._policy_target(uow, name, function, len(columns))
            cols = self._known_columns(table, columns)
            uow.store.update_securable(sid, uow.principal, row_filter={"function": fn.full_name, "columns": cols})
            uow.store.log_authz_change("SECURABLE", sid)
            return fetch(uow, sid)

    def drop_row_filter(self, name: str) -> Securable:
        with self._uow("drop_row_filter", Kind.TABLE, display(name)) as uow:
            fn = parse_for(Kind.TABLE, name)
            sid = resolve(uow, Kind.TABLE, fn.key)
            uow.require_manage(sid, Kind.TABLE, fn.key, "change the row filter of")
            uow.store.update_securable(sid, uow.principal, row_filter=None)
            return fetch(uow, sid)

    def set_column_mask(self, name: str, column: str, function: str, using_columns: Sequence[str] = ()) -> Securable:
        """ALTER TABLE t ALTER COLUMN c SET MASK f [USING COLUMNS (...)]: readers see f(c, ...) instead of c.

        Needs ownership or MANAGE on the table and EXECUTE on the function.
        """
        with self._uow("set_column_mask", Kind.TABLE, display(name), column=column, function=function) as uow:
            sid, table, fn = self._policy_target(uow, name, function, 1 + len(using_columns))
            col = self._known_columns(table, [column])[0]
            using = self._known_columns(table, using_columns)
            masks = dict(table.column_masks)
            masks[col] = {"function": fn.full_name, "using": using}
            uow.store.update_securable(sid, uow.principal, column_masks=masks)
            return fetch(uow, sid)

    def drop_column_mask(self, name: str, column: str) -> Securable:
        with self._uow("drop_column_mask", Kind.TABLE, display(name), column=column) as uow:
            fn = parse_for(Kind.TABLE, name)
            sid = resolve(uow, Kind.TABLE, fn.key)
            uow.require_manage(sid, Kind.TABLE, fn.key, "change the masks of")
            masks = dict(fetch(uow, sid).column_masks)
            if masks.pop(column.lower(), None) is None:
                raise InvalidArgument(f"column '{column}' of '{fn.key}' has no mask")
            uow.store.update_securable(sid, uow.principal, column_masks=masks)
            return fetch(uow, sid)

    def _policy_target(self, uow: Any, name: str, function: str, arity: int) -> tuple[int, Securable, Securable]:
        fn = parse_for(Kind.TABLE, name)
        sid = resolve(uow, Kind.TABLE, fn.key)
        uow.require_manage(sid, Kind.TABLE, fn.key, "set policies on")
        func_name = parse_for(Kind.FUNCTION, function)
        fid = resolve(uow, Kind.FUNCTION, func_name.key)
        uow.require(Privilege.EXECUTE, fid, Kind.FUNCTION, func_name.key)
        func = fetch(uow, fid)
        if len(func.columns) != arity:
            raise InvalidArgument(f"function '{func.full_name}' takes {len(func.columns)} argument(s), the policy passes {arity}")
        return sid, fetch(uow, sid), func

    @staticmethod
    def _known_columns(table: Securable, columns: Sequence[str]) -> list[str]:
        names_ = {c.name for c in table.columns}
        out = []
        for c in columns:
            if c.lower() not in names_:
                raise InvalidArgument(f"table '{table.full_name}' has no column '{c}'")
            out.append(c.lower())
        return out

    def delete_table(self, name: str) -> None:
        """Drop a table's registration, with its grants and tags. Needs ownership or MANAGE."""
        with self._uow("delete_table", Kind.TABLE, display(name)) as uow:
            fn = parse_for(Kind.TABLE, name)
            sid = resolve(uow, Kind.TABLE, fn.key)
            delete_securable(uow, sid, Kind.TABLE, fn.key, cascade=False)


def _visible_tables(uow: UnitOfWork, parent: int, whole_catalog: bool, token: str | None, limit: int) -> Page[Securable]:
    """A page of the tables under catalog or schema `parent` the caller may see. Pages run over
    (schema name, table name); a catalog's token carries both, a schema's the table name.

    The schemas are checked first (a schema the caller cannot see hides its tables); then one query
    per batch reads only the tables the caller could see (under a schema where something up the chain
    counts for it, owned, or granted to it), and the full check decides among those."""
    authz, principal = uow.authz, uow.principal
    chain = authz.chain(parent)
    schemas = uow.store.schema_rows(parent, catalog=whole_catalog)
    names = {sid: name for sid, name, _full, _owner in schemas}
    if whole_catalog:
        nodes = [Node(sid, Kind.SCHEMA, parent, full, owner) for sid, _name, full, owner in schemas]
        authz.remember_children(chain, nodes)
        authz.load_grants([n for n in nodes if n.id not in authz.cache.grants])
        parents = {n.id: (n, *chain) for n in nodes if authz.can_see(principal, n.id)}
    else:
        parents = {parent: chain} if schemas else {}
    after: tuple[str, str] | None = None
    if token is not None:
        first, sep, rest = token.partition("\x00")
        after = (first, rest) if whole_catalog else (names.get(parent, ""), rest if sep else first)
    admin = authz.is_admin(principal)
    open_ids = set(parents) if admin else authz.open_parents(principal, parents, {Kind.TABLE})
    batch = max(limit * 2, 1000)
    found: list[Node] = []
    keys: dict[int, tuple[str, str]] = {}
    rows: list[Any] = []
    while parents and len(found) <= limit:
        rows = uow.store.table_candidates(list(parents), open_ids, None if admin else authz.principals(principal), after, batch)
        if not rows:
            break
        tables = []
        for tid, name, full_name, owner, schema_id, schema_name in rows:
            tables.append(Node(tid, Kind.TABLE, schema_id, full_name, owner))
            keys[tid] = (schema_name, name)
        found += authz.visible_among(principal, parents, tables)
        after = (rows[-1][5], rows[-1][1])
        if len(rows) < batch:
            break
    page = found[:limit]
    more = len(found) > limit or len(rows) == batch
    full = uow.store.get_securables_by_ids([n.id for n in page])
    items = tuple(full[n.id] for n in page)
    after_item = _after_in_catalog if whole_catalog else _after_in_schema
    if not more or not page:
        return Page(items, None, after_item)
    schema_name, table_name = keys[page[-1].id]
    return Page(items, encode_token(f"{schema_name}\x00{table_name}" if whole_catalog else table_name), after_item)


def _after_in_catalog(table: Securable) -> str:
    """The catalog-wide listing's token for what follows a table: its schema and name."""
    _catalog, schema, name = table.full_name.split(".", 2)
    return encode_token(f"{schema}\x00{name}")


def _after_in_schema(table: Securable) -> str:
    return encode_token(table.name)
