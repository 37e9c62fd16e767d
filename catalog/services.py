"""Every governed service, bound to one acting principal: what the SQL shim and every transport call.

The principal-bound facade (`catalog.client.Cairn`) is this plus the SQL shim.
"""

from __future__ import annotations

from catalog.entities import Context
from catalog.runtime import Runtime
from catalog.service.audit import AuditService
from catalog.service.data import TableDataService
from catalog.service.grants import GrantService
from catalog.service.jobs import JobService
from catalog.service.locations import ExternalLocationService, StorageCredentialService
from catalog.service.models import FunctionService, ModelService
from catalog.service.namespace import CatalogService, SchemaService
from catalog.service.principals import PrincipalService
from catalog.service.tables import TableService
from catalog.service.tags import TagService
from catalog.service.tokens import TokenService
from lineage.service import LineageService


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
        self.models = ModelService(metastore, ctx)
        self.functions = FunctionService(metastore, ctx)
        self.principals = PrincipalService(metastore, ctx)
        self.grants = GrantService(metastore, ctx)
        self.tags = TagService(metastore, ctx)
        self.audit = AuditService(metastore, ctx)
        self.tokens = TokenService(metastore, ctx)
        self.lineage = LineageService(metastore, ctx)
        self.jobs = JobService(metastore, ctx)

    @property
    def principal(self) -> str:
        return self.ctx.principal
