"""Databricks statements and answers the shim speaks beside its own, for users who bring their habits.

`SHOW GRANTS ON ...` with inherited grants (and the object each comes from), `DESCRIBE CATALOG`,
`DESCRIBE SCHEMA`, `DESCRIBE HISTORY` with Databricks' columns, `SET TAG ON` / `UNSET TAG ON`,
`SHOW GROUPS`, `SHOW USERS`, and NOT_FOUND errors in Databricks' words. Every statement goes
through the same governed services as the rest of the shim.
"""

from __future__ import annotations

import fnmatch
import json
import re
from datetime import UTC, datetime
from typing import Any

from catalog.entities import ACCOUNT_USERS
from catalog.errors import CairnError, NotFound
from catalog.privileges import Kind
from catalog.sql.lexer import Cursor

# What a statement answers: (columns, rows, message); the shim makes its SqlResult of it. The shim
# (`svc`, a SqlService) calls this module, never the other way round.
Answer = tuple[list[str], list[tuple[Any, ...]], str | None]

_TAG_KINDS = {"CATALOG": "catalog", "SCHEMA": "schema", "DATABASE": "schema", "TABLE": "table", "VIEW": "table", "COLUMN": "table",
              "MODEL": "model", "FUNCTION": "function"}


def handles(c: Cursor) -> bool:
    """Whether the statement at `c` is one this module answers."""
    return (c.at("SHOW", "GRANTS") or c.at("SHOW", "GROUPS") or c.at("SHOW", "USERS") or c.at("SET", "TAG", "ON")
            or c.at("UNSET", "TAG", "ON") or c.at("DESCRIBE", "HISTORY") or c.at("DESC", "HISTORY")
            or any(c.at(d, w) for d in ("DESCRIBE", "DESC") for w in ("CATALOG", "SCHEMA", "DATABASE")))


def run(svc: Any, c: Cursor) -> Answer:
    if c.at("SHOW", "GRANTS"):
        return _show_grants(svc, c)
    if c.at("SHOW"):
        return _show_principals(svc, c)
    if c.at("SET") or c.at("UNSET"):
        return _tag(svc, c)
    if c.at("DESCRIBE", "HISTORY") or c.at("DESC", "HISTORY"):
        return _history(svc, c)
    return _describe_container(svc, c)


def _result(columns: list[str], rows: list[tuple[Any, ...]] | None = None, message: str | None = None) -> Answer:
    return columns, rows or [], message


def _show_grants(svc: Any, c: Cursor) -> Answer:
    """Direct grants first, then those inherited from each parent up to the metastore, each row
    naming the object the grant is on (as Databricks shows them)."""
    c.expect("SHOW", "GRANTS")
    who = None if c.at("ON") else c.principal()
    c.expect("ON")
    kind, name = svc._securable(c)
    c.done()
    grants = list(svc.services.grants.list_grants(kind, name, who))
    parts = (name or "").split("/")[0].split(".")
    parents: list[tuple[Kind, str | None]] = []
    if kind not in (Kind.METASTORE, Kind.CATALOG) and len(parts) >= 2:
        if len(parts) == 3:
            parents.append((Kind.SCHEMA, ".".join(parts[:2])))
        parents.append((Kind.CATALOG, parts[0]))
    if kind is not Kind.METASTORE:
        parents.append((Kind.METASTORE, None))
    for pkind, pname in parents:
        try:
            grants += [g for g in svc.services.grants.list_grants(pkind, pname, who) if _inherits(g.privilege.value, kind)]
        except CairnError:  # a parent the caller may not see, or whose grants it may not list
            continue
    return _result(["principal", "action_type", "object_type", "object_key"],
                   [(g.principal, g.privilege.value, g.securable_kind.value, g.securable_name or "") for g in grants])


def _inherits(privilege: str, kind: Kind) -> bool:
    """Whether a grant of `privilege` on a parent matters to a child of `kind`: CREATE TABLE on a
    schema or CREATE CATALOG on the metastore says nothing about a table."""
    if privilege.startswith("CREATE "):
        return kind in (Kind.CATALOG, Kind.SCHEMA) and privilege != "CREATE CATALOG"
    return True


def _show_principals(svc: Any, c: Cursor) -> Answer:
    """SHOW GROUPS [WITH USER u | WITH GROUP g] [[LIKE] 'pattern'] and SHOW USERS [[LIKE] 'pattern']."""
    c.expect("SHOW")
    what = c.word()
    member = None
    if what == "GROUPS" and c.accept("WITH"):
        c.word()  # USER | GROUP | SERVICE_PRINCIPAL
        member = c.principal()
    c.accept("LIKE")
    pattern = c.string() if c.peek() is not None else None
    c.done()
    cairn = svc.services
    rows: list[tuple[Any, ...]]
    if what == "USERS":
        rows = [(p.name,) for p in _all_principals(cairn, "USER")]
        columns = ["name"]
    else:
        if member is not None:
            direct = {g for g in cairn.principals.list_groups_of(member) if member in cairn.principals.list_members(g) or g == ACCOUNT_USERS}
            rows = [(g, g in direct) for g in cairn.principals.list_groups_of(member)]
        else:
            names = sorted({p.name for p in _all_principals(cairn, "GROUP")} | {ACCOUNT_USERS})
            rows = [(g, True) for g in names]
        columns = ["name", "directGroup"]
    if pattern:
        alternatives = [p.strip().lower() for p in pattern.split("|")]
        rows = [r for r in rows if any(fnmatch.fnmatch(r[0].lower(), p) for p in alternatives)]
    return _result(columns, rows)


def _all_principals(cairn: Any, kind: str) -> list[Any]:
    out, token = [], None
    while True:
        page = cairn.principals.list_principals(kind, page_token=token, max_results=1000)
        out += list(page)
        token = page.next_page_token
        if not token:
            return out


def _tag(svc: Any, c: Cursor) -> Answer:
    """SET TAG ON <kind> <name> key [= value]; UNSET TAG ON <kind> <name> key (Databricks' newer syntax)."""
    setting = c.accept("SET")
    if not setting:
        c.expect("UNSET")
    c.expect("TAG", "ON")
    what = c.word()
    if what not in _TAG_KINDS:
        c.fail(f"expected one of {', '.join(sorted(_TAG_KINDS))} after TAG ON")
    name, column = c.name(), None
    if what == "COLUMN":
        name, column = name.rsplit(".", 1)
        column = column.strip("`")
    full = svc.full(name, {"catalog": 1, "schema": 2}.get(_TAG_KINDS[what], 3))
    key = c.string() if c.peek() is not None and c.peek().kind == "string" else c.name().strip("`")  # type: ignore[union-attr]
    value = ""
    if setting and c.accept("="):
        t = c.peek()
        if t is None:
            c.fail("expected a tag value")
        value = c.string() if t.kind == "string" else c.name().strip("`")  # type: ignore[union-attr]
    c.done()
    if setting:
        tags = svc.services.tags.set_tags(_TAG_KINDS[what], full, {key: value}, column=column)
    else:
        tags = svc.services.tags.unset_tags(_TAG_KINDS[what], full, [key], column=column)
    return _result(["column", "key", "value"], [(t.column, t.key, t.value) for t in tags])


def _describe_container(svc: Any, c: Cursor) -> Answer:
    """DESCRIBE CATALOG [EXTENDED] c / DESCRIBE SCHEMA [EXTENDED] s: Databricks' info_name / info_value rows."""
    c.word()
    what = c.word()
    extended = c.accept("EXTENDED")
    name = c.name()
    c.done()
    if what == "CATALOG":
        s = svc.services.catalogs.get_catalog(name)
        rows = [("Catalog Name", s.name), ("Comment", s.comment or ""), ("Owner", s.owner)]
    else:
        s = svc.services.schemas.get_schema(svc.full(name, 2))
        rows = [("Catalog Name", s.full_name.split(".")[0]), ("Namespace Name", s.name), ("Comment", s.comment or ""), ("Owner", s.owner)]
    if extended:
        rows += [("Created Time", s.created_at.isoformat()), ("Created By", s.created_by), ("Updated Time", s.updated_at.isoformat()),
                 ("Updated By", s.updated_by)]
        if s.properties:
            rows.append(("Properties", ", ".join(f"({k},{v})" for k, v in sorted(s.properties.items()))))
    return _result(["info_name", "info_value"], rows)


def _history(svc: Any, c: Cursor) -> Answer:
    """DESCRIBE HISTORY in Databricks' columns: ISO times, the writer's userName, and
    operationParameters / operationMetrics as JSON rather than Python reprs."""
    c.word()
    c.expect("HISTORY")
    name = svc.full(c.name(), 3)
    c.done()
    history = svc.services.data.history(name)  # checked, audited and (for non-owners) redacted by the data service
    writers = svc.services.audit.list_writers(name)
    rows = [(h.get("version"), _iso(h.get("timestamp")), writers.get(h.get("version")), h.get("operation"),
             _json(h.get("operationParameters")), h.get("readVersion"), h.get("isolationLevel"), h.get("isBlindAppend"),
             _json(h.get("operationMetrics")), h.get("engineInfo") or h.get("clientVersion")) for h in history]
    return _result(["version", "timestamp", "userName", "operation", "operationParameters", "readVersion", "isolationLevel",
                    "isBlindAppend", "operationMetrics", "engineInfo"], rows)


def _iso(ts: Any) -> str | None:
    if ts is None:
        return None
    if isinstance(ts, (int, float)):
        return datetime.fromtimestamp(ts / 1000, tz=UTC).isoformat(timespec="milliseconds")
    if isinstance(ts, datetime):
        return ts.isoformat(timespec="milliseconds")
    return str(ts)


def _json(value: Any) -> str | None:
    """JSON text of a dict; a string that is already a Python repr of one is read back first."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            import ast

            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return json.dumps(value, default=str, sort_keys=True)


# errors -----------------------------------------------------------------------------------------
_MISSING = re.compile(r"^(table|schema|catalog|view) '([^']+)' does not exist$")


def user_facing(exc: CairnError) -> CairnError:
    """An error as the user should read it: a NOT_FOUND as Databricks says it (the same words
    whether the table is missing or hidden), and a parse error without sqlglot's class or token reprs."""
    text = str(exc)
    if "<class 'sqlglot." in text or "<Token " in text or text.startswith("cannot parse the statement"):
        from lineage.sql import readable

        m = re.match(r"^(.*?line \d+, column \d+: )(.*)$", text, re.S)
        return type(exc)(m.group(1) + readable(m.group(2)) if m else readable(text))
    m = _MISSING.match(text) if isinstance(exc, NotFound) else None
    if m is None:
        return exc
    kind, name = m.groups()
    quoted = ".".join(f"`{p}`" for p in name.split("."))
    if kind in ("table", "view"):
        text = (f"[TABLE_OR_VIEW_NOT_FOUND] The table or view {quoted} cannot be found. Verify the spelling and correctness of "
                "the schema and catalog, and that you have USE CATALOG, USE SCHEMA and SELECT on it.")
    elif kind == "schema":
        text = f"[SCHEMA_NOT_FOUND] The schema {quoted} cannot be found. Verify the spelling and correctness of the schema and catalog."
    else:
        text = f"[NO_SUCH_CATALOG_EXCEPTION] Catalog '{name}' was not found. Verify the spelling of the catalog."
    return NotFound(text)
