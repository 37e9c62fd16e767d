"""The GraphiQL page `cairn serve` shows at /graphql: served from the package (no CDN), with a token
field, and working in a real headless Chromium (Debian's `chromium`, driven by playwright-core)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from catalog.client import Metastore

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "api" / "web"
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture
def metastore(tmp_path: Path) -> Metastore:
    """One backend is enough here: the page, not the metastore, is under test."""
    ms = Metastore.open(home=tmp_path / "home")
    ms.initialize("admin")
    return ms


def test_the_page_loads_nothing_from_elsewhere_and_has_no_prompt(metastore: Metastore, live) -> None:  # type: ignore[no-untyped-def]
    from api.server import GRAPHIQL, GRAPHIQL_DIR, make_app

    assert "unpkg" not in GRAPHIQL and "https://" not in GRAPHIQL and "prompt(" not in GRAPHIQL
    with live(make_app(metastore)) as url:
        page = httpx.get(f"{url}/graphql")
        if not (GRAPHIQL_DIR / "graphiql.js").is_file():
            assert page.status_code == 503 and "make install" in page.text
            pytest.skip("the GraphiQL bundle is not built (make install builds it)")
        assert page.status_code == 200 and '<script src="/static/graphiql/graphiql.js">' in page.text
        js = httpx.get(f"{url}/static/graphiql/graphiql.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript") and len(js.content) > 100_000
        assert "cairn-token" in js.text and "cairnToken" in js.text
        assert httpx.get(f"{url}/static/graphiql/graphiql.css").headers["content-type"].startswith("text/css")
        assert httpx.get(f"{url}/static/graphiql/..%2F..%2Fserver.py").status_code == 404
        described = httpx.get(f"{url}/static/graphiql/schema.json").json()  # what GraphiQL documents and completes from
        assert "catalogs" in {f["name"] for t in described["__schema"]["types"] if t["name"] == "Query" for f in t["fields"]}


@pytest.mark.slow
def test_graphiql_runs_a_query_in_headless_chromium(metastore: Metastore, live) -> None:  # type: ignore[no-untyped-def]
    from api.server import GRAPHIQL_DIR, make_app

    if not (GRAPHIQL_DIR / "graphiql.js").is_file() or not (WEB / "node_modules" / "playwright-core").is_dir():
        pytest.skip("the GraphiQL bundle or playwright-core is not installed (make install)")
    if not Path("/usr/bin/chromium").exists() or not shutil.which("node"):
        pytest.skip("needs Debian's chromium and node (make test installs chromium)")
    admin = metastore.as_principal("admin")
    admin.catalogs.create_catalog("main", comment="seen from the browser")
    token = admin.tokens.create_token()[0]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "graphiql.png"
    shot.unlink(missing_ok=True)
    with live(make_app(metastore)) as url:
        run = subprocess.run(["node", "check_page.mjs", f"{url}/graphql", token, str(shot)], cwd=WEB, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert "failure" not in got, got
    assert got["title"] == "Cairn GraphQL" and got["tokenField"] == 1 and got["stored"] is True
    assert got["status"] == 200
    assert got["body"]["data"]["catalogs"]["edges"] == [{"node": {"name": "main", "owner": "admin", "comment": "seen from the browser"}}]
    assert '"name": "main"' in got["shown"]  # the answer is on the page
    assert got["forgotten"] is None  # Forget removes the token; nothing like "null" is stored
    assert got["consoleErrors"] == [] and got["pageErrors"] == []
    assert got["offsite"] == []  # everything came from the server itself: works offline
    assert [r for r in got["requests"] if r.startswith("POST")] == [f"POST {url}/graphql"]  # the query only: no introspection
    assert any(r.endswith("/static/graphiql/schema.json") for r in got["requests"])
    assert shot.stat().st_size > 10_000
