"""What extraction hands back: column edges, errors that point at a line and column, and lineage."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, order=True)
class ColumnEdge:
    source: str  # "table.column", the table as qualified in the SQL (or a file path); "*" when the columns are unknown
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


@dataclass
class Step:
    """One statement's lineage, before the script folds its session-only objects away."""

    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    edges: set[ColumnEdge] = field(default_factory=set)
    temporary: set[str] = field(default_factory=set)  # objects it creates that live only for the session
    dropped: set[str] = field(default_factory=set)


DIRECT_ORDER = ("IDENTITY", "TRANSFORMATION", "AGGREGATION")


def stronger(a: str, b: str) -> str:
    """Of two DIRECT subtypes, the one that changes the value more (aggregation over identity is aggregation)."""
    rank = {s: i for i, s in enumerate(DIRECT_ORDER)}
    return a if rank.get(a, 0) >= rank.get(b, 0) else b


def compose(first: tuple[str, str], then: tuple[str, str]) -> tuple[str, str]:
    """Kind and subtype of x -> z made of x -> y (`first`) and y -> z (`then`).

    >>> compose(("DIRECT", "IDENTITY"), ("DIRECT", "AGGREGATION"))
    ('DIRECT', 'AGGREGATION')
    >>> compose(("INDIRECT", "FILTER"), ("DIRECT", "IDENTITY"))
    ('INDIRECT', 'FILTER')
    >>> compose(("DIRECT", "TRANSFORMATION"), ("INDIRECT", "JOIN"))
    ('INDIRECT', 'JOIN')
    """
    (k1, s1), (k2, s2) = first, then
    if k1 == "DIRECT" and k2 == "DIRECT":
        return "DIRECT", stronger(s1, s2)
    return "INDIRECT", s2 if k2 == "INDIRECT" else s1
