"""Queries and writes of the SQL shim, on DuckDB over governed snapshots of catalog tables."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from catalog.entities import TableType
from catalog.errors import CairnError, FailedPrecondition, InvalidArgument
from catalog.service.data import policy_sql

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from catalog.sql.shim import SqlResult, SqlService


def run_sql(session: SqlService, text: str) -> SqlResult:
    from catalog.sql.shim import parse

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


def table_key(session: SqlService, t: exp.Table) -> str:
    parts = [p.name for p in (t.args.get("catalog"), t.args.get("db"), t.this) if p is not None]
    quoted = ".".join("`" + p.replace("`", "``") + "`" for p in parts)
    return session.full(quoted, 3)


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
    never data or rights: every run checks the reader's privileges and binds the snapshot it may see."""

    sql: str
    refs: tuple[Ref, ...]


# Parsed and rewritten queries by (text, current catalog, current schema): parsing and generating SQL
# costs more than the checks, and clients run the same statements over and over.
_templates: dict[tuple[str, str | None, str | None], Template] = {}
_templates_lock = threading.Lock()
_cursors = threading.local()


def _template(session: SqlService, tree: exp.Expression) -> Template:
    """Replace every table the query reads by a placeholder (keeping its alias); `tree` is consumed."""
    nonce = uuid.uuid4().hex[:12]
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    refs = []
    for t in list(tree.find_all(exp.Table)):
        if isinstance(t.parent, (exp.Insert, exp.Schema)) and t.parent.this is t:
            continue  # a write target, not a read
        if not t.name or (not t.args.get("db") and t.name.lower() in ctes):
            continue
        ref = Ref(f"__cairn_{nonce}_{len(refs)}", table_key(session, t), *_as_of(t.args.get("version")))
        refs.append(ref)
        alias = t.alias or t.name
        t.replace(exp.Table(this=exp.to_identifier(ref.placeholder, quoted=True), alias=exp.TableAlias(this=exp.to_identifier(alias))))
    return Template(tree.sql("duckdb"), tuple(refs))


def query(session: SqlService, tree: exp.Expression) -> pa.Table:
    """Run a query tree (left unchanged) as the session's principal."""
    return run_template(session, _template(session, tree.copy()))


def run_template(session: SqlService, template: Template, rows: bool = False) -> Any:
    """Check and bind every table the query reads in one governed call, then run it on DuckDB.

    Arrow for the writes that consume the result; a SqlResult of rows when `rows` (fetching Python
    rows directly is cheaper than going through Arrow for the small results most queries return)."""
    import duckdb

    from catalog.sql.shim import SqlResult

    from catalog.service.data import duckdb_cursor

    con = getattr(_cursors, "con", None)
    if con is None:
        # One cursor per thread, reused: a fresh DuckDB connection's first query pays for warming
        # its caches (about 0.5 ms here). Nothing outlives a query on it but those caches.
        con = _cursors.con = duckdb_cursor()
    registered: list[str] = []
    try:
        sql = _bound(session, session.cairn, con, template, registered)
        cur = con.execute(sql)
        if rows:
            return SqlResult([d[0] for d in cur.description], cur.fetchall())
        return cur.to_arrow_table()
    except duckdb.Error as exc:
        raise InvalidArgument(f"the query failed: {str(exc).splitlines()[0]}") from None
    finally:
        for name in registered:
            con.unregister(name)


def _bound(session: SqlService, client: Any, con: duckdb.DuckDBPyConnection, template: Template, registered: list[str]) -> str:
    """The template's SQL with each placeholder replaced by what `client` may read of that table."""
    data = [r for r in template.refs if not r.key.startswith("system.")]
    plans: dict[str, Any] = {}
    if data:
        try:
            plans = dict(zip((r.placeholder for r in data), client.data.plan_scans([(r.key, r.version, r.timestamp) for r in data])))
        except FailedPrecondition:
            plans = {}  # a view among them: bind one by one, views with their owner's rights
    sql = template.sql
    for r in template.refs:
        if r.key.startswith("system."):
            from catalog.sql.system import system_table

            con.register(r.placeholder, system_table(client, r.key))
            registered.append(r.placeholder)
            source = f'SELECT * FROM "{r.placeholder}"'
        elif r.placeholder in plans:
            source = _plan_source(plans[r.placeholder])
        else:
            source = _one_source(session, client, con, r, registered)
        sql = sql.replace(f'"{r.placeholder}"', f"({source})")
    return sql


def _as_of(version: exp.Version | None) -> tuple[int | None, str | None]:
    if version is None:
        return None, None
    value = version.expression.name if isinstance(version.expression, exp.Literal) else version.expression.sql()
    if version.name.upper() == "VERSION":
        if not str(value).isdigit():
            raise InvalidArgument(f"VERSION AS OF needs a number, not {value!r}")
        return int(value), None
    return None, value


def _one_source(session: SqlService, client: Any, con: duckdb.DuckDBPyConnection, ref: Ref, registered: list[str]) -> str:
    try:
        plan = client.data.plan_scan(ref.key, ref.version, ref.timestamp)
    except FailedPrecondition:
        table = client.tables.get_table(ref.key)
        if table.table_type is not TableType.VIEW:
            raise
        return _view_source(session, client, con, table, registered)
    return _plan_source(plan)


def _plan_source(plan: Any) -> str:
    names = [c.name for c in plan.columns]
    files = [f[len("file://"):] if f.startswith("file://") else f for f in plan.files]
    if files:
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        # Files written before a schema change lack its new columns; matching by name reads them as
        # NULL, as Delta does. It costs a schema read per file, needless when there is only one.
        source = f"read_parquet([{listed}]{', union_by_name = true' if len(files) > 1 else ''})"
    else:
        typed = ", ".join(f'CAST(NULL AS {exp.DataType.build(c.type_text, dialect="databricks").sql("duckdb")}) AS "{c.name}"' for c in plan.columns)
        source = f"(SELECT {typed} WHERE false)"
    return policy_sql(plan.policy, source + " AS src", names)


def _view_source(session: SqlService, client: Any, con: duckdb.DuckDBPyConnection, table: Any, registered: list[str]) -> str:
    """A catalog view reads its tables with its owner's rights (definer's rights), as in Databricks.

    The reader's SELECT on the view itself was already required by `data.plan_scan(s)`, which
    checks privileges before it finds the table is a view.
    """
    from catalog.sql.shim import parse

    owner = client.metastore.as_principal(table.owner, client.ctx.source, client.ctx.request_id)
    inner = _template(session, parse(table.view_definition or ""))
    return _bound(session, owner, con, inner, registered)


def _arrow_to_table_columns(data: pa.Table, target_columns: list[str], names: list[str] | None, what: str) -> pa.Table:
    cols = names or target_columns
    if data.num_columns != len(cols):
        raise InvalidArgument(f"{what} gives {data.num_columns} column(s) for {len(cols)} target column(s)")
    return data.rename_columns(cols)


def _record_lineage(session: SqlService, text: str) -> None:
    try:
        session.cairn.lineage.record_sql(text, "databricks", default_catalog=session.current_catalog, default_schema=session.current_schema)
    except CairnError as exc:  # the data is committed; say so rather than fail the statement
        from catalog.sql.shim import log

        log.warning("lineage of a committed write was not recorded: %s", exc)


def _insert(session: SqlService, tree: exp.Insert, text: str) -> SqlResult:
    from catalog.sql.shim import SqlResult

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
    table = session.cairn.tables.get_table(key)
    data = _arrow_to_table_columns(data, [c.name for c in table.columns], names, "INSERT")
    res = session.cairn.data.write(key, data, mode="overwrite" if tree.args.get("overwrite") else "append")
    if not isinstance(source, exp.Values):
        _record_lineage(session, text)
    return SqlResult(["num_affected_rows", "num_inserted_rows"], [(data.num_rows, data.num_rows)], f"version {res.version}")


def _create(session: SqlService, tree: exp.Create, text: str) -> SqlResult:
    from catalog.sql.shim import SqlResult

    kind = str(tree.args.get("kind") or "").upper()
    replace = bool(tree.args.get("replace"))
    if kind == "FUNCTION":
        udf = tree.this
        key = table_key(session, udf.this)
        params = [{"name": p.name, "type": p.args["kind"].sql("databricks")} for p in udf.expressions if isinstance(p, exp.ColumnDef)]
        props = tree.args.get("properties")
        returns = next((p.this.sql("databricks") for p in (props.expressions if props else []) if isinstance(p, exp.ReturnsProperty)), None)
        comment = next((p.this.name for p in (props.expressions if props else []) if isinstance(p, exp.SchemaCommentProperty)), None)
        body = tree.expression.this if isinstance(tree.expression, exp.Return) else tree.expression
        if returns is None or body is None:
            raise InvalidArgument("CREATE FUNCTION needs RETURNS <type> and RETURN <expression>")
        session.cairn.functions.create_function(key, body.sql("databricks"), returns, params, "SQL", comment)
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
    storage = {"table_type": "EXTERNAL", "storage_location": location} if location is not None or external else {}
    exists_ok = bool(tree.args.get("exists"))
    if exists_ok:
        try:
            session.cairn.tables.get_table(key)
            return SqlResult(message=f"{key} already exists")
        except CairnError:
            pass
    if replace:
        try:
            session.cairn.tables.delete_table(key)
        except CairnError:
            pass
    query_tree = tree.expression if isinstance(tree.expression, exp.Query) else None
    if kind == "VIEW":
        if query_tree is None:
            raise InvalidArgument("CREATE VIEW needs AS <query>")
        definition = _qualified_definition(session, query_tree)
        sample = query(session, query_tree.copy().limit(0) if isinstance(query_tree, exp.Select) else query_tree.copy())
        cols = [{"name": n, "type": _type_text(t)} for n, t in zip(sample.column_names, sample.schema.types)]
        session.cairn.tables.create_table(key, cols, table_type="VIEW", view_definition=definition, comment=comment)
        _record_lineage(session, text)
        return SqlResult(message=f"created view {key}")
    if query_tree is not None:
        data = query(session, query_tree)
        session.cairn.tables.create_table(key, data=data, comment=comment, **storage)
        _record_lineage(session, text)
        return SqlResult(["num_affected_rows", "num_inserted_rows"], [(data.num_rows, data.num_rows)], f"created table {key}")
    if not columns and location is None:
        raise InvalidArgument("CREATE TABLE needs columns, AS <query>, or the LOCATION of a Delta table to register")
    session.cairn.tables.create_table(key, columns or (), comment=comment, **storage)
    return SqlResult(message=f"created table {key}")


def _qualified_definition(session: SqlService, tree: exp.Expression) -> str:
    """The view's SQL with every table fully qualified, so it means the same in any session."""
    tree = tree.copy()
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for t in list(tree.find_all(exp.Table)):
        if not t.name or (not t.args.get("db") and t.name.lower() in ctes):
            continue
        cat, sch, name = table_key(session, t).split(".")
        t.set("catalog", exp.to_identifier(cat))
        t.set("db", exp.to_identifier(sch))
        t.set("this", exp.to_identifier(name))
    return tree.sql("databricks")


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
    from catalog.sql.shim import SqlResult

    if tree.args.get("from"):
        raise InvalidArgument("UPDATE ... FROM is not supported; use MERGE INTO")
    key = table_key(session, tree.this)
    sets = {}
    for eq in tree.expressions:
        sets[eq.this.name.lower()] = _where_sql(eq.expression)
    where = tree.args.get("where")
    res = session.cairn.data.update(key, sets, _where_sql(where.this if where else None))  # type: ignore[arg-type]
    _record_lineage(session, text)
    n = res.metrics.get("num_updated_rows", 0)
    return SqlResult(["num_affected_rows"], [(n,)], f"version {res.version}")


def _delete(session: SqlService, tree: exp.Delete) -> SqlResult:
    from catalog.sql.shim import SqlResult

    key = table_key(session, tree.this)
    where = tree.args.get("where")
    res = session.cairn.data.delete(key, _where_sql(where.this if where else None) or "true")
    n = res.metrics.get("num_deleted_rows", 0)
    return SqlResult(["num_affected_rows"], [(n,)], f"version {res.version}")


def _merge(session: SqlService, tree: exp.Merge, text: str) -> SqlResult:
    """MERGE INTO t USING s ON t.k = s.k [AND ...] WHEN MATCHED [AND c] THEN UPDATE SET ... | UPDATE SET * | DELETE
    WHEN NOT MATCHED [AND c] THEN INSERT * | INSERT (cols) VALUES (source cols)."""
    from catalog.sql.shim import SqlResult

    target = tree.this
    key = table_key(session, target)
    t_alias = (target.alias or target.name).lower()
    using = tree.args.get("using")
    s_alias = (using.alias or (using.name if isinstance(using, exp.Table) else "source")).lower()
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
            elif isinstance(then, exp.Var) and then.name.upper() == "DELETE" or (then is not None and then.sql().upper() == "DELETE"):
                delete_cond = rename(cond) if cond is not None else "true"
            else:
                raise InvalidArgument(f"unsupported WHEN MATCHED action: {then.sql() if then else ''}")
        else:
            insert = True
            insert_cond = rename(cond) if cond is not None else None
    res = session.cairn.data.merge(key, source, keys, when_matched_update=update, when_matched_update_condition=update_cond,
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
