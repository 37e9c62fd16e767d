"""SQL statements for storage credentials and external locations (Databricks SQL syntax).

    CREATE STORAGE CREDENTIAL [IF NOT EXISTS] name [READ ONLY] [COMMENT '...']
    CREATE EXTERNAL LOCATION [IF NOT EXISTS] name URL '...' [WITH (STORAGE CREDENTIAL c)] [READ ONLY] [COMMENT '...']
    ALTER EXTERNAL LOCATION name SET URL '...' [FORCE] | SET STORAGE CREDENTIAL c | RENAME TO n | OWNER TO p
    DROP EXTERNAL LOCATION | STORAGE CREDENTIAL [IF EXISTS] name [FORCE]
    SHOW EXTERNAL LOCATIONS | SHOW STORAGE CREDENTIALS [LIKE 'pattern']
    DESCRIBE EXTERNAL LOCATION | STORAGE CREDENTIAL name

A local storage credential holds no secret (the server reads files as itself), so CREATE STORAGE
CREDENTIAL takes no cloud identity. GRANT / REVOKE / SHOW GRANTS ... ON EXTERNAL LOCATION name and
ON STORAGE CREDENTIAL name go through the shim's usual grant statements. Each statement calls the
governed services, which check and audit it.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from catalog import names
from catalog.errors import AlreadyExists, NotFound
from catalog.privileges import Kind
from catalog.sql.lexer import Cursor

if TYPE_CHECKING:
    from catalog.services import Services

# The shim's result class, handed in by the shim (importing it here would make a cycle).
Result = Any

WORDS = {("EXTERNAL", "LOCATION"): Kind.EXTERNAL_LOCATION, ("STORAGE", "CREDENTIAL"): Kind.STORAGE_CREDENTIAL}
PLURALS = {("EXTERNAL", "LOCATIONS"): Kind.EXTERNAL_LOCATION, ("STORAGE", "CREDENTIALS"): Kind.STORAGE_CREDENTIAL}


def kind_at(c: Cursor, offset: int = 0, table: dict[tuple[str, str], Kind] = WORDS) -> Kind | None:
    """The storage kind named by the two words at `offset`, if they name one."""
    a, b = c.peek(offset), c.peek(offset + 1)
    if a is None or b is None:
        return None
    return table.get((a.text.upper(), b.text.upper()))


def accept_kind(c: Cursor) -> Kind | None:
    kind = kind_at(c)
    if kind is not None:
        c.pos += 2
    return kind


def _name(c: Cursor) -> str:
    return names.parse(c.name(), 1).key


def run(cairn: Services, c: Cursor, result: Result) -> Any:
    """Run one storage statement, answering with `result` (the shim's SqlResult); the cursor stands at its first word."""
    verb = c.word()
    if verb in ("DESC", "DESCRIBE"):
        return _describe(cairn, c, result)
    if verb == "SHOW":
        return _show(cairn, c, result)
    kind = accept_kind(c)
    if verb == "CREATE":
        return _create(cairn, c, kind, result)  # type: ignore[arg-type]
    if verb == "DROP":
        return _drop(cairn, c, kind, result)  # type: ignore[arg-type]
    return _alter(cairn, c, kind, result)  # type: ignore[arg-type]


def _create(cairn: Services, c: Cursor, kind: Kind, result: Result) -> Any:
    exists_ok = c.accept("IF", "NOT", "EXISTS")
    name = _name(c)
    url = credential = comment = None
    read_only = False
    if kind is Kind.EXTERNAL_LOCATION:
        c.expect("URL")
        url = c.string()
        if c.accept("WITH"):
            c.expect("(")
            c.expect("STORAGE", "CREDENTIAL")
            credential = _name(c)
            c.expect(")")
    if c.accept("READ", "ONLY"):
        read_only = True
    if c.accept("COMMENT"):
        comment = c.string()
    c.done()
    try:
        if kind is Kind.EXTERNAL_LOCATION:
            made = cairn.external_locations.create_external_location(name, url, credential, comment, read_only)  # type: ignore[arg-type]
        else:
            made = cairn.storage_credentials.create_storage_credential(name, comment, read_only)
    except AlreadyExists:
        if not exists_ok:
            raise
        return result(message=f"{_label(kind)} {name} already exists")
    return result(message=f"created {_label(kind)} {made.full_name}")


def _drop(cairn: Services, c: Cursor, kind: Kind, result: Result) -> Any:
    missing_ok = c.accept("IF", "EXISTS")
    name = _name(c)
    force = c.accept("FORCE")
    c.done()
    try:
        if kind is Kind.EXTERNAL_LOCATION:
            cairn.external_locations.delete_external_location(name, force=force)
        else:
            cairn.storage_credentials.delete_storage_credential(name, force=force)
    except NotFound:
        if not missing_ok:
            raise
        return result(message=f"{_label(kind)} {name} does not exist")
    return result(message=f"dropped {_label(kind)} {name}")


def _alter(cairn: Services, c: Cursor, kind: Kind, result: Result) -> Any:
    name = _name(c)
    if c.accept("OWNER", "TO") or c.accept("SET", "OWNER", "TO"):
        who = c.principal()
        c.done()
        cairn.grants.transfer_ownership(kind, name, who)
        return result(message=f"owner of {_label(kind)} {name} is now {who}")
    changes: dict[str, Any] = {}
    if c.accept("RENAME", "TO"):
        changes["new_name"] = _name(c)
    elif kind is Kind.EXTERNAL_LOCATION and c.accept("SET", "URL"):
        changes["url"] = c.string()
        changes["force"] = c.accept("FORCE")
    elif kind is Kind.EXTERNAL_LOCATION and c.accept("SET", "STORAGE", "CREDENTIAL"):
        changes["credential_name"] = _name(c)
    else:
        c.fail("expected OWNER TO, RENAME TO" + (", SET URL or SET STORAGE CREDENTIAL" if kind is Kind.EXTERNAL_LOCATION else ""))
    c.done()
    if kind is Kind.EXTERNAL_LOCATION:
        cairn.external_locations.update_external_location(name, **changes)
    else:
        cairn.storage_credentials.update_storage_credential(name, **changes)
    return result(message=f"altered {_label(kind)} {name}")


def _show(cairn: Services, c: Cursor, result: Result) -> Any:
    kind = kind_at(c, 0, PLURALS)
    c.pos += 2
    pattern = c.string() if c.accept("LIKE") else None
    c.done()
    rows: list[tuple[Any, ...]]
    if kind is Kind.EXTERNAL_LOCATION:
        cols = ["name", "url", "credential_name", "read_only", "owner", "comment"]
        rows = [(x.full_name, x.storage_location, x.credential_name, bool(x.read_only), x.owner, x.comment)
                for x in _all(cairn.external_locations.list_external_locations)]
    else:
        cols = ["name", "read_only", "owner", "comment"]
        rows = [(x.full_name, bool(x.read_only), x.owner, x.comment) for x in _all(cairn.storage_credentials.list_storage_credentials)]
    if pattern:
        alternatives = [p.strip().lower() for p in pattern.split("|")]
        rows = [r for r in rows if any(fnmatch.fnmatch(str(r[0]), p) for p in alternatives)]
    return result(cols, rows)  # type: ignore[arg-type]


def _describe(cairn: Services, c: Cursor, result: Result) -> Any:
    kind = accept_kind(c)
    name = _name(c)
    c.done()
    if kind is Kind.EXTERNAL_LOCATION:
        x = cairn.external_locations.get_external_location(name)
        rows = [("name", x.full_name), ("url", x.storage_location), ("credential_name", x.credential_name)]
    else:
        x = cairn.storage_credentials.get_storage_credential(name)
        rows = [("name", x.full_name)]
    rows += [("read_only", str(bool(x.read_only)).lower()), ("owner", x.owner), ("comment", x.comment),
             ("created_at", x.created_at.isoformat()), ("created_by", x.created_by)]
    return result(["info_name", "info_value"], rows)  # type: ignore[arg-type]


def _all(list_page: Any) -> list[Any]:
    """Every item of a paged listing (a list is never cut silently)."""
    out: list[Any] = []
    token = None
    while True:
        page = list_page(page_token=token, max_results=1000)
        out += list(page)
        token = page.next_page_token
        if not token:
            return out


def _label(kind: Kind) -> str:
    return kind.value.lower().replace("_", " ")
