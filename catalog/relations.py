"""What a SQL statement reads: every relation resolved, with CTE scoping, before anything runs.

A relation in a query is one of three things, and nothing else is let through:
- a CTE in scope at that place (a WITH of an enclosing query, defined before it, or itself when
  RECURSIVE);
- an allow-listed table function that makes rows from its arguments (`range`, `unnest`, ...);
- a catalog table, named by one to three identifiers, which the caller must then be authorized to read.

File paths (`'x.parquet'`, `parquet.\\`/data\\``, `read_parquet(...)`), engine introspection
(`duckdb_settings()`, `current_setting(...)`) and functions that run SQL text (`query(...)`) are
refused here, whatever the engine underneath would do with them. Pure: no I/O, no catalog access.

>>> import sqlglot
>>> tree = sqlglot.parse_one("WITH t AS (SELECT 1 AS x) SELECT * FROM t JOIN main.s.u ON true", read="databricks")
>>> [r.sql() for r in catalog_relations(tree)]
['main.s.u']
>>> tree = sqlglot.parse_one("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", read="databricks")
>>> [r.sql() for r in catalog_relations(tree)]  # `b` is not yet in scope inside `a`
['b']
"""

from __future__ import annotations

import re

from sqlglot import exp

from catalog import names
from catalog.errors import InvalidArgument, PermissionDenied

# Table functions that make rows from their arguments alone.
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "explode", "posexplode", "inline", "stack"})
# Scalar functions that read the engine's own state or run SQL text: never in a governed statement.
_DENIED_FUNCTIONS = frozenset({"query", "query_table", "current_setting", "getenv", "getvariable", "set_variable", "current_schemas",
                               "current_database", "current_catalog", "current_schema", "glob", "which_secret", "shell", "system",
                               "load_extension", "read_file", "input_file_name", "reflect",
                               "java_method", "try_reflect"})
_DENIED_PREFIXES = ("read_", "duckdb_", "pragma_", "parquet_", "sniff_", "iceberg_", "delta_", "sqlite_", "postgres_", "mysql_",
                    "json_execute", "http", "icu_", "arrow_scan", "pandas_scan", "python_", "test_", "checkpoint", "enable_", "disable_")
# Statements that reach the engine's configuration or files, wherever a parser may nest them.
_STATEMENTS = tuple(getattr(exp, n) for n in ("Command", "Pragma", "Copy", "Attach", "Detach", "Install", "Set", "Use", "LoadData")
                    if hasattr(exp, n))
# Databricks' `format.\`path\`` spelling of a file read.
FILE_FORMATS = frozenset({"parquet", "csv", "json", "delta", "text", "orc", "avro", "binaryfile", "jdbc", "cloudfiles"})
_PATHLIKE = re.compile(r"[/\\]|^[a-z][a-z0-9+.-]*:|\.(parquet|csv|json|ndjson|jsonl|txt|db|duckdb|sqlite|orc|avro|gz|zst)$", re.I)


class FileAccessRefused(PermissionDenied):
    """A statement tried to reach a file or the engine's state directly; `what` names it."""

    def __init__(self, message: str, what: str) -> None:
        super().__init__(message, what=what)
        self.what = what


def function_name(node: exp.Expression) -> str:
    """The SQL name of a function node, lower case (`ReadParquet` -> `read_parquet`)."""
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return ""


def check_functions(tree: exp.Expression) -> None:
    """Refuse functions that reach files, the engine's settings, or run SQL text, anywhere in `tree`."""
    for node in tree.walk():
        if isinstance(node, _STATEMENTS):
            raise FileAccessRefused(f"{node.key.upper()} is not allowed in a governed statement", node.key.upper())
        if isinstance(node, (exp.Anonymous, exp.Func)):
            name = function_name(node)
            if name in _DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES):
                raise FileAccessRefused(f"function {name}() is not allowed: it reads files or the engine's own state; "
                                        "read catalog tables by name", f"{name}()")


def _with_of(node: exp.Expression) -> exp.With | None:
    w = node.args.get("with_") or node.args.get("with")
    return w if isinstance(w, exp.With) else None


def _cte_in_scope(table: exp.Table) -> bool:
    """Whether an unqualified `table` names a CTE visible where it stands."""
    name = table.name.lower()
    child: exp.Expression = table
    node = table.parent
    while node is not None:
        w = _with_of(node)
        if w is not None and child is not w and any(c.alias_or_name.lower() == name for c in w.expressions):
            return True  # in the body of the query the WITH belongs to: all its CTEs are visible
        if isinstance(node, exp.With):
            ctes = node.expressions
            idx = next((i for i, c in enumerate(ctes) if c is child), None)
            if idx is not None:
                visible = ctes[: idx + 1] if node.args.get("recursive") else ctes[:idx]
                if any(c.alias_or_name.lower() == name for c in visible):
                    return True
                # The query owning this WITH comes next; its check skips the WITH we came from.
        child, node = node, node.parent
    return False


def catalog_relations(tree: exp.Expression) -> list[exp.Table]:
    """The `exp.Table` nodes of `tree` that must be catalog tables, in order of appearance.

    Raises FileAccessRefused for file paths, table functions off the allow list and functions that
    reach the engine's state; InvalidArgument for a relation that is not a name.
    """
    check_functions(tree)
    out = []
    for t in tree.find_all(exp.Table):
        this = t.this
        if isinstance(this, (exp.Anonymous, exp.Func)):
            name = function_name(this)
            if name in TABLE_FUNCTIONS:
                continue
            raise FileAccessRefused(f"table function {name}() is not allowed: only {', '.join(sorted(TABLE_FUNCTIONS))} "
                                    "and catalog tables may be read", f"{name}()")
        if not isinstance(this, exp.Identifier):
            raise InvalidArgument(f"cannot read from {t.sql('databricks')!r}: name a catalog table")
        parts = [p.name for p in (t.args.get("catalog"), t.args.get("db"), this) if p is not None]
        if len(parts) == 1 and _cte_in_scope(t):
            continue
        db = t.args.get("db")
        if _PATHLIKE.search(this.name) or (len(parts) == 2 and db is not None and db.name.lower() in FILE_FORMATS and this.quoted):
            raise FileAccessRefused(f"reading files by path ({t.sql('databricks')}) is not allowed: read catalog tables by name",
                                    ".".join(parts))
        out.append(t)
    return out


def qualify(table: exp.Table, catalog: str | None, schema: str | None) -> str:
    """The catalog key (`catalog.schema.name`) of a relation, filling missing parts from the defaults."""
    parts = [p.name for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p is not None]
    quoted = ".".join("`" + p.replace("`", "``") + "`" for p in parts)
    if len(parts) < 3:
        defaults = [catalog, schema][: 3 - len(parts)] if len(parts) == 1 else [catalog]
        if any(d is None for d in defaults):
            what = "catalog" if len(parts) == 2 or catalog is None else "schema"
            raise InvalidArgument(f"'{'.'.join(parts)}' is not fully qualified and there is no current {what}: "
                                  "qualify it or USE CATALOG / USE SCHEMA first")
        quoted = ".".join("`" + str(d).replace("`", "``") + "`" for d in defaults) + "." + quoted
    return names.parse(quoted, 3).key


def as_of(table: exp.Table) -> tuple[int | None, str | None]:
    """(version, timestamp) of a `VERSION AS OF n` / `TIMESTAMP AS OF 'ts'` relation."""
    version = table.args.get("version")
    if version is None:
        return None, None
    value = version.expression.name if isinstance(version.expression, exp.Literal) else version.expression.sql()
    if version.name.upper() == "VERSION":
        if not str(value).isdigit():
            raise InvalidArgument(f"VERSION AS OF needs a number, not {value!r}")
        return int(value), None
    return None, value


def qualify_definition(tree: exp.Expression, catalog: str | None, schema: str | None) -> str:
    """A view's SQL with every table it reads fully qualified, so it means the same in any session."""
    tree = tree.copy()
    for t in catalog_relations(tree):
        cat, sch, name = names.parse(qualify(t, catalog, schema), 3).parts
        t.set("catalog", exp.to_identifier(cat))
        t.set("db", exp.to_identifier(sch))
        t.set("this", exp.to_identifier(name))
    return tree.sql("databricks")
