"""The red team's setting: bob holds USE CATALOG, USE SCHEMA and SELECT on one masked, filtered table
(`main.s.people`) and nothing on `main.s.secret`; hr members see unmasked SSNs."""

from __future__ import annotations

import pytest

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
