"""`cairn serve` (the API server on one port) and `cairn token` (the bearer tokens it takes).
Registered in api/cli.py."""

from __future__ import annotations

import json

import click

from api.cli_common import Env, emit, fail, governed, say


@click.command(short_help="Serve GraphQL (GraphiQL), UC REST and OpenLineage on one port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes (one per core is a good start).")
@governed
def serve(env: Env, host: str, port: int, workers: int) -> None:
    """Serve GraphQL (with GraphiQL in a browser) at /graphql, the Unity Catalog REST API, OpenLineage,
    /healthz and /metrics on one port. Requests authenticate with `Authorization: Bearer TOKEN`
    (`cairn token create`). Prints a `ready` line once it answers."""
    import socket

    from api.server import serve as run_server

    base = f"http://{host}:{port}"
    try:  # say so before anything else when the port is taken
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        other = str(port + 1 if port else 8081)
        fail(env, "UNAVAILABLE", f"cannot listen on {host}:{port}: {exc.strerror}: the port is taken (another Cairn?); "
                                 f"pick another with `{env.command('serve', '--host', host, '--port', other)}` (or `make run PORT={other}`)", 1)
    metastore = env.metastore
    mint = env.command("token", "create", "--quiet", principal=env.principal or "admin")
    if env.as_json:
        click.echo(json.dumps({"event": "starting", "url": base, "graphql": f"{base}/graphql", "uc_rest": f"{base}/api/2.1/unity-catalog",
                               "openlineage": f"{base}/api/v1/lineage", "token_command": mint}))
    else:
        click.echo(f"Cairn on {base}: GraphQL {base}/graphql  UC REST {base}/api/2.1/unity-catalog  OpenLineage {base}/api/v1/lineage  "
                   f"{base}/healthz  {base}/metrics  web UI {base}/")
        click.echo(f"try: curl -H \"Authorization: Bearer $({mint})\" {base}/api/2.1/unity-catalog/catalogs")
    _say_when_ready(host, port, env.as_json)
    from pipelines.jobs.scheduler import start_in_background

    if workers == 1:  # job schedules, when serving as an admin (with forked workers: `cairn jobs scheduler` beside it)
        start_in_background(metastore, env.principal)
    run_server(metastore, host, port, workers)


def _say_when_ready(host: str, port: int, as_json: bool = False) -> None:
    """Print `ready: ...` once /healthz answers (from a thread, so the server starts meanwhile)."""
    import socket
    import threading
    import time

    where = f"[{host}]" if ":" in host else host
    probe_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - a probe of the address the user chose

    def answers() -> bool:
        # One keep-alive request, waited for however long the server takes once it accepted, and
        # closed by this side after the answer: nothing is abandoned in the listen queue and the
        # server's port is left with no TIME_WAIT (it can be bound again as soon as the server stops).
        with socket.create_connection((probe_host, port), timeout=2) as conn:
            conn.settimeout(120)
            conn.sendall(f"GET /healthz HTTP/1.1\r\nHost: {where}:{port}\r\n\r\n".encode())
            return conn.recv(64).startswith(b"HTTP/1.1 200")

    def wait() -> None:
        for _ in range(1200):
            try:
                if answers():
                    if as_json:
                        click.echo(json.dumps({"event": "ready", "url": f"http://{where}:{port}"}))
                    else:
                        click.echo(f"ready: Cairn answers on http://{where}:{port} (Ctrl-C stops it)")
                    return
            except OSError:
                pass
            time.sleep(0.1)

    threading.Thread(target=wait, daemon=True, name="cairn-ready").start()


@click.group()
def token() -> None:
    """Access tokens for the server."""


@token.command("create")
@click.option("--principal", "who", help="Whose token (default: you; admins may mint for others).")
@click.option("--expires", default="90d", show_default=True, help="Lifetime like 30d, 12h, 90m, or never.")
@click.option("--comment")
@click.option("--quiet", is_flag=True, help="Print only the token.")
@governed
def token_create(env: Env, who: str | None, expires: str, comment: str | None, quiet: bool) -> None:
    """Mint a bearer token for the server; it is shown once, keep it."""
    raw, info = env.cairn().tokens.create_token(who, expires, comment)
    if quiet:
        click.echo(raw)
        return
    emit(env, {"token": raw, "token_id": info.token_id, "principal": info.principal, "expires_at": info.expires_at})


@token.command("list")
@governed
def token_list(env: Env) -> None:
    """Your tokens (admins: everyone's), never the secrets themselves."""
    emit(env, [{"token_id": t.token_id, "principal": t.principal, "created_at": t.created_at, "expires_at": t.expires_at,
                "revoked_at": t.revoked_at, "comment": t.comment} for t in env.cairn().tokens.list_tokens()], "tokens")


@token.command("revoke")
@click.argument("token_id")
@governed
def token_revoke(env: Env, token_id: str) -> None:
    """Revoke the token TOKEN_ID (from `cairn token list`)."""
    env.cairn().tokens.revoke_token(token_id)
    say(env, f"revoked token {token_id}", revoked=token_id)
