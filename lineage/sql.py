"""Table and column lineage of SQL statements, built on sqlglot.

    >>> lin = extract("INSERT INTO daily SELECT a, sum(b) AS total FROM db.src GROUP BY a")
    >>> sorted(lin.sources), sorted(lin.targets)
    (['db.src'], ['daily'])
    >>> sorted((e.source, e.target, e.kind, e.subtype) for e in lin.columns)[:2]
    [('db.src.a', 'daily.a', 'DIRECT', 'IDENTITY'), ('db.src.a', 'daily.a', 'INDIRECT', 'GROUP_BY')]

Small steps: parse (errors carry line and column), find each statement's target and the query
that feeds it, qualify columns against the schema (expanding `*`), then walk sqlglot's scopes from
each output column down to physical columns. An edge is DIRECT when the value flows (identity,
transformation, aggregation) and INDIRECT when a column only decides which rows or in what order
(join, filter, group by, sort, window, conditional); INDIRECT columns of a query feed every one of
its outputs, as in OpenLineage's column lineage facet.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, OptimizeError, ParseError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

DIALECTS = ("databricks", "spark", "ansi", "hive", "postgres", "bigquery", "snowflake", "tsql", "duckdb", "mysql")
logging.getLogger("sqlglot").setLevel(logging.ERROR)


@dataclass(frozen=True, slots=True, order=True)
class ColumnEdge:
    source: str  # "table.column", the table as qualified in the SQL
    target: str
    kind: str  # DIRECT | INDIRECT
    subtype: str = ""  # IDENTITY, TRANSFORMATION, AGGREGATION | JOIN, FILTER, GROUP_BY, SORT, WINDOW, CONDITIONAL


@dataclass(frozen=True, slots=True)
class SqlError:
    message: str
    line: int | None = None
    col: int | None = None
    statement: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.col}: " if self.line else ""
        return f"{where}{self.message}"


@dataclass
class SqlLineage:
    sources: set[str] = field(default_factory=set)
    targets: set[str] = field(default_factory=set)
    columns: set[ColumnEdge] = field(default_factory=set)
    errors: list[SqlError] = field(default_factory=list)


_CLASS = re.compile(r"<class 'sqlglot\.expressions\.(\w+)'>")
_TOKEN = re.compile(r"<Token token_type: TokenType\.\w+, text: (.*?), line: \d+, col: \d+, start: \d+, end: \d+, comments: \[.*?\]>")


def readable(description: str, near: str | None = None) -> str:
    """A sqlglot parse error in the user's words: no `<class 'sqlglot.expressions.Mul'>` or `<Token ...>`.

    >>> readable("Required keyword: 'expression' missing for <class 'sqlglot.expressions.Mul'>", "*")
    "incomplete statement near '*': the * operator is missing its right side"
    >>> readable("required keyword: 'expression' missing for")
    'incomplete statement: an operator or function is missing its expression'
    >>> readable("Expected table name but got None")
    'expected a table name'
    """
    m = re.match(r"Required keyword: '(\w+)' missing for(?: <class 'sqlglot\.expressions\.(\w+)'>)?", description, re.IGNORECASE)
    where = f" near '{near}'" if near else ""
    if m:
        ops = {"Mul": "*", "Div": "/", "Add": "+", "Sub": "-", "EQ": "=", "NEQ": "<>", "GT": ">", "LT": "<", "GTE": ">=", "LTE": "<=",
               "And": "AND", "Or": "OR", "Mod": "%"}
        node = m.group(2)
        if node in ops:
            what = f"the {ops[node]} operator is missing its right side"
        else:
            what = f"{'a ' + node.upper() if node else 'an operator or function'} is missing its {m.group(1)}"
        return f"incomplete statement{where}: {what}"
    text = _TOKEN.sub(lambda t: t.group(1), _CLASS.sub(lambda c: c.group(1).upper(), description))
    text = re.sub(r"^Expected (.*?) but got None\.?$", r"expected a \1", text)
    text = text.replace("Invalid expression / Unexpected token", "unexpected token" + where)
    return text[:1].lower() + text[1:]


def extract(sql: str, dialect: str | None = None, schema: Mapping[str, Sequence[str]] | None = None) -> SqlLineage:
    """Lineage of every statement in `sql`. Never raises on bad SQL: errors go in `.errors`."""
    dialect = (dialect or "spark").lower()
    if dialect not in DIALECTS:
        return SqlLineage(errors=[SqlError(f"unknown dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")])
    out = SqlLineage()
    read = "" if dialect == "ansi" else dialect
    try:
        statements = sqlglot.parse(sql, read=read, error_level=ErrorLevel.RAISE)
    except ParseError as exc:
        for e in exc.errors or [{"description": str(exc)}]:
            out.errors.append(SqlError(readable(e.get("description") or str(exc), e.get("highlight")), e.get("line"), e.get("col")))
        return out
    except SqlglotError as exc:
        out.errors.append(SqlError(readable(str(exc))))
        return out
    known = _schema(schema)
    for i, stmt in enumerate(s for s in statements if s is not None):
        try:
            _statement(stmt, read, known, out)
        except (SqlglotError, OptimizeError, RecursionError, KeyError, ValueError) as exc:
            out.errors.append(SqlError(f"statement {i + 1}: {readable(str(exc))}", statement=i + 1))
        # A table created earlier in the script is known to later statements.
    return out


def _schema(schema: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    return {k.lower(): [c.lower() for c in v] for k, v in (schema or {}).items()}


def table_name(table: exp.Table) -> str:
    """The table as qualified in the SQL; unquoted parts lower-cased."""
    parts = [p for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p is not None]
    return ".".join(p.name if (isinstance(p, exp.Identifier) and p.quoted) else p.name.lower() for p in parts)


def _nested_schema(known: dict[str, list[str]]) -> dict:  # type: ignore[type-arg]
    nested: dict = {}  # type: ignore[type-arg]
    for name, cols in known.items():
        node = nested
        parts = name.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = {c: "string" for c in cols}
    return nested


def _uniform_depth(known: dict[str, list[str]]) -> dict[str, list[str]]:
    # sqlglot wants every table in a schema at the same depth; keep the most common depth.
    if not known:
        return known
    depths: dict[int, int] = {}
    for k in known:
        depths[k.count(".")] = depths.get(k.count("."), 0) + 1
    depth = max(depths, key=lambda d: depths[d])
    return {k: v for k, v in known.items() if k.count(".") == depth}


_LINEAGE_STATEMENTS = (exp.Query, exp.Insert, exp.Create, exp.Merge, exp.Update, exp.Delete)


def _statement(stmt: exp.Expression, dialect: str, known: dict[str, list[str]], out: SqlLineage) -> None:
    if not isinstance(stmt, _LINEAGE_STATEMENTS):
        return  # USE, SET, SHOW, GRANT ... read and write no data
    target, target_cols, query, extra = _target(stmt, known)
    for t in stmt.find_all(exp.Table):
        name = table_name(t)
        if not name or (target is not None and t is target):
            continue
        if _is_cte_ref(t):
            continue
        out.sources.add(name)
    if target is not None:
        tname = table_name(target)
        out.targets.add(tname)
        if isinstance(stmt, (exp.Update, exp.Delete)):
            out.sources.add(tname)  # UPDATE and DELETE read the rows they change
    if isinstance(stmt, exp.Merge):
        _merge(stmt, dialect, known, out)
        return
    if query is None:
        return
    if isinstance(stmt, exp.Update):
        _update(stmt, dialect, known, out, target)
        return
    edges, outputs = _query_lineage(query, dialect, known)
    if target is None:
        return
    tname = table_name(target)
    names_ = target_cols or outputs
    if isinstance(stmt, exp.Create) and tname not in known:
        known[tname] = list(names_)
    for src, out_index, kind, subtype in edges:
        targets = range(len(names_)) if out_index is None else [out_index]
        for i in targets:
            if i < len(names_):
                out.columns.add(ColumnEdge(src, f"{tname}.{names_[i]}", kind, subtype))
    del extra


def _is_cte_ref(t: exp.Table) -> bool:
    if t.args.get("db") or t.args.get("catalog"):
        return False
    name = t.name
    node = t.parent
    while node is not None:
        with_ = (node.args.get("with_") or node.args.get("with")) if isinstance(node, exp.Expression) else None
        if with_ is not None and any(cte.alias_or_name == name for cte in with_.expressions):
            return True
        node = node.parent
    return False


def _target(stmt: exp.Expression, known: dict[str, list[str]]) -> tuple[exp.Table | None, list[str] | None, exp.Expression | None, object]:
    """The written table, its explicit column list, and the query that feeds it."""
    if isinstance(stmt, exp.Insert):
        this = stmt.this
        cols = None
        if isinstance(this, exp.Schema):
            cols = [c.name.lower() for c in this.expressions]
            this = this.this
        table = this if isinstance(this, exp.Table) else None
        if cols is None and table is not None:
            cols = known.get(table_name(table))
        return table, cols, _with_ctes(stmt, stmt.expression), None
    if isinstance(stmt, exp.Create):
        this = stmt.this
        cols = None
        if isinstance(this, exp.Schema):
            cols = [c.name.lower() for c in this.expressions if isinstance(c, (exp.ColumnDef, exp.Identifier))] or None
            this = this.this
        table = this if isinstance(this, exp.Table) else None
        query = _with_ctes(stmt, stmt.expression) if isinstance(stmt.expression, exp.Query) else None
        return table, cols, query, None
    if isinstance(stmt, exp.Merge):
        return stmt.this if isinstance(stmt.this, exp.Table) else None, None, None, None
    if isinstance(stmt, exp.Update):
        return stmt.this if isinstance(stmt.this, exp.Table) else None, None, stmt, None
    if isinstance(stmt, exp.Delete):
        return stmt.this if isinstance(stmt.this, exp.Table) else None, None, None, None
    if isinstance(stmt, exp.Query):
        return None, None, stmt, None
    return None, None, None, None


def _with_ctes(stmt: exp.Expression, query: exp.Expression | None) -> exp.Expression | None:
    """`WITH c AS (...) INSERT INTO t SELECT ... FROM c`: give the query its statement's CTEs."""
    ctes = stmt.args.get("with_") or stmt.args.get("with")
    if query is None or ctes is None or not isinstance(query, exp.Query):
        return query
    query = query.copy()
    own = query.args.get("with_") or query.args.get("with")
    if own is None:
        query.set("with_" if "with_" in query.arg_types else "with", ctes.copy())
    return query


def _qualified(query: exp.Expression, dialect: str, known: dict[str, list[str]]) -> exp.Expression:
    # In place: the statement was parsed for this call and its tables are already collected.
    return qualify(
        query, schema=_nested_schema(_uniform_depth(known)) or None, dialect=dialect,
        validate_qualify_columns=False, quote_identifiers=False, identify=False, isolate_tables=False,
    )


# Each edge: (physical "table.column", output index or None for every output, kind, subtype)
Edge = tuple[str, int | None, str, str]


def _query_lineage(query: exp.Expression, dialect: str, known: dict[str, list[str]]) -> tuple[list[Edge], list[str]]:
    q = _qualified(query, dialect, known)
    root = build_scope(q)
    if root is None:
        return [], []
    outputs = [_out_name(p, i) for i, p in enumerate(_projections(root))]
    edges: list[Edge] = []
    for i, _name in enumerate(outputs):
        for src, kind, subtype in _trace_output(root, i, set()):
            edges.append((src, i, kind, subtype))
    for src, subtype in _indirect(root, set()):
        edges.append((src, None, "INDIRECT", subtype))
    return edges, outputs


def _out_name(p: exp.Expression, i: int) -> str:
    name = p.alias_or_name
    return name.lower() if name and not name.startswith("_col_") else (name or f"_col_{i}")


def _projections(scope: Scope) -> list[exp.Expression]:
    e = scope.expression
    if isinstance(e, exp.SetOperation):
        left = scope.union_scopes[0] if scope.union_scopes else None
        return _projections(left) if left is not None else []
    if isinstance(e, exp.Select):
        return list(e.expressions)
    return []


def _trace_output(scope: Scope, index: int, seen: set[tuple[int, int]]) -> list[tuple[str, str, str]]:
    """Physical columns that flow into output `index` of `scope`, with the edge kind."""
    key = (id(scope), index)
    if key in seen:
        return []  # a recursive CTE refers to itself: its base branch already answered
    seen = seen | {key}
    e = scope.expression
    if isinstance(e, exp.SetOperation):
        out = []
        for branch in scope.union_scopes:
            out += _trace_output(branch, index, seen)
        return out
    if not isinstance(e, exp.Select) or index >= len(e.expressions):
        return []
    proj = e.expressions[index]
    value = proj.this if isinstance(proj, exp.Alias) else proj
    return _trace_expression(scope, value, seen)


_NAVIGATION = (exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.NthValue)


def _value_subtype(value: exp.Expression) -> str:
    if isinstance(value, exp.Column):
        return "IDENTITY"
    # LAG, LEAD, FIRST_VALUE ... pick one row's value: a transformation, not an aggregation.
    if any(not isinstance(a, _NAVIGATION) for a in value.find_all(exp.AggFunc)):
        return "AGGREGATION"
    return "TRANSFORMATION"


def _trace_expression(scope: Scope, value: exp.Expression, seen: set[tuple[int, int]]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    subtype = _value_subtype(value)
    conditional: set[int] = set()
    for case in value.find_all(exp.Case):
        for if_ in case.args.get("ifs") or []:
            for c in if_.this.find_all(exp.Column):
                conditional.add(id(c))
        if case.this is not None:  # CASE x WHEN ...
            for c in case.this.find_all(exp.Column):
                conditional.add(id(c))
    windowed: set[int] = set()
    for w in value.find_all(exp.Window):
        for part in (w.args.get("partition_by") or []) + ([w.args["order"]] if w.args.get("order") else []):
            for c in part.find_all(exp.Column):
                windowed.add(id(c))
    for col in value.find_all(exp.Column):
        if id(col) in conditional:
            out += [(s, "INDIRECT", "CONDITIONAL") for s, _k, _t in _resolve(scope, col, seen)]
        elif id(col) in windowed:
            out += [(s, "INDIRECT", "WINDOW") for s, _k, _t in _resolve(scope, col, seen)]
        else:
            for s, k, t in _resolve(scope, col, seen):
                # Through a derived table, the strongest step wins: aggregation over identity is aggregation.
                step = subtype if t == "IDENTITY" else (t if subtype == "IDENTITY" else _stronger(subtype, t))
                out.append((s, k, step if k == "DIRECT" else t))
    for sub in value.find_all(exp.Subquery, exp.Select):
        if sub is value:
            continue
        inner = _subquery_scope(scope, sub)
        if inner is not None:
            out += [(s, k, "TRANSFORMATION" if k == "DIRECT" else t) for s, k, t in _trace_output(inner, 0, seen)]
    return out


def _stronger(a: str, b: str) -> str:
    order = ["IDENTITY", "TRANSFORMATION", "AGGREGATION"]
    return max(a, b, key=lambda x: order.index(x) if x in order else 0)


def _subquery_scope(scope: Scope, node: exp.Expression) -> Scope | None:
    target = node.this if isinstance(node, exp.Subquery) else node
    for child in scope.subquery_scopes:
        if child.expression is target:
            return child
    return None


def _resolve(scope: Scope, col: exp.Column, seen: set[tuple[int, int]]) -> list[tuple[str, str, str]]:
    """A qualified column to the physical columns behind it."""
    alias = col.table
    source = scope.sources.get(alias) if alias else None
    if source is None and alias and scope.parent is not None and alias not in scope.sources:
        return _resolve(scope.parent, col, seen)  # a correlated reference to the outer query
    if source is None and not alias:
        # Unqualified after qualification: a lateral alias or an unknown column; take a single source.
        if len(scope.sources) == 1:
            source = next(iter(scope.sources.values()))
        else:
            return []
    if isinstance(source, exp.Table):
        return [(f"{table_name(source)}.{col.name.lower()}", "DIRECT", "IDENTITY")]
    if isinstance(source, Scope):
        inner = source.expression
        if isinstance(inner, exp.Lateral):  # LATERAL VIEW EXPLODE(t.arr) v AS x
            out = []
            for c in inner.this.find_all(exp.Column):
                out += [(s, k, "TRANSFORMATION") for s, k, _t in _resolve(source, c, seen) or _resolve(scope, c, seen)]
            return out
        names_ = [_out_name(p, i) for i, p in enumerate(_projections(source))]
        wanted = col.name.lower()
        if wanted in names_:
            return _trace_output(source, names_.index(wanted), seen)
    return []


def _indirect(scope: Scope, seen: set[int]) -> list[tuple[str, str]]:
    """Columns that decide which rows (join, filter, group by) or their order, in this query and
    every query feeding it."""
    if id(scope) in seen:
        return []
    seen.add(id(scope))
    out: list[tuple[str, str]] = []
    e = scope.expression
    if isinstance(e, exp.Select):
        parts: list[tuple[exp.Expression | None, str]] = [(e.args.get("where"), "FILTER"), (e.args.get("having"), "FILTER"),
                                                          (e.args.get("group"), "GROUP_BY"), (e.args.get("order"), "SORT"),
                                                          (e.args.get("qualify"), "FILTER")]
        for j in e.args.get("joins") or []:
            parts.append((j.args.get("on"), "JOIN"))
            for u in j.args.get("using") or []:
                parts.append((u, "JOIN"))
        for node, subtype in parts:
            if node is None:
                continue
            for col in node.find_all(exp.Column):
                if _in_nested_select(col, node):
                    continue
                out += [(s, subtype) for s, _k, _t in _resolve(scope, col, set())]
            for sub in node.find_all(exp.Select):
                inner = _subquery_scope(scope, sub)
                if inner is not None:
                    out += [(s, subtype) for s, _k, _t in _trace_output(inner, 0, set())]
                    out += [(s, subtype) for s, _t in _indirect(inner, seen)]
    children: Iterable[Scope] = list(scope.union_scopes) + [s for s in scope.sources.values() if isinstance(s, Scope)]
    for child in children:
        out += _indirect(child, seen)
    return out


def _in_nested_select(col: exp.Column, top: exp.Expression) -> bool:
    node = col.parent
    while node is not None and node is not top:
        if isinstance(node, exp.Select):
            return True
        node = node.parent
    return False


def _merge(stmt: exp.Merge, dialect: str, known: dict[str, list[str]], out: SqlLineage) -> None:
    """MERGE INTO t USING s ON cond WHEN MATCHED THEN UPDATE SET c = expr WHEN NOT MATCHED THEN INSERT (cols) VALUES (exprs)."""
    target = stmt.this
    tname = table_name(target)
    talias = target.alias_or_name.lower()
    using = stmt.args.get("using")
    src_name, src_alias, src_query = None, None, None
    if isinstance(using, exp.Table):
        src_name, src_alias = table_name(using), using.alias_or_name.lower()
    elif isinstance(using, exp.Subquery):
        src_alias, src_query = using.alias_or_name.lower(), using.this
    sub_edges: dict[str, list[tuple[str, str, str]]] = {}
    if src_query is not None:
        edges, outputs = _query_lineage(src_query, dialect, known)
        for s, i, k, t in edges:
            for j in range(len(outputs)) if i is None else [i]:
                sub_edges.setdefault(outputs[j], []).append((s, k, t))

    def phys(col: exp.Column) -> list[tuple[str, str, str]]:
        alias = col.table.lower()
        name = col.name.lower()
        if alias == talias or (not alias and src_alias is None):
            return [(f"{tname}.{name}", "DIRECT", "IDENTITY")]
        if alias == src_alias or not alias:
            if src_name:
                return [(f"{src_name}.{name}", "DIRECT", "IDENTITY")]
            return sub_edges.get(name, [])
        return []

    on_cols = [c for c in (stmt.args.get("on") or exp.true()).find_all(exp.Column)]
    written: set[str] = set()

    def assign(col: str, value: exp.Expression, cond: exp.Expression | None) -> None:
        """Edges into target column `col` from the value written and from the WHEN condition."""
        written.add(col)
        subtype = _value_subtype(value)
        for c in value.find_all(exp.Column):
            for s, k, t in phys(c):
                out.columns.add(ColumnEdge(s, f"{tname}.{col}", k, subtype if t == "IDENTITY" else t))
        for c in (cond.find_all(exp.Column) if cond else []):
            for s, _k, _t in phys(c):
                out.columns.add(ColumnEdge(s, f"{tname}.{col}", "INDIRECT", "CONDITIONAL"))

    for when in (stmt.args.get("whens") or exp.Whens()).expressions if stmt.args.get("whens") else stmt.expressions:
        then = when.args.get("then")
        cond = when.args.get("condition")
        if isinstance(then, exp.Update):
            assignments = then.expressions
            if not assignments or any(isinstance(x, exp.Star) for x in assignments):  # UPDATE SET *
                assignments = [exp.EQ(this=exp.column(c), expression=exp.column(c, src_alias)) for c in known.get(tname, [])]
            for eq in assignments:
                assign(eq.this.name.lower(), eq.expression, cond)
        elif isinstance(then, exp.Insert):
            cols_node, vals_node = then.this, then.expression
            cols = [c.name.lower() for c in (cols_node.expressions if isinstance(cols_node, exp.Tuple) else [cols_node] if cols_node else [])]
            vals = list(vals_node.expressions) if isinstance(vals_node, exp.Tuple) else ([vals_node] if vals_node else [])
            if isinstance(cols_node, exp.Star) or (not cols and then.args.get("expression") is None):  # INSERT *
                cols = known.get(tname) or []
                vals = [exp.column(c, src_alias) for c in cols]
            for col, value in zip(cols, vals):
                assign(col, value, cond)
    for col in written:
        for c in on_cols:
            for s, _k, _t in phys(c):
                if not s.startswith(tname + "."):  # the target's own key columns only locate rows
                    out.columns.add(ColumnEdge(s, f"{tname}.{col}", "INDIRECT", "JOIN"))


def _update(stmt: exp.Update, dialect: str, known: dict[str, list[str]], out: SqlLineage, target: exp.Table | None) -> None:
    if target is None:
        return
    tname = table_name(target)
    aliases = {target.alias_or_name.lower(): tname}
    from_ = stmt.args.get("from")
    if from_ is not None:
        for t in from_.find_all(exp.Table):
            aliases[t.alias_or_name.lower()] = table_name(t)

    def phys(col: exp.Column) -> str | None:
        alias = col.table.lower()
        if not alias:
            return f"{tname}.{col.name.lower()}"
        return f"{aliases[alias]}.{col.name.lower()}" if alias in aliases else None

    where = stmt.args.get("where")
    for eq in stmt.expressions:
        col = eq.this.name.lower()
        value = eq.expression
        subtype = _value_subtype(value)
        for c in value.find_all(exp.Column):
            src = phys(c)
            if src:
                out.columns.add(ColumnEdge(src, f"{tname}.{col}", "DIRECT", subtype))
        for c in (where.find_all(exp.Column) if where is not None else []):
            src = phys(c)
            if src:
                out.columns.add(ColumnEdge(src, f"{tname}.{col}", "INDIRECT", "FILTER"))
