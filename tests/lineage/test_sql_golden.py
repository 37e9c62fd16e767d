"""Golden SQL lineage cases: tests/fixtures/lineage/*.sql, expectations written from SQL semantics.

Each case is a block of header comments and one SQL text:
    -- case: name                   (starts a case)
    -- dialect: spark                (default spark)
    -- schema: t=a,b; db.u=x        (tables and their columns)
    -- sources: t, db.u             (exact set; empty when absent)
    -- targets: out                 (exact set)
    -- edge: t.a -> out.a DIRECT [SUBTYPE]   (the column edges, exact set of source/target/kind;
                                             a name may hold spaces: t.c1 -> out.c1 + c2 DIRECT)
    -- error: 1:8                   (extraction reports an error at line 1, column 8; or just "yes")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lineage.sql import extract

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lineage"


@dataclass
class Case:
    name: str
    file: str
    dialect: str | None = None
    schema: dict[str, list[str]] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)
    targets: set[str] = field(default_factory=set)
    edges: set[tuple[str, str, str]] = field(default_factory=set)
    subtypes: dict[tuple[str, str, str], str] = field(default_factory=dict)
    error: str | None = None
    sql: list[str] = field(default_factory=list)


def load_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(FIXTURES.glob("*.sql")):
        current: Case | None = None
        for line in path.read_text().splitlines():
            m = re.match(r"--\s*(\w+):\s*(.*)$", line.strip())
            if m and m.group(1) == "case":
                current = Case(m.group(2).strip(), path.name)
                cases.append(current)
                continue
            if current is None:
                continue
            if m and not current.sql:
                key, value = m.group(1), m.group(2).strip()
                if key == "dialect":
                    current.dialect = value
                elif key == "schema":
                    for part in filter(None, (p.strip() for p in value.split(";"))):
                        table, _, cols = part.partition("=")
                        current.schema[table.strip()] = [c.strip() for c in cols.split(",")]
                elif key == "sources":
                    current.sources = {s.strip() for s in value.split(",") if s.strip()}
                elif key == "targets":
                    current.targets = {s.strip() for s in value.split(",") if s.strip()}
                elif key == "edge":
                    em = re.match(r"(.+?)\s*->\s*(.+?)\s+(DIRECT|INDIRECT)(?:\s+([A-Z_]+))?$", value)
                    assert em, f"{path.name}: bad edge line {value!r}"
                    triple = (em.group(1), em.group(2), em.group(3))
                    current.edges.add(triple)
                    if em.group(4):
                        current.subtypes[triple] = em.group(4)
                elif key == "error":
                    current.error = value
                else:
                    raise AssertionError(f"{path.name}: unknown header {key!r}")
            elif line.strip():
                current.sql.append(line)
    return cases


CASES = load_cases()


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 250
    assert len({c.name for c in CASES}) == len(CASES), "case names repeat"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Case) -> None:
    got = extract("\n".join(case.sql), case.dialect, case.schema)
    if case.error:
        assert got.errors, "expected an error"
        if case.error != "yes":
            line, col = (int(x) for x in case.error.split(":"))
            assert (got.errors[0].line, got.errors[0].col) == (line, col), got.errors
        return
    assert got.errors == []
    assert got.sources == case.sources
    assert got.targets == case.targets
    triples = {(e.source, e.target, e.kind) for e in got.columns}
    assert triples == case.edges
    for triple, subtype in case.subtypes.items():
        assert subtype in {e.subtype for e in got.columns if (e.source, e.target, e.kind) == triple}, triple


def _damaged(sql: str) -> list[str]:
    """The SQL cut short, with a stretch missing, and with an unbalanced bracket, quote or block word."""
    n = len(sql)
    out = [sql[: n // 3], sql[: 2 * n // 3], sql[: n // 2] + sql[n // 2 + 7:]]
    for extra in ("(", ")", "'", '"', "`", "$$", " BEGIN ", " END ", " CASE ", "/*", "["):
        out.append(sql[: n // 2] + extra + sql[n // 2:])
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_damaged_sql_is_reported_never_raised(case: Case) -> None:
    """Whatever is wrong with the SQL, extract() returns; each error says where (line and column)."""
    for sql in _damaged("\n".join(case.sql)):
        got = extract(sql, case.dialect, case.schema)
        for error in got.errors:
            if case.dialect != "cobol":
                assert error.line is not None and error.col is not None, (sql, error)
