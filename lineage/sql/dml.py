"""MERGE and UPDATE: column edges into the columns they set.

UPDATE ... FROM (PostgreSQL, Snowflake, Redshift), T-SQL's `UPDATE alias SET ... FROM t alias JOIN ...`
and MySQL's `UPDATE t JOIN s ON ... SET ...` are read as the SELECT they stand for: the values set, from
the target joined with its sources, filtered by the WHERE. Like MERGE, such an UPDATE takes its data from
the other tables: the target is not listed as its own source (its key columns still show as INDIRECT).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlglot import exp

from lineage.sql.model import ColumnEdge, Step
from lineage.sql.names import table_name
from lineage.sql.query import query_lineage, value_subtype


def _ident(node: exp.Expression) -> str:
    return node.name if isinstance(node, exp.Identifier) and node.quoted else node.name.lower()


def update_target(stmt: exp.Update) -> tuple[exp.Table | None, list[exp.Expression]]:
    """The table an UPDATE writes (T-SQL may name it by an alias of its FROM) and every FROM item and join."""
    target = stmt.this if isinstance(stmt.this, exp.Table) else None
    items: list[exp.Expression] = []
    from_ = stmt.args.get("from_") or stmt.args.get("from")
    if from_ is not None:
        items.append(from_.this)
        items += list(from_.args.get("joins") or [])
        items += list(from_.this.args.get("joins") or [])
    if target is not None:
        items += list(target.args.get("joins") or [])
    if target is not None and not target.args.get("alias"):
        for item in items:
            t = item.this if isinstance(item, exp.Join) else item
            if isinstance(t, exp.Table) and ((t.alias and t.alias == target.name and not target.args.get("db"))
                                             or (not t.alias and table_name(t) == table_name(target))):
                return t, items  # T-SQL: UPDATE a SET ... FROM t a JOIN s ..., or UPDATE t ... FROM t JOIN s ...
    return target, items


def update(stmt: exp.Update, dialect: str, known: Mapping[str, Sequence[str]]) -> Step:
    target, items = update_target(stmt)
    step = Step()
    if target is None:
        return step
    tname = table_name(target)
    step.writes.add(tname)
    in_from = any((i.this if isinstance(i, exp.Join) else i) is target for i in items)
    # The SELECT this UPDATE stands for: SELECT <values> FROM <target> <joins> WHERE <where>; in T-SQL's
    # form the target is already among the FROM items.
    nodes = []
    for item in items:
        node = item.copy()
        if isinstance(node, exp.Table):
            node.set("joins", None)
        nodes.append(node)
    if in_from:
        base, rest = nodes[0], nodes[1:]
    else:
        base, rest = target.copy(), nodes
        base.set("joins", None)
    joins = [n if isinstance(n, exp.Join) else exp.Join(this=n) for n in rest]
    columns = [_ident(eq.this.this) if isinstance(eq.this, exp.Column) else eq.this.name.lower() for eq in stmt.expressions]
    select = exp.Select(expressions=[exp.alias_(eq.expression.copy(), f"_cairn_set_{i}", quoted=True)
                                     for i, eq in enumerate(stmt.expressions)])
    select.set("from_" if "from_" in exp.Select.arg_types else "from", exp.From(this=base))
    if joins:
        select.set("joins", joins)
    if stmt.args.get("where") is not None:
        select.set("where", stmt.args["where"].copy())
    ctes = stmt.args.get("with_") or stmt.args.get("with")
    if ctes is not None:
        select.set("with_" if "with_" in exp.Select.arg_types else "with", ctes.copy())
    for t in select.find_all(exp.Table):
        if t.name and not _is_cte(t, ctes):
            step.reads.add(table_name(t))
    if items:  # UPDATE ... FROM: data comes from the other tables (as in MERGE)
        step.reads.discard(tname)
        for item in items:
            source = item.this if isinstance(item, exp.Join) else item
            if isinstance(source, exp.Table) and source is not target and table_name(source) == tname:
                step.reads.add(tname)  # a self-join reads the target's rows as data
    edges, _outputs = query_lineage(select, dialect, known)
    for src, i, kind, subtype in edges:
        for j in (range(len(columns)) if i is None else [i]):
            if j < len(columns):
                step.edges.add(ColumnEdge(src, f"{tname}.{columns[j]}", kind, subtype))
    return step


def _is_cte(t: exp.Table, ctes: exp.Expression | None) -> bool:
    if t.args.get("db") or t.args.get("catalog"):
        return False
    node: exp.Expression | None = t
    while node is not None:
        w = node.args.get("with_") or node.args.get("with")
        if w is not None and any(c.alias_or_name == t.name for c in w.expressions):
            return True
        node = node.parent
    return ctes is not None and any(c.alias_or_name == t.name for c in ctes.expressions)


def merge(stmt: exp.Merge, dialect: str, known: Mapping[str, Sequence[str]], out: set[ColumnEdge]) -> None:
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
        edges, outputs = query_lineage(src_query.copy(), dialect, known)
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
            if name in sub_edges:
                return sub_edges[name]
            # through a `*` of unknown columns in the USING query: the column of that name
            return [(f"{x.rpartition('.')[0]}.{name}" if x.endswith(".*") else x, k, t) for x, k, t in sub_edges.get("*", [])]
        return []

    on_cols = list((stmt.args.get("on") or exp.true()).find_all(exp.Column))
    written: set[str] = set()

    def assign(col: str, value: exp.Expression, cond: exp.Expression | None) -> None:
        """Edges into target column `col` from the value written and from the WHEN condition."""
        written.add(col)
        subtype = value_subtype(value)
        for c in value.find_all(exp.Column):
            for s, k, t in phys(c):
                out.add(ColumnEdge(s, f"{tname}.{col}", k, subtype if t == "IDENTITY" else t))
        for c in (cond.find_all(exp.Column) if cond else []):
            for s, _k, _t in phys(c):
                out.add(ColumnEdge(s, f"{tname}.{col}", "INDIRECT", "CONDITIONAL"))

    def assign_all(cond: exp.Expression | None) -> None:
        """UPDATE SET * / INSERT * into a target whose columns are unknown: every column of the source."""
        written.add("*")
        for x, k, t in [(f"{src_name}.*", "DIRECT", "IDENTITY")] if src_name else sub_edges.get("*", []):
            out.add(ColumnEdge(x, f"{tname}.*", k, t))
        for c in (cond.find_all(exp.Column) if cond else []):
            for x, _k, _t in phys(c):
                out.add(ColumnEdge(x, f"{tname}.*", "INDIRECT", "CONDITIONAL"))

    whens = stmt.args.get("whens")
    for when in whens.expressions if whens else stmt.expressions:
        then = when.args.get("then")
        cond = when.args.get("condition")
        if isinstance(then, exp.Update):
            assignments = then.expressions
            if not assignments or any(isinstance(x, exp.Star) for x in assignments):  # UPDATE SET *
                if not known.get(tname):
                    assign_all(cond)
                assignments = [exp.EQ(this=exp.column(c), expression=exp.column(c, src_alias)) for c in known.get(tname, [])]
            for eq in assignments:
                assign(eq.this.name.lower(), eq.expression, cond)
        elif isinstance(then, exp.Insert):
            cols_node, vals_node = then.this, then.expression
            cols = [c.name.lower() for c in (cols_node.expressions if isinstance(cols_node, exp.Tuple) else [cols_node] if cols_node else [])]
            vals = list(vals_node.expressions) if isinstance(vals_node, exp.Tuple) else ([vals_node] if vals_node else [])
            if isinstance(cols_node, exp.Star) or (not cols and then.args.get("expression") is None):  # INSERT *
                if not known.get(tname):
                    assign_all(cond)
                cols = list(known.get(tname) or [])
                vals = [exp.column(c, src_alias) for c in cols]
            for col, value in zip(cols, vals):
                assign(col, value, cond)
    for col in written:
        for c in on_cols:
            for s, _k, _t in phys(c):
                if not s.startswith(tname + "."):  # the target's own key columns only locate rows
                    out.add(ColumnEdge(s, f"{tname}.{col}", "INDIRECT", "JOIN"))
