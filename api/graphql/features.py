"""GraphQL fields of the feature store: `featureTable(name)` and `trainingSet(name)`, mixed into the
root Query (api/graphql/schema.py). Resolved through the governed services (pipelines/features/catalog_view);
errors carry the service's stable code (mapped once, in api/graphql/execution.py)."""

from __future__ import annotations

import json
from typing import Any

import graphene


class FeatureTable(graphene.ObjectType):
    name = graphene.String(required=True)
    primary_keys = graphene.List(graphene.NonNull(graphene.String), required=True)
    timestamp_keys = graphene.List(graphene.NonNull(graphene.String), required=True)
    features = graphene.List(graphene.NonNull(graphene.String), required=True)
    description = graphene.String()
    owner = graphene.String()
    version = graphene.Int(description="the latest Delta version (null without SELECT)")
    last_commit = graphene.DateTime(description="freshness: when the latest version was committed")
    published_version = graphene.Int(description="the version in the online store, if published")
    published_at = graphene.DateTime()


class FeatureTableRef(graphene.ObjectType):
    table = graphene.String(required=True)
    version = graphene.Int(required=True)


class TrainingSet(graphene.ObjectType):
    name = graphene.String(required=True)
    owner = graphene.String()
    label = graphene.List(graphene.NonNull(graphene.String), required=True)
    label_table = graphene.String()
    label_version = graphene.Int()
    feature_tables = graphene.List(graphene.NonNull(FeatureTableRef), required=True)
    point_in_time = graphene.Boolean(required=True)
    spec = graphene.String(required=True, description="the whole spec, as JSON")
    models = graphene.List(graphene.NonNull(graphene.String), required=True, description="models and versions downstream in the lineage")


class FeatureQuery(graphene.ObjectType):
    feature_table = graphene.Field(FeatureTable, name=graphene.String(required=True))
    training_set = graphene.Field(TrainingSet, name=graphene.String(required=True))

    def resolve_feature_table(self, info: Any, name: str) -> Any:
        from pipelines.features.catalog_view import get_feature_table

        return FeatureTable(**get_feature_table(info.context["cairn"], name))

    def resolve_training_set(self, info: Any, name: str) -> Any:
        from pipelines.features.catalog_view import get_training_set

        row = get_training_set(info.context["cairn"], name)
        spec = row["spec"]
        return TrainingSet(name=row["name"], owner=row["owner"], label=spec["label"], label_table=spec["label_source"]["table"],
                           label_version=spec["label_source"]["version"], point_in_time=spec["point_in_time"],
                           feature_tables=[FeatureTableRef(table=f["table"], version=f["version"]) for f in spec["feature_tables"]],
                           spec=json.dumps(spec, sort_keys=True), models=row["models"])
