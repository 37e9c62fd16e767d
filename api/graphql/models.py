"""GraphQL of the model registry: gates on registered models, gate results, run and training set on
model versions, webhooks, and the mutations `setModelGates`, `promoteModelVersion`, `createWebhook`,
`deleteWebhook`. Mixed into the types (api/graphql/types.py) and roots (api/graphql/schema.py); every resolver calls
a governed service; errors are mapped once, in api/graphql/execution.py."""

from __future__ import annotations

from typing import Any

import graphene


class Gate(graphene.ObjectType):
    kind = graphene.String(required=True)
    metric = graphene.String()
    op = graphene.String()
    threshold = graphene.Float()
    margin = graphene.Float()
    tag = graphene.String()
    group = graphene.String()
    description = graphene.String()


class GateResult(graphene.ObjectType):
    gate = graphene.String(required=True)
    kind = graphene.String()
    passed = graphene.Boolean(required=True)
    detail = graphene.String()


class GateInput(graphene.InputObjectType):
    kind = graphene.String(required=True)
    metric = graphene.String()
    op = graphene.String()
    threshold = graphene.Float()
    margin = graphene.Float()
    tag = graphene.String()
    group = graphene.String()
    description = graphene.String()


def _gates(rows: list[dict[str, Any]]) -> list[Gate]:
    return [Gate(**{k: g.get(k) for k in ("kind", "metric", "op", "threshold", "margin", "tag", "group", "description")}) for g in rows]


def _results(rows: list[dict[str, Any]]) -> list[GateResult]:
    return [GateResult(gate=r["gate"], kind=r.get("kind"), passed=r["passed"], detail=r.get("detail")) for r in rows]


class RegisteredModelFields:
    """Fields mixed into graphql.RegisteredModel."""

    gates = graphene.List(graphene.NonNull(Gate), required=True, description="promotion gates an alias must pass")

    def resolve_gates(self, info: Any) -> list[Gate]:
        return _gates(info.context["cairn"].models.get_gates(self.full_name))  # type: ignore[attr-defined]


class ModelVersionFields:
    """Fields mixed into graphql.ModelVersion (which has runId already)."""

    gate_results = graphene.List(graphene.NonNull(GateResult), required=True, description="results of the gates it passed when promoted")
    training_set = graphene.String(description="the saved training-set table it learned from, or null")
    feature_spec = graphene.String(description="feature_spec.json, as JSON")
    signature = graphene.String(description="MLflow signature, as JSON")

    def resolve_gate_results(self, info: Any) -> list[GateResult]:
        model = self.full_name.rsplit("/", 1)[0]  # type: ignore[attr-defined]
        return _results(info.context["cairn"].models.get_gate_results(model, self.version))  # type: ignore[attr-defined]

    def resolve_training_set(self, info: Any) -> str | None:
        return self.properties.get("cairn.training_set")  # type: ignore[attr-defined]

    def resolve_feature_spec(self, info: Any) -> str | None:
        return self.properties.get("cairn.feature_spec")  # type: ignore[attr-defined]

    def resolve_signature(self, info: Any) -> str | None:
        return self.properties.get("cairn.signature")  # type: ignore[attr-defined]


class Webhook(graphene.ObjectType):
    id = graphene.String(required=True)
    name = graphene.String(required=True)
    model = graphene.String()
    events = graphene.List(graphene.NonNull(graphene.String), required=True)
    url = graphene.String(required=True)
    status = graphene.String(required=True)
    owner = graphene.String(required=True)
    has_secret = graphene.Boolean(required=True)
    deliveries = graphene.List(graphene.NonNull(lambda: WebhookDelivery), required=True, first=graphene.Int(default_value=100))

    def resolve_deliveries(self, info: Any, first: int) -> list[Any]:
        return [WebhookDelivery(**{k: getattr(d, k) for k in ("delivery_id", "event", "status", "attempts", "last_status", "last_error", "latency_ms")})
                for d in info.context["cairn"].webhooks.list_deliveries(self.id, None, first)]


class WebhookDelivery(graphene.ObjectType):
    delivery_id = graphene.String(required=True)
    event = graphene.String(required=True)
    status = graphene.String(required=True)
    attempts = graphene.Int(required=True)
    last_status = graphene.Int()
    last_error = graphene.String()
    latency_ms = graphene.Float()


def _webhook(w: Any) -> Webhook:
    return Webhook(id=w.id, name=w.name, model=w.model, events=list(w.events), url=w.url, status=w.status, owner=w.owner, has_secret=w.has_secret)


class ModelQuery:
    """Root query fields: `webhooks(model)`."""

    webhooks = graphene.List(graphene.NonNull(Webhook), required=True, model=graphene.String())

    def resolve_webhooks(self, info: Any, model: str | None = None) -> list[Webhook]:
        return [_webhook(w) for w in info.context["cairn"].webhooks.list_webhooks(model)]


class SetModelGates(graphene.Mutation):
    class Arguments:
        model = graphene.String(required=True)
        gates = graphene.List(graphene.NonNull(GateInput), required=True)

    Output = graphene.List(graphene.NonNull(Gate))

    def mutate(self, info: Any, model: str, gates: list[Any]) -> list[Gate]:
        clean = [{k: v for k, v in dict(g).items() if v is not None} for g in gates]
        return _gates(info.context["cairn"].models.set_gates(model, clean))


class Promotion(graphene.ObjectType):
    promoted = graphene.Boolean(required=True)
    message = graphene.String()
    results = graphene.List(graphene.NonNull(GateResult), required=True)


class PromoteModelVersion(graphene.Mutation):
    """Move an alias to a version if every gate passes; a refusal is an answer (promoted false,
    every result), not an error."""

    class Arguments:
        model = graphene.String(required=True)
        alias = graphene.String(required=True)
        version = graphene.Int(required=True)

    Output = Promotion

    def mutate(self, info: Any, model: str, alias: str, version: int) -> Promotion:
        return _promote(info, model, alias, version)


def _promote(info: Any, model: str, alias: str, version: int) -> Promotion:
    from catalog.errors import PromotionRefused

    try:
        results = info.context["cairn"].models.promote(model, alias, version)
    except PromotionRefused as exc:
        return Promotion(promoted=False, message=str(exc), results=_results(exc.results))
    return Promotion(promoted=True, message=None, results=_results(results))


class CreateWebhook(graphene.Mutation):
    class Arguments:
        name = graphene.String(required=True)
        url = graphene.String(required=True)
        events = graphene.List(graphene.NonNull(graphene.String), required=True)
        model = graphene.String()
        secret = graphene.String()

    Output = Webhook

    def mutate(self, info: Any, name: str, url: str, events: list[str], model: str | None = None, secret: str | None = None) -> Webhook:
        return _webhook(info.context["cairn"].webhooks.create_webhook(name, url, events, model, secret))


class DeleteWebhook(graphene.Mutation):
    class Arguments:
        id = graphene.String(required=True)

    Output = graphene.Boolean

    def mutate(self, info: Any, id: str) -> bool:
        info.context["cairn"].webhooks.delete_webhook(id)
        return True


class ModelMutation:
    """Root mutations of the registry."""

    set_model_gates = SetModelGates.Field()
    promote_model_version = PromoteModelVersion.Field()
    create_webhook = CreateWebhook.Field()
    delete_webhook = DeleteWebhook.Field()


__all__ = ["ModelMutation", "ModelQuery", "ModelVersionFields", "RegisteredModelFields"]
