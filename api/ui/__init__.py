"""The web UI `cairn serve` shows at `/`: plain ES modules and CSS served from the package (no build
step, no CDN, works offline). The page signs in with a token and makes every call through
`POST /graphql` with it, so governance applies unchanged; these routes serve files only.

A strict Content-Security-Policy lets the page load nothing but its own files and talk to nothing
but this server: even a name or comment that smuggled markup in could not run a script.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html; charset=utf-8"}
FILES = {p.name: p for p in STATIC.iterdir() if p.suffix in TYPES}  # the only files ever served
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # small files; revalidated by ETag, so an upgrade shows at once
}


async def index(request: Request) -> Response:
    return FileResponse(FILES["index.html"], media_type=TYPES[".html"], headers=HEADERS)


async def asset(request: Request) -> Response:
    path = FILES.get(request.path_params["name"])
    if path is None:
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(path, media_type=TYPES[path.suffix], headers=HEADERS)


def routes() -> list[Route]:
    """`/` (the page) and `/ui/<file>` (its modules and stylesheet)."""
    return [Route("/", index, methods=["GET"]), Route("/ui/{name}", asset, methods=["GET"])]
