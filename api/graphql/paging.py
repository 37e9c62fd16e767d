"""Loaders and paging: per-request batch caches, and Relay connections over the services' own paging.

A list resolver primes the loaders with every object it returns, so a query for 100 tables with
their tags, grants, privileges and history costs a handful of governed calls, not one per row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import graphene
from graphene import relay

from api.graphql.limits import DEFAULT_FIRST
from catalog.client import Cairn
from catalog.errors import CairnError, InvalidArgument

MAX_FIRST = 1000


class Loaders:
    """Request-scoped batch caches keyed by securable id (and by the field's arguments).

    A list resolver registers the objects it returns (`prime`); the first time a field asks for the
    tags (grants, effective privileges, history) of one of them, they are loaded for all of them in
    one governed call, and only that field's.
    """

    def __init__(self, cairn: Cairn) -> None:
        self.cairn = cairn
        self.known: dict[int, Any] = {}
        self.caches: dict[tuple[Any, ...], dict[int, Any]] = {}

    def prime(self, securables: list[Any]) -> None:
        for s in securables:
            self.known.setdefault(s.id, s)

    def tags_of(self, s: Any) -> list[Any]:
        return self.load(s, self.cairn.tags.list_tags_many, "tags")

    def grants_of(self, s: Any) -> list[Any]:
        return self.load(s, self.cairn.grants.list_grants_many, "grants")

    def privileges_of(self, s: Any, principal: str | None) -> list[Any]:
        return self.load(s, lambda xs: self.cairn.grants.get_effective_privileges_many(xs, principal), "privileges", principal,
                         kinds=(s.kind.value,))

    def history_of(self, s: Any, limit: int) -> list[dict[str, Any]]:
        return self.load(s, lambda xs: self.cairn.data.history_many(xs, limit), "history", limit, kinds=("TABLE",))

    def partitions_of(self, s: Any) -> list[str] | None:
        found = self.load(s, self.cairn.tables.partition_columns_many, "partitions", kinds=("TABLE",))
        return None if found is None else list(found)

    def load(self, s: Any, fetch: Callable[[list[Any]], dict[int, Any]], *key: Any, kinds: tuple[str, ...] | None = None) -> Any:
        """`s`'s entry of the cache named `key`, loading every known securable (of `kinds`) missing
        from it in one call. A row's error (NOT_FOUND, PERMISSION_DENIED) is its entry, raised for
        that row's field alone; an error of the whole call is every row's, so it is not retried."""
        cache = self.caches.setdefault(key, {})
        if s.id not in cache:
            self.prime([s])
            missing = [x for i, x in self.known.items() if i not in cache and (kinds is None or x.kind.value in kinds)]
            try:
                loaded = fetch(missing)
            except CairnError as exc:  # the whole batch refused (an unknown principal): once, for every row
                loaded = {x.id: exc for x in missing}
            for x in missing:
                cache[x.id] = loaded.get(x.id, [])
        entry = cache[s.id]
        if isinstance(entry, Exception):
            raise entry
        return entry


def ctx(info: Any) -> tuple[Cairn, Loaders]:
    return info.context["cairn"], info.context["loaders"]


def listed(fn: Any, *args: Any, first: int, after: str | None = None) -> list[tuple[Any, str]]:
    """Up to `first` items of a paged service listing, from page token `after`, each with the
    service's page token for what follows it (its cursor)."""
    out: list[tuple[Any, str]] = []
    token = after
    while len(out) < first:
        page = fn(*args, page_token=token, max_results=min(MAX_FIRST, first - len(out)))
        out += [(x, page.cursor(i)) for i, x in enumerate(page)]
        token = page.next_page_token
        if not token:
            break
    return out


def connection_of(node: Any) -> Any:
    """The Relay connection type over `node` (`TableConnection` over `Table`)."""
    return relay.Connection.create_type(f"{node.__name__}Connection", node=node)


def connection(node: Any, **args: Any) -> relay.ConnectionField:
    """A Relay connection; `first` defaults to DEFAULT_FIRST, as the REST API's page size does."""
    return relay.ConnectionField(node, first=graphene.Int(default_value=DEFAULT_FIRST), **args)


def forward(kw: dict[str, Any]) -> tuple[int, str | None]:
    """A connection's `first` and `after`, checked (connections page forward only)."""
    if kw.get("last") is not None or kw.get("before"):
        raise InvalidArgument("connections page forward only: use first and after")
    first = kw.get("first")
    if first is None or first < 0 or first > MAX_FIRST:
        raise InvalidArgument(f"first must be between 0 and {MAX_FIRST}, got {first}")
    return first, kw.get("after") or None


def page(connection: Any, info: Any, kw: dict[str, Any], fn: Any, *args: Any, prime: bool = True) -> Any:
    """One page of a connection, read through the service's own paging.

    An item's cursor is the service's page token for what follows it (keyset, not an offset): the
    page after a cursor costs one page of reads however deep it is, and stays in place when items
    are added or removed before it. `first + 1` items are read to know `hasNextPage`.
    """
    first, after = forward(kw)
    items = listed(fn, *args, first=first + 1, after=after)
    if prime:  # securables: their tags, grants, privileges and history load in batches
        ctx(info)[1].prime([x for x, _ in items[:first]])
    return edges(connection, items, first, after)


def edges(connection: Any, items: list[tuple[Any, str]], first: int, after: str | None) -> Any:
    """`connection` over the first `first` of (node, cursor) pairs; one more means a next page."""
    out = [connection.Edge(node=x, cursor=cursor) for x, cursor in items[:first]]
    return connection(edges=out, page_info=relay.PageInfo(
        start_cursor=out[0].cursor if out else None, end_cursor=out[-1].cursor if out else None,
        has_previous_page=after is not None, has_next_page=len(items) > first))
