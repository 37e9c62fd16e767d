"""`cairn demo` (what `make run` starts): a short governed scenario on the embedded metastore."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from catalog.client import Metastore
from catalog.entities import Source
from catalog.errors import AlreadyExists, CairnError


def _ensure(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    try:
        return fn(*args, **kwargs)
    except AlreadyExists:
        return None


def run_demo(metastore: Metastore, admin: str, quiet: bool = False, hints: list[str] | None = None) -> dict[str, object]:
    """Set up the demo's principals, catalog, table and grants (idempotent), show who sees what and
    why, and return a summary. `hints` are command lines to try next, complete enough to paste."""
    out = Console(quiet=quiet, highlight=False, soft_wrap=True)
    summary: dict[str, object] = {"metastore": metastore.settings.metastore_url, "admin": admin}
    if not metastore.initialized:
        metastore.initialize(admin)
        out.print(f"initialized metastore at [bold]{metastore.settings.metastore_url}[/bold] with admin '{admin}'")
        summary["initialized"] = True
    a = metastore.as_principal(admin, Source.CLI)

    def members() -> None:
        _ensure(a.principals.add_member, "ml-engineers", "alice")
        # Nested groups: ml-engineers is inside data-science, so alice inherits its grants.
        if "ml-engineers" not in a.principals.list_members("data-science"):
            a.principals.add_member("data-science", "ml-engineers")

    steps = [
        ("users alice, bob", lambda: [_ensure(a.principals.create_user, u) for u in ("alice", "bob")]),
        ("groups ml-engineers, data-science", lambda: [_ensure(a.principals.create_group, g) for g in ("ml-engineers", "data-science")]),
        ("alice in ml-engineers, in data-science", members),
        ("catalog main, schema main.features", lambda: (_ensure(a.catalogs.create_catalog, "main", comment="production lakehouse"),
                                                        _ensure(a.schemas.create_schema, "main.features", comment="feature tables"))),
        ("table main.features.user_activity", lambda: _ensure(
            a.tables.create_table,
            "main.features.user_activity",
            [
                {"name": "user_id", "type": "bigint", "nullable": False},
                {"name": "feature_timestamp", "type": "timestamp", "nullable": False},
                {"name": "email", "type": "string"},
                {"name": "orders_30d", "type": "int"},
            ],
            primary_keys=["user_id", "feature_timestamp"],
            timestamp_keys=["feature_timestamp"],
            comment="per-user activity features",
        )),
        ("tag email pii=true", lambda: a.tags.set_tags("table", "main.features.user_activity", {"pii": "true"}, column="email")),
        ("grant USE CATALOG, USE SCHEMA, SELECT on catalog main to data-science",
         lambda: a.grants.grant("catalog", "main", "data-science", ["USE CATALOG", "USE SCHEMA", "SELECT"])),
    ]
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=out,
                  transient=False, disable=quiet) as progress:
        task = progress.add_task("demo: setting up", total=len(steps))
        for label, step in steps:
            progress.update(task, description=f"demo: {label}")
            step()
            progress.advance(task)
        progress.update(task, description="demo: set up")
    out.print("granted USE CATALOG, USE SCHEMA, SELECT on catalog main to group data-science")

    sees: dict[str, str] = {}
    for user in ("alice", "bob"):
        client = metastore.as_principal(user, Source.CLI)
        try:
            client.tables.get_table("main.features.user_activity")
            can = client.grants.check("table", "main.features.user_activity", "SELECT")
            out.print(f"{user}: sees main.features.user_activity; SELECT allowed: {can}")
            sees[user] = f"SELECT allowed: {can}"
        except CairnError as exc:
            out.print(f"{user}: {exc.code}: {exc}")
            sees[user] = exc.code
    summary["sees"] = sees

    out.print("\nwhy can alice SELECT main.features.user_activity?")
    why = []
    for eff in a.grants.get_effective_privileges("table", "main.features.user_activity", "alice"):
        for reason in eff.reasons:
            out.print(f"  {eff.privilege.value}: {reason.describe()}")
            why.append(f"{eff.privilege.value}: {reason.describe()}")
    summary["why_alice"] = why

    out.print("\nlast audit events (newest first):")
    for e in a.audit.list_events(max_results=8, newest_first=True):
        out.print(f"  {e.event_time:%H:%M:%S} {e.principal:<6} {e.action:<26} {e.securable_name or '':<32} {e.result.value} {e.error_code or ''}")
    if hints:
        out.print("\ntry:")
        for h in hints:
            out.print(f"  {h}", markup=False, soft_wrap=True)
    summary["try"] = hints or []
    return summary
