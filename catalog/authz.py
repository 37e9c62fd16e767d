"""The authorization engine: privilege checks over a per-process cache kept exact by a change log.

A check walks the securable and its ancestors (at most four hops) and intersects the grantees of
the privilege with the caller's principals (itself and every group it reaches). Everything it
touches is cached: securable chains, grants indexed by privilege with ALL PRIVILEGES expanded,
group closures and the admin set. Every change that can alter a decision appends to `authz_log`
in the same transaction; each unit of work first reads the log past the cache's high-water mark
and evicts what it names. So a warm check costs dictionary lookups, and a grant or revoke made by
any process is seen by the very next unit of work.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from catalog.entities import EffectivePrivilege, Reason
from catalog.errors import Unauthenticated
from catalog.privileges import Kind, Privilege, effective_on, expand, holds_on
from catalog.store.metastore import MetastoreStore

_EMPTY: frozenset[str] = frozenset()
_NO_GRANTS: dict[Privilege, frozenset[str]] = {}  # shared: never mutated


@dataclass(frozen=True, slots=True)
class Node:
    id: int
    kind: Kind
    parent_id: int | None
    full_name: str
    owner: str


class AuthzCache:
    """Process-wide cache. Entries are only stored by a view that is in step with the log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seq = -1
        self.ids: dict[tuple[Kind, str], int] = {}
        self.nodes: dict[int, Node] = {}
        self.chains: dict[int, tuple[Node, ...]] = {}
        self.grants: dict[int, dict[Privilege, frozenset[str]]] = {}
        self.closures: dict[str, frozenset[str]] = {}
        self.admins: frozenset[str] | None = None

    def clear(self) -> None:
        self.ids.clear()
        self.nodes.clear()
        self.chains.clear()
        self.grants.clear()
        self.closures.clear()
        self.admins = None

    def sync(self, store: MetastoreStore) -> int:
        """Apply the change log past our high-water mark; return the seq this view stands at."""
        with self._lock:
            if self.seq < 0:
                self.clear()
                self.seq = store.authz_high_water()
                return self.seq
            changes = store.authz_changes_after(self.seq)
            for seq, scope, securable_id, _principal in changes:
                if scope == "PRINCIPAL":
                    self.closures.clear()
                    self.admins = None
                elif scope == "GRANTS" and securable_id is not None:
                    self.grants.pop(securable_id, None)
                elif scope == "SECURABLE" and securable_id is not None:
                    self.grants.pop(securable_id, None)
                    node = self.nodes.pop(securable_id, None)
                    if node is not None:
                        # Chains below this node embed it (owner); drop them all, they reload in one query.
                        self.chains.clear()
                else:  # SUBTREE: a drop or rename; ids below it vanish or change names
                    self.ids.clear()
                    self.nodes.clear()
                    self.chains.clear()
                    self.grants.clear()
                self.seq = seq
            return self.seq

    def view(self, store: MetastoreStore) -> AuthzView:
        return AuthzView(self, store, self.sync(store))


class AuthzView:
    """The engine as seen by one unit of work."""

    def __init__(self, cache: AuthzCache, store: MetastoreStore, seq: int) -> None:
        self.cache = cache
        self.store = store
        self.seq = seq
        # Chains loaded while this view is behind the shared cache stay private to the view.
        self._local_chains: dict[int, tuple[Node, ...]] = {}
        # Grants on many securables loaded for one principal only (`visible_among`): each holder set
        # is cut to that principal's groups, which answers its checks exactly and no one else's.
        self._held_by: str | None = None
        self._held: dict[int, dict[Privilege, frozenset[str]]] = {}

    def _fresh(self) -> bool:
        return self.seq == self.cache.seq

    # loading -------------------------------------------------------------------------------
    def resolve(self, kind: Kind, full_name: str) -> int | None:
        """The id of a securable, loading its chain; None when it does not exist."""
        sid = self.cache.ids.get((kind, full_name))
        if sid is not None and sid in self.cache.chains:
            return sid
        rows = self.store.chain_rows_by_name(kind, full_name)
        if not rows:
            return None
        nodes = [Node(r.id, Kind(r.kind), r.parent_id, r.full_name, r.owner) for r in rows]
        self._remember(nodes)
        return nodes[0].id

    def _remember(self, chain_nodes: list[Node]) -> None:
        by_id = {n.id: n for n in chain_nodes}
        first = chain_nodes[0]
        chain: list[Node] = []
        node: Node | None = first
        while node is not None:
            chain.append(node)
            node = by_id.get(node.parent_id) if node.parent_id is not None else None
        # Every suffix of the chain is the chain of that ancestor.
        target = self.cache.chains if self._fresh() else self._local_chains
        for i, n in enumerate(chain):
            target[n.id] = tuple(chain[i:])
        if self._fresh():
            for n in chain_nodes:
                self.cache.nodes[n.id] = n
                self.cache.ids[(n.kind, n.full_name)] = n.id

    def remember_children(self, parent_chain: tuple[Node, ...], rows: list[Node]) -> None:
        """Seed chains for many children of one parent at once (listing without N+1 queries)."""
        if not self._fresh():
            for n in rows:
                self._local_chains[n.id] = (n, *parent_chain)
            return
        for n in rows:
            self.cache.nodes[n.id] = n
            self.cache.ids[(n.kind, n.full_name)] = n.id
            self.cache.chains[n.id] = (n, *parent_chain)

    def chain(self, sid: int) -> tuple[Node, ...]:
        chain = self.cache.chains.get(sid)
        if chain is not None:
            return chain
        if sid in self._local_chains:
            return self._local_chains[sid]
        rows = self.store.securable_rows([sid])
        if not rows:
            return ()
        r = rows[0]
        self.resolve(Kind(r.kind), r.full_name)
        return self.cache.chains.get(sid) or self._local_chains.get(sid, ())

    def _grants(self, node: Node, principal: str | None = None) -> dict[Privilege, frozenset[str]]:
        g = self.cache.grants.get(node.id)
        if g is None:
            if principal is not None and principal == self._held_by:
                g = self._held.get(node.id)
                if g is not None:
                    return g
            g = self.load_grants([node])[node.id]
        return g

    def visible_among(self, principal: str, parent_chains: dict[int, tuple[Node, ...]], nodes: list[Node]) -> list[Node]:
        """The `nodes` (children of the parents in `parent_chains`) that `principal` may see, with
        a query for the grants `principal` holds on them instead of one for all their grants: a
        listing over thousands of securables reads a few rows per visible one."""
        if self.is_admin(principal):
            return list(nodes)
        ps = self.principals(principal)
        parents = [c[0] for c in parent_chains.values() if c[0].id not in self.cache.grants]
        if parents:
            self.load_grants(parents)
        if self._held_by != principal:
            self._held_by, self._held = principal, {}
        wanted = [n for n in nodes if n.id not in self.cache.grants and n.id not in self._held]
        if wanted:
            kinds = {n.id: n.kind for n in wanted}
            acc: dict[int, dict[Privilege, set[str]]] = {}
            for sid, holder, privilege in self.store.grants_held(list(kinds), ps):
                for p in expand(Privilege(privilege), kinds[sid]):
                    acc.setdefault(sid, {}).setdefault(p, set()).add(holder)
            self._held.update(dict.fromkeys(kinds, _NO_GRANTS))  # most hold nothing: one shared empty mapping
            self._held.update({sid: {p: frozenset(h) for p, h in privs.items()} for sid, privs in acc.items()})
        # Sight needs ownership somewhere up the chain or a grant to the caller, on the node or above
        # it, of a privilege that counts there: a node with neither is hidden without a full check.
        open_parents = self.open_parents(principal, parent_chains, {n.kind for n in nodes})
        maybe = []
        for n in nodes:
            g = self.cache.grants.get(n.id) or self._held.get(n.id) or {}
            if n.parent_id in open_parents or n.owner in ps or any(not h.isdisjoint(ps) for h in g.values()):
                maybe.append(n)
        for parent_id, chain in parent_chains.items():
            self.remember_children(chain, [n for n in maybe if n.parent_id == parent_id])
        return [n for n in maybe if self.can_see(principal, n.id)]

    def open_parents(self, principal: str, parent_chains: dict[int, tuple[Node, ...]], kinds: set[Kind]) -> set[int]:
        """The parents under which a child of `kinds` may be visible to `principal` without a grant
        or ownership of its own: the caller owns something up the chain or holds there a privilege
        that counts on such a child. Under any other parent, a child with neither is hidden."""
        ps = self.principals(principal)
        counts = frozenset({Privilege.BROWSE}.union(*(effective_on(Kind.MODEL if k is Kind.MODEL_VERSION else k) for k in kinds)))
        return {
            pid for pid, chain in parent_chains.items()
            if any(n.owner in ps or any(not self._grants(n, principal).get(p, _EMPTY).isdisjoint(ps) for p in counts)
                   for n in chain if n.kind is not Kind.METASTORE)
        }

    def load_grants(self, nodes: list[Node]) -> dict[int, dict[Privilege, frozenset[str]]]:
        kinds = {n.id: n.kind for n in nodes}
        acc: dict[int, dict[Privilege, set[str]]] = {n.id: {} for n in nodes}
        for sid, principal, privilege in self.store.grants_on(kinds):
            for p in expand(Privilege(privilege), kinds[sid]):
                acc[sid].setdefault(p, set()).add(principal)
        out = {sid: {p: frozenset(s) for p, s in privs.items()} for sid, privs in acc.items()}
        if self._fresh():
            self.cache.grants.update(out)
        return out

    def principals(self, principal: str) -> frozenset[str]:
        """The principal and every group it belongs to, directly or through nested groups."""
        got = self.cache.closures.get(principal)
        if got is not None:
            return got
        if self.store.find_principal(principal) is None:
            raise Unauthenticated(f"principal '{principal}' does not exist")
        groups = {g for _m, g in self.store.group_edges_from(principal)}
        got = frozenset({principal, *groups})
        if self._fresh():
            self.cache.closures[principal] = got
        return got

    def admins(self) -> frozenset[str]:
        got = self.cache.admins
        if got is None:
            from sqlalchemy import select

            from catalog.store import tables as t

            got = frozenset(self.store.conn.execute(select(t.principals.c.name).where(t.principals.c.is_admin)).scalars())
            if self._fresh():
                self.cache.admins = got
        return got

    # decisions -----------------------------------------------------------------------------
    def is_admin(self, principal: str) -> bool:
        return not self.admins().isdisjoint(self.principals(principal))

    def has(self, principal: str, privilege: Privilege, sid: int) -> bool:
        """Whether `principal` holds `privilege` on securable `sid` (owner, grant, inheritance, admin)."""
        # The hot path of every check: plain dictionary lookups, loaders only on a miss.
        cache = self.cache
        ps = cache.closures.get(principal) or self.principals(principal)
        admins = cache.admins if cache.admins is not None else self.admins()
        if admins and not admins.isdisjoint(ps):
            return True
        chain = cache.chains.get(sid) or self.chain(sid)
        if not chain:
            return False
        if chain[0].owner in ps and holds_on(privilege, chain[0].kind):
            return True
        grants = cache.grants
        for node in chain:
            g = grants.get(node.id)
            if g is None:
                g = self._grants(node, principal)
            holders = g.get(privilege)
            if holders is not None and not holders.isdisjoint(ps):
                return True
        return False

    def has_here(self, principal: str, privilege: Privilege, sid: int) -> bool:
        """`privilege` held on `sid` itself (admin, owner, or granted on it), not through a parent:
        for privileges named alike on a parent and a child that mean different things."""
        ps = self.principals(principal)
        if not self.admins().isdisjoint(ps):
            return True
        chain = self.chain(sid)
        if not chain:
            return False
        if chain[0].owner in ps:
            return True
        holders = self._grants(chain[0], principal).get(privilege)
        return holders is not None and not holders.isdisjoint(ps)

    def owns(self, principal: str, sid: int, *, ancestors: bool = True) -> bool:
        ps = self.principals(principal)
        chain = self.chain(sid)
        if not ancestors:
            chain = chain[:1]
        return any(n.owner in ps for n in chain if n.kind is not Kind.METASTORE)

    def has_usage(self, principal: str, sid: int) -> bool:
        """USE CATALOG on the catalog and USE SCHEMA on the schema above (or at) `sid`."""
        for node in self.cache.chains.get(sid) or self.chain(sid):
            kind = node.kind
            if (kind is Kind.SCHEMA and not self.has(principal, Privilege.USE_SCHEMA, node.id)) or \
                    (kind is Kind.CATALOG and not self.has(principal, Privilege.USE_CATALOG, node.id)):
                return False
        return True

    def has_any(self, principal: str, sid: int) -> bool:
        ps = self.principals(principal)
        chain = self.chain(sid)
        if not chain:
            return False
        kind = chain[0].kind if chain[0].kind is not Kind.MODEL_VERSION else Kind.MODEL
        if chain[0].owner in ps:
            return True
        wanted = effective_on(kind)
        for node in chain:
            for priv, holders in self._grants(node, principal).items():
                if priv in wanted and not holders.isdisjoint(ps):
                    return True
        return False

    def can_manage(self, principal: str, sid: int) -> bool:
        """Grant on, transfer, alter or drop `sid`: admin, owner of it or a parent, or MANAGE."""
        if self.is_admin(principal) or self.owns(principal, sid):
            return True
        if self.has(principal, Privilege.CAN_MANAGE, sid):  # a serving endpoint's MANAGE (it has no containers)
            return True
        return self.has(principal, Privilege.MANAGE, sid) and self.has_usage(principal, self._parent_of(sid))

    def can_see(self, principal: str, sid: int) -> bool:
        """Whether the securable's metadata is visible: admin, ownership, BROWSE, or usage and a privilege."""
        if self.is_admin(principal) or self.owns(principal, sid):
            return True
        chain = self.chain(sid)
        if not chain:
            return False
        if chain[0].kind is Kind.METASTORE:
            return True
        if self.has(principal, Privilege.BROWSE, sid):
            return True
        if not self.has_any(principal, sid):
            return False
        return self.has_usage(principal, self._parent_of(sid))

    def _parent_of(self, sid: int) -> int:
        chain = self.chain(sid)
        return chain[1].id if len(chain) > 1 else sid

    # explanations --------------------------------------------------------------------------
    def explain(self, principal: str, sid: int) -> list[EffectivePrivilege]:
        """Every privilege `principal` holds on `sid`, each with the reasons it holds."""
        chain = self.chain(sid)
        kind = chain[0].kind
        check_kind = Kind.MODEL if kind is Kind.MODEL_VERSION else kind
        ps = self.principals(principal)
        paths = self._group_paths(principal)
        reasons: dict[Privilege, list[Reason]] = {}
        wanted = effective_on(check_kind)
        if not self.admins().isdisjoint(ps):
            for p in wanted:
                reasons.setdefault(p, []).append(Reason("ADMIN"))
        if chain[0].owner in ps:
            via = paths.get(chain[0].owner, ())
            for p in wanted:
                reasons.setdefault(p, []).append(Reason("OWNER", None, kind, chain[0].full_name, chain[0].owner, via))
        nodes = {n.id: n for n in chain}
        for node_id, grantee, granted in sorted(self.store.grants_on(nodes), key=lambda g: (g[0] != sid, g[1], g[2])):
            if grantee not in ps:
                continue
            node = nodes[node_id]
            how = "DIRECT" if node_id == sid else "INHERITED"
            for p in expand(Privilege(granted), node.kind):
                if p in wanted:
                    reasons.setdefault(p, []).append(
                        Reason(how, granted, node.kind, node.full_name or None, grantee, paths.get(grantee, ()))
                    )
        return [EffectivePrivilege(p, tuple(r)) for p, r in sorted(reasons.items(), key=lambda kv: kv[0].value)]

    def _group_paths(self, principal: str) -> dict[str, tuple[str, ...]]:
        """For each group `principal` reaches, the shortest chain of groups leading to it."""
        parents: dict[str, list[str]] = {}
        for member, group in self.store.group_edges_from(principal):
            parents.setdefault(member, []).append(group)
        paths: dict[str, tuple[str, ...]] = {principal: ()}
        queue = deque([principal])
        while queue:
            m = queue.popleft()
            for g in sorted(parents.get(m, ())):
                if g not in paths:
                    paths[g] = (*paths[m], g)
                    queue.append(g)
        return paths
