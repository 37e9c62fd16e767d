"""Grants, ownership, and the effective-privilege ("why can P do X on S?") query."""

from __future__ import annotations

from collections.abc import Iterable

from catalog.entities import EffectivePrivilege, Grant, Securable
from catalog.errors import CairnError, InvalidArgument
from catalog.privileges import Kind, Privilege, check_grantable
from catalog.service.common import Service, display, fetch, locate


def _privileges(privileges: Iterable[Privilege | str] | Privilege | str) -> list[Privilege]:
    if isinstance(privileges, (str, Privilege)):
        privileges = [privileges]
    out = [Privilege.parse(p) for p in privileges]
    if not out:
        raise InvalidArgument("name at least one privilege")
    return out


class GrantService(Service):
    def grant(self, kind: Kind | str, name: str | None, principal: str, privileges: Iterable[Privilege | str] | Privilege | str) -> list[Grant]:
        """Grant privileges on a securable. Needs ownership of it or a parent, MANAGE, or admin.

        Returns the principal's direct grants on the securable afterwards. Raises InvalidArgument
        (a privilege that does not apply to this kind), NotFound, PermissionDenied.
        """
        return self._change("grant", kind, name, principal, privileges, add=True)

    def revoke(self, kind: Kind | str, name: str | None, principal: str, privileges: Iterable[Privilege | str] | Privilege | str) -> list[Grant]:
        """Revoke privileges; revoking one that was not granted is a no-op, as in Databricks."""
        return self._change("revoke", kind, name, principal, privileges, add=False)

    def _change(self, action: str, kind: Kind | str, name: str | None, principal: str, privileges: object, add: bool) -> list[Grant]:
        k = Kind.parse(kind)
        privs_text = [getattr(p, "value", p) for p in (privileges if isinstance(privileges, (list, tuple, set)) else [privileges])]
        with self._uow(action, k, display(name or "metastore"), principal=principal, privileges=privs_text) as uow:
            k, sid, key = locate(uow, k, name)
            privs = _privileges(privileges)  # type: ignore[arg-type]
            for p in privs:
                check_grantable(k, p)
            if k is Kind.METASTORE:
                uow.require_admin(f"{action} on the metastore")
            else:
                uow.require_manage(sid, k, key, action + " on")
            uow.store.get_principal(principal)
            for p in privs:
                if add:
                    uow.store.insert_grant(sid, principal, p, uow.principal)
                else:
                    uow.store.delete_grant(sid, principal, p)
            uow.store.log_authz_change("GRANTS", sid)
            return uow.store.list_grants(fetch(uow, sid), principal)

    def list_grants(self, kind: Kind | str, name: str | None, principal: str | None = None) -> list[Grant]:
        """Direct grants on a securable the caller may see, optionally for one principal."""
        k = Kind.parse(kind)
        with self._uow("list_grants", k, display(name or "metastore"), write=False, principal=principal) as uow:
            k, sid, key = locate(uow, k, name)
            uow.require_visible(sid, k, key)
            return uow.store.list_grants(fetch(uow, sid), principal)

    def list_grants_many(self, securables: list[Securable]) -> dict[int, list[Grant]]:
        """Direct grants on many securables the caller may see, in one query (batch loaders)."""
        with self._uow("list_grants", None, f"{len(securables)} securables", write=False) as uow:
            uow.allow()
            visible = {s.id: s for s in securables if uow.authz.can_see(uow.principal, s.id)}
            out: dict[int, list[Grant]] = {sid: [] for sid in visible}
            for sid, principal, privilege in sorted(uow.store.grants_on(visible), key=lambda g: (g[0], g[1], g[2])):
                s = visible[sid]
                out[sid].append(Grant(principal, Privilege(privilege), s.kind, s.full_name))
            return out

    def get_effective_privileges(self, kind: Kind | str, name: str | None, principal: str | None = None) -> list[EffectivePrivilege]:
        """Why can P do X on S: every privilege P holds on S with each reason it holds.

        Reasons name the grant (direct, or inherited from which parent), the group chain that
        reaches the grantee, ownership, or metastore admin. Asking about yourself needs only to
        see S; asking about someone else needs the right to manage S.
        """
        k = Kind.parse(kind)
        with self._uow("get_effective_privileges", k, display(name or "metastore"), write=False, principal=principal) as uow:
            k, sid, key = locate(uow, k, name)
            who = principal or uow.principal
            if who == uow.principal:
                uow.require_visible(sid, k, key)
            elif k is Kind.METASTORE:
                uow.require_admin("inspecting another principal's metastore privileges")
            else:
                uow.require_manage(sid, k, key, "inspect privileges on")
            uow.store.get_principal(who)
            return uow.authz.explain(who, sid)

    def get_effective_privileges_many(self, securables: list[Securable], principal: str | None = None) -> dict[int, list[EffectivePrivilege] | CairnError]:
        """`get_effective_privileges` for many securables (as returned by governed lists) in one call
        and one audit row (batch loaders): for each id, its privileges, or the error the single call
        would raise (NotFound for one the caller may not see, PermissionDenied for another principal's
        privileges on one the caller may not manage). The refused ones are named in the audit row."""
        with self._uow("get_effective_privileges", None, f"{len(securables)} securables", write=False, principal=principal) as uow:
            uow.allow()
            who = principal or uow.principal
            if who != uow.principal:
                uow.store.get_principal(who)
            out: dict[int, list[EffectivePrivilege] | CairnError] = {}
            for s in securables:
                try:
                    if who == uow.principal:
                        uow.require_visible(s.id, s.kind, s.full_name)
                    else:
                        uow.require_manage(s.id, s.kind, s.full_name, "inspect privileges on")
                    out[s.id] = uow.authz.explain(who, s.id)
                except CairnError as exc:
                    out[s.id] = exc
            refused = sorted(s.full_name for s in securables if isinstance(out[s.id], CairnError))
            if refused:
                uow.params["refused"] = refused
            return out

    def check(self, kind: Kind | str, name: str, privilege: Privilege | str) -> bool:
        """Whether the caller holds `privilege` on the securable (with usage on its containers)."""
        k = Kind.parse(kind)
        priv = Privilege.parse(privilege)
        with self._uow("check_privilege", k, display(name), write=False, privilege=priv.value) as uow:
            k, sid, key = locate(uow, k, name)
            uow.require_visible(sid, k, key)
            a = uow.authz
            usage_at = sid if k in (Kind.CATALOG, Kind.SCHEMA, Kind.METASTORE) else a.chain(sid)[1].id
            return a.has(uow.principal, priv, sid) and a.has_usage(uow.principal, usage_at)

    def transfer_ownership(self, kind: Kind | str, name: str, new_owner: str) -> Securable:
        """Make `new_owner` (a user, group or service principal) the owner. Needs ownership or MANAGE."""
        k = Kind.parse(kind)
        with self._uow("transfer_ownership", k, display(name), new_owner=new_owner) as uow:
            k, sid, key = locate(uow, k, name)
            if k is Kind.METASTORE:
                raise InvalidArgument("the metastore has admins, not an owner; use set_admin")
            uow.require_manage(sid, k, key, "transfer ownership of")
            uow.store.get_principal(new_owner)
            uow.store.update_securable(sid, uow.principal, owner=new_owner)
            uow.store.log_authz_change("SECURABLE", sid)
            return fetch(uow, sid)

