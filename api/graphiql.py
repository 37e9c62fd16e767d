"""The GraphiQL page at GET /graphql, and its bundle (built at install time from api/web) served
from the package: no CDN. The schema is served as JSON, since GraphiQL's introspection query is
deeper than queries may be."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response


async def graphiql(request: Request) -> Response:
    """The page, or 503 saying how to build the bundle when it is not installed."""
    if not all((GRAPHIQL_DIR / f).is_file() for f in GRAPHIQL_FILES):
        return HTMLResponse(GRAPHIQL_MISSING, status_code=503)
    return HTMLResponse(GRAPHIQL)


async def graphiql_asset(request: Request) -> Response:
    """A file of the bundle, or the schema (schema.json)."""
    name = request.path_params["name"]
    if name == "schema.json":  # GraphiQL takes the schema from here: its introspection query is deeper than queries may be
        from api.graphql import schema

        return JSONResponse(schema.introspect(), headers={"Cache-Control": "no-cache"})
    if name not in GRAPHIQL_FILES or not (GRAPHIQL_DIR / name).is_file():
        return PlainTextResponse("not found", status_code=404)
    kind = "text/css" if name.endswith(".css") else "text/javascript"
    return FileResponse(GRAPHIQL_DIR / name, media_type=kind, headers={"Cache-Control": "public, max-age=3600"})


GRAPHIQL_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
GRAPHIQL_FILES = ("graphiql.js", "graphiql.css")
GRAPHIQL = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Cairn GraphQL</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/graphiql/graphiql.css">
<style>
html, body, #graphiql { height: 100%; margin: 0; }
.cairn-page { display: flex; flex-direction: column; height: 100%; }
.cairn-bar { display: flex; gap: 8px; align-items: center; padding: 6px 12px; font: 14px system-ui, sans-serif; border-bottom: 1px solid #ddd; }
.cairn-bar input { flex: 0 1 28em; font: inherit; padding: 2px 6px; }
.cairn-note { color: #666; }
.cairn-graphiql { flex: 1; min-height: 0; }
</style></head>
<body><div id="graphiql"></div><script src="/static/graphiql/graphiql.js"></script></body></html>"""
GRAPHIQL_MISSING = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Cairn GraphQL</title></head>
<body><p>GraphiQL is not built in this installation: run <code>make install</code> (or <code>cd api/web &amp;&amp; npm ci &amp;&amp;
npm run build</code>). GraphQL itself answers POST requests at this address.</p></body></html>"""
