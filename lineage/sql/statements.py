"""One statement's lineage: what it reads, what it writes, and the column edges between them.

Each kind of statement names its target and the query that feeds it; the query's column lineage then
maps onto the target's columns (its explicit list, its known columns, or the query's own names).
Files are datasets too (Spark's parquet.`path`, INSERT OVERWRITE DIRECTORY, COPY, UNLOAD); so are the
two sides of a partition exchange or a table swap.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlglot
from sqlglot import exp

from lineage.sql.dml import merge, update
from lineage.sql.model import ColumnEdge, Step
from lineage.sql.names import name_table, table_name
from lineage.sql.query import query_lineage

Known = dict[str, list[str]]

_UNLOAD = re.compile(r"^\s*\(\s*'((?:[^']|'')*)'\s*\)\s*TO\s*'([^']*)'", re.IGNORECASE | re.DOTALL)
_EXCHANGE = re.compile(r"^\s*TABLE\s+(\S+)\s+EXCHANGE\s+PARTITION\s*\(.*\)\s*WITH\s+TABLE\s+([^\s;]+)", re.IGNORECASE | re.DOTALL)
_SWAP_PARTITIONS = "swap_partitions_between_tables"


def step(stmt: exp.Expression, dialect: str, known: Known, procedural: bool) -> Step:
    handler = _HANDLERS.get(type(stmt))
    if handler is None:
        for kind, fn in _HANDLERS.items():
            if isinstance(stmt, kind):
                handler = fn
                break
    return handler(stmt, dialect, known, procedural) if handler else Step()


def _query(stmt: exp.Expression, dialect: str, known: Known, procedural: bool) -> Step:
    into = stmt.args.get("into")
    if into is not None:
        if procedural and dialect != "tsql":
            stmt.set("into", None)  # SELECT ... INTO v_count in a procedure fills variables
        else:  # SELECT ... INTO new_table (T-SQL, PostgreSQL): a CTAS
            target = into.this
            stmt.set("into", None)
            temporary = bool(into.args.get("temporary")) or table_name(target).startswith("#")
            return _write(stmt, target, None, stmt, dialect, known, temporary=temporary)
    swap = _swap_function(stmt, dialect)
    if swap is not None:
        return swap
    return Step(reads=reads(stmt))


def _insert(stmt: exp.Insert, dialect: str, known: Known, procedural: bool) -> Step:
    this = stmt.this
    cols = None
    if isinstance(this, exp.Schema):
        cols = [_ident(c) for c in this.expressions]
        this = this.this
    query = _with_ctes(stmt, unwrap(stmt.expression))
    if isinstance(this, exp.Directory):  # INSERT OVERWRITE [LOCAL] DIRECTORY 'path' SELECT ...
        return _write(stmt, None, cols, query, dialect, known, path=this.this.name)
    if not isinstance(this, exp.Table):
        return Step(reads=reads(stmt))
    if cols is None:
        cols = known.get(table_name(this))
    return _write(stmt, this, cols, query, dialect, known)


def _create(stmt: exp.Create, dialect: str, known: Known, procedural: bool) -> Step:
    kind = (stmt.args.get("kind") or "").upper()
    if "TABLE" not in kind and "VIEW" not in kind:
        return Step()  # CREATE FUNCTION, SCHEMA, INDEX ... move no data
    this = stmt.this
    cols = None
    if isinstance(this, exp.Schema):
        cols = [_ident(c.this if isinstance(c, exp.ColumnDef) else c) for c in this.expressions
                if isinstance(c, (exp.ColumnDef, exp.Identifier))] or None
        this = this.this
    if not isinstance(this, exp.Table):
        return Step()
    props = stmt.args.get("properties")
    temporary = bool(props and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions)) or table_name(this).startswith("#")
    if temporary and props and any(isinstance(p, exp.GlobalProperty) for p in props.expressions) and not this.args.get("db"):
        this.set("db", exp.to_identifier("global_temp"))  # where Spark keeps global temporary views
    query = unwrap(stmt.expression)
    query = _with_ctes(stmt, query) if isinstance(query, exp.Query) else None
    out = _write(stmt, this, cols, query, dialect, known, temporary=temporary)
    clone = stmt.args.get("clone")
    if query is None and isinstance(clone, exp.Clone) and isinstance(clone.this, exp.Table):
        _all_columns(out, table_name(clone.this), table_name(this))  # CREATE TABLE t2 CLONE t1: a copy
    if query is None and cols and table_name(this) not in known:
        known[table_name(this)] = cols
    return out


def _cache(stmt: exp.Cache, dialect: str, known: Known, procedural: bool) -> Step:
    query = unwrap(stmt.expression)  # Spark's CACHE TABLE v AS SELECT ...: a temporary view
    if not isinstance(stmt.this, exp.Table) or not isinstance(query, exp.Query):
        return Step()
    return _write(stmt, stmt.this, None, query, dialect, known, temporary=True)


def _merge(stmt: exp.Merge, dialect: str, known: Known, procedural: bool) -> Step:
    target = stmt.this if isinstance(stmt.this, exp.Table) else None
    out = Step(reads=reads(stmt, skip=target))
    if target is not None:
        out.writes.add(table_name(target))
        merge(stmt, dialect, known, out.edges)
    return out


def _update(stmt: exp.Update, dialect: str, known: Known, procedural: bool) -> Step:
    return update(stmt, dialect, known)


def _delete(stmt: exp.Delete, dialect: str, known: Known, procedural: bool) -> Step:
    out = Step(reads=reads(stmt))
    if isinstance(stmt.this, exp.Table):
        out.writes.add(table_name(stmt.this))  # DELETE reads the rows it removes: a source too
        out.reads.add(table_name(stmt.this))
    return out


def _drop(stmt: exp.Drop, dialect: str, known: Known, procedural: bool) -> Step:
    kind = (stmt.args.get("kind") or "").upper()
    if isinstance(stmt.this, exp.Table) and ("TABLE" in kind or "VIEW" in kind):
        return Step(dropped={table_name(stmt.this)})
    return Step()


def _copy(stmt: exp.Copy, dialect: str, known: Known, procedural: bool) -> Step:
    """COPY [INTO] t FROM 'path' loads files into a table; COPY t TO 'path' and Snowflake's
    COPY INTO @stage FROM t unload one. Every column of the one flows into the other."""
    loads = bool(stmt.args.get("kind"))
    ends = [_dataset(stmt.this)]
    others = [_dataset(f) for f in stmt.args.get("files") or []]
    out = Step()
    targets, sources = (ends, others) if loads else (others, ends)
    for tgt in targets:
        if isinstance(tgt, str):
            out.writes.add(tgt)
    for src in sources:
        if isinstance(src, str):
            out.reads.add(src)
            for tgt in targets:
                if isinstance(tgt, str):
                    _all_columns(out, src, tgt)
        elif isinstance(src, exp.Query):
            for tgt in targets:
                if isinstance(tgt, str):
                    q = _write(src, None, None, src, dialect, known, path=tgt)
                    out.reads |= q.reads
                    out.edges |= q.edges
    return out


def _dataset(node: exp.Expression) -> str | exp.Query | None:
    if isinstance(node, exp.Table):
        return table_name(node) or None
    if isinstance(node, exp.Literal) and node.is_string:
        return node.name
    if isinstance(node, exp.Var):
        return node.name
    if isinstance(node, exp.Subquery):
        inner = unwrap(node)
        return inner if isinstance(inner, exp.Query) else None
    return None


def _command(stmt: exp.Command, dialect: str, known: Known, procedural: bool) -> Step:
    verb = stmt.name.upper()
    text = stmt.expression.name if isinstance(stmt.expression, exp.Literal) else str(stmt.expression or "")
    if verb == "UNLOAD":  # Redshift: UNLOAD ('select ...') TO 's3://...'
        m = _UNLOAD.match(text)
        if m:
            query = unwrap(sqlglot.parse_one(m.group(1).replace("''", "'"), read=dialect or None))
            if isinstance(query, exp.Query):
                return _write(query, None, None, query, dialect, known, path=m.group(2))
    if verb == "ALTER":  # Hive: ALTER TABLE a EXCHANGE PARTITION (...) WITH TABLE b moves b's partition into a
        m = _EXCHANGE.match(text)
        if m:
            a, b = name_table(m.group(1), dialect), name_table(m.group(2), dialect)
            if a is not None and b is not None:
                out = Step(reads={table_name(b)}, writes={table_name(a)})
                _all_columns(out, table_name(b), table_name(a))
                return out
    return Step()


def _alter(stmt: exp.Alter, dialect: str, known: Known, procedural: bool) -> Step:
    swap = next((a for a in stmt.args.get("actions") or [] if isinstance(a, exp.SwapTable)), None)
    if swap is not None and isinstance(stmt.this, exp.Table) and isinstance(swap.this, exp.Table):
        return _swap(table_name(stmt.this), table_name(swap.this))  # Snowflake: ALTER TABLE a SWAP WITH b
    return Step()


def _swap(a: str, b: str) -> Step:
    """A swap exchanges the two tables' data: each is the other's source and target."""
    out = Step(reads={a, b}, writes={a, b})
    _all_columns(out, a, b)
    _all_columns(out, b, a)
    return out


def _swap_function(stmt: exp.Expression, dialect: str) -> Step | None:
    """Vertica: SELECT swap_partitions_between_tables('staging', min, max, 'target')."""
    if not isinstance(stmt, exp.Select):
        return None
    for fn in stmt.find_all(exp.Anonymous):
        if fn.name.lower() == _SWAP_PARTITIONS and len(fn.expressions) == 4:
            a, b = fn.expressions[0], fn.expressions[3]
            if isinstance(a, exp.Literal) and isinstance(b, exp.Literal):
                ta, tb = name_table(a.name, dialect), name_table(b.name, dialect)
                if ta is not None and tb is not None:
                    return _swap(table_name(ta), table_name(tb))
    return None


def _all_columns(out: Step, source: str, target: str) -> None:
    out.edges.add(ColumnEdge(f"{source}.*", f"{target}.*", "DIRECT", "IDENTITY"))


_HANDLERS: dict[type, Callable[..., Step]] = {
    exp.Insert: _insert, exp.Create: _create, exp.Merge: _merge, exp.Update: _update, exp.Delete: _delete,
    exp.Drop: _drop, exp.Copy: _copy, exp.Command: _command, exp.Alter: _alter, exp.Cache: _cache,
    exp.Query: _query,
}


def _ident(node: exp.Expression) -> str:
    return node.name if isinstance(node, exp.Identifier) and node.quoted else node.name.lower()


def unwrap(node: exp.Expression | None) -> exp.Expression | None:
    """`(SELECT ...)` and `((SELECT ...))` as a statement's query: the query inside."""
    while isinstance(node, exp.Subquery) and not node.alias and not node.args.get("order") and not node.args.get("limit"):
        node = node.this
    return node


def _with_ctes(stmt: exp.Expression, query: exp.Expression | None) -> exp.Expression | None:
    """`WITH c AS (...) INSERT INTO t SELECT ... FROM c`: give the query its statement's CTEs."""
    ctes = stmt.args.get("with_") or stmt.args.get("with")
    if query is None or ctes is None or not isinstance(query, exp.Query) or query is stmt:
        return query
    query = query.copy()
    own = query.args.get("with_") or query.args.get("with")
    if own is None:
        query.set("with_" if "with_" in query.arg_types else "with", ctes.copy())
    return query


def reads(stmt: exp.Expression, skip: exp.Expression | None = None) -> set[str]:
    """Every table the statement names, but its target and the CTEs it defines."""
    out = set()
    for t in stmt.find_all(exp.Table):
        if t is skip or _is_cte_ref(t):
            continue
        name = table_name(t)
        if name:
            out.add(name)
    return out


def _is_cte_ref(t: exp.Table) -> bool:
    if t.args.get("db") or t.args.get("catalog") or not isinstance(t.this, exp.Identifier):
        return False
    name = t.name
    node = t.parent
    while node is not None:
        with_ = node.args.get("with_") or node.args.get("with")
        if with_ is not None and any(cte.alias_or_name == name for cte in with_.expressions):
            return True
        node = node.parent
    return False


def _write(stmt: exp.Expression, target: exp.Table | None, cols: list[str] | None, query: exp.Expression | None,
           dialect: str, known: Known, temporary: bool = False, path: str | None = None) -> Step:
    """A statement that writes `target` (or the files at `path`) from `query`."""
    tname = path if path is not None else table_name(target) if target is not None else None
    out = Step(reads=reads(stmt, skip=target))
    if tname is None:
        return out
    out.writes.add(tname)
    if temporary:
        out.temporary.add(tname)
    if not isinstance(query, exp.Query):
        return out
    edges, outputs = query_lineage(query, dialect, known)
    if cols and "*" not in outputs:
        names = cols
    else:
        names = outputs
    if isinstance(stmt, (exp.Create, exp.Select, exp.Cache)) and tname not in known and names and "*" not in names:
        known[tname] = list(names)  # a table or view made here is known to the statements after it
    for src, index, kind, subtype in edges:
        for i in (range(len(names)) if index is None else [index]):
            if i < len(names):
                out.edges.add(ColumnEdge(src, f"{tname}.{names[i]}", kind, subtype))
    return out
