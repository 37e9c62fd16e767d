"""GraphQL fields of model serving, mixed into the root Query and Mutation of api/graphql.py:
`servingEndpoints`, `servingEndpoint(name)`, and the mutations `createServingEndpoint`,
`updateServingEndpointConfig`, `deleteServingEndpoint`. Every field calls the governed serving
service (catalog/service/serving.py); errors carry its stable code."""

from __future__ import annotations

from typing import Any

import graphene


class ServedEntity(graphene.ObjectType):
    name = graphene.String(required=True)
    entity_name = graphene.String(required=True, description="the registered model, catalog.schema.model")
    entity_version = graphene.Int(required=True)
    workload_size = graphene.String(required=True)
    scale_to_zero_enabled = graphene.Boolean(required=True)
    state = graphene.String(required=True, description="READY in the catalog's view; a server's own state where it runs it")


class TrafficRoute(graphene.ObjectType):
    served_model_name = graphene.String(required=True)
    traffic_percentage = graphene.Int(required=True)


class ServingEndpoint(graphene.ObjectType):
    name = graphene.String(required=True)
    state = graphene.String(required=True)
    owner = graphene.String(required=True)
    config_version = graphene.Int(required=True)
    served_entities = graphene.List(graphene.NonNull(ServedEntity), required=True)
    routes = graphene.List(graphene.NonNull(TrafficRoute), required=True)
    inference_table = graphene.String()


def _endpoint(ep: Any) -> ServingEndpoint:
    return ServingEndpoint(
        name=ep.name, state=ep.state, owner=ep.owner, config_version=ep.config_version, inference_table=ep.inference_table,
        served_entities=[ServedEntity(name=e.name, entity_name=e.entity_name, entity_version=e.entity_version, workload_size=e.workload_size,
                                      scale_to_zero_enabled=e.scale_to_zero_enabled, state=ep.state) for e in ep.served_entities],
        routes=[TrafficRoute(served_model_name=r.served_model_name, traffic_percentage=r.traffic_percentage) for r in ep.routes],
    )


class ServedEntityInput(graphene.InputObjectType):
    name = graphene.String()
    entity_name = graphene.String(required=True)
    entity_version = graphene.Int(required=True)
    workload_size = graphene.String()
    scale_to_zero_enabled = graphene.Boolean()


class TrafficRouteInput(graphene.InputObjectType):
    served_model_name = graphene.String(required=True)
    traffic_percentage = graphene.Int(required=True)


class InferenceTableInput(graphene.InputObjectType):
    catalog_name = graphene.String(required=True)
    schema_name = graphene.String(required=True)
    table_name_prefix = graphene.String()


def _plain(items: Any) -> Any:
    return None if items is None else [{k: v for k, v in dict(i).items() if v is not None} for i in items]


class ServingQuery(graphene.ObjectType):
    serving_endpoints = graphene.List(graphene.NonNull(ServingEndpoint), required=True, description="the endpoints the caller may see")
    serving_endpoint = graphene.Field(ServingEndpoint, name=graphene.String(required=True))

    def resolve_serving_endpoints(self, info: Any) -> Any:
        from catalog.paging import every

        cairn = info.context["cairn"]
        return [_endpoint(ep) for ep in list(every(cairn.serving.list_endpoints))]

    def resolve_serving_endpoint(self, info: Any, name: str) -> Any:
        return _endpoint(info.context["cairn"].serving.get_endpoint(name))


class ServingMutation(graphene.ObjectType):
    create_serving_endpoint = graphene.Field(
        ServingEndpoint, name=graphene.String(required=True), served_entities=graphene.List(graphene.NonNull(ServedEntityInput), required=True),
        routes=graphene.List(graphene.NonNull(TrafficRouteInput)), inference_table=InferenceTableInput(), comment=graphene.String())
    update_serving_endpoint_config = graphene.Field(
        ServingEndpoint, name=graphene.String(required=True), served_entities=graphene.List(graphene.NonNull(ServedEntityInput), required=True),
        routes=graphene.List(graphene.NonNull(TrafficRouteInput)))
    delete_serving_endpoint = graphene.Boolean(name=graphene.String(required=True))

    def resolve_create_serving_endpoint(self, info: Any, name: str, served_entities: Any, routes: Any = None,
                                        inference_table: Any = None, comment: str | None = None) -> Any:
        capture = {k: v for k, v in dict(inference_table).items() if v is not None} if inference_table else None
        return _endpoint(info.context["cairn"].serving.create_endpoint(name, _plain(served_entities), _plain(routes), capture, comment))

    def resolve_update_serving_endpoint_config(self, info: Any, name: str, served_entities: Any, routes: Any = None) -> Any:
        return _endpoint(info.context["cairn"].serving.update_config(name, _plain(served_entities), _plain(routes)))

    def resolve_delete_serving_endpoint(self, info: Any, name: str) -> bool:
        info.context["cairn"].serving.delete_endpoint(name)
        return True
