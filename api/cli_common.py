"""What every `cairn` command module shares: the context object (`Env`), the one error handler
(`governed`, `fail`) and the output helpers (`say`, `emit`, `securable_row`, `table_row`).

A command module defines its click group or command with these and is registered on the main group
in api/cli.py with one `cli.add_command(...)` line.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


class Env:
    def __init__(self, home: str | None, url: str | None, principal: str | None, as_json: bool, create: bool = False) -> None:
        self.home, self.url, self.principal, self.as_json = home, url, principal, as_json
        self.create = create  # only `init` and `demo` may create a metastore where there is none
        self._metastore = None

    @property
    def metastore(self):  # type: ignore[no-untyped-def]
        if self._metastore is None:
            from catalog.client import Metastore

            self._metastore = Metastore.open(self.home, self.url, create=self.create)
        return self._metastore

    def cairn(self):  # type: ignore[no-untyped-def]
        from catalog.entities import Source

        return self.metastore.as_principal(self.principal, Source.CLI)

    def command(self, *args: str, principal: str | None = None) -> str:
        """A `cairn` command line that works pasted into any shell: the executable by absolute path,
        the metastore and the principal spelled out (nothing left to the environment or to make)."""
        import shlex

        exe = Path(sys.argv[0])
        base = [str(exe.absolute())] if exe.name == "cairn" else [sys.executable, "-m", "api.cli"]
        settings = self.metastore.settings
        if settings.metastore_url == f"sqlite:///{settings.home / 'metastore.db'}":
            where = ["--home", str(settings.home)]
        else:
            where = ["--url", settings.metastore_url]
        who = self.principal if principal is None else principal
        return shlex.join([*base, *where, *(["--as", who] if who else []), *args])


def fail(env: Env | None, code: str, message: str, exit_code: int = 1) -> None:
    """Say what went wrong in one line (JSON with --json) on stderr, and exit non-zero."""
    if env is not None and env.as_json:
        click.echo(json.dumps({"error": {"code": code, "message": message}}), err=True)
    else:
        click.echo(f"error: {code}: {message}", err=True)
    sys.exit(exit_code)


def governed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command with the client as its first argument; turn Cairn errors into one clear line."""

    @click.pass_obj
    @functools.wraps(fn)
    def wrapper(env: Env, *args: Any, **kwargs: Any) -> Any:
        from catalog.errors import CairnError

        try:
            return fn(env, *args, **kwargs)
        except CairnError as exc:
            fail(env, exc.code, str(exc), 2 if exc.code == "INVALID_ARGUMENT" else 1)

    return wrapper


def say(env: Env, message: str, **fields: Any) -> None:
    """A one-line outcome (`dropped table x`), or {"message": ..., **fields} with --json."""
    click.echo(json.dumps({"message": message, **fields}, default=str) if env.as_json else message)


def _text(v: Any) -> str:
    if v is None:
        return ""
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return ", ".join(_text(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, default=str)
    return str(v)


def emit(env: Env, rows: list[dict[str, Any]] | dict[str, Any], title: str | None = None) -> None:
    """Print rows as a rich table, or as JSON with --json. Values are never cut: a table wider than
    the terminal is printed as one `field: value` block per row instead, and a pipe gets full width."""
    if env.as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    if isinstance(rows, dict):
        rows = [{"field": k, "value": _text(v)} for k, v in rows.items()]
    console = Console(highlight=False)
    if not rows:
        console.print("[dim](none)[/dim]")
        return
    keys = list(rows[0])
    cells = [[_text(r.get(k)) for k in keys] for r in rows]
    widths = [max(len(str(k)), *(max((len(line) for line in c[i].splitlines()), default=0) for c in cells)) for i, k in enumerate(keys)]
    needed = sum(widths) + 3 * len(keys) + 1
    if not console.is_terminal:
        console = Console(highlight=False, width=max(needed, 80))
    elif needed > console.width:
        if title:
            console.print(f"[bold]{title}[/bold]", markup=True)
        for row in cells:
            for k, v in zip(keys, row):
                console.print(f"{k}: {v}", markup=False, soft_wrap=True)
            console.print()
        return
    table = Table(title=title)
    for key in keys:
        table.add_column(str(key), overflow="fold")
    for row in cells:
        table.add_row(*row)
    console.print(table)


def securable_row(s: Any) -> dict[str, Any]:
    """One shape for a securable, in `get` and `list` alike."""
    row = {"name": s.full_name, "kind": s.kind.value, "owner": s.owner, "comment": s.comment,
           "type": s.table_type.value if getattr(s, "table_type", None) else None}
    return row


def with_partition_columns(cairn: Any, tables: list[Any]) -> list[Any]:
    """Listed tables with their partition columns (one governed batch call), so that `table list`
    shows what `table get` does."""
    from dataclasses import replace

    found = cairn.tables.partition_columns_many(tables) if tables else {}
    return [t if isinstance(found.get(t.id), Exception) else replace(t, partition_columns=found.get(t.id)) for t in tables]


def table_row(t: Any, as_json: bool) -> dict[str, Any]:
    """A table as `table get` and `table list` print it (with --json, its columns too)."""
    row = securable_row(t)
    if t.partition_columns is not None:  # `table get` reads them from the Delta log; lists do not
        row["partition_columns"] = list(t.partition_columns) if as_json else ", ".join(t.partition_columns)
    if as_json:
        parts = t.partition_columns or ()
        row["columns"] = [{"name": c.name, "type": c.type_text, "nullable": c.nullable, "comment": c.comment,
                           **({"partition_index": parts.index(c.name)} if c.name in parts else {})} for c in t.columns]
    return row
