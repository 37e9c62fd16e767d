"""The runtime the governed services stand on: one metastore's engine, caches and storage roots."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Self

from sqlalchemy import Engine

from catalog import config
from catalog.authz import AuthzCache
from catalog.entities import AuditResult, Principal, PrincipalKind, Source
from catalog.errors import FailedPrecondition
from catalog.names import validate_principal_name
from catalog.privileges import Kind
from catalog.service.base import GroupCommit
from catalog.store import db
from catalog.store.metastore import MetastoreStore
from lineage.graph import LineageGraph


class Runtime:
    """What the governed services stand on, for one metastore: settings, the engine, the
    authorization cache, the audit group commit, managed storage, and the lineage graph cache.

    Open one per process and share it (`catalog.client.Metastore` adds `as_principal`)."""

    def __init__(self, settings: config.Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.authz_cache = AuthzCache()
        self.audit_log = GroupCommit(engine)
        self.lineage_graph = LineageGraph()  # the traversal cache over the lineage store, kept in step by it

    @classmethod
    def open(cls, home: str | Path | None = None, url: str | None = None, create: bool = True) -> Self:
        """Open (creating and migrating as needed) the metastore under `home` or at `url`.

        With `create=False` nothing is created: where there is no initialized metastore, it raises
        FailedPrecondition naming the place it looked (a typo in CAIRN_HOME must not leave an empty one).
        """
        settings = config.load(home, url)
        sqlite_file = _sqlite_file(settings.metastore_url)
        where = str(settings.home) if settings.metastore_url == f"sqlite:///{settings.home / 'metastore.db'}" else settings.metastore_url
        missing = FailedPrecondition(f"no metastore at {where}; run `cairn init --admin NAME` or set CAIRN_HOME")
        if not create and sqlite_file is not None and not sqlite_file.exists():
            raise missing
        if settings.metastore_url.startswith("sqlite") and create:
            settings.home.mkdir(parents=True, exist_ok=True)
        engine = db.make_engine(settings.metastore_url)
        if not create:
            with db.translated(unavailable=f"cannot open the metastore at {where}"):
                revision = db.current_revision(engine)
            if revision is None:
                engine.dispose()
                raise missing
        db.upgrade(engine)
        ms = cls(settings, engine)
        if not create and not ms.initialized:
            engine.dispose()
            raise missing
        return ms

    def close(self) -> None:
        self.engine.dispose()

    @property
    def initialized(self) -> bool:
        with self.engine.connect().execution_options(cairn_write=False) as conn:
            return MetastoreStore(conn).get_setting("metastore_id") is not None

    def initialize(self, admin: str) -> Principal:
        """Create the metastore root and its first admin. Refused once initialized."""
        admin = validate_principal_name(admin)
        with db.translated("initialize"), self.engine.connect() as conn, conn.begin():
            store = MetastoreStore(conn)
            if store.get_setting("metastore_id") is not None:
                raise FailedPrecondition("the metastore is already initialized; an admin can add more admins")
            principal = store.insert_principal(admin, PrincipalKind.USER, None, is_admin=True)
            store.insert_securable(Kind.METASTORE, None, "", "", admin, admin)
            store.set_setting("metastore_id", str(uuid.uuid4()))
            store.log_authz_change("PRINCIPAL", principal=admin)
            store.insert_audit(
                principal=admin, action="initialize_metastore", securable_kind=Kind.METASTORE.value,
                securable_name="metastore", parameters={"admin": admin}, result=AuditResult.ALLOWED.value,
                error_code=None, error_message=None, request_id=uuid.uuid4().hex, source=Source.CLI.value,
            )
            return principal

    def managed_location(self, catalog: str, schema: str, securable_id: int, kind: str = "tables") -> str:
        """Where a managed object's files live. A table's folder is a fresh random UUID,
        `<warehouse>/<catalog>/<schema>/<uuid>`: only Cairn chooses it, it is never reused, and no one
        can guess it ahead (and nothing outside Cairn may write under the warehouse anyway). Other
        objects live at `<warehouse>/<catalog>/<schema>/<kind>/<id>`."""
        root = self.settings.warehouse / catalog / schema
        return str(root / uuid.uuid4().hex) if kind == "tables" else str(root / kind / str(securable_id))


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and for in-memory SQLite)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    path = path.split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None
