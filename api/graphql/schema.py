"""The schema: the root Query and Mutation, each assembled from a list of mixins.

Adding an area's fields is one line: its `graphene.ObjectType` mixin in QUERIES or MUTATIONS (for
instance `api/graphql/models.py`'s query and mutation classes). Root field names must not collide.
"""

from __future__ import annotations

import graphene

from api.graphql.features import FeatureQuery
from api.graphql.jobs import JobMutation, JobQuery
from api.graphql.models import ModelMutation, ModelQuery
from api.graphql.mutations import CatalogMutation
from api.graphql.query import CatalogQuery
from api.graphql.serving import ServingMutation, ServingQuery
from api.graphql.types import Catalog, ExternalLocation, Function, ModelVersion, RegisteredModel, Schema, StorageCredential, Table
from api.graphql.ui import UiQuery

QUERIES: tuple[type, ...] = (
    CatalogQuery,
    FeatureQuery,
    JobQuery,
    ModelQuery,
    ServingQuery,
    UiQuery,
)
MUTATIONS: tuple[type, ...] = (
    CatalogMutation,
    JobMutation,
    ModelMutation,
    ServingMutation,
)


class Query(*QUERIES):  # type: ignore[misc]  # the root query: the fields of every mixin in QUERIES
    pass


class Mutation(*MUTATIONS):  # type: ignore[misc]  # the root mutation: the fields of every mixin in MUTATIONS
    pass


# Types reached only through the Securable interface are listed so the schema knows them all.
schema = graphene.Schema(query=Query, mutation=Mutation, types=[Catalog, Schema, Table, Function, RegisteredModel, ModelVersion,
                                                               StorageCredential, ExternalLocation])
