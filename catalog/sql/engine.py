"""Queries and writes of the SQL shim, on DuckDB over governed snapshots of catalog tables.

Two layers keep a statement to what it was authorized to read, each enough alone:
1. every relation is resolved before anything runs (`catalog.relations`): catalog tables, which
   `data.plan_scans` checks and audits, CTEs in scope and allow-listed table functions; anything
   else (file paths, file-reading or introspection functions) is refused and audited;
2. DuckDB itself can reach no file but the snapshot files of the tables this statement may read:
   external access is off and the configuration locked, and those files are handed in as Arrow
   datasets or are the only `allowed_paths` of the database it runs on (see `catalog.sql.duck`).
   The reader's row filter and masks are applied on top of each table.
A statement runs under a timeout (`CAIRN_SQL_TIMEOUT_SECONDS`, default 30) that interrupts DuckDB.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from catalog import delta
from catalog.errors import CairnError, InvalidArgument, NotFound
from catalog.policies import GROUP_TESTS, bind_identity
from catalog.relations import as_of, catalog_relations, qualify, qualify_definition
from catalog.scan import ScanPlan, policy_sql
from catalog.service.data import ViewPlan
from catalog.sql import duck
from catalog.sql.parsing import SqlResult, generate, parse

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from catalog.sql.shim import SqlService

log = logging.getLogger("cairn.sql")
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_ROWS = 1_000_000


def timeout_seconds() -> float:
    """The statement timeout: CAIRN_SQL_TIMEOUT_SECONDS, else 30 s."""
    raw = os.environ.get("CAIRN_SQL_TIMEOUT_SECONDS")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_SECONDS
    except ValueError:
        raise InvalidArgument(f"CAIRN_SQL_TIMEOUT_SECONDS must be a number of seconds, not {raw!r}") from None
    return value if value > 0 else DEFAULT_TIMEOUT_SECONDS


def max_rows() -> int:
    """The most rows a query returns to its caller: CAIRN_SQL_MAX_ROWS, else 1,000,000."""
    raw = os.environ.get("CAIRN_SQL_MAX_ROWS")
    if not raw:
        return DEFAULT_MAX_ROWS
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidArgument(f"CAIRN_SQL_MAX_ROWS must be a positive number of rows, not {raw!r}")
    return int(raw)


def run_sql(session: SqlService, text: str) -> SqlResult:
    key = (text, session.current_catalog, session.current_schema)
    template = _templates.get(key)
    if template is not None:
        return run_template(session, template, rows=True)
    tree = parse(text)
    if isinstance(tree, exp.Query):
        template = _template(session, tree)
        with _templates_lock:
            if len(_templates) >= 512:
                _templates.pop(next(iter(_templates)))
            _templates[key] = template
        return run_template(session, template, rows=True)
    if isinstance(tree, exp.Insert):
        return _insert(session, tree, text)
    if isinstance(tree, exp.Create):
        return _create(session, tree, text)
    if isinstance(tree, exp.Update):
        return _update(session, tree, text)
    if isinstance(tree, exp.Delete):
        return _delete(session, tree)
    if isinstance(tree, exp.Merge):
        return _merge(session, tree, text)
    raise InvalidArgument(f"unsupported statement: {text.split()[0].upper()} ...")


def table_key(session: SqlService, t: Any) -> str:
    if not isinstance(t, exp.Table):
        raise InvalidArgument(f"expected a table name, not {t.sql() if isinstance(t, exp.Expression) else 'nothing'!r}")
    return qualify(t, session.current_catalog, session.current_schema)


@dataclass(frozen=True, slots=True)
class Ref:
    """One table a query reads: the placeholder standing for it in the template, and what to read."""

    placeholder: str
    key: str
    version: int | None
    timestamp: str | None


@dataclass(frozen=True, slots=True)
class Template:
    """A query in DuckDB SQL with a quoted placeholder where each table it reads goes. It holds names,
    never data or rights: every run checks the reader's privileges and binds the snapshot it may see.
    `user` is the placeholder standing for `current_user()`, and `groups` those standing for group
    tests (`is_account_group_member('g')`), bound to the reader on every run."""

    sql: str
    refs: tuple[Ref, ...]
    user: str
    groups: tuple[tuple[str, str], ...] = ()


# Parsed and rewritten queries by (text, current catalog, current schema): parsing and generating SQL
# costs more than the checks, and clients run the same statements over and over.
_templates: dict[tuple[str, str | None, str | None], Template] = {}
_view_templates: dict[str, Template] = {}
_templates_lock = threading.Lock()


def _template(session: SqlService | None, tree: exp.Expression, catalog: str | None = None, schema: str | None = None) -> Template:
    """Replace every table the query reads by a placeholder (keeping its alias); `tree` is consumed.

    Relations that are not catalog tables, CTEs in scope or allowed table functions are refused
    (relations.FileAccessRefused) before any is checked or read."""
    if session is not None:
        catalog, schema = session.current_catalog, session.current_schema
    nonce = uuid.uuid4().hex[:12]
    refs: list[Ref] = []
    for t in catalog_relations(tree):
        ref = Ref(f"__cairn_{nonce}_{len(refs)}", qualify(t, catalog, schema), *as_of(t))
        refs.append(ref)
        alias = t.alias or t.name
        t.replace(exp.Table(this=exp.to_identifier(ref.placeholder, quoted=True), alias=exp.TableAlias(this=exp.to_identifier(alias))))
    user = f"__cairn_user_{nonce}"
    groups: list[tuple[str, str]] = []

    def group_test(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() in GROUP_TESTS:
            groups.append((f"__cairn_group_{nonce}_{len(groups)}", node.expressions[0].name if node.expressions else ""))
            return exp.Literal.string(groups[-1][0])
        return node

    tree = bind_identity(tree.transform(group_test), user, None)
    return Template(generate(tree, "duckdb"), tuple(refs), user, tuple(groups))


def query(session: SqlService, tree: exp.Expression) -> pa.Table:
    """Run a query tree (left unchanged) as the session's principal."""
    return run_template(session, _template(session, tree.copy()))


def run_template(session: SqlService, template: Template, rows: bool = False) -> Any:
    """Check and bind every table the query reads in one governed call, then run it on DuckDB.

    Arrow for the writes that consume the result; a SqlResult of rows when `rows` (fetching Python
    rows directly is cheaper than going through Arrow for the small results most queries return)."""
    import duckdb

    client = session.services
    data = [r for r in template.refs if not r.key.startswith("system.")]
    plans = client.data.plan_scans([(r.key, r.version, r.timestamp) for r in data]) if data else []
    con, native = duck.pool.cursor(frozenset(_files(plans)))
    registered: list[str] = []
    limit = timeout_seconds()
    try:
        sql = _substitute(client, con, native, template, dict(zip((r.placeholder for r in data), plans)), registered)
        if template.groups:
            mine = set(client.principals.list_groups_of(client.ctx.principal))
            for placeholder, group in template.groups:
                sql = sql.replace(f"'{placeholder}'", "TRUE" if group in mine else "FALSE")
        sql = sql.replace(f"'{template.user}'", _literal(client.ctx.principal))
        with duck.watchdog.guard(con, limit):
            cur = con.execute(sql)
            if rows:
                cap = max_rows()
                got = cur.fetchmany(cap + 1)
                if len(got) > cap:
                    return SqlResult([d[0] for d in cur.description], got[:cap],
                                     f"showing the first {cap:,} rows: the result has more (add a LIMIT, or raise CAIRN_SQL_MAX_ROWS)")
                return SqlResult([d[0] for d in cur.description], got)
            return cur.to_arrow_table()
    except duckdb.InterruptException:
        raise InvalidArgument(f"the statement ran past the {limit:g} s statement timeout (CAIRN_SQL_TIMEOUT_SECONDS) and was stopped") from None
    except duckdb.Error as exc:
        raise InvalidArgument(f"the query failed: {str(exc).splitlines()[0]}") from None
    finally:
        for name in registered:
            con.unregister(name)


def _files(plans: list[Any]) -> list[str]:
    out: list[str] = []
    for plan in plans:
        if isinstance(plan, ViewPlan):
            out += _files(list(plan.reads.values()))
        else:
            out += _local(plan.files)
    return out


def _local(files: tuple[str, ...]) -> list[str]:
    return [f[len("file://"):] if f.startswith("file://") else f for f in files]


def _substitute(client: Any, con: duckdb.DuckDBPyConnection, native: bool, template: Template, plans: dict[str, Any],
                registered: list[str]) -> str:
    sql = template.sql
    for r in template.refs:
        if r.key.startswith("system."):
            from catalog.sql.system import system_table

            name = f"{r.placeholder}_{len(registered)}"
            con.register(name, system_table(client, r.key))
            registered.append(name)
            source = f'SELECT * FROM "{name}"'
        else:
            source = _source(client, con, native, plans[r.placeholder], registered)
        sql = sql.replace(f'"{r.placeholder}"', f"({source})")
    return sql


def _source(client: Any, con: duckdb.DuckDBPyConnection, native: bool, plan: ScanPlan | ViewPlan, registered: list[str]) -> str:
    if isinstance(plan, ViewPlan):
        # The view's definition, rendered for the reader by the service; the tables it reads were
        # checked with its owner's rights and carry the reader's row filters and masks.
        inner = _view_templates.get(plan.definition)
        if inner is None:
            inner = _template(None, parse(plan.definition), *plan.table.split(".")[:2])
            with _templates_lock:
                if len(_view_templates) >= 512:
                    _view_templates.pop(next(iter(_view_templates)))
                _view_templates[plan.definition] = inner
        inner_plans = {r.placeholder: plan.reads[(r.key, r.version, r.timestamp)] for r in inner.refs if not r.key.startswith("system.")}
        return _substitute(client, con, native, inner, inner_plans, registered)
    names = [c.name for c in plan.columns]
    if plan.files and not native:
        source = f"__cairn_scan_{uuid.uuid4().hex[:12]}"
        con.register(source, _dataset(plan))
        registered.append(source)
        source = f'"{source}"'
    else:  # the files read by DuckDB itself (partition values from the log), or an empty snapshot
        source = plan.source()
    return policy_sql(plan.policy, source + " AS src", names)


_datasets: dict[tuple[str, ...], Any] = {}


def _dataset(plan: ScanPlan) -> Any:
    """The snapshot's files as one Arrow dataset in the table's schema, partition columns filled from
    the log (`delta.arrow_dataset`). Kept per file list: a snapshot's files never change."""
    key = (*plan.files, *(f"{c.name}:{c.type_text}" for c in plan.columns))
    got = _datasets.get(key)
    if got is None:
        got = delta.arrow_dataset(plan.snapshot)
        with _templates_lock:
            if len(_datasets) >= 256:
                _datasets.pop(next(iter(_datasets)))
            _datasets[key] = got
    return got


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _arrow_to_table_columns(data: pa.Table, target_columns: list[str], names: list[str] | None, what: str) -> pa.Table:
    cols = names or target_columns
    if data.num_columns != len(cols):
        raise InvalidArgument(f"{what} gives {data.num_columns} column(s) for {len(cols)} target column(s)")
    return data.rename_columns(cols)


def _record_lineage(session: SqlService, text: str) -> None:
    try:
        session.services.lineage.record_sql(text, "databricks", run_id=session.run_id, default_catalog=session.current_catalog,
                                            default_schema=session.current_schema)
    except CairnError as exc:  # the data is committed; say so rather than fail the statement
        log.warning("lineage of a committed write was not recorded: %s", exc)


def _insert(session: SqlService, tree: exp.Insert, text: str) -> SqlResult:
    target = tree.this
    names = None
    if isinstance(target, exp.Schema):
        names = [c.name.lower() for c in target.expressions]
        target = target.this
    key = table_key(session, target)
    source = tree.expression
    if source is None:
        raise InvalidArgument("INSERT needs VALUES or a query")
    data = query(session, source if isinstance(source, exp.Query) else exp.select("*").from_(exp.Subquery(this=source, alias="v")))
    table = session.services.tables.get_table(key)
    data = _arrow_to_table_columns(data, [c.name for c in table.columns], names, "INSERT")
    res = session.services.data.write(key, data, mode="overwrite" if tree.args.get("overwrite") else "append")
    if not isinstance(source, exp.Values):
        _record_lineage(session, text)
    return SqlResult(["num_affected_rows", "num_inserted_rows"], [(data.num_rows, data.num_rows)], f"version {res.version}")


def _create(session: SqlService, tree: exp.Create, text: str) -> SqlResult:
    kind = str(tree.args.get("kind") or "").upper()
    replace = bool(tree.args.get("replace"))
    if kind == "FUNCTION":
        udf = tree.this
        if not isinstance(udf, exp.UserDefinedFunction) or not isinstance(udf.this, exp.Table):
            raise InvalidArgument("CREATE FUNCTION needs a name, parameters in parentheses, RETURNS <type> and RETURN <expression>")
        key = table_key(session, udf.this)
        params = [{"name": p.name, "type": p.args["kind"].sql("databricks")} for p in udf.expressions if isinstance(p, exp.ColumnDef)]
        props = tree.args.get("properties")
        returns = next((p.this.sql("databricks") for p in (props.expressions if props else [])
                        if isinstance(p, exp.ReturnsProperty) and p.this is not None), None)
        comment = next((p.this.name for p in (props.expressions if props else []) if isinstance(p, exp.SchemaCommentProperty)), None)
        body = tree.expression.this if isinstance(tree.expression, exp.Return) else tree.expression
        if returns is None or body is None:
            raise InvalidArgument("CREATE FUNCTION needs RETURNS <type> and RETURN <expression>")
        session.services.functions.create_function(key, body.sql("databricks"), returns, params, "SQL", comment)
        return SqlResult(message=f"created function {key}")
    if kind not in ("TABLE", "VIEW"):
        raise InvalidArgument(f"CREATE {kind} is not supported")
    target = tree.this
    columns = None
    if isinstance(target, exp.Schema):
        columns = [{"name": c.name, "type": c.args["kind"].sql("databricks"),
                    "nullable": not any(isinstance(k.kind, exp.NotNullColumnConstraint) for k in c.args.get("constraints") or [])}
                   for c in target.expressions if isinstance(c, exp.ColumnDef)]
        target = target.this
    key = table_key(session, target)
    props = tree.args.get("properties")
    comment = next((p.this.name for p in (props.expressions if props else []) if isinstance(p, exp.SchemaCommentProperty)), None)
    # LOCATION '...' (or CREATE EXTERNAL TABLE) makes an external table; the table service checks the path.
    location = next((p.this.name for p in (props.expressions if props else []) if isinstance(p, exp.LocationProperty)), None)
    external = any(isinstance(p, exp.ExternalProperty) for p in (props.expressions if props else []))
    # PARTITIONED BY (col, ...); Hive's PARTITIONED BY (col TYPE) adds the column when not listed.
    parts: list[str] = []
    for p in (props.expressions if props else []):
        for col in (p.this.expressions if isinstance(p, exp.PartitionedByProperty) and isinstance(p.this, exp.Schema) else []):
            parts.append(col.name.lower())
            if isinstance(col, exp.ColumnDef) and columns is not None and col.name.lower() not in {c["name"].lower() for c in columns}:
                columns.append({"name": col.name, "type": col.args["kind"].sql("databricks"), "nullable": True})
    table_type = "EXTERNAL" if location is not None or external else "MANAGED"
    exists_ok = bool(tree.args.get("exists"))
    if exists_ok:
        try:
            session.services.tables.get_table(key)
            return SqlResult(message=f"{key} already exists")
        except NotFound:
            pass
    if replace:
        try:
            session.services.tables.delete_table(key)
        except NotFound:
            pass  # nothing to replace; any other failure (no right to drop it) stops the statement
    query_tree = tree.expression if isinstance(tree.expression, exp.Query) else None
    if kind == "VIEW":
        if query_tree is None:
            raise InvalidArgument("CREATE VIEW needs AS <query>")
        definition = _qualified_definition(session, query_tree)
        sample = query(session, query_tree.copy().limit(0) if isinstance(query_tree, exp.Select) else query_tree.copy())
        cols = [{"name": n, "type": _type_text(t)} for n, t in zip(sample.column_names, sample.schema.types)]
        session.services.tables.create_table(key, cols, table_type="VIEW", view_definition=definition, comment=comment)
        _record_lineage(session, text)
        return SqlResult(message=f"created view {key}")
    if query_tree is not None:
        data = query(session, query_tree)
        session.services.tables.create_table(key, data=data, comment=comment, table_type=table_type, storage_location=location,
                                             partition_columns=parts)
        _record_lineage(session, text)
        return SqlResult(["num_affected_rows", "num_inserted_rows"], [(data.num_rows, data.num_rows)], f"created table {key}")
    if not columns and location is None:
        raise InvalidArgument("CREATE TABLE needs columns, AS <query>, or the LOCATION of a Delta table to register")
    session.services.tables.create_table(key, columns or (), comment=comment, table_type=table_type, storage_location=location,
                                         partition_columns=parts)
    return SqlResult(message=f"created table {key}")


def _qualified_definition(session: SqlService, tree: exp.Expression) -> str:
    """The view's SQL with every table fully qualified, so it means the same in any session."""
    return qualify_definition(tree, session.current_catalog, session.current_schema)


def _type_text(dtype: Any) -> str:
    from catalog.delta import type_text

    try:
        return type_text(dtype)
    except InvalidArgument:
        return "string"


def _where_sql(node: exp.Expression | None) -> str | None:
    """A predicate for delta-rs (DataFusion SQL), column references unqualified."""
    if node is None:
        return None
    if node.find(exp.Select) is not None:
        raise InvalidArgument("UPDATE / DELETE / MERGE conditions with subqueries are not supported; join in a MERGE source instead")
    node = node.copy()
    for col in node.find_all(exp.Column):
        col.set("table", None)
    return node.sql("postgres")


def _update(session: SqlService, tree: exp.Update, text: str) -> SqlResult:
    if tree.args.get("from"):
        raise InvalidArgument("UPDATE ... FROM is not supported; use MERGE INTO")
    key = table_key(session, tree.this)
    sets = {}
    for eq in tree.expressions:
        sets[eq.this.name.lower()] = _where_sql(eq.expression)
    where = tree.args.get("where")
    res = session.services.data.update(key, sets, _where_sql(where.this if where else None))  # type: ignore[arg-type]
    _record_lineage(session, text)
    n = res.metrics.get("num_updated_rows", 0)
    return SqlResult(["num_affected_rows"], [(n,)], f"version {res.version}")


def _delete(session: SqlService, tree: exp.Delete) -> SqlResult:
    key = table_key(session, tree.this)
    where = tree.args.get("where")
    res = session.services.data.delete(key, _where_sql(where.this if where else None) or "true")
    n = res.metrics.get("num_deleted_rows", 0)
    return SqlResult(["num_affected_rows"], [(n,)], f"version {res.version}")


def _merge(session: SqlService, tree: exp.Merge, text: str) -> SqlResult:
    """MERGE INTO t USING s ON t.k = s.k [AND ...] WHEN MATCHED [AND c] THEN UPDATE SET ... | UPDATE SET * | DELETE
    WHEN NOT MATCHED [AND c] THEN INSERT * | INSERT (cols) VALUES (source cols)."""
    target = tree.this
    key = table_key(session, target)
    t_alias = (target.alias or target.name).lower()
    using = tree.args.get("using")
    if using is None:
        raise InvalidArgument("MERGE needs USING <source>")
    src_query = using.this if isinstance(using, exp.Subquery) else exp.select("*").from_(using.copy())
    source = query(session, src_query)
    keys = []
    on = tree.args.get("on")
    for eq in _conjuncts(on):
        if not isinstance(eq, exp.EQ) or not all(isinstance(x, exp.Column) for x in (eq.this, eq.expression)):
            raise InvalidArgument("MERGE ... ON must be equalities between target and source columns joined by AND")
        a, b = eq.this, eq.expression
        t_col, s_col = (a, b) if a.table.lower() == t_alias else (b, a)
        if t_col.name.lower() != s_col.name.lower():
            source = source.rename_columns([t_col.name.lower() if n.lower() == s_col.name.lower() else n for n in source.column_names])
        keys.append(t_col.name.lower())

    def rename(node: exp.Expression) -> str:
        node = node.copy()
        for col in node.find_all(exp.Column):
            col.set("table", exp.to_identifier("target" if col.table.lower() == t_alias else "source"))
        return node.sql("postgres")

    update: dict[str, str] | str | None = None
    update_cond = delete_cond = insert_cond = None
    insert = False
    whens = tree.args.get("whens")
    for when in (whens.expressions if whens is not None else []):
        then, cond = when.args.get("then"), when.args.get("condition")
        if when.args.get("matched"):
            if isinstance(then, exp.Update):
                star = not then.expressions or any(isinstance(x, exp.Star) for x in then.expressions)
                update = "*" if star else {eq.this.name.lower(): rename(eq.expression) for eq in then.expressions}
                update_cond = rename(cond) if cond is not None else None
            elif (isinstance(then, exp.Var) and then.name.upper() == "DELETE") or (then is not None and then.sql().upper() == "DELETE"):
                delete_cond = rename(cond) if cond is not None else "true"
            else:
                raise InvalidArgument(f"unsupported WHEN MATCHED action: {then.sql() if then else ''}")
        else:
            insert = True
            insert_cond = rename(cond) if cond is not None else None
    res = session.services.data.merge(key, source, keys, when_matched_update=update, when_matched_update_condition=update_cond,
                                   when_matched_delete_condition=delete_cond, when_not_matched_insert=insert,
                                   when_not_matched_insert_condition=insert_cond)
    _record_lineage(session, text)
    m = res.metrics
    return SqlResult(["num_affected_rows", "num_updated_rows", "num_deleted_rows", "num_inserted_rows"],
                     [(m.get("num_target_rows_updated", 0) + m.get("num_target_rows_deleted", 0) + m.get("num_target_rows_inserted", 0),
                       m.get("num_target_rows_updated", 0), m.get("num_target_rows_deleted", 0), m.get("num_target_rows_inserted", 0))])


def _conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    if node is None:
        return []
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]
