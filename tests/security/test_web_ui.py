"""Attacks on the web UI (api/ui): its routes serve a fixed set of files and nothing else, every
response forbids loading or running anything from elsewhere, the page's code never turns data into
markup, and the GraphQL fields added for it reveal nothing the caller may not see (denials audited).
The browser-side half (markup in a comment shown as text, never run) is in tests/api/test_web_ui.py."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from api.graphql import execute
from catalog.client import Cairn, Metastore

STATIC = Path(__file__).resolve().parents[2] / "api" / "ui" / "static"


def test_only_the_packaged_files_are_served(server: str) -> None:
    for path in ("/ui/..%2F__init__.py", "/ui/__init__.py", "/ui/%2e%2e%2f%2e%2e%2fserver.py", "/ui/..%5C__init__.py", "/ui/app.js%00.css",
                 "/ui/", "/ui/.%2Fapp.js", "/ui/APP.JS", "/ui/app.js/x", "/index.html"):
        r = httpx.get(server + path)
        assert r.status_code == 404, (path, r.status_code)
        assert "import" not in r.text and "__future__" not in r.text, path
    assert httpx.post(server + "/", json={}).status_code == 405  # the page is read-only


def test_every_file_forbids_what_is_not_its_own(server: str) -> None:
    for path in ["/", *(f"/ui/{p.name}" for p in STATIC.iterdir())]:
        r = httpx.get(server + path)
        assert r.status_code == 200, path
        csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
        assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["connect-src"] == "'self'", path
        assert csp["frame-ancestors"] == "'none'" and csp["base-uri"] == "'none'" and "unsafe" not in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"


def test_the_code_never_turns_data_into_markup() -> None:
    """Text goes in as text (textContent, text nodes, attributes): no HTML parsing of anything."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|createContextualFragment|DOMParser|srcdoc")
    for p in STATIC.glob("*.js"):
        assert not sinks.findall(p.read_text()), p.name
    page = (STATIC / "index.html").read_text()
    assert not re.search(r"\son\w+=", page) and not re.search(r"<script(?![^>]*\ssrc=)", page)  # no inline code for CSP to refuse
    # the token stays in this tab: sessionStorage, never localStorage or a cookie
    code = "".join(p.read_text() for p in STATIC.glob("*.js"))
    assert "sessionStorage" in code and "localStorage" not in code and "document.cookie" not in code


def test_ui_fields_reveal_nothing_hidden(redteam: Cairn, admin: Cairn, metastore: Metastore) -> None:
    bob = redteam
    seen = execute(bob, '{ tablePolicy(name: "main.s.people") { rowFilter { function columns } columnMasks { column function } } }')
    assert seen["data"]["tablePolicy"] == {"rowFilter": {"function": "main.s.us_only", "columns": ["region"]},
                                           "columnMasks": [{"column": "ssn", "function": "main.s.hide_ssn"}]}
    # a table bob may not see answers as one that does not exist: no telling them apart
    for name, code in (("main.s.secret", "NOT_FOUND"), ("main.s.nope", "NOT_FOUND"), ("main.s.people; DROP TABLE x", "INVALID_ARGUMENT")):
        got = execute(bob, '{ tablePolicy(name: $n) { columnMasks { column } } }'.replace("$n", f'"{name}"'))
        assert got["data"] is None or got["data"]["tablePolicy"] is None, name
        assert got["errors"][0]["extensions"]["code"] == code, (name, got)
        assert code != "NOT_FOUND" or got["errors"][0]["message"] == f"table '{name}' does not exist"
    denied = [e for e in admin.audit.list_events(principal="bob", action="get_table", result="DENIED", max_results=100)]
    assert {e.securable_name for e in denied} >= {"main.s.secret"}
    # viewer answers who the token is, and only that: no argument can ask about someone else
    assert execute(bob, "{ viewer { name isAdmin } }")["data"]["viewer"] == {"name": "bob", "isAdmin": False}
    assert execute(bob, '{ viewer(name: "admin") { name } }')["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
