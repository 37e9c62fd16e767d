"""A script's lineage from its statements' lineage.

Tables and views that outlive the script are datasets in their own right: a table created by one
statement and read by the next is both a target and a source. What lives only for the session (a
temporary view or table, T-SQL's #table, Spark's CACHE TABLE) or is dropped before the script ends is
an intermediate: once a later statement reads it, lineage runs through it, from what fed it to what it
feeds, and it is listed neither as a source nor as a target.

    >>> from lineage.sql.model import ColumnEdge as E
    >>> first = Step(reads={"raw"}, writes={"v"}, temporary={"v"}, edges={E("raw.a", "v.x", "DIRECT", "IDENTITY")})
    >>> second = Step(reads={"v"}, writes={"out"}, edges={E("v.x", "out.y", "DIRECT", "AGGREGATION")})
    >>> lin = fold([first, second])
    >>> sorted(lin.sources), sorted(lin.targets), sorted(lin.columns)
    (['raw'], ['out'], [ColumnEdge(source='raw.a', target='out.y', kind='DIRECT', subtype='AGGREGATION')])
"""

from __future__ import annotations

from collections.abc import Sequence

from lineage.sql.model import ColumnEdge, SqlLineage, Step, compose

Via = tuple[str, str, str]  # (source column, kind, subtype) into an intermediate's column


def intermediates(steps: Sequence[Step]) -> set[str]:
    """Session-only objects read after they are written, and objects dropped after they are written."""
    out: set[str] = set()
    written: set[str] = set()
    temporary: set[str] = set()
    for s in steps:
        out |= (s.reads & written & temporary) | (s.dropped & written)
        written |= s.writes
        temporary |= s.temporary | {w for w in s.writes if w.startswith(("#", "@"))}  # T-SQL #tables, @table variables
    return out


def fold(steps: Sequence[Step]) -> SqlLineage:
    through = intermediates(steps)
    lin = SqlLineage()
    defs: dict[str, dict[str, set[Via]]] = {}
    for s in steps:
        lin.sources |= s.reads - through
        lin.targets |= s.writes - through
        for e in s.edges:
            for src, target, kind, subtype in _substitute(e, through, defs):
                table, _, column = target.rpartition(".")
                if table in through:
                    defs.setdefault(table, {}).setdefault(column, set()).add((src, kind, subtype))
                else:
                    lin.columns.add(ColumnEdge(src, target, kind, subtype))
    return lin


def _substitute(e: ColumnEdge, through: set[str], defs: dict[str, dict[str, set[Via]]]) -> list[tuple[str, str, str, str]]:
    """`e` as (source, target, kind, subtype); when its source is an intermediate's column, one edge
    from each column that fed it."""
    table, _, column = e.source.rpartition(".")
    if table not in through:
        return [(e.source, e.target, e.kind, e.subtype)]
    fed = defs.get(table, {})
    out = []
    if column == "*":  # every column of the intermediate: each keeps its name in the target
        target_table, _, target_col = e.target.rpartition(".")
        for col, vias in fed.items():
            target = f"{target_table}.{col}" if target_col == "*" else e.target
            for src, kind, subtype in vias:
                out.append((src, target, *compose((kind, subtype), (e.kind, e.subtype))))
        return out
    for src, kind, subtype in fed.get(column, ()):
        out.append((src, e.target, *compose((kind, subtype), (e.kind, e.subtype))))
    for src, kind, subtype in fed.get("*", ()):  # the column came through a `*` of unknown columns
        src_table, _, src_col = src.rpartition(".")
        out.append((f"{src_table}.{column}" if src_col == "*" else src, e.target, *compose((kind, subtype), (e.kind, e.subtype))))
    return out
