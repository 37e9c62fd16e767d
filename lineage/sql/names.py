"""Dialects, and the names datasets go by: tables as qualified in the SQL, files by their path.

    >>> from sqlglot import parse_one
    >>> table_name(parse_one("SELECT * FROM Main.`Sales`.t", read="spark").find(exp.Table))
    'main.Sales.t'
    >>> table_name(parse_one("SELECT * FROM parquet.`s3://b/events/`", read="spark").find(exp.Table))
    's3://b/events/'
    >>> table_name(parse_one("SELECT a INTO #stage FROM t", read="tsql").args["into"].this)
    '#stage'
"""

from __future__ import annotations

from sqlglot import exp

# Accepted dialect names and the sqlglot dialect each is read with ("" is sqlglot's own, ANSI-like).
READ_AS = {
    "databricks": "databricks", "spark": "spark", "ansi": "", "hive": "hive", "postgres": "postgres",
    "bigquery": "bigquery", "snowflake": "snowflake", "tsql": "tsql", "duckdb": "duckdb", "mysql": "mysql",
    "redshift": "redshift", "athena": "athena", "trino": "trino", "presto": "presto", "oracle": "oracle",
    "teradata": "teradata", "sqlite": "sqlite", "vertica": "postgres",
}
DIALECTS = tuple(READ_AS)

# Spark and Databricks read files in place: SELECT * FROM parquet.`/data/events/`.
FILE_FORMATS = frozenset({"parquet", "csv", "json", "orc", "avro", "text", "delta", "binaryfile"})


def file_path(table: exp.Table) -> str | None:
    """The path when `table` names files rather than a table (format.`path`, a quoted path or a stage)."""
    this = table.this
    if isinstance(this, exp.Literal) and this.is_string:
        return this.name  # COPY INTO 's3://...' FROM ...
    if isinstance(this, exp.Var) and this.name.startswith("@"):
        return this.name  # a Snowflake stage
    db = table.args.get("db")
    if (db is not None and not table.args.get("catalog") and db.name.lower() in FILE_FORMATS
            and isinstance(this, exp.Identifier) and this.quoted):
        return this.name
    if isinstance(this, exp.Identifier) and this.quoted and db is None and ("://" in this.name or this.name.startswith("/")):
        return this.name  # FROM 's3://bucket/key' read as a quoted name (Databricks COPY INTO ... FROM (SELECT ...))
    return None


def table_name(table: exp.Table) -> str:
    """The table as qualified in the SQL, unquoted parts lower-cased; a file's path; `#t` for a T-SQL temporary table."""
    path = file_path(table)
    if path is not None:
        return path
    if isinstance(table.this, exp.Parameter):
        return "@" + table.this.name.lower()  # a T-SQL table variable
    parts = [p for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p is not None]
    names = [p.name if (isinstance(p, exp.Identifier) and p.quoted) else p.name.lower() for p in parts]
    this = table.this
    if isinstance(this, exp.Identifier) and (this.args.get("temporary") or this.args.get("global_")):
        names[-1] = ("##" if this.args.get("global_") else "#") + names[-1]
    return ".".join(names)


def name_table(name: str, dialect: str) -> exp.Table | None:
    """A table named in a string (swap_partitions_between_tables('stage.t', ...)), or None."""
    try:
        return exp.to_table(name, dialect=dialect)
    except Exception:
        return None
