"""A real `cairn serve` app on 127.0.0.1 over a small world: `main.s.secret` (which ana may not
see), `main.s.seen` (ana may read it, not write it) and `main.s.mine` (ana may write it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.server import make_app
from catalog.client import Cairn, Metastore


@pytest.fixture
def world(admin: Cairn) -> dict[str, str]:
    """Tables and tokens; returns the tokens and secret's storage location."""
    admin.sql("CREATE CATALOG main; CREATE SCHEMA main.s")
    for name in ("secret", "seen", "mine"):
        admin.tables.create_table(f"main.s.{name}", [{"name": "id", "type": "bigint"}, {"name": "v", "type": "double"}])
    admin.principals.create_user("ana")
    admin.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA"])
    admin.grants.grant("table", "main.s.seen", "ana", ["SELECT"])
    admin.grants.grant("table", "main.s.mine", "ana", ["SELECT", "MODIFY"])
    return {"admin": admin.tokens.create_token()[0], "ana": admin.tokens.create_token("ana", "1d")[0],
            "secret_location": admin.tables.get_table("main.s.secret").storage_location or ""}


@pytest.fixture
def server(metastore: Metastore, live: Any, world: dict[str, str]) -> Iterator[str]:
    with live(make_app(metastore)) as url:
        yield url
