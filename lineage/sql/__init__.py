"""Table and column lineage of SQL statements, built on sqlglot.

    >>> lin = extract("INSERT INTO daily SELECT a, sum(b) AS total FROM db.src GROUP BY a")
    >>> sorted(lin.sources), sorted(lin.targets)
    (['db.src'], ['daily'])
    >>> sorted((e.source, e.target, e.kind, e.subtype) for e in lin.columns)[:2]
    [('db.src.a', 'daily.a', 'DIRECT', 'IDENTITY'), ('db.src.a', 'daily.a', 'INDIRECT', 'GROUP_BY')]

Small steps, each its own module: tokenize once and cut the script into statements, opening
procedure bodies and blocks (`split`); parse each (errors carry line and column); give each statement
its lineage (`statements`, with `dml` for MERGE and UPDATE and `query` for a query's column lineage);
then fold the statements into the script's lineage, running through what lives only for the session
(`script`). An edge is DIRECT when the value flows (identity, transformation, aggregation) and
INDIRECT when a column only decides which rows or in what order (join, filter, group by, sort, window,
conditional), as in OpenLineage's column lineage facet.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from sqlglot.errors import ErrorLevel, ParseError, TokenError

from lineage.sql import split, statements
from lineage.sql.model import ColumnEdge, SqlError, SqlLineage, Step
from lineage.sql.names import DIALECTS, READ_AS, table_name
from lineage.sql.query import Known, dialect_of
from lineage.sql.readable import readable
from lineage.sql.script import fold

__all__ = ["DIALECTS", "ColumnEdge", "SqlError", "SqlLineage", "extract", "readable", "table_name"]

logging.getLogger("sqlglot").setLevel(logging.ERROR)


def extract(sql: str, dialect: str | None = None, schema: Mapping[str, Sequence[str]] | None = None) -> SqlLineage:
    """Lineage of every statement in `sql`. Never raises on bad SQL: errors go in `.errors`, with the
    line and column where they were found."""
    name = (dialect or "spark").lower()
    if name not in READ_AS:
        return SqlLineage(errors=[SqlError(f"unknown dialect {name!r}; expected one of {', '.join(DIALECTS)}")])
    read = READ_AS[name]
    d = dialect_of(read)
    tokenizer = d.tokenizer()
    try:
        tokens = tokenizer.tokenize(sql)
    except TokenError as exc:
        core = getattr(tokenizer, "_core", tokenizer)  # where sqlglot keeps its scanning state
        return SqlLineage(errors=[_token_error(exc, sql, getattr(core, "_start", 0))])
    parser = d.parser(error_level=ErrorLevel.IMMEDIATE)  # RAISE parses on after an error, and can loop forever
    known = Known({k.lower(): [c.lower() for c in v] for k, v in (schema or {}).items()})
    steps: list[Step] = []
    errors: list[SqlError] = []
    for n, piece in enumerate(split.pieces(tokens, sql, d), start=1):
        first = piece.tokens[0]
        try:
            parsed = parser.parse(piece.tokens, piece.sql)
        except ParseError as exc:
            for e in exc.errors or [{"description": str(exc)}]:
                errors.append(SqlError(readable(e.get("description") or str(exc), e.get("highlight")), e.get("line") or first.line,
                                       e.get("col") or first.col, statement=n))
            continue
        except RecursionError:
            errors.append(SqlError("statement nested too deeply to read", first.line, first.col, statement=n))
            continue
        for stmt in parsed:
            if stmt is None:
                continue
            try:
                steps.append(statements.step(stmt, read, known, piece.procedural))
            except Exception as exc:
                errors.append(SqlError(f"statement {n}: {readable(str(exc))}", first.line, first.col, statement=n))
    out = fold(steps)
    out.errors = errors
    return out


def _token_error(exc: TokenError, sql: str, start: int) -> SqlError:
    """Where the tokenizer stopped: the start of the token it could not finish (an unterminated string
    or comment), as line and column."""
    cause = exc.__cause__
    message = str(cause) if isinstance(cause, TokenError) else "unterminated string, comment or quoted name"
    start = min(max(start, 0), len(sql))
    line = sql.count("\n", 0, start) + 1
    return SqlError(message, line, start - (sql.rfind("\n", 0, start) + 1) + 1)
