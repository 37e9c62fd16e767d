"""Rows and queries of the metastore. Knows nothing of principals' rights: services decide."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from catalog.entities import (
    ACCOUNT_USERS,
    AuditEvent,
    AuditResult,
    Column,
    Grant,
    Principal,
    PrincipalKind,
    Securable,
    TableType,
    Tag,
)
from catalog.errors import AlreadyExists, NotFound
from catalog.privileges import Kind, Privilege
from catalog.store import tables as t

# Statements on the hot path of every unit of work, built once: SQLAlchemy memoizes their cache keys,
# so executing them costs a parameter bind instead of a statement construction.
_AUTHZ_CHANGES = (select(t.authz_log.c.seq, t.authz_log.c.scope, t.authz_log.c.securable_id, t.authz_log.c.principal)
                  .where(t.authz_log.c.seq > bindparam("seq")).order_by(t.authz_log.c.seq))
_SECURABLE_BY_ID = select(t.securables).where(t.securables.c.id == bindparam("id"))
_SECURABLES_BY_IDS = select(t.securables).where(t.securables.c.id.in_(bindparam("ids", expanding=True)))
_COLUMNS_OF = (select(t.columns).where(t.columns.c.securable_id.in_(bindparam("ids", expanding=True)))
               .order_by(t.columns.c.securable_id, t.columns.c.position))
_COLUMNS_OF_ONE = select(t.columns).where(t.columns.c.securable_id == bindparam("id")).order_by(t.columns.c.position)
_SCHEMA_COLS = select(t.securables.c.id, t.securables.c.name, t.securables.c.full_name, t.securables.c.owner).where(
    t.securables.c.kind == Kind.SCHEMA.value)
_SCHEMAS_OF = _SCHEMA_COLS.where(t.securables.c.parent_id == bindparam("id")).order_by(t.securables.c.name)
_SCHEMA_ROW = _SCHEMA_COLS.where(t.securables.c.id == bindparam("id"))
_AUDIT_INSERT = insert(t.audit_events)
_AUDIT_DEFAULTS = {c.name: None for c in t.audit_events.columns if c.name not in ("id", "event_time")}


AUTHZ_LOG_LOCK = 0x43414952  # "CAIR"
LINEAGE_EDGES_LOCK = 0x43414953
STORAGE_PATHS_LOCK = 0x43414954


def serialize_appends(conn: Connection, key: int) -> None:
    """Make ids of an append-only log commit in order across processes (PostgreSQL).

    Readers follow such logs by id (`id > last seen`). A sequence hands out ids before commit, so
    without this a later id could commit first and an earlier one be skipped forever. Holding a
    transaction-scoped advisory lock from the insert to the commit closes that gap; SQLite
    serializes writers anyway.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({key})")


def now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time Cairn stores is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_SPEC_FIELDS = (
    "table_type",
    "data_source_format",
    "storage_location",
    "primary_keys",
    "timestamp_keys",
    "view_definition",
    "version",
    "status",
    "source",
    "run_id",
    "routine_definition",
    "row_filter",
    "column_masks",
    "aliases",
    "credential_name",
    "read_only",
)


def _securable(row: Any, cols: Sequence[Column] = ()) -> Securable:
    spec = dict(row.spec or {})
    kw: dict[str, Any] = {k: spec.get(k) for k in _SPEC_FIELDS}
    kw["table_type"] = TableType(kw["table_type"]) if kw["table_type"] else None
    kw["primary_keys"] = tuple(kw["primary_keys"] or ())
    kw["timestamp_keys"] = tuple(kw["timestamp_keys"] or ())
    kw["column_masks"] = dict(kw["column_masks"] or {})
    kw["aliases"] = dict(kw["aliases"] or {})
    return Securable(
        id=row.id,
        kind=Kind(row.kind),
        full_name=row.full_name,
        name=row.name,
        owner=row.owner,
        comment=row.comment,
        properties=dict(row.properties or {}),
        created_at=_aware(row.created_at),
        created_by=row.created_by,
        updated_at=_aware(row.updated_at),
        updated_by=row.updated_by,
        columns=tuple(cols),
        **kw,
    )


def _chain_by_name() -> Any:
    # Built once: constructing a recursive CTE costs more than running it on a hot path.
    s = t.securables
    cols = (s.c.id, s.c.kind, s.c.parent_id, s.c.full_name, s.c.owner)
    chain = select(*cols).where(s.c.kind == bindparam("kind"), s.c.full_name == bindparam("full_name")).cte("chain", recursive=True)
    parent = s.alias("p")
    chain = chain.union_all(
        select(parent.c.id, parent.c.kind, parent.c.parent_id, parent.c.full_name, parent.c.owner).join(chain, parent.c.id == chain.c.parent_id)
    )
    return select(chain)


def _groups_up() -> Any:
    gm = t.group_members
    up = select(gm.c.member_name, gm.c.group_name).where(gm.c.member_name == bindparam("member")).cte("up", recursive=True)
    up = up.union(select(gm.c.member_name, gm.c.group_name).join(up, gm.c.member_name == up.c.group_name))
    return select(up.c.member_name, up.c.group_name)


_CHAIN_BY_NAME = _chain_by_name()
_GROUPS_UP = _groups_up()


class MetastoreStore:
    """Queries over one connection inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._audit_rows: list[dict[str, Any]] | None = None  # set while audit rows are gathered

    def gather_audit(self) -> None:
        """Hold audit rows back until `flush_audit`, which writes them all in one statement."""
        self._audit_rows = []

    def flush_audit(self) -> None:
        rows, self._audit_rows = self._audit_rows, None
        if rows:
            self.conn.execute(_AUDIT_INSERT, rows)

    # settings ------------------------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        return self.conn.execute(select(t.settings.c.value).where(t.settings.c.key == key)).scalar()

    def set_setting(self, key: str, value: str) -> None:
        if self.get_setting(key) is None:
            self.conn.execute(insert(t.settings).values(key=key, value=value))
        else:
            self.conn.execute(update(t.settings).where(t.settings.c.key == key).values(value=value))

    # principals ----------------------------------------------------------------------------
    def insert_principal(self, name: str, kind: PrincipalKind, created_by: str | None, is_admin: bool = False) -> Principal:
        created_at = now()
        try:
            with self.conn.begin_nested():
                self.conn.execute(
                    insert(t.principals).values(name=name, kind=kind.value, is_admin=is_admin, created_at=created_at, created_by=created_by)
                )
        except IntegrityError:
            raise AlreadyExists(f"principal '{name}' already exists") from None
        return Principal(name, kind, is_admin, created_at, created_by)

    def find_principal(self, name: str) -> Principal | None:
        row = self.conn.execute(select(t.principals).where(t.principals.c.name == name)).first()
        if row is None:
            if name == ACCOUNT_USERS:  # built in: there before its row is (see ensure_account_users)
                return Principal(ACCOUNT_USERS, PrincipalKind.GROUP, False, datetime(1970, 1, 1, tzinfo=UTC), None)
            return None
        return Principal(row.name, PrincipalKind(row.kind), row.is_admin, _aware(row.created_at), row.created_by)

    def get_principal(self, name: str) -> Principal:
        found = self.find_principal(name)
        if found is None:
            raise NotFound(f"principal '{name}' does not exist")
        return found

    def list_principals(self, kind: PrincipalKind | None, after: str | None, limit: int) -> list[Principal]:
        q = select(t.principals).order_by(t.principals.c.name).limit(limit)
        if kind is not None:
            q = q.where(t.principals.c.kind == kind.value)
        if after is not None:
            q = q.where(t.principals.c.name > after)
        return [
            Principal(r.name, PrincipalKind(r.kind), r.is_admin, _aware(r.created_at), r.created_by)
            for r in self.conn.execute(q)
        ]

    def set_admin(self, name: str, is_admin: bool) -> None:
        self.conn.execute(update(t.principals).where(t.principals.c.name == name).values(is_admin=is_admin))

    def delete_principal(self, name: str) -> None:
        self.conn.execute(delete(t.principals).where(t.principals.c.name == name))

    def count_owned(self, principal: str) -> int:
        s = t.securables
        return self.conn.execute(select(func.count()).select_from(s).where(s.c.owner == principal, s.c.kind != Kind.METASTORE.value)).scalar_one()

    def add_member(self, group: str, member: str) -> bool:
        exists = self.conn.execute(
            select(literal(1)).where(t.group_members.c.group_name == group, t.group_members.c.member_name == member)
        ).first()
        if exists:
            return False
        self.conn.execute(insert(t.group_members).values(group_name=group, member_name=member))
        return True

    def remove_member(self, group: str, member: str) -> bool:
        res = self.conn.execute(
            delete(t.group_members).where(t.group_members.c.group_name == group, t.group_members.c.member_name == member)
        )
        return res.rowcount > 0

    def list_members(self, group: str) -> list[str]:
        if group == ACCOUNT_USERS:  # every user and service principal
            p = t.principals
            return sorted(self.conn.execute(select(p.c.name).where(p.c.kind != PrincipalKind.GROUP.value)).scalars())
        q = select(t.group_members.c.member_name).where(t.group_members.c.group_name == group)
        return sorted(self.conn.execute(q).scalars())

    def group_edges_from(self, member: str) -> list[tuple[str, str]]:
        """(member, group) edges reachable upward from `member`, for chains and cycle checks; a user
        or service principal is also in `account users` (and so in every group that contains it)."""
        edges = [(r[0], r[1]) for r in self.conn.execute(_GROUPS_UP, {"member": member})]
        kind = self.conn.execute(select(t.principals.c.kind).where(t.principals.c.name == member)).scalar()
        if kind is not None and kind != PrincipalKind.GROUP.value and member != ACCOUNT_USERS:
            edges.append((member, ACCOUNT_USERS))
            edges += [e for e in self.conn.execute(_GROUPS_UP, {"member": ACCOUNT_USERS}) if (e[0], e[1]) not in edges]
        return edges

    def ensure_account_users(self) -> None:
        """Give the built-in `account users` group its row, so grants (and their foreign keys) can name it."""
        if self.conn.execute(select(t.principals.c.name).where(t.principals.c.name == ACCOUNT_USERS)).first() is None:
            self.insert_principal(ACCOUNT_USERS, PrincipalKind.GROUP, None)

    # securables ----------------------------------------------------------------------------
    def insert_securable(
        self,
        kind: Kind,
        parent_id: int | None,
        name: str,
        full_name: str,
        owner: str,
        actor: str,
        comment: str | None = None,
        properties: dict[str, str] | None = None,
        spec: dict[str, Any] | None = None,
        columns: Sequence[Column] = (),
    ) -> Securable:
        ts = now()
        values = dict(
            kind=kind.value,
            parent_id=parent_id,
            name=name,
            full_name=full_name,
            owner=owner,
            comment=comment,
            properties=dict(properties or {}),
            spec={k: v for k, v in (spec or {}).items() if v is not None},
            created_at=ts,
            created_by=actor,
            updated_at=ts,
            updated_by=actor,
        )
        try:
            with self.conn.begin_nested():
                new_id: int = self.conn.execute(insert(t.securables).values(**values).returning(t.securables.c.id)).scalar_one()
        except IntegrityError:
            raise AlreadyExists(f"{kind.value.lower().replace('_', ' ')} '{full_name}' already exists") from None
        self.replace_columns(new_id, columns)
        return self.get_securable_by_id(new_id)

    def replace_columns(self, securable_id: int, cols: Sequence[Column]) -> None:
        self.conn.execute(delete(t.columns).where(t.columns.c.securable_id == securable_id))
        if cols:
            self.conn.execute(
                insert(t.columns),
                [
                    dict(securable_id=securable_id, position=i, name=c.name, type_text=c.type_text, nullable=c.nullable, comment=c.comment)
                    for i, c in enumerate(cols)
                ],
            )

    def _columns_for(self, ids: Iterable[int]) -> dict[int, list[Column]]:
        ids = list(ids)
        out: dict[int, list[Column]] = {i: [] for i in ids}
        if not ids:
            return out
        for r in self.conn.execute(_COLUMNS_OF, {"ids": ids}):
            out[r.securable_id].append(Column(r.name, r.type_text, r.nullable, r.comment, r.position))
        return out

    def _hydrate(self, rows: Sequence[Any]) -> list[Securable]:
        with_cols = [r.id for r in rows if r.kind in (Kind.TABLE.value, Kind.FUNCTION.value)]
        cols = self._columns_for(with_cols)
        return [_securable(r, cols.get(r.id, ())) for r in rows]

    def find_securable(self, kind: Kind, full_name: str) -> Securable | None:
        row = self.conn.execute(select(t.securables).where(t.securables.c.kind == kind.value, t.securables.c.full_name == full_name)).first()
        return self._hydrate([row])[0] if row is not None else None

    def get_securable_by_id(self, securable_id: int) -> Securable:
        row = self.conn.execute(_SECURABLE_BY_ID, {"id": securable_id}).first()
        if row is None:
            raise NotFound(f"securable {securable_id} does not exist")
        if row.kind not in (Kind.TABLE.value, Kind.FUNCTION.value):
            return _securable(row)
        # One id: a plain bound parameter (an expanding IN is rendered anew on every call).
        cols = [Column(r.name, r.type_text, r.nullable, r.comment, r.position) for r in self.conn.execute(_COLUMNS_OF_ONE, {"id": row.id})]
        return _securable(row, cols)

    def get_securables_by_ids(self, ids: Sequence[int], columns: bool = True) -> dict[int, Securable]:
        rows = self.conn.execute(_SECURABLES_BY_IDS, {"ids": list(ids)}).all() if ids else []
        return {s.id: s for s in (self._hydrate(rows) if columns else [_securable(r, ()) for r in rows])}

    def table_locations(self) -> list[tuple[str, str]]:
        """(full name, storage location) of every table that has a location, as stored."""
        s = t.securables
        rows = self.conn.execute(select(s.c.full_name, s.c.spec).where(s.c.kind == Kind.TABLE.value))
        return [(r.full_name, r.spec["storage_location"]) for r in rows if r.spec and r.spec.get("storage_location")]

    def metastore_id(self) -> int:
        return self.conn.execute(select(t.securables.c.id).where(t.securables.c.kind == Kind.METASTORE.value)).scalar_one()

    def list_children(
        self, parent_id: int, kinds: Sequence[Kind], after: str | None = None, limit: int | None = None
    ) -> list[Securable]:
        s = t.securables
        q = select(s).where(s.c.parent_id == parent_id, s.c.kind.in_([k.value for k in kinds])).order_by(s.c.name, s.c.id)
        if after is not None:
            q = q.where(s.c.name > after)
        if limit is not None:
            q = q.limit(limit)
        return self._hydrate(self.conn.execute(q).all())

    def list_children_by_ids(self, parent_ids: Sequence[int], kinds: Sequence[Kind]) -> list[Securable]:
        s = t.securables
        q = select(s).where(s.c.parent_id.in_(list(parent_ids)), s.c.kind.in_([k.value for k in kinds])).order_by(s.c.full_name)
        return self._hydrate(self.conn.execute(q).all())

    def count_children(self, parent_id: int) -> int:
        return self.conn.execute(select(func.count()).select_from(t.securables).where(t.securables.c.parent_id == parent_id)).scalar_one()

    def descendant_ids(self, root_id: int) -> list[int]:
        s = t.securables
        tree = select(s.c.id).where(s.c.id == root_id).cte("tree", recursive=True)
        tree = tree.union_all(select(s.c.id).join(tree, s.c.parent_id == tree.c.id))
        return list(self.conn.execute(select(tree.c.id)).scalars())

    def update_securable(self, securable_id: int, actor: str, **changes: Any) -> None:
        values: dict[str, Any] = {k: v for k, v in changes.items() if k in ("owner", "comment", "properties", "name", "full_name")}
        spec_changes = {k: v for k, v in changes.items() if k in _SPEC_FIELDS}
        if spec_changes:
            spec = dict(self.conn.execute(select(t.securables.c.spec).where(t.securables.c.id == securable_id)).scalar_one() or {})
            spec.update(spec_changes)
            values["spec"] = {k: v for k, v in spec.items() if v is not None}
        values.update(updated_at=now(), updated_by=actor)
        self.conn.execute(update(t.securables).where(t.securables.c.id == securable_id).values(**values))

    def rename_subtree(self, root_id: int, old_prefix: str, new_prefix: str) -> None:
        """Rewrite full names below a renamed catalog or schema."""
        s = t.securables
        ids = self.descendant_ids(root_id)
        for row in self.conn.execute(select(s.c.id, s.c.full_name).where(s.c.id.in_(ids), s.c.id != root_id)).all():
            self.conn.execute(update(s).where(s.c.id == row.id).values(full_name=new_prefix + row.full_name[len(old_prefix):]))

    def delete_securable(self, securable_id: int) -> None:
        # Children, columns, grants and tags go with it through ON DELETE CASCADE.
        self.conn.execute(delete(t.securables).where(t.securables.c.id == securable_id))

    def securable_rows(self, ids: Iterable[int]) -> list[Any]:
        s = t.securables
        ids = [i for i in ids if -(2**63) <= i < 2**63]  # no row has an id the column cannot hold
        q = select(s.c.id, s.c.kind, s.c.parent_id, s.c.full_name, s.c.owner).where(s.c.id.in_(ids))
        return list(self.conn.execute(q))

    def chain_rows_by_name(self, kind: Kind, full_name: str) -> list[Any]:
        """The securable and all its ancestors, in one query."""
        return list(self.conn.execute(_CHAIN_BY_NAME, {"kind": kind.value, "full_name": full_name}))

    def search_securables(self, kinds: Sequence[Kind], prefix: str | None, after: int | None, limit: int) -> list[Securable]:
        s = t.securables
        q = select(s).where(s.c.kind.in_([k.value for k in kinds])).order_by(s.c.id).limit(limit)
        if prefix:
            q = q.where(or_(s.c.full_name == prefix, s.c.full_name.like(prefix.replace("%", r"\%").replace("_", r"\_") + ".%", escape="\\")))
        if after is not None:
            q = q.where(s.c.id > after)
        return self._hydrate(self.conn.execute(q).all())

    # grants --------------------------------------------------------------------------------
    def insert_grant(self, securable_id: int, principal: str, privilege: Privilege, actor: str) -> bool:
        if principal == ACCOUNT_USERS:
            self.ensure_account_users()
        g = t.grants
        exists = self.conn.execute(
            select(literal(1)).where(g.c.securable_id == securable_id, g.c.principal == principal, g.c.privilege == privilege.value)
        ).first()
        if exists:
            return False
        self.conn.execute(insert(g).values(securable_id=securable_id, principal=principal, privilege=privilege.value, granted_by=actor, granted_at=now()))
        return True

    def delete_grant(self, securable_id: int, principal: str, privilege: Privilege) -> bool:
        g = t.grants
        res = self.conn.execute(delete(g).where(g.c.securable_id == securable_id, g.c.principal == principal, g.c.privilege == privilege.value))
        return res.rowcount > 0

    def schema_rows(self, parent_id: int, *, catalog: bool) -> list[Any]:
        """(id, name, full_name, owner) of the schemas of catalog `parent_id`, or of schema `parent_id`."""
        return list(self.conn.execute(_SCHEMAS_OF if catalog else _SCHEMA_ROW, {"id": parent_id}).all())

    def table_candidates(
        self, schema_ids: Sequence[int], open_ids: Iterable[int], principals: Iterable[str] | None,
        after: tuple[str, str] | None, limit: int,
    ) -> list[Any]:
        """(id, name, full_name, owner, schema_id, schema_name) of the tables of `schema_ids` in (schema
        name, table name) order after `after`, and, unless `principals` is None, only those a caller
        with these principals could see: in an `open_ids` schema, owned, or with a grant to one of them.

        One statement over every schema. Straight to the driver: the id lists are inlined integers and
        the rest bound; SQLite's CROSS JOIN keeps schemas first and each one's tables read through
        ix_securables_parent (without statistics it would scan every table by kind, then sort)."""
        if not schema_ids:
            return []
        mark = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
        where = [f"sc.id IN ({','.join(str(int(i)) for i in schema_ids)})"]
        params: list[Any] = []
        if after is not None:
            where.append(f"(sc.name > {mark} OR (sc.name = {mark} AND tb.name > {mark}))")
            params += [after[0], after[0], after[1]]
        if principals is not None:
            who = sorted(principals)
            marks = ",".join([mark] * len(who))
            could = [f"tb.owner IN ({marks})", f"EXISTS (SELECT 1 FROM grants g WHERE g.securable_id = tb.id AND g.principal IN ({marks}))"]
            opened = ",".join(str(int(i)) for i in open_ids)
            if opened:
                could.insert(0, f"sc.id IN ({opened})")
            where.append(f"({' OR '.join(could)})")
            params += who + who
        join = "CROSS JOIN" if self.conn.dialect.name == "sqlite" else "JOIN"
        sql = (f"SELECT tb.id, tb.name, tb.full_name, tb.owner, sc.id, sc.name FROM securables sc {join} securables tb"
               f" ON tb.parent_id = sc.id AND tb.kind = 'TABLE' WHERE {' AND '.join(where)} ORDER BY sc.name, tb.name LIMIT {int(limit)}")
        return list(self.conn.exec_driver_sql(sql, tuple(params)).all())

    def grants_held(self, securable_ids: Sequence[int], principals: Iterable[str]) -> list[tuple[int, str, str]]:
        """The grants on `securable_ids` held by one of `principals` (a caller and its groups)."""
        if not securable_ids:
            return []
        # Straight to the driver: rendering an expanding IN of a thousand ids costs more than the query.
        mark = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
        who = sorted(principals)
        ids = ",".join(str(int(i)) for i in securable_ids)
        sql = f"SELECT securable_id, principal, privilege FROM grants WHERE securable_id IN ({ids}) AND principal IN ({','.join([mark] * len(who))})"
        return [(r[0], r[1], r[2]) for r in self.conn.exec_driver_sql(sql, tuple(who)).all()]

    def grants_on(self, securable_ids: Iterable[int]) -> list[tuple[int, str, str]]:
        g = t.grants
        q = select(g.c.securable_id, g.c.principal, g.c.privilege).where(g.c.securable_id.in_(list(securable_ids)))
        return [(r[0], r[1], r[2]) for r in self.conn.execute(q)]

    def list_grants(self, securable: Securable, principal: str | None) -> list[Grant]:
        g = t.grants
        q = select(g.c.principal, g.c.privilege).where(g.c.securable_id == securable.id).order_by(g.c.principal, g.c.privilege)
        if principal is not None:
            q = q.where(g.c.principal == principal)
        return [Grant(r.principal, Privilege(r.privilege), securable.kind, securable.full_name) for r in self.conn.execute(q)]

    # tags ----------------------------------------------------------------------------------
    def set_tag(self, securable_id: int, column: str, key: str, value: str) -> None:
        tg = t.tags
        where = and_(tg.c.securable_id == securable_id, tg.c.column_name == column, tg.c.key == key)
        if self.conn.execute(select(literal(1)).where(where)).first():
            self.conn.execute(update(tg).where(where).values(value=value))
        else:
            self.conn.execute(insert(tg).values(securable_id=securable_id, column_name=column, key=key, value=value))

    def unset_tag(self, securable_id: int, column: str, key: str) -> bool:
        tg = t.tags
        res = self.conn.execute(delete(tg).where(tg.c.securable_id == securable_id, tg.c.column_name == column, tg.c.key == key))
        return res.rowcount > 0

    def tags_for(self, securables: Sequence[Securable]) -> dict[int, list[Tag]]:
        by_id = {s.id: s for s in securables}
        out: dict[int, list[Tag]] = {i: [] for i in by_id}
        if not by_id:
            return out
        tg = t.tags
        q = select(tg).where(tg.c.securable_id.in_(list(by_id))).order_by(tg.c.securable_id, tg.c.column_name, tg.c.key)
        for r in self.conn.execute(q):
            s = by_id[r.securable_id]
            out[r.securable_id].append(Tag(s.kind, s.full_name, r.key, r.value, r.column_name or None))
        return out

    # storage paths -------------------------------------------------------------------------
    def lock_storage_paths(self) -> None:
        """Serialize overlap checks with the inserts they guard (PostgreSQL; SQLite writers are serial)."""
        serialize_appends(self.conn, STORAGE_PATHS_LOCK)

    def storage_paths_touching(self, path: str, above: Sequence[str]) -> list[tuple[int, str, str]]:
        """(securable id, kind, path) of every registered path equal to `path`, among `above`
        (its ancestors), or below it."""
        sp = t.storage_paths
        esc = path.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        below = sp.c.path.like((esc if esc.endswith("/") else esc + "/") + "%", escape="\\")
        q = select(sp.c.securable_id, sp.c.kind, sp.c.path).where(or_(sp.c.path == path, sp.c.path.in_(list(above)), below))
        return [(r[0], r[1], r[2]) for r in self.conn.execute(q.order_by(sp.c.path))]

    def insert_storage_path(self, securable_id: int, kind: Kind, path: str) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(t.storage_paths).values(securable_id=securable_id, kind=kind.value, path=path))
        except IntegrityError:
            from catalog.errors import PermissionDenied

            raise PermissionDenied(f"storage location {path} is already taken") from None

    def set_storage_path(self, securable_id: int, path: str) -> None:
        self.conn.execute(update(t.storage_paths).where(t.storage_paths.c.securable_id == securable_id).values(path=path))

    # audit ---------------------------------------------------------------------------------
    def insert_audit(self, **row: Any) -> None:
        self.insert_audits([row])

    def insert_audits(self, rows: Sequence[dict[str, Any]]) -> None:
        at = now()
        full = [{**_AUDIT_DEFAULTS, **row, "event_time": at} for row in rows]
        if self._audit_rows is not None:
            self._audit_rows += full
        elif full:
            self.conn.execute(_AUDIT_INSERT, full)

    def query_audit(
        self,
        principal: str | None,
        action: str | None,
        securable_prefix: str | None,
        since: datetime | None,
        until: datetime | None,
        result: AuditResult | None,
        after_id: int | None,
        limit: int,
        newest_first: bool = False,
    ) -> list[AuditEvent]:
        a = t.audit_events
        q = select(a).order_by(a.c.id.desc() if newest_first else a.c.id).limit(limit)
        q = self._audit_filters(q, principal, action, securable_prefix, since, until, result)
        if after_id is not None:
            q = q.where(a.c.id < after_id if newest_first else a.c.id > after_id)
        return [
            AuditEvent(
                r.id, _aware(r.event_time), r.principal, r.action, r.securable_kind, r.securable_name, dict(r.parameters or {}),
                AuditResult(r.result), r.error_code, r.error_message, r.request_id, r.source,
            )
            for r in self.conn.execute(q)
        ]

    def count_audit(self, principal: str | None, action: str | None, securable_prefix: str | None, since: datetime | None,
                    until: datetime | None, result: AuditResult | None) -> int:
        """How many events the same filters as `query_audit` match, on every page."""
        q = self._audit_filters(select(func.count()).select_from(t.audit_events), principal, action, securable_prefix, since, until, result)
        return int(self.conn.execute(q).scalar_one())

    @staticmethod
    def _audit_filters(q: Any, principal: str | None, action: str | None, securable_prefix: str | None, since: datetime | None,
                       until: datetime | None, result: AuditResult | None) -> Any:
        a = t.audit_events
        if principal:
            q = q.where(a.c.principal == principal)
        if action:
            q = q.where(a.c.action == action)
        if securable_prefix:
            esc = securable_prefix.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
            q = q.where(or_(a.c.securable_name == securable_prefix, a.c.securable_name.like(esc + ".%", escape="\\"), a.c.securable_name.like(esc + "/%", escape="\\")))
        if since:
            q = q.where(a.c.event_time >= since)
        if until:
            q = q.where(a.c.event_time < until)
        if result:
            q = q.where(a.c.result == result.value)
        return q

    # authorization change log --------------------------------------------------------------
    def log_authz_change(self, scope: str, securable_id: int | None = None, principal: str | None = None) -> None:
        serialize_appends(self.conn, AUTHZ_LOG_LOCK)
        self.conn.execute(insert(t.authz_log).values(scope=scope, securable_id=securable_id, principal=principal))

    def authz_changes_after(self, seq: int) -> list[tuple[int, str, int | None, str | None]]:
        return [(r[0], r[1], r[2], r[3]) for r in self.conn.execute(_AUTHZ_CHANGES, {"seq": seq})]

    def authz_high_water(self) -> int:
        return self.conn.execute(select(func.coalesce(func.max(t.authz_log.c.seq), 0))).scalar_one()
