"""The GraphQL API (graphene): a transport over the governed services.

- types.py: the object types; paging.py: per-request batch loaders and Relay connections over the
  services' own page tokens; limits.py: what a query may cost, checked before it is parsed and run;
- query.py, mutations.py, features.py: the root fields, mixed into Query and Mutation in schema.py
  (one line per mixin);
- execution.py: prepare (parse cache), execute; errors map to `extensions.code` once (api/errors.py)
  and never carry a traceback.
"""

from __future__ import annotations

from api.graphql.execution import CACHED_QUERY, execute, may_be_long, parsed, prepare
from api.graphql.paging import MAX_FIRST, Loaders
from api.graphql.schema import MUTATIONS, QUERIES, Mutation, Query, schema

__all__ = ["CACHED_QUERY", "MAX_FIRST", "MUTATIONS", "QUERIES", "Loaders", "Mutation", "Query", "execute", "may_be_long", "parsed", "prepare",
           "schema"]
