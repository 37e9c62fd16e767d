"""Every refused authentication leaves an audit row — missing, malformed, unknown, revoked or
expired token, on REST, GraphQL and OpenLineage — by `anonymous`, action `authenticate`, DENIED,
naming the method and path attempted and why, and never the token; a refused lineage ingest leaves
a DENIED row naming the table."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from catalog.client import Cairn, Metastore
from catalog.store import tables as t
from catalog.store.metastore import now

pytestmark = pytest.mark.slow
UC = "/api/2.1/unity-catalog"
ROUTES = [("GET", f"{UC}/catalogs", None, "rest"), ("POST", "/graphql", {"query": "{ catalogs { edges { node { name } } } }"}, "graphql"),
          ("POST", "/api/v1/lineage", {"eventTime": "2026-01-01T00:00:00Z"}, "rest"), ("PATCH", f"{UC}/catalogs/main", {"comment": "pwned"}, "rest")]


def refusals(admin: Cairn) -> list[tuple[str, str, str, str, str, str]]:
    rows = admin.audit.list_events(principal="anonymous", max_results=1000)
    return [(e.action, e.result.value, e.error_code or "", e.source, e.parameters["method"], e.parameters["path"]) for e in rows]


def test_every_refused_authentication_is_audited_without_the_token(server: str, world: dict[str, str], admin: Cairn, metastore: Metastore) -> None:
    # A revoked token, and an expired one (its expiry moved into the past).
    revoked, info = admin.tokens.create_token("ana", "1d")
    admin.tokens.revoke_token(info.token_id)
    expired, old = admin.tokens.create_token("ana", "1d")
    with metastore.engine.begin() as conn:
        conn.execute(update(t.tokens).where(t.tokens.c.token_id == old.token_id).values(expires_at=now() - timedelta(minutes=1)))
    headers = {
        "missing token": {},
        "malformed Authorization header": {"Authorization": "Bearer"},
        "malformed token": {"Authorization": "Bearer not-a-cairn-token"},
        "unknown token": {"Authorization": "Bearer cairn_" + "x" * 43},
        f"revoked token {info.token_id} of ana": {"Authorization": f"Bearer {revoked}"},
        f"expired token {old.token_id} of ana": {"Authorization": f"Bearer {expired}"},
    }
    basic = {"Authorization": "Basic YWRtaW46YWRtaW4="}  # not a bearer token at all
    expected = []
    for method, path, body, source in ROUTES:
        for reason, header in [*headers.items(), ("malformed Authorization header", basic)]:
            r = httpx.request(method, f"{server}{path}", json=body, headers=header)
            assert (r.status_code, r.json()["error_code"]) == (401, "UNAUTHENTICATED"), (path, reason, r.text)
            expected.append(("authenticate", "DENIED", "UNAUTHENTICATED", source, method, path))
            row = list(admin.audit.list_events(principal="anonymous", max_results=1000))[-1]
            assert (row.parameters["reason"], row.request_id) == (reason, r.headers["x-request-id"])
    assert refusals(admin) == expected
    logged = json.dumps([str(e) for e in admin.audit.list_events(max_results=1000)])
    for secret in (revoked, expired, "cairn_" + "x" * 43, "not-a-cairn-token", "YWRtaW46YWRtaW4="):
        assert secret not in logged
    assert admin.catalogs.get_catalog("main").comment is None  # and nothing was done


def test_a_refused_lineage_ingest_is_a_denied_row_naming_the_table(server: str, world: dict[str, str], admin: Cairn) -> None:
    body = {"eventTime": "2026-01-01T00:00:00Z", "producer": "p", "schemaURL": "s", "eventType": "COMPLETE",
            "run": {"runId": "3f1c0a56-0b5e-4c1b-9a7e-1d2c3b4a5f60"}, "job": {"namespace": "n", "name": "j"},
            "inputs": [{"namespace": "file", "name": world["secret_location"]}], "outputs": [{"namespace": "cairn", "name": "main.s.mine"}]}
    r = httpx.post(f"{server}/api/v1/lineage", json=body, headers={"Authorization": f"Bearer {world['ana']}"})
    assert (r.status_code, r.json()["error_code"]) == (404, "NOT_FOUND")
    rows = list(admin.audit.list_events(principal="ana", action="ingest_openlineage", max_results=10))
    assert [(e.result.value, e.securable_kind, e.securable_name, e.request_id, e.parameters["job"]) for e in rows] == [
        ("DENIED", "TABLE", "main.s.secret", r.json()["request_id"], "n/j")]


def test_an_unauthenticated_request_is_a_401_whatever_its_body(server: str, world: dict[str, str], admin: Cairn) -> None:
    for body in (b"[1]", b"{not json", b"[" * 1000 + b"]" * 1000):
        r = httpx.post(f"{server}{UC}/catalogs", content=body, headers={"Content-Type": "application/json"})
        assert (r.status_code, r.json()["error_code"]) == (401, "UNAUTHENTICATED")
    assert [(e.action, e.parameters["reason"]) for e in admin.audit.list_events(principal="anonymous")] == [("authenticate", "missing token")] * 3
