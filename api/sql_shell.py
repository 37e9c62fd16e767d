"""`cairn sql` with no statement: an interactive shell with history and name completion."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

QUIT = {"exit", "quit", "\\q"}
KEYWORDS = ["SELECT", "FROM", "WHERE", "GROUP", "BY", "ORDER", "LIMIT", "JOIN", "ON", "INSERT", "INTO", "OVERWRITE", "VALUES", "UPDATE", "SET", "DELETE", "MERGE", "USING", "WHEN", "MATCHED", "THEN", "CREATE", "DROP", "ALTER", "TABLE", "VIEW", "SCHEMA", "CATALOG", "FUNCTION", "GRANT", "REVOKE", "SHOW", "GRANTS", "TABLES", "SCHEMAS", "CATALOGS", "DESCRIBE", "EXTENDED", "HISTORY", "OPTIMIZE", "ZORDER", "VACUUM", "RETAIN", "HOURS", "RESTORE", "VERSION", "AS", "OF", "USE", "TAGS", "OWNER", "TO", "COMMENT", "IS", "ROW", "FILTER", "MASK", "COLUMN"]


def _names(session: Any) -> list[str]:
    """Names the caller may see, for completion: catalogs, schemas and tables of the current catalog."""
    out: list[str] = []
    try:
        for cat in session.services.catalogs.list_catalogs(max_results=200):
            out.append(cat.name)
            if cat.name == session.current_catalog:
                out += [sch.full_name for sch in session.services.schemas.list_schemas(cat.name, max_results=200)]
                # One governed call for the catalog's visible tables (not one per schema), one for the current schema's.
                out += [t.full_name for t in session.services.tables.list_tables(cat.name, max_results=1000)]
                if session.current_schema:
                    out += [t.name for t in session.services.tables.list_tables(cat.name, session.current_schema, max_results=500)]
    except Exception:  # noqa: S110 - completion must never break the shell
        pass
    return out


def run_shell(session: Any, show: Callable[[Any], None]) -> None:
    from catalog.errors import CairnError

    try:
        import readline
    except ImportError:  # pragma: no cover - not on this platform
        readline = None  # type: ignore[assignment]
    history = Path(session.services.metastore.settings.home) / "sql_history"  # the metastore's home, however it was named
    if readline is not None and sys.stdin.isatty():
        history.parent.mkdir(parents=True, exist_ok=True)
        if history.exists():
            readline.read_history_file(str(history))
        cache: dict[str, list[str]] = {}

        def complete(text: str, state: int) -> str | None:
            if state == 0:
                cache["names"] = _names(session) + KEYWORDS
            matches = [n for n in cache["names"] if n.lower().startswith(text.lower())]
            return matches[state] if state < len(matches) else None

        readline.set_completer_delims(" \t\n(),;")
        readline.set_completer(complete)
        readline.parse_and_bind("tab: complete")
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo("cairn sql — end statements with ';', quit with exit, quit, \\q or Ctrl-D")
    buffer = ""
    while True:
        where = ".".join(p for p in (session.current_catalog, session.current_schema) if p) or "cairn"
        try:
            # Piped input gets no prompts: its output is only the results.
            line = input((f"{where}> " if not buffer else "   ...> ") if interactive else "")
        except EOFError:
            if interactive:
                click.echo()
            break
        except KeyboardInterrupt:  # Ctrl-C drops the statement being typed, as psql does
            click.echo()
            buffer = ""
            continue
        if not buffer and line.strip().rstrip(";").strip().lower() in QUIT:
            break
        buffer += line + "\n"
        if not buffer.strip().endswith(";"):
            continue
        try:
            for result in session.execute(buffer):
                show(result)
        except CairnError as exc:
            click.echo(f"error: {exc.code}: {exc}", err=True)
        buffer = ""
        if readline is not None and interactive:
            readline.write_history_file(str(history))
