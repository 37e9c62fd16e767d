"""`cairn demo` (what `make run` starts): a short governed scenario on the embedded metastore."""

from __future__ import annotations

from rich.console import Console

from catalog.client import Metastore
from catalog.entities import Source
from catalog.errors import AlreadyExists, CairnError


def _ensure(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    try:
        return fn(*args, **kwargs)
    except AlreadyExists:
        return None


def run_demo(metastore: Metastore, admin: str) -> None:
    out = Console()
    if not metastore.initialized:
        metastore.initialize(admin)
        out.print(f"initialized metastore at [bold]{metastore.settings.metastore_url}[/bold] with admin '{admin}'")
    a = metastore.as_principal(admin, Source.CLI)
    for user in ("alice", "bob"):
        _ensure(a.principals.create_user, user)
    for group in ("ml-engineers", "data-science"):
        _ensure(a.principals.create_group, group)
    _ensure(a.principals.add_member, "ml-engineers", "alice")
    # Nested groups: ml-engineers is inside data-science, so alice inherits its grants.
    if "ml-engineers" not in a.principals.list_members("data-science"):
        a.principals.add_member("data-science", "ml-engineers")
    _ensure(a.catalogs.create_catalog, "main", comment="production lakehouse")
    _ensure(a.schemas.create_schema, "main.features", comment="feature tables")
    _ensure(
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
    )
    a.tags.set_tags("table", "main.features.user_activity", {"pii": "true"}, column="email")
    a.grants.grant("catalog", "main", "data-science", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    out.print("granted USE CATALOG, USE SCHEMA, SELECT on catalog main to group data-science")

    for user in ("alice", "bob"):
        client = metastore.as_principal(user, Source.CLI)
        try:
            client.tables.get_table("main.features.user_activity")
            can = client.grants.check("table", "main.features.user_activity", "SELECT")
            out.print(f"{user}: sees main.features.user_activity; SELECT allowed: {can}")
        except CairnError as exc:
            out.print(f"{user}: {exc.code}: {exc}")

    out.print("\nwhy can alice SELECT main.features.user_activity?")
    for eff in a.grants.get_effective_privileges("table", "main.features.user_activity", "alice"):
        for reason in eff.reasons:
            out.print(f"  {eff.privilege.value}: {reason.describe()}")

    out.print("\nlast audit events:")
    events = list(a.audit.list_events(max_results=1000))[-8:]
    for e in events:
        out.print(f"  {e.event_time:%H:%M:%S} {e.principal:<6} {e.action:<26} {e.securable_name or '':<32} {e.result.value} {e.error_code or ''}")
    out.print("\ntry: [bold].venv/bin/cairn --as alice table list main[/bold]   and   [bold].venv/bin/cairn audit log --result DENIED[/bold]")
