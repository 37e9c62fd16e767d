"""Two red-team settings.

`redteam`: bob holds USE CATALOG, USE SCHEMA and SELECT on one masked, filtered table (`main.s.people`)
and nothing on `main.s.secret`; hr members see unmasked SSNs.
`world` + `server`: a real `cairn serve` app on 127.0.0.1 over `main.s.secret` (which ana may not
see), `main.s.seen` (ana may read it, not write it) and `main.s.mine` (ana may write it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.server import make_app
from catalog.client import Cairn, Metastore
from catalog.entities import AuditResult


@pytest.fixture
def redteam(admin: Cairn, metastore: Metastore) -> Cairn:
    admin.sql("""
        CREATE CATALOG main; USE CATALOG main; CREATE SCHEMA s; USE SCHEMA s;
        CREATE TABLE people (name STRING, ssn STRING, region STRING);
        INSERT INTO people VALUES ('ann', '111-11-1111', 'US'), ('bo', '987-65-4321', 'EU');
        CREATE TABLE secret (x STRING);
        INSERT INTO secret VALUES ('top secret');
        CREATE FUNCTION main.s.us_only(region STRING) RETURNS BOOLEAN RETURN is_account_group_member('hr') OR region = 'US';
        CREATE FUNCTION main.s.hide_ssn(ssn STRING) RETURNS STRING RETURN CASE WHEN is_member('hr') THEN ssn ELSE '***-**-****' END;
        ALTER TABLE people SET ROW FILTER main.s.us_only ON (region);
        ALTER TABLE people ALTER COLUMN ssn SET MASK main.s.hide_ssn;
        CREATE GROUP hr;
    """)
    admin.principals.create_user("bob")
    admin.sql("GRANT USE CATALOG ON CATALOG main TO bob; GRANT USE SCHEMA ON SCHEMA main.s TO bob; GRANT SELECT ON TABLE main.s.people TO bob")
    return metastore.as_principal("bob")


def denied_rows(admin: Cairn, principal: str) -> list:
    """The DENIED audit rows of `principal`, oldest first."""
    events, token = [], None
    while True:
        page = admin.audit.list_events(page_token=token, max_results=1000)
        events += [e for e in page if e.principal == principal and e.result is AuditResult.DENIED]
        token = page.next_page_token
        if not token:
            return events


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
