"""Row filters and column masks: SQL functions of the catalog rendered for one reader.

A row filter `f(c1, c2)` keeps the rows where the function's body is true with its parameters bound
to those columns; a mask `m(c, u1...)` replaces column c by the body's value. Bodies may ask who is
reading: `is_account_group_member('g')` / `is_member('g')` become TRUE or FALSE for the reader and
`current_user()` their name, so the rendered SQL is plain DuckDB SQL that any engine-side reader
(the SQL shim, Python reads, Spark executors) applies the same way.

>>> print(render_function("is_account_group_member('hr') OR region = 'US'", ["region"], ["`country`"], "ana", {"ana", "eng"}))
FALSE OR "country" = 'US'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from catalog.errors import InvalidArgument
from catalog.relations import catalog_relations

GROUP_TESTS = {"is_account_group_member", "is_member", "is_group_member"}
_USER_NODES = tuple(getattr(exp, n) for n in ("CurrentUser", "SessionUser") if hasattr(exp, n))


@dataclass(frozen=True, slots=True)
class Policy:
    """What one reader may see of one table, as DuckDB SQL over its columns."""

    row_filter: str | None
    masks: dict[str, str]

    @property
    def empty(self) -> bool:
        return self.row_filter is None and not self.masks


def render_function(body: str, params: Sequence[str], args: Sequence[str], principal: str, groups: set[str]) -> str:
    """The function body with parameters bound to `args` (SQL column references) for this reader."""
    if len(params) != len(args):
        raise InvalidArgument(f"the function takes {len(params)} argument(s), {len(args)} given")
    try:
        tree = sqlglot.parse_one(body, read="databricks")
    except sqlglot.errors.ParseError as exc:
        raise InvalidArgument(f"cannot parse the function body {body!r}: {exc}") from None
    if catalog_relations(tree):  # also refuses file reads and engine functions in the body
        raise InvalidArgument("a row filter or column mask function may not read tables; use its parameters")
    bound = {p.lower(): sqlglot.parse_one(a, read="databricks") for p, a in zip(params, args)}

    def bind(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name.lower() in bound:
            return bound[node.name.lower()].copy()
        return node

    return bind_identity(tree.transform(bind), principal, groups).sql("duckdb")


def bind_identity(tree: exp.Expression, principal: str, groups: set[str] | None) -> exp.Expression:
    """`current_user()` / `session_user()` as the reader's name and, when `groups` is given, the group
    tests (`is_account_group_member('g')`, ...) as TRUE or FALSE for the reader.

    >>> print(bind_identity(sqlglot.parse_one("SELECT current_user() = owner"), "ana", None).sql())
    SELECT 'ana' = owner
    """

    def rewrite(node: exp.Expression) -> exp.Expression:
        name = (node.name if isinstance(node, exp.Anonymous) else "").lower()
        if groups is not None and name in GROUP_TESTS:
            group = node.expressions[0].name if node.expressions else ""
            return exp.true() if group in groups else exp.false()
        if isinstance(node, _USER_NODES) or name in ("current_user", "session_user", "user"):
            return exp.Literal.string(principal)
        return node

    return tree.transform(rewrite)


def quote(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"
