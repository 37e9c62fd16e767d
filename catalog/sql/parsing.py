"""Parsing statements for the SQL shim, and the result every statement returns.

Statements reach sqlglot only after the lexer has split them; a statement sqlglot cannot read (or
one nested beyond what it can read) is an INVALID_ARGUMENT naming the line and column, never an
internal error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from catalog.errors import InvalidArgument
from lineage.sql import readable

if TYPE_CHECKING:
    import pyarrow as pa

_VERSION_AT = re.compile(r"(?<=[\w`])@v(\d+)\b")


@dataclass
class SqlResult:
    """Rows of one statement (or a message for statements that return none)."""

    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    message: str | None = None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def of(cls, table: pa.Table) -> SqlResult:
        return cls(list(table.column_names), [tuple(r.values()) for r in table.to_pylist()])


def preprocess(text: str) -> str:
    """`t@v3` is Databricks shorthand for `t VERSION AS OF 3`."""
    return _VERSION_AT.sub(lambda m: f" VERSION AS OF {m.group(1)}", text)


def parse(text: str) -> exp.Expression:
    """One statement as a sqlglot tree (Databricks dialect); InvalidArgument when it cannot be read."""
    try:
        tree = sqlglot.parse_one(preprocess(text), read="databricks")
    except sqlglot.errors.ParseError as exc:
        e = (exc.errors or [{}])[0]
        description = readable(str(e.get("description") or "unexpected syntax"), e.get("highlight"))
        raise InvalidArgument(f"cannot parse the statement at line {e.get('line')}, column {e.get('col')}: {description}") from None
    except sqlglot.errors.SqlglotError as exc:
        raise InvalidArgument(f"cannot parse the statement: {readable(str(exc).splitlines()[0])}") from None
    except RecursionError:
        raise InvalidArgument("the statement is nested too deeply to parse") from None
    if tree is None:
        raise InvalidArgument("empty statement")
    return tree


def generate(tree: exp.Expression, dialect: str) -> str:
    """SQL text of a tree; InvalidArgument (not an internal error) when it nests too deeply."""
    try:
        return tree.sql(dialect)
    except RecursionError:
        raise InvalidArgument("the statement is nested too deeply") from None
