"""Storage credentials and external locations: where external tables may live, and who may put them there.

As in Unity Catalog, both are securables directly under the metastore. An external location is a
storage URL (canonical, see catalog/storage.py) plus the storage credential that reaches it; its
owner (or an admin) grants CREATE EXTERNAL TABLE, READ FILES, WRITE FILES and CREATE MANAGED STORAGE
on it. No two locations overlap, none overlaps the metastore's own storage, and the paths of the
tables inside one are registered so that no two tables share files.

Creating a credential needs CREATE STORAGE CREDENTIAL on the metastore; creating a location needs
CREATE EXTERNAL LOCATION on the metastore and, when it names a credential, CREATE EXTERNAL LOCATION
granted on that credential itself (or owning it). Local storage needs no secret, so a credential is
optional and holds none: it stands for the identity the server reads files with.
"""

from __future__ import annotations

from typing import Any

from catalog import storage
from catalog.entities import Page, Securable
from catalog.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from catalog.privileges import Kind, Privilege
from catalog.service.base import UnitOfWork
from catalog.service.common import (
    Service,
    claim_location_path,
    decode_token,
    delete_securable,
    display,
    fetch,
    page_size,
    parse_for,
    resolve,
    storage_path,
    update_securable,
    validate_comment,
    visible_children,
)

CRED, LOC = Kind.STORAGE_CREDENTIAL, Kind.EXTERNAL_LOCATION


def _flag(value: Any, what: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise InvalidArgument(f"{what} must be true or false, not {value!r}")


def _get(uow: UnitOfWork, kind: Kind, name: str) -> tuple[int, str]:
    key = parse_for(kind, name).key
    sid = resolve(uow, kind, key)
    return sid, key


def _tables_inside(uow: UnitOfWork, path: str) -> list[tuple[int, str, str]]:
    return [r for r in uow.store.storage_paths_touching(path, storage.ancestors(path))
            if r[1] == Kind.TABLE.value and r[2] != path and storage.within(r[2], path)]


def _locations_using(uow: UnitOfWork, credential: str) -> list[Securable]:
    return [s for s in uow.store.list_children(uow.store.metastore_id(), (LOC,)) if s.credential_name == credential]


class StorageCredentialService(Service):
    def create_storage_credential(self, name: str, comment: str | None = None, read_only: bool = False) -> Securable:
        """Create a storage credential owned by the caller. Needs CREATE STORAGE CREDENTIAL on the metastore.

        Raises InvalidArgument, PermissionDenied, AlreadyExists.
        """
        with self._uow("create_storage_credential", CRED, display(name), comment=comment, read_only=read_only) as uow:
            fn = parse_for(CRED, name)
            root = uow.store.metastore_id()
            uow.require(Privilege.CREATE_STORAGE_CREDENTIAL, root, Kind.METASTORE, "metastore", usage=False)
            return uow.store.insert_securable(CRED, root, fn.name, fn.key, uow.principal, uow.principal, validate_comment(comment),
                                              spec={"read_only": bool(_flag(read_only, "read_only"))})

    def get_storage_credential(self, name: str) -> Securable:
        """A storage credential the caller may see (owner, admin, or any privilege on it); NotFound otherwise."""
        with self._uow("get_storage_credential", CRED, display(name), write=False) as uow:
            sid, key = _get(uow, CRED, name)
            uow.require_visible(sid, CRED, key)
            return fetch(uow, sid)

    def list_storage_credentials(self, page_token: str | None = None, max_results: int | None = None) -> Page[Securable]:
        """The storage credentials the caller may see, by name, one page at a time."""
        with self._uow("list_storage_credentials", Kind.METASTORE, None, write=False, page_token=page_token) as uow:
            uow.allow()
            return visible_children(uow, uow.store.metastore_id(), (CRED,), decode_token(page_token), page_size(max_results))

    def update_storage_credential(self, name: str, comment: str | None = None, new_name: str | None = None,
                                  read_only: bool | None = None) -> Securable:
        """Alter a credential's comment, name or read-only flag. Needs ownership or MANAGE.

        A rename is carried to the external locations that use the credential.
        """
        with self._uow("update_storage_credential", CRED, display(name), comment=comment, new_name=new_name, read_only=read_only) as uow:
            sid, key = _get(uow, CRED, name)
            uow.require_manage(sid, CRED, key, "alter")
            flag = _flag(read_only, "read_only")
            if flag is not None:
                uow.store.update_securable(sid, uow.principal, read_only=flag)
            if comment is None and new_name is None:
                if flag is None:
                    raise InvalidArgument("nothing to update: give a comment, a new name or read_only")
                return fetch(uow, sid)
            users = _locations_using(uow, key)
            updated = update_securable(uow, sid, CRED, key, comment=comment, new_name=new_name)
            for loc in users if updated.full_name != key else ():
                uow.store.update_securable(loc.id, uow.principal, credential_name=updated.full_name)
            return updated

    def delete_storage_credential(self, name: str, force: bool = False) -> None:
        """Drop a credential. Needs ownership or MANAGE. One that external locations use needs `force`
        (they are left without a credential)."""
        with self._uow("delete_storage_credential", CRED, display(name), force=force) as uow:
            sid, key = _get(uow, CRED, name)
            uow.require_manage(sid, CRED, key, "drop")
            users = _locations_using(uow, key)
            if users and not force:
                raise FailedPrecondition(f"storage credential '{key}' is used by external location(s) "
                                         f"{', '.join(s.full_name for s in users)}; drop it with force")
            for loc in users:
                uow.store.update_securable(loc.id, uow.principal, credential_name=None)
            delete_securable(uow, sid, CRED, key, cascade=False)


class ExternalLocationService(Service):
    def create_external_location(self, name: str, url: str, credential_name: str | None = None, comment: str | None = None,
                                 read_only: bool = False) -> Securable:
        """Create an external location at `url`, owned by the caller.

        Needs CREATE EXTERNAL LOCATION on the metastore, and on `credential_name` when given. `url` is
        an absolute path or URI (file://, s3://, ...), stored canonical; it may not overlap another
        external location, lie inside a table's folder, or overlap the metastore's own storage.
        Raises InvalidArgument (bad name or URL), NotFound (credential), PermissionDenied, AlreadyExists.
        """
        with self._uow("create_external_location", LOC, display(name), url=url, credential_name=credential_name,
                       comment=comment, read_only=read_only) as uow:
            fn = parse_for(LOC, name)
            root = uow.store.metastore_id()
            uow.require(Privilege.CREATE_EXTERNAL_LOCATION, root, Kind.METASTORE, "metastore", usage=False)
            if uow.authz.resolve(LOC, fn.key) is not None:  # the name first: IF NOT EXISTS relies on it
                raise AlreadyExists(f"external location '{fn.key}' already exists")
            cred = self._credential(uow, credential_name)
            path = storage_path(uow, url)
            claim_location_path(uow, path, self.metastore.settings.home)
            loc = uow.store.insert_securable(LOC, root, fn.name, fn.key, uow.principal, uow.principal, validate_comment(comment),
                                             spec={"storage_location": path, "credential_name": cred,
                                                   "read_only": bool(_flag(read_only, "read_only"))})
            uow.store.insert_storage_path(loc.id, LOC, path)
            return loc

    def get_external_location(self, name: str) -> Securable:
        """An external location the caller may see (owner, admin, or any privilege on it); NotFound otherwise."""
        with self._uow("get_external_location", LOC, display(name), write=False) as uow:
            sid, key = _get(uow, LOC, name)
            uow.require_visible(sid, LOC, key)
            return fetch(uow, sid)

    def list_external_locations(self, page_token: str | None = None, max_results: int | None = None) -> Page[Securable]:
        """The external locations the caller may see, by name, one page at a time."""
        with self._uow("list_external_locations", Kind.METASTORE, None, write=False, page_token=page_token) as uow:
            uow.allow()
            return visible_children(uow, uow.store.metastore_id(), (LOC,), decode_token(page_token), page_size(max_results))

    def update_external_location(self, name: str, url: str | None = None, credential_name: str | None = None,
                                 comment: str | None = None, new_name: str | None = None, read_only: bool | None = None,
                                 force: bool = False) -> Securable:
        """Alter a location's URL, credential, comment, name or read-only flag. Needs ownership or MANAGE.

        A new URL also needs CREATE EXTERNAL LOCATION on the metastore and is checked as on creation;
        one that would leave tables of the location outside it needs `force`. A new credential needs
        CREATE EXTERNAL LOCATION on it.
        """
        with self._uow("update_external_location", LOC, display(name), url=url, credential_name=credential_name, comment=comment,
                       new_name=new_name, read_only=read_only, force=force) as uow:
            sid, key = _get(uow, LOC, name)
            uow.require_manage(sid, LOC, key, "alter")
            current = fetch(uow, sid)
            changes: dict[str, Any] = {}
            if url is not None:
                # Moving a location is making a new one: ownership or MANAGE alone does not allow it.
                uow.require(Privilege.CREATE_EXTERNAL_LOCATION, uow.store.metastore_id(), Kind.METASTORE, "metastore", usage=False)
                path = storage_path(uow, url)
                claim_location_path(uow, path, self.metastore.settings.home, own_id=sid)
                left = [p for _i, _k, p in _tables_inside(uow, current.storage_location or "") if not storage.within(p, path)]
                if left and not force:
                    raise FailedPrecondition(f"external location '{key}' holds {len(left)} table(s) the new URL would leave outside it; "
                                             "use force to move it anyway")
                uow.store.set_storage_path(sid, path)
                changes["storage_location"] = path
            if credential_name is not None:
                changes["credential_name"] = self._credential(uow, credential_name or None)
            flag = _flag(read_only, "read_only")
            if flag is not None:
                changes["read_only"] = flag
            if changes:
                uow.store.update_securable(sid, uow.principal, **changes)
            if comment is None and new_name is None:
                if not changes:
                    raise InvalidArgument("nothing to update: give a url, credential_name, comment, new_name or read_only")
                return fetch(uow, sid)
            return update_securable(uow, sid, LOC, key, comment=comment, new_name=new_name)

    def delete_external_location(self, name: str, force: bool = False) -> None:
        """Drop an external location. Needs ownership or MANAGE. One that holds external tables needs
        `force`; the tables stay, and no new table can be created at their paths."""
        with self._uow("delete_external_location", LOC, display(name), force=force) as uow:
            sid, key = _get(uow, LOC, name)
            uow.require_manage(sid, LOC, key, "drop")
            inside = _tables_inside(uow, fetch(uow, sid).storage_location or "")
            if inside and not force:
                raise FailedPrecondition(f"external location '{key}' holds {len(inside)} external table(s); drop them first or use force")
            delete_securable(uow, sid, LOC, key, cascade=False)

    @staticmethod
    def _credential(uow: UnitOfWork, name: str | None) -> str | None:
        """The canonical name of a credential the caller may use for a location (CREATE EXTERNAL
        LOCATION granted on the credential itself: the metastore grant of that name does not count)."""
        if name is None:
            return None
        sid, key = _get(uow, CRED, name)
        if not uow.authz.has_here(uow.principal, Privilege.CREATE_EXTERNAL_LOCATION, sid):
            if not uow.authz.can_see(uow.principal, sid):
                raise uow.refuse(NotFound(f"storage credential '{key}' does not exist"))
            raise uow.refuse(PermissionDenied(f"{uow.principal} lacks CREATE EXTERNAL LOCATION on storage credential '{key}'"))
        return key

