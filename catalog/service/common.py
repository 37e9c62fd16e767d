"""What every service shares: the unit-of-work factory, name resolution, paging."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from catalog import names, storage
from catalog.authz import Node
from catalog.entities import Column, Context, Page, Securable
from catalog.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from catalog.privileges import ONE_PART_KINDS, Kind, Privilege
from catalog.service.base import UnitOfWork, label

if TYPE_CHECKING:
    from catalog.runtime import Runtime

T = TypeVar("T")
MAX_PAGE = 1000
DEFAULT_PAGE = 100


class Service:
    """Base of the governed services: one instance is bound to one acting principal."""

    def __init__(self, metastore: Runtime, ctx: Context) -> None:
        self.metastore = metastore
        self.ctx = ctx

    def _uow(self, action: str, kind: Kind | None, name: str | None, /, *, write: bool = True, **params: Any) -> UnitOfWork:
        return UnitOfWork(self.metastore.engine, self.metastore.authz_cache, self.metastore.audit_log, self.ctx, action, kind, name, params, write)


def display(name: Any) -> str:
    """The name as the caller wrote it, for audit rows written before it is validated."""
    return name if isinstance(name, str) else repr(name)


def parse_for(kind: Kind, name: str) -> names.FullName:
    if kind is Kind.SERVING_ENDPOINT:  # Databricks endpoint names hold hyphens: always quoted
        return names.parse(f"`{names.validate_endpoint_name(name)}`", 1)
    levels = 1 if kind in ONE_PART_KINDS else {Kind.CATALOG: 1, Kind.SCHEMA: 2}.get(kind, 3)
    return names.parse(name, levels)


def resolve(uow: UnitOfWork, kind: Kind, full_name: str) -> int:
    """The id of an existing securable, or NotFound."""
    sid = uow.authz.resolve(kind, full_name)
    if sid is None:
        raise NotFound(f"{label(kind)} '{full_name}' does not exist")
    return sid


def fetch(uow: UnitOfWork, sid: int) -> Securable:
    return uow.store.get_securable_by_id(sid)


def page_size(max_results: int | None) -> int:
    if max_results is None or max_results == 0:
        return DEFAULT_PAGE
    if not isinstance(max_results, int) or max_results < 0:
        raise InvalidArgument(f"max_results must be a positive integer, got {max_results!r}")
    return min(max_results, MAX_PAGE)


def encode_token(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True).decode()
    except Exception:
        raise InvalidArgument(f"page_token {token!r} is not a token this service issued") from None


def visible_children(
    uow: UnitOfWork,
    parent_id: int,
    kinds: tuple[Kind, ...],
    after: str | None,
    limit: int,
    keep: Callable[[int], bool] | None = None,
) -> Page[Securable]:
    """A page of the children of `parent_id` the caller may see, in name order.

    Reads children in batches, seeds the authorization cache for the whole batch (one query for
    their grants) and filters in memory, so listing costs a few queries whatever the page size.
    """
    keep = keep or (lambda sid: uow.authz.can_see(uow.principal, sid))
    parent_chain = uow.authz.chain(parent_id)
    out: list[Securable] = []
    cursor = after
    while len(out) < limit:
        batch = uow.store.list_children(parent_id, kinds, after=cursor, limit=max(limit * 2, 200))
        if not batch:
            return Page(tuple(out), None, _after_name)
        nodes = [Node(s.id, s.kind, parent_id, s.full_name, s.owner) for s in batch]
        uow.authz.remember_children(parent_chain, nodes)
        uow.authz.load_grants(nodes)
        for s in batch:
            if keep(s.id):
                out.append(s)
                if len(out) == limit:
                    more = s is not batch[-1] or len(batch) == max(limit * 2, 200)
                    return Page(tuple(out), encode_token(s.name) if more else None, _after_name)
        cursor = batch[-1].name
    return Page(tuple(out), None, _after_name)


def _after_name(s: Securable) -> str:
    return encode_token(s.name)


def validate_properties(properties: dict[str, str] | None) -> dict[str, str] | None:
    if properties is None:
        return None
    if not isinstance(properties, dict):
        raise InvalidArgument("properties must be a mapping of strings to strings")
    out = {}
    for k, v in properties.items():
        if not isinstance(k, str) or not k or len(k) > 255:
            raise InvalidArgument(f"property key {k!r} must be a non-empty string of at most 255 characters")
        out[k] = "" if v is None else str(v)
    return out


def validate_comment(comment: str | None) -> str | None:
    if comment is not None and not isinstance(comment, str):
        raise InvalidArgument("comment must be a string")
    if comment is not None and len(comment) > 65535:
        raise InvalidArgument("comment is longer than 65535 characters")
    return comment


def update_securable(
    uow: UnitOfWork,
    sid: int,
    kind: Kind,
    full_name: str,
    *,
    comment: str | None = None,
    properties: dict[str, str] | None = None,
    new_name: str | None = None,
) -> Securable:
    """Alter comment, properties or name of a securable the caller may manage."""
    uow.require_manage(sid, kind, full_name, "alter")
    changes: dict[str, Any] = {}
    if comment is not None:
        changes["comment"] = validate_comment(comment)
    if properties is not None:
        changes["properties"] = validate_properties(properties)
    if new_name is not None:
        part = names.validate_part(new_name.strip("`"))
        parent = full_name.rsplit(".", 1)[0] + "." if "." in full_name else ""
        new_full = parent + part
        if new_full != full_name:
            if uow.authz.resolve(kind, new_full) is not None:
                from catalog.errors import AlreadyExists

                raise AlreadyExists(f"{label(kind)} '{new_full}' already exists")
            changes.update(name=part, full_name=new_full)
            uow.store.rename_subtree(sid, full_name + ".", new_full + ".")
            uow.store.log_authz_change("SUBTREE", sid)
    if not changes:
        raise InvalidArgument("nothing to update: give a comment, properties or a new name")
    uow.store.update_securable(sid, uow.principal, **changes)
    return fetch(uow, sid)


def delete_securable(uow: UnitOfWork, sid: int, kind: Kind, full_name: str, cascade: bool) -> None:
    """Drop a securable the caller may manage; a non-empty container needs `cascade`."""
    uow.require_manage(sid, kind, full_name, "drop")
    if not cascade and kind in (Kind.CATALOG, Kind.SCHEMA) and uow.store.count_children(sid):
        from catalog.errors import FailedPrecondition

        raise FailedPrecondition(f"{label(kind)} '{full_name}' is not empty; drop it with cascade")
    uow.store.delete_securable(sid)
    uow.store.log_authz_change("SUBTREE", sid)


def locate(uow: UnitOfWork, kind: Kind | str, name: str | None) -> tuple[Kind, int, str]:
    """Resolve any securable by kind and name: `metastore`, `cat`, `cat.sch`, `cat.sch.obj`,
    or `cat.sch.model/3` for a model version. Returns (kind, id, canonical name)."""
    kind = Kind.parse(kind)
    if kind is Kind.METASTORE:
        return kind, uow.store.metastore_id(), "metastore"
    if not isinstance(name, str):
        raise InvalidArgument(f"a {label(kind)} name is required")
    if kind is Kind.MODEL_VERSION:
        model, _, number = name.rpartition("/")
        if not model or not number.isdigit():
            raise InvalidArgument(f"a model version is named 'catalog.schema.model/N', not {name!r}")
        key = f"{parse_for(Kind.MODEL, model).key}/{int(number)}"
    else:
        key = parse_for(kind, name).key
    return kind, resolve(uow, kind, key), key


# storage paths ---------------------------------------------------------------------------------
def storage_path(uow: UnitOfWork, location: Any) -> str:
    """The canonical spelling of a location the caller gave; a bad one is refused (and audited as such)."""
    try:
        return storage.canonical(location)
    except InvalidArgument as exc:
        raise uow.refuse(exc) from None


def _outside_managed(uow: UnitOfWork, path: str, home: Any) -> None:
    # The whole home, not only its warehouse: the SQLite metastore and other state live there too.
    root = storage.canonical(str(home))
    if storage.overlaps(path, root):
        raise uow.refuse(PermissionDenied(
            f"storage location {path} overlaps the metastore's managed storage ({root}); managed folders belong to "
            "the tables Cairn creates there, and external data must live in an external location outside it"))


def _named(uow: UnitOfWork, rows: list[tuple[int, str, str]]) -> str:
    """The other objects at a path, named only where the caller may see them."""
    seen = [uow.store.get_securable_by_id(sid) for sid, _kind, _p in rows[:5] if uow.authz.can_see(uow.principal, sid)]
    return "; it overlaps " + ", ".join(f"{label(s.kind)} '{s.full_name}'" for s in seen) if seen else ""


def claim_table_path(uow: UnitOfWork, path: str, home: Any) -> Securable:
    """Check that an external table may occupy canonical `path`; returns the external location holding it.

    The path must lie strictly inside an external location on which the caller holds CREATE EXTERNAL
    TABLE, outside the metastore's home (`home`: its database and managed storage), and overlap no
    other table (managed tables' folders are registered too) or location. The caller registers the
    path (`store.insert_storage_path`) in the same transaction; until it commits, other claims wait.
    """
    uow.store.lock_storage_paths()
    _outside_managed(uow, path, home)
    touching = uow.store.storage_paths_touching(path, storage.ancestors(path))
    holders = [r for r in touching if r[1] == Kind.EXTERNAL_LOCATION.value and r[2] != path and storage.within(path, r[2])]
    if not holders and any(r[1] == Kind.EXTERNAL_LOCATION.value and r[2] == path for r in touching):
        raise uow.refuse(PermissionDenied(
            f"storage location {path} is the root of an external location; a table takes a folder below it"))
    if not holders:
        raise uow.refuse(PermissionDenied(
            f"storage location {path} is not inside an external location; external tables live in external "
            "locations (CREATE EXTERNAL LOCATION) on which their creator holds CREATE EXTERNAL TABLE"))
    loc = uow.store.get_securable_by_id(holders[0][0])
    visible = uow.authz.can_see(uow.principal, loc.id)
    if not uow.authz.has(uow.principal, Privilege.CREATE_EXTERNAL_TABLE, loc.id):
        where = f"external location '{loc.full_name}'" if visible else "the external location holding it"
        raise uow.refuse(PermissionDenied(f"{uow.principal} lacks CREATE EXTERNAL TABLE on {where}; cannot use {path}"))
    others = [r for r in touching if r[0] != loc.id]
    if others:
        raise uow.refuse(PermissionDenied(
            f"storage location {path} overlaps the storage of another table or external location{_named(uow, others)}"))
    if loc.read_only:
        raise uow.refuse(FailedPrecondition(f"external location '{loc.full_name}' is read-only; no table can be created in it"))
    return loc


def claim_location_path(uow: UnitOfWork, path: str, home: Any, own_id: int | None = None) -> None:
    """Check that an external location may cover canonical `path`: outside managed storage, overlapping
    no other location and lying inside no table's folder (it may contain existing external tables)."""
    uow.store.lock_storage_paths()
    _outside_managed(uow, path, home)
    touching = [r for r in uow.store.storage_paths_touching(path, storage.ancestors(path)) if r[0] != own_id]
    clash = [r for r in touching if r[1] != Kind.TABLE.value or r[2] == path or not storage.within(r[2], path)]
    if clash:
        raise uow.refuse(PermissionDenied(
            f"storage location {path} overlaps another external location or lies inside a table's folder{_named(uow, clash)}"))


def holding_location(uow: UnitOfWork, path: str) -> Securable | None:
    """The external location a canonical path lies in, if any."""
    rows = uow.store.storage_paths_touching(path, storage.ancestors(path))
    for sid, kind, p in rows:
        if kind == Kind.EXTERNAL_LOCATION.value and p != path and storage.within(path, p):
            return uow.store.get_securable_by_id(sid)
    return None


# columns and credentials, shared by the table and model services ---------------------------
CREDENTIAL_TTL = timedelta(hours=1)
_TYPE_SHAPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\s*([<(].*[>)])?", re.S)
TIME_TYPES = ("timestamp", "timestamp_ntz", "date")


def normalize_type(type_text: str, column: str) -> str:
    """Validate a Databricks SQL type and return its canonical lower-case spelling.

    >>> normalize_type("DECIMAL(10,2)", "price")
    'decimal(10, 2)'
    """
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    text = (type_text or "").strip()
    if not _TYPE_SHAPE.fullmatch(text):
        raise InvalidArgument(f"column '{column}': {type_text!r} is not a SQL type")
    try:
        dtype = exp.DataType.build(text, dialect="databricks", udt=False)
    except (SqlglotError, ValueError) as exc:
        raise InvalidArgument(f"column '{column}': {type_text!r} is not a SQL type ({exc})") from None
    return dtype.sql("databricks").lower()


def validate_columns(columns: Sequence[Column | dict[str, Any]]) -> list[Column]:
    """Columns with valid, unique names and types, in the given order."""
    out: list[Column] = []
    seen: set[str] = set()
    for i, c in enumerate(columns):
        if isinstance(c, dict):
            unknown = set(c) - {"name", "type_text", "type", "nullable", "comment", "position"}
            if unknown:
                raise InvalidArgument(f"column {i + 1}: unknown field(s) {sorted(unknown)}")
            c = Column(str(c.get("name", "")), str(c.get("type_text") or c.get("type") or ""), bool(c.get("nullable", True)), c.get("comment"))
        name = names.validate_part(c.name, whole=c.name or f"column {i + 1}")
        if name in seen:
            raise InvalidArgument(f"column '{name}' appears twice")
        seen.add(name)
        out.append(Column(name, normalize_type(c.type_text, name), c.nullable, validate_comment(c.comment), i))
    return out


def webhook_audience(uow: UnitOfWork) -> Callable[[str, int | None], bool]:
    """Which webhooks still hear a registry event: those whose owner may still create them (MANAGE
    on the model, or an admin for a metastore-wide one). A revoked MANAGE stops the deliveries too."""
    a = uow.authz
    return lambda owner, sid: a.is_admin(owner) or (sid is not None and a.can_manage(owner, sid))
