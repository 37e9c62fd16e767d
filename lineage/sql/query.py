"""Column lineage of one query: which physical columns reach each output, and how.

Qualify the query against the schema (expanding `*` where the columns are known), then walk sqlglot's
scopes from each output down to physical columns. An edge is DIRECT when the value flows (identity,
transformation, aggregation) and INDIRECT when a column only decides which rows or in what order
(join, filter, group by, sort, window, conditional); INDIRECT columns of a query feed every one of its
outputs, as in OpenLineage's column lineage facet. A `*` whose columns nobody knows stays one output
named `*`, fed by `table.*`.

    >>> import sqlglot
    >>> edges, outputs = query_lineage(sqlglot.parse_one("SELECT max(a), a + b FROM t"), "", {})
    >>> outputs
    ['max(a)', 'a + b']
    >>> sorted(edges)
    [('t.a', 0, 'DIRECT', 'AGGREGATION'), ('t.a', 1, 'DIRECT', 'TRANSFORMATION'), ('t.b', 1, 'DIRECT', 'TRANSFORMATION')]
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.optimizer.qualify_columns import qualify_columns
from sqlglot.optimizer.qualify_tables import qualify_tables
from sqlglot.optimizer.scope import Scope, build_scope
from sqlglot.schema import Schema, ensure_schema

from lineage.sql.model import stronger
from lineage.sql.names import table_name

# Each edge: (physical "table.column", output index or None for every output, kind, subtype)
Edge = tuple[str, int | None, str, str]
Trace = tuple[str, str, str]  # (physical column, kind, subtype)

_NAVIGATION = (exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.NthValue)
_PAD = "_cairn_"


def nested_schema(known: Mapping[str, Sequence[str]]) -> dict:  # type: ignore[type-arg]
    """sqlglot's nested schema. It wants every table at one depth, so shallower names are padded with
    placeholder parts (a table named `v` is still found as `v`: sqlglot matches name suffixes)."""
    if not known:
        return {}
    depth = max(k.count(".") for k in known) + 1
    nested: dict = {}  # type: ignore[type-arg]
    for name, cols in known.items():
        parts = name.split(".")
        parts = [f"{_PAD}{i}" for i in range(depth - len(parts))] + parts
        node = nested
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = {c: "string" for c in cols}
    return nested


def label_outputs(query: exp.Expression, dialect: str) -> None:
    """Give each unnamed output expression of `query` (in place) the name its text says: `max(c1)`,
    `c1 + c2`; table qualifiers are left out so the name holds no dot."""
    select = query
    while isinstance(select, (exp.SetOperation, exp.Subquery)):
        select = select.this if isinstance(select, exp.Subquery) else select.left
    if not isinstance(select, exp.Select):
        return
    for p in list(select.expressions):
        if not isinstance(p, (exp.Alias, exp.Column, exp.Star, exp.Dot)):
            p.replace(exp.alias_(p.copy(), _text(p, dialect), quoted=True))


def _text(p: exp.Expression, dialect: str) -> str:
    bare = p.copy()
    for col in bare.find_all(exp.Column):
        for part in ("table", "db", "catalog"):
            col.set(part, None)
    for ident in bare.find_all(exp.Identifier):
        if not ident.quoted:
            ident.set("this", ident.this.lower())
    return bare.sql(dialect=dialect, normalize_functions="lower").replace(".", "_")


def _out_name(p: exp.Expression) -> str:
    if _is_star(p):
        return "*"
    if isinstance(p, exp.Alias):
        if isinstance(p.this, exp.Column) and p.this.name == p.alias:
            return _ident(p.this.this)  # the alias qualify added keeps the column's quoting
        return _ident(p.args["alias"])
    if isinstance(p, exp.Column):
        return _ident(p.this)
    return p.alias_or_name.lower()


def _ident(node: exp.Expression) -> str:
    return node.name if isinstance(node, exp.Identifier) and node.quoted else node.name.lower()


class Known(dict):  # type: ignore[type-arg]
    """Tables' columns, as {name: [columns]}; sqlglot's schema of them is built once until a table is added."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._schemas: dict[str, Schema] = {}

    def __setitem__(self, key: str, value: list[str]) -> None:
        self._schemas.clear()
        super().__setitem__(key, value)

    def schema(self, dialect: str) -> Schema:
        if not self:
            return _empty_schema(dialect)
        if dialect not in self._schemas:
            self._schemas[dialect] = ensure_schema(nested_schema(self), dialect=dialect or None)
        return self._schemas[dialect]


@functools.cache
def dialect_of(name: str) -> Dialect:
    """sqlglot's dialect settings, made once per name (get_or_raise builds a new one on every call)."""
    return Dialect.get_or_raise(name or None)


@functools.cache
def _empty_schema(dialect: str) -> Schema:
    """No table known: the same empty schema does for every statement of a dialect (sqlglot only reads it)."""
    return ensure_schema(None, dialect=dialect or None)


def qualified(query: exp.Expression, dialect: str, known: Mapping[str, Sequence[str]]) -> exp.Expression:
    """Columns qualified by their source's alias, `*` expanded where the columns are known. In place: the
    statement was parsed for this call and its tables are already collected.

    One walk normalizes identifiers (as sqlglot's normalize_identifiers, without its bookkeeping), marks
    the tables whose columns are known, and sees the query's shape: a lone SELECT from one table needs
    nothing more (resolve() gives its columns their only source); table aliases are added only for the
    shapes that need them."""
    d = dialect_of(dialect)
    selects = tables = 0
    aliases_needed = complex_ = star = False
    unqualified: set[str] = set()
    for node in query.walk():
        if isinstance(node, exp.Identifier):
            d.normalize_identifier(node)
        elif isinstance(node, exp.Column):
            if node.args.get("db"):
                aliases_needed = True
            if isinstance(node.this, exp.Star):
                star = True
            elif not node.table:
                unqualified.add(node.name)
        elif isinstance(node, exp.Table):
            tables += 1
            if table_name(node) in known:
                node.meta["cairn_known"] = True  # resolve() infers only between tables whose columns are unknown
            if not isinstance(node.this, exp.Identifier):
                aliases_needed = True
        elif isinstance(node, exp.Select):
            selects += 1
        elif isinstance(node, exp.Star):
            star = True
        elif isinstance(node, (exp.Values, exp.Pivot, exp.Unnest, exp.Lateral)):
            aliases_needed = True
        elif isinstance(node, (exp.Join, exp.With, exp.SetOperation, exp.Subquery)):
            complex_ = True
            if isinstance(node, exp.Subquery) and isinstance(node.this, exp.Table):
                aliases_needed = True
    if (isinstance(query, exp.Select) and selects == 1 and tables == 1 and not complex_ and not aliases_needed
            and not (star and known) and not _refers_to_outputs(query, unqualified)):
        return query
    if aliases_needed:
        query = qualify_tables(query, dialect=d)
    schema = known.schema(dialect) if isinstance(known, Known) else ensure_schema(nested_schema(known) or None, dialect=dialect or None)
    # sqlglot's own inference (infer_schema) qualifies a correlated subquery's columns with the outer
    # table (MAX(x) -> MAX(t.s.x)); resolve() infers instead.
    return qualify_columns(query, schema, infer_schema=False)


def _refers_to_outputs(select: exp.Select, unqualified: set[str]) -> bool:
    """A column named like an output alias (SELECT a + 1 AS b, b * 2 ... GROUP BY b ORDER BY b), or
    GROUP BY 1 / ORDER BY 1: sqlglot's qualify_columns expands those."""
    if any(isinstance(p, exp.Alias) and p.alias in unqualified for p in select.expressions):
        return True
    group, order = select.args.get("group"), select.args.get("order")
    keys = list(group.expressions if group else []) + [o.this for o in (order.expressions if order else [])]
    return any(isinstance(k, exp.Literal) for k in keys)


def query_lineage(query: exp.Expression, dialect: str, known: Mapping[str, Sequence[str]]) -> tuple[list[Edge], list[str]]:
    """Edges into each output of `query`, and the outputs' names."""
    label_outputs(query, dialect)
    q = qualified(query, dialect, known)
    root = build_scope(q)
    if root is None:
        return [], []
    projections = projections_of(root)
    names = [_out_name(p) for p in projections]
    edges: list[Edge] = []
    for i in range(len(projections)):
        for src, kind, subtype in trace_output(root, i, frozenset()):
            edges.append((src, i, kind, subtype))
    for src, subtype in indirect(root, set()):
        edges.append((src, None, "INDIRECT", subtype))
    return edges, names


def projections_of(scope: Scope) -> list[exp.Expression]:
    e = scope.expression
    if isinstance(e, exp.SetOperation):
        left = scope.union_scopes[0] if scope.union_scopes else None
        return projections_of(left) if left is not None else []
    if isinstance(e, exp.Select):
        return list(e.expressions)
    return []


def _scope_names(scope: Scope) -> list[str]:
    return [_out_name(p) for p in projections_of(scope)]


def _is_star(p: exp.Expression) -> bool:
    return isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))


def trace_output(scope: Scope, index: int, seen: frozenset[tuple[int, int]]) -> list[Trace]:
    """Physical columns that flow into output `index` of `scope`, with the edge kind."""
    key = (id(scope), index)
    if key in seen:
        return []  # a recursive CTE refers to itself: its base branch already answered
    seen = seen | {key}
    e = scope.expression
    if isinstance(e, exp.SetOperation):
        out: list[Trace] = []
        for branch in scope.union_scopes:
            out += trace_output(branch, index, seen)
        return out
    if not isinstance(e, exp.Select) or index >= len(e.expressions):
        return []
    proj = e.expressions[index]
    if _is_star(proj):
        return _trace_star(scope, proj, seen)
    value = proj.this if isinstance(proj, exp.Alias) else proj
    return trace_expression(scope, value, seen)


def _star_sources(scope: Scope, star: exp.Expression) -> list[object]:
    qualifier = star.table if isinstance(star, exp.Column) else ""
    if qualifier:
        source = scope.sources.get(qualifier)
        return [source] if source is not None else []
    return [s for name, s in scope.sources.items() if name in scope.selected_sources or not scope.selected_sources]


def _trace_star(scope: Scope, star: exp.Expression, seen: frozenset[tuple[int, int]]) -> list[Trace]:
    """`*` whose columns are unknown: every column of each source flows, `table.*`."""
    out: list[Trace] = []
    for source in _star_sources(scope, star):
        if isinstance(source, exp.Table):
            out.append((f"{table_name(source)}.*", "DIRECT", "IDENTITY"))
        elif isinstance(source, Scope) and not isinstance(source.expression, (exp.Lateral, exp.Unnest)):
            for i in range(len(projections_of(source))):
                out += trace_output(source, i, seen)
    return out


def _value_subtype(value: exp.Expression) -> str:
    if isinstance(value, exp.Column):
        return "IDENTITY"
    # LAG, LEAD, FIRST_VALUE ... pick one row's value: a transformation, not an aggregation.
    if any(not isinstance(a, _NAVIGATION) for a in value.find_all(exp.AggFunc)):
        return "AGGREGATION"
    return "TRANSFORMATION"


def value_subtype(value: exp.Expression) -> str:
    return _value_subtype(value)


def trace_expression(scope: Scope, value: exp.Expression, seen: frozenset[tuple[int, int]]) -> list[Trace]:
    out: list[Trace] = []
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
        if isinstance(col.this, exp.Star) or _in_nested_select(col, value):
            continue  # a subquery's columns are traced through its own scope below
        if id(col) in conditional:
            out += [(s, "INDIRECT", "CONDITIONAL") for s, _k, _t in resolve(scope, col, seen)]
        elif id(col) in windowed:
            out += [(s, "INDIRECT", "WINDOW") for s, _k, _t in resolve(scope, col, seen)]
        else:
            for s, k, t in resolve(scope, col, seen):
                # Through a derived table, the strongest step wins: aggregation over identity is aggregation.
                out.append((s, k, stronger(subtype, t) if k == "DIRECT" else t))
    for sub in value.find_all(exp.Subquery, exp.Select):
        if sub is value:
            continue
        inner = _subquery_scope(scope, sub)
        if inner is not None:
            out += [(s, k, "TRANSFORMATION" if k == "DIRECT" else t) for s, k, t in trace_output(inner, 0, seen)]
            out += [(s, "INDIRECT", t) for s, t in indirect(inner, set())]  # which rows the scalar subquery reads
    return out


def _subquery_scope(scope: Scope, node: exp.Expression) -> Scope | None:
    target = node.this if isinstance(node, exp.Subquery) else node
    for child in scope.subquery_scopes:
        if child.expression is target:
            return child
    return None


def resolve(scope: Scope, col: exp.Column, seen: frozenset[tuple[int, int]]) -> list[Trace]:
    """A qualified column to the physical columns behind it."""
    alias = col.table
    source = scope.sources.get(alias) if alias else None
    if source is None and alias and scope.parent is not None and alias not in scope.sources:
        return resolve(scope.parent, col, seen)  # a correlated reference to the outer query
    if source is None and alias and not col.args.get("db") and not _names_source(scope, alias):
        # info.city where no source is called info: the field city of the struct column info.
        return [(s, k, "TRANSFORMATION") for s, k, _t in resolve(scope, exp.column(col.args["table"].copy()), seen)]
    if source is None and not alias:
        # Left unqualified: no known columns name it. With one source it is that source's; otherwise it is
        # the one source whose columns are unknown, if there is exactly one (valid SQL would be ambiguous
        # otherwise). Between several tables without metadata it is not guessed.
        candidates = list(scope.sources.values())
        if len(candidates) > 1:
            candidates = [s for s in candidates if _columns_unknown(s)]
        if len(candidates) != 1:
            return []
        source = candidates[0]
    return _from_source(scope, source, col, seen)


def _names_source(scope: Scope, alias: str) -> bool:
    node: Scope | None = scope
    while node is not None:
        if alias in node.sources:
            return True
        node = node.parent
    return False


def _columns_unknown(source: object) -> bool:
    if isinstance(source, exp.Table):
        return not source.meta.get("cairn_known")
    if isinstance(source, Scope) and isinstance(source.expression, (exp.Select, exp.SetOperation)):
        return any(_is_star(p) for p in projections_of(source))
    return False


def _from_source(scope: Scope, source: object, col: exp.Column, seen: frozenset[tuple[int, int]]) -> list[Trace]:
    if isinstance(source, exp.Table):
        return [(f"{table_name(source)}.{_ident(col.this)}", "DIRECT", "IDENTITY")]
    if isinstance(source, Scope):
        inner = source.expression
        if isinstance(inner, exp.Lateral):  # LATERAL VIEW EXPLODE(t.arr) v AS x
            out: list[Trace] = []
            for c in inner.this.find_all(exp.Column):
                out += [(s, k, "TRANSFORMATION") for s, k, _t in resolve(source, c, seen) or resolve(scope, c, seen)]
            return out
        names = _scope_names(source)
        wanted = _ident(col.this)
        if wanted in names:
            return trace_output(source, names.index(wanted), seen)
        stars = [p for p in projections_of(source) if _is_star(p)]
        if len(stars) == 1:  # the column came through a `*` of unknown columns: from its only source
            candidates = _star_sources(source, stars[0])
            if len(candidates) == 1:
                return _from_source(source, candidates[0], exp.column(col.this.copy()), seen)
    return []


def indirect(scope: Scope, seen: set[int]) -> list[tuple[str, str]]:
    """Columns that decide which rows (join, filter, group by) or their order, in this query and
    every query feeding it."""
    if id(scope) in seen:
        return []
    seen.add(id(scope))
    out: list[tuple[str, str]] = []
    e = scope.expression
    if isinstance(e, exp.Select):
        parts: list[tuple[exp.Expression | None, str]] = [
            (e.args.get("where"), "FILTER"), (e.args.get("having"), "FILTER"), (e.args.get("group"), "GROUP_BY"),
            (e.args.get("order"), "SORT"), (e.args.get("qualify"), "FILTER")]
        for j in e.args.get("joins") or []:
            parts.append((j.args.get("on"), "JOIN"))
            for u in j.args.get("using") or []:
                parts.append((u, "JOIN"))
        for node, subtype in parts:
            if node is None:
                continue
            outputs = {_out_name(p): i for i, p in enumerate(e.expressions) if isinstance(p, exp.Alias)} if subtype == "SORT" else {}
            for col in node.find_all(exp.Column):
                if _in_nested_select(col, node):
                    continue
                if not col.table and _ident(col.this) in outputs:  # ORDER BY an output's alias: that output
                    out += [(s, subtype) for s, _k, _t in trace_output(scope, outputs[_ident(col.this)], frozenset())]
                    continue
                out += [(s, subtype) for s, _k, _t in resolve(scope, col, frozenset())]
            for sub in node.find_all(exp.Select):
                inner = _subquery_scope(scope, sub)
                if inner is not None:
                    out += [(s, subtype) for s, _k, _t in trace_output(inner, 0, frozenset())]
                    out += [(s, subtype) for s, _t in indirect(inner, seen)]
    children: Iterable[Scope] = list(scope.union_scopes) + [s for s in scope.sources.values() if isinstance(s, Scope)]
    for child in children:
        out += indirect(child, seen)
    return out


def _in_nested_select(col: exp.Column, top: exp.Expression) -> bool:
    if col is top:
        return False
    node = col.parent
    while node is not None and node is not top:
        if isinstance(node, exp.Select):
            return True
        node = node.parent
    return False
