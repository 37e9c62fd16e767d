"""Running a request: bound, parse and validate the text (cached), check what it could cost, execute
it as the caller's principal inside one audit request, and map errors once (api/errors.py).

A query is bounded before it is parsed (tokens, aliases, nesting: the parser and the validator cost
grows with them, and validation compares aliased fields pairwise) and before it runs (depth of
fields, objects its connections could return): see api/graphql/limits.py.
"""

from __future__ import annotations

import functools
from typing import Any

import graphql as gql
from graphql import GraphQLError

from api.errors import graphql_error, refusal
from api.graphql.limits import MAX_DEPTH, MAX_NODES, MAX_TOKENS, bounds, depth_of, nodes_of
from api.graphql.paging import Loaders
from api.graphql.schema import schema
from catalog.client import Cairn

CACHED_QUERY = 16 * 1024  # longer query texts are not kept in the parse cache


def prepare(query: str) -> Any:
    """Bound, parse, depth-check and validate a query: a DocumentNode, or the error body to answer.

    Clients send the same few query texts over and over; documents are never mutated by execution,
    so one parsed and validated document serves every request (and every thread) with that text.
    Only short texts are cached, so the cache cannot be filled with megabytes of distinct queries.
    """
    if len(query) <= CACHED_QUERY:
        return parsed(query)
    return _prepare(query)


def _prepare(query: str) -> Any:
    refused = bounds(query)
    if refused:
        return refusal(refused)
    try:
        document = gql.parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        return refusal(exc.message, exc.locations)
    depth = depth_of(document)
    if depth > MAX_DEPTH:
        return refusal(f"the query is {depth} levels deep; the limit is {MAX_DEPTH}")
    errors = gql.validate(schema.graphql_schema, document)
    if errors:
        return {"errors": [graphql_error(e, "") for e in errors]}
    return document


parsed = functools.lru_cache(maxsize=1024)(_prepare)


def may_be_long(query: str) -> bool:
    """Whether a request could keep a thread busy for long: it may run SQL (the `sql` mutation), or
    its text is long and not yet parsed. Such requests run off the event loop."""
    return "sql" in query or len(query) > CACHED_QUERY


def execute(cairn: Cairn, query: str, variables: dict[str, Any] | None = None, operation: str | None = None) -> dict[str, Any]:
    """Run one GraphQL request as `cairn`'s principal; returns the JSON response body."""
    document = prepare(query)
    if isinstance(document, dict):
        return document
    if variables is not None and not isinstance(variables, dict):
        return refusal("variables must be a JSON object")
    if operation is not None and not isinstance(operation, str):
        return refusal("operationName must be a string")
    nodes = nodes_of(document, variables or {})
    if nodes > MAX_NODES:
        return refusal(f"the query could ask for {nodes:,} objects; the limit is {MAX_NODES:,}: ask for fewer with first:")
    with cairn.audit.request("graphql", query=query, operation=operation):
        result = gql.execute(schema.graphql_schema, document, context_value={"cairn": cairn, "loaders": Loaders(cairn)},
                             variable_values=variables, operation_name=operation)
    if not isinstance(result, gql.ExecutionResult):  # no resolver is async: execution never returns an awaitable
        raise TypeError("GraphQL execution returned an awaitable")
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [graphql_error(e, cairn.ctx.request_id) for e in result.errors]
    return body
