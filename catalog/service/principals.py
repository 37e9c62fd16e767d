"""Users, groups (nested, acyclic) and service principals. Changing them takes a metastore admin."""

from __future__ import annotations

from catalog.entities import ACCOUNT_USERS, Page, Principal, PrincipalKind
from catalog.errors import FailedPrecondition, InvalidArgument, NotFound
from catalog.names import validate_principal_name
from catalog.service.common import Service, decode_token, encode_token, page_size


class PrincipalService(Service):
    def create_principal(self, name: str, kind: PrincipalKind | str = PrincipalKind.USER, is_admin: bool = False) -> Principal:
        """Create a user, group or service principal. Needs a metastore admin.

        Raises InvalidArgument, PermissionDenied, AlreadyExists.
        """
        with self._uow("create_principal", None, str(name), kind=str(getattr(kind, "value", kind)), is_admin=is_admin) as uow:
            try:
                pkind = PrincipalKind(str(getattr(kind, "value", kind)).upper())
            except ValueError:
                raise InvalidArgument(f"principal kind must be USER, GROUP or SERVICE_PRINCIPAL, not {kind!r}") from None
            name = validate_principal_name(name)
            uow.require_admin("creating principals")
            created = uow.store.insert_principal(name, pkind, uow.principal, is_admin)
            if is_admin:
                uow.store.log_authz_change("PRINCIPAL", principal=name)
            return created

    def create_user(self, name: str) -> Principal:
        return self.create_principal(name, PrincipalKind.USER)

    def create_group(self, name: str) -> Principal:
        return self.create_principal(name, PrincipalKind.GROUP)

    def create_service_principal(self, name: str) -> Principal:
        return self.create_principal(name, PrincipalKind.SERVICE_PRINCIPAL)

    def get_principal(self, name: str) -> Principal:
        """Any known principal; every principal may look others up, as in Databricks."""
        with self._uow("get_principal", None, str(name), write=False) as uow:
            uow.allow()
            return uow.store.get_principal(name)

    def list_principals(self, kind: PrincipalKind | str | None = None, page_token: str | None = None, max_results: int | None = None) -> Page[Principal]:
        with self._uow("list_principals", None, None, write=False, kind=str(getattr(kind, "value", kind)) if kind else None) as uow:
            uow.allow()
            pkind = PrincipalKind(str(getattr(kind, "value", kind)).upper()) if kind else None
            limit = page_size(max_results)
            rows = uow.store.list_principals(pkind, decode_token(page_token), limit + 1)
            more = len(rows) > limit
            rows = rows[:limit]
            return Page(tuple(rows), encode_token(rows[-1].name) if more else None, lambda p: encode_token(p.name))

    def delete_principal(self, name: str) -> None:
        """Remove a principal with its memberships and grants. Needs a metastore admin.

        Refused while it owns securables: transfer them first, so nothing is left ownerless.
        """
        with self._uow("delete_principal", None, str(name)) as uow:
            uow.require_admin("deleting principals")
            if name == ACCOUNT_USERS:
                raise InvalidArgument(f"'{ACCOUNT_USERS}' is built in and cannot be deleted")
            uow.store.get_principal(name)
            if name == uow.principal:
                raise FailedPrecondition("a principal cannot delete itself")
            owned = uow.store.count_owned(name)
            if owned:
                raise FailedPrecondition(f"principal '{name}' owns {owned} securable(s); transfer their ownership first")
            uow.store.delete_principal(name)
            uow.store.log_authz_change("PRINCIPAL", principal=name)

    def set_admin(self, name: str, is_admin: bool) -> Principal:
        """Make a principal a metastore admin, or stop it being one. Needs a metastore admin."""
        with self._uow("set_admin", None, str(name), is_admin=is_admin) as uow:
            uow.require_admin("changing metastore admins")
            uow.store.get_principal(name)
            uow.store.set_admin(name, bool(is_admin))
            uow.store.log_authz_change("PRINCIPAL", principal=name)
            return uow.store.get_principal(name)

    def add_member(self, group: str, member: str) -> list[str]:
        """Add a user, service principal or group to a group; a membership cycle is refused."""
        with self._uow("add_member", None, str(group), member=member) as uow:
            uow.require_admin("changing group membership")
            if ACCOUNT_USERS in (group, member):
                raise InvalidArgument(f"'{ACCOUNT_USERS}' is built in: every user and service principal is in it, and it is in no group")
            g = uow.store.get_principal(group)
            uow.store.get_principal(member)
            if g.kind is not PrincipalKind.GROUP:
                raise InvalidArgument(f"'{group}' is a {g.kind.value.lower()}, not a group")
            reachable = {parent for _m, parent in uow.store.group_edges_from(group)}
            if member == group or member in reachable:
                raise InvalidArgument(f"adding '{member}' to '{group}' would make a membership cycle")
            uow.store.add_member(group, member)
            uow.store.log_authz_change("PRINCIPAL", principal=member)
            return uow.store.list_members(group)

    def remove_member(self, group: str, member: str) -> list[str]:
        with self._uow("remove_member", None, str(group), member=member) as uow:
            uow.require_admin("changing group membership")
            if group == ACCOUNT_USERS:
                raise InvalidArgument(f"'{ACCOUNT_USERS}' is built in: every user and service principal is in it")
            uow.store.get_principal(group)
            if not uow.store.remove_member(group, member):
                raise NotFound(f"'{member}' is not a direct member of '{group}'")
            uow.store.log_authz_change("PRINCIPAL", principal=member)
            return uow.store.list_members(group)

    def list_members(self, group: str) -> list[str]:
        with self._uow("list_members", None, str(group), write=False) as uow:
            uow.allow()
            uow.store.get_principal(group)
            return uow.store.list_members(group)

    def list_groups_of(self, principal: str) -> list[str]:
        """Every group the principal belongs to, directly or through nested groups."""
        with self._uow("list_groups_of", None, str(principal), write=False) as uow:
            uow.allow()
            uow.store.get_principal(principal)
            return sorted({g for _m, g in uow.store.group_edges_from(principal)})
