"""Every governed service, bound to one acting principal: what the SQL shim and every transport call.

The principal-bound facade (`catalog.client.Cairn`) is this plus the SQL shim.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from catalog.entities import Context
from catalog.errors import InvalidArgument
from catalog.privileges import Kind
from catalog.runtime import Runtime
from catalog.service.audit import AuditService
from catalog.service.data import TableDataService
from catalog.service.gates import ModelGates
from catalog.service.grants import GrantService
from catalog.service.jobs import JobService
from catalog.service.locations import ExternalLocationService, StorageCredentialService
from catalog.service.models import FunctionService, ModelService
from catalog.service.namespace import CatalogService, SchemaService
from catalog.service.principals import PrincipalService
from catalog.service.serving import ServingService
from catalog.service.tables import TableService
from catalog.service.tags import TagService
from catalog.service.tokens import TokenService
from catalog.service.webhooks import WebhookService
from lineage.service import LineageService


class Models(ModelService, ModelGates):
    """Registered models and their versions, with promotion gates: `cairn.models`."""


class Services:
    """All governed services, acting as one principal from one source."""

    def __init__(self, metastore: Runtime, ctx: Context) -> None:
        self.metastore = metastore
        self.ctx = ctx
        self.catalogs = CatalogService(metastore, ctx)
        self.schemas = SchemaService(metastore, ctx)
        self.tables = TableService(metastore, ctx)
        self.storage_credentials = StorageCredentialService(metastore, ctx)
        self.external_locations = ExternalLocationService(metastore, ctx)
        self.data = TableDataService(metastore, ctx)
        self.models = Models(metastore, ctx)
        self.functions = FunctionService(metastore, ctx)
        self.principals = PrincipalService(metastore, ctx)
        self.grants = GrantService(metastore, ctx)
        self.tags = TagService(metastore, ctx)
        self.audit = AuditService(metastore, ctx)
        self.tokens = TokenService(metastore, ctx)
        self.webhooks = WebhookService(metastore, ctx)
        self.lineage = LineageService(metastore, ctx)
        self.serving = ServingService(metastore, ctx)
        self.jobs = JobService(metastore, ctx)

    @property
    def principal(self) -> str:
        return self.ctx.principal

    def drop(self, kind: Kind | str, name: str, cascade: bool = False) -> None:
        """Delete the securable `name` of `kind` through its own service (the one per-kind dispatch
        every transport shares). `cascade` drops a catalog's or schema's contents too, and forces
        the removal of a location that holds tables or a credential that locations use."""
        k = Kind.parse(kind)
        drops = {
            Kind.CATALOG: lambda: self.catalogs.delete_catalog(name, cascade=cascade),
            Kind.SCHEMA: lambda: self.schemas.delete_schema(name, cascade=cascade),
            Kind.TABLE: lambda: self.tables.delete_table(name),
            Kind.FUNCTION: lambda: self.functions.delete_function(name),
            Kind.MODEL: lambda: self.models.delete_registered_model(name),
            Kind.EXTERNAL_LOCATION: lambda: self.external_locations.delete_external_location(name, cascade),
            Kind.STORAGE_CREDENTIAL: lambda: self.storage_credentials.delete_storage_credential(name, cascade),
        }
        if k not in drops:
            raise InvalidArgument(f"cannot drop a {k.value.lower()}; droppable: {', '.join(sorted(x.value for x in drops))}")
        drops[k]()

    def update(self, kind: Kind | str, name: str, **changes: Any) -> Any:
        """Update the securable `name` of `kind` through its own service (`comment=`, `new_name=`,
        `owner=`, ... as that service's update method takes them); returns what it returns."""
        k = Kind.parse(kind)
        updates: dict[Kind, Callable[..., Any]] = {
            Kind.CATALOG: self.catalogs.update_catalog,
            Kind.SCHEMA: self.schemas.update_schema,
            Kind.TABLE: self.tables.update_table,
            Kind.MODEL: self.models.update_registered_model,
            Kind.EXTERNAL_LOCATION: self.external_locations.update_external_location,
            Kind.STORAGE_CREDENTIAL: self.storage_credentials.update_storage_credential,
        }
        if k not in updates:
            raise InvalidArgument(f"cannot update a {k.value.lower()}; updatable: {', '.join(sorted(x.value for x in updates))}")
        return updates[k](name, **changes)
