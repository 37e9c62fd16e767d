"""Frozen dataclasses handed across service boundaries. No SQLAlchemy, sqlglot or pyspark types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from catalog.privileges import Kind, Privilege


class PrincipalKind(str, Enum):
    USER = "USER"
    GROUP = "GROUP"
    SERVICE_PRINCIPAL = "SERVICE_PRINCIPAL"


# Databricks' built-in group: every user and service principal belongs to it, implicitly.
ACCOUNT_USERS = "account users"


class TableType(str, Enum):
    MANAGED = "MANAGED"
    EXTERNAL = "EXTERNAL"
    VIEW = "VIEW"


class AuditResult(str, Enum):
    ALLOWED = "ALLOWED"
    DENIED = "DENIED"
    FAILED = "FAILED"


class Source(str, Enum):
    PYTHON = "python"
    CLI = "cli"
    SQL = "sql"
    GRAPHQL = "graphql"
    REST = "rest"
    SPARK = "spark"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    kind: PrincipalKind
    is_admin: bool
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_text: str
    nullable: bool = True
    comment: str | None = None
    position: int = 0


@dataclass(frozen=True, slots=True)
class Securable:
    """Any catalog object: catalog, schema, table, registered model, model version, function,
    storage credential, external location.

    `full_name` is the canonical lower-case name (`main.sales.orders`; a model version is
    `main.ml.churn/3`). Kind-specific fields are None where they do not apply.
    """

    id: int
    kind: Kind
    full_name: str
    name: str
    owner: str
    comment: str | None
    properties: dict[str, str]
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    table_type: TableType | None = None
    data_source_format: str | None = None
    storage_location: str | None = None
    columns: tuple[Column, ...] = ()
    primary_keys: tuple[str, ...] = ()
    timestamp_keys: tuple[str, ...] = ()
    view_definition: str | None = None
    version: int | None = None
    status: str | None = None
    source: str | None = None
    run_id: str | None = None
    routine_definition: str | None = None
    # {"function": "cat.sch.f", "columns": [...]}: rows a reader may see.
    row_filter: dict[str, Any] | None = None
    # {"column": {"function": "cat.sch.f", "using": [...]}}: what a reader sees in a column.
    column_masks: dict[str, Any] = field(default_factory=dict)
    # Registered models: alias -> version number (champion, challenger, ...).
    aliases: dict[str, int] = field(default_factory=dict)
    # External locations: the storage credential they use (their URL is `storage_location`).
    credential_name: str | None = None
    read_only: bool | None = None
    # Tables: their partition columns in order, from the Delta log (the metastore does not keep them);
    # None where not read (lists), () for an unpartitioned table or a view.
    partition_columns: tuple[str, ...] | None = None

    @property
    def catalog_name(self) -> str:
        return self.full_name.split(".")[0]

    @property
    def schema_name(self) -> str | None:
        parts = self.full_name.split(".")
        return parts[1] if len(parts) > 1 else None


@dataclass(frozen=True, slots=True)
class Grant:
    principal: str
    privilege: Privilege
    securable_kind: Kind
    securable_name: str


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a principal holds a privilege.

    kind: ADMIN (metastore admin), OWNER (owns the securable), DIRECT (granted on the securable
    itself) or INHERITED (granted on an ancestor). `grantee` is who the grant names: the principal
    itself or a group, reached through `via_groups` (the chain from the principal to the grantee).
    """

    kind: str
    privilege_granted: str | None = None
    granted_on_kind: Kind | None = None
    granted_on: str | None = None
    grantee: str | None = None
    via_groups: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "ADMIN":
            return "metastore admin"
        chain = f" through group {' > '.join(self.via_groups)}" if self.via_groups else ""
        where = f"{(self.granted_on_kind or Kind.METASTORE).value.lower()} {self.granted_on or ''}".strip()
        if self.kind == "OWNER":
            return f"owner of {where}{chain}"
        how = "granted on" if self.kind == "DIRECT" else "inherited from"
        return f"{self.privilege_granted} {how} {where} to {self.grantee}{chain}"


@dataclass(frozen=True, slots=True)
class EffectivePrivilege:
    privilege: Privilege
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class Tag:
    securable_kind: Kind
    securable_name: str
    key: str
    value: str
    column: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    event_time: datetime
    principal: str
    action: str
    securable_kind: str | None
    securable_name: str | None
    parameters: dict[str, Any]
    result: AuditResult
    error_code: str | None
    error_message: str | None
    request_id: str
    source: str


@dataclass(frozen=True, slots=True)
class TemporaryCredentials:
    """What an engine gets to read or write a securable's files (UC credential vending).

    For local and mounted storage there is no secret to vend: the grant is the location itself,
    valid until `expiration_time`.
    """

    url: str
    operation: str
    expiration_time: datetime


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list. `next_page_token` is None on the last page.

    `after(item)` is the page token that continues right after one of its items (a transport's
    per-item cursor), computed only when asked: the listing service knows its token's format."""

    items: tuple[T, ...]
    next_page_token: str | None = None
    after: Callable[[T], str] | None = field(default=None, compare=False, repr=False)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def cursor(self, i: int) -> str:
        """The page token that continues after item `i`."""
        if self.after is None:
            raise TypeError("this listing offers no per-item cursors")
        return self.after(self.items[i])


@dataclass(frozen=True, slots=True)
class Context:
    """Who is acting, from where, under which request id."""

    principal: str
    source: Source = Source.PYTHON
    request_id: str = field(default="")


@dataclass(frozen=True, slots=True)
class ServedEntity:
    """One model version an endpoint serves, under its own name (Databricks `served_entities`)."""

    name: str
    entity_name: str  # the registered model, `catalog.schema.model`
    entity_version: int
    workload_size: str = "Small"
    scale_to_zero_enabled: bool = False

    @property
    def model_version(self) -> str:
        return f"{self.entity_name}/{self.entity_version}"


@dataclass(frozen=True, slots=True)
class TrafficRoute:
    served_model_name: str
    traffic_percentage: int


@dataclass(frozen=True, slots=True)
class ServingEndpoint:
    """A governed model serving endpoint: what it serves, how traffic splits, where requests are logged.

    `config_version` grows with every config update; a server reloads what changed when it sees a
    newer one. `inference_table` is the governed Delta table every request is appended to (or None).
    """

    id: int
    name: str
    owner: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    config_version: int
    served_entities: tuple[ServedEntity, ...]
    routes: tuple[TrafficRoute, ...]
    inference_table: str | None = None
    state: str = "READY"
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    """What a server needs to answer a query the caller may make: the endpoint, and for each served
    entity the artifact URI of its model version and the feature spec the catalog keeps for it."""

    endpoint: ServingEndpoint
    sources: dict[str, str]  # served entity name -> model version source (artifact URI)
    feature_specs: dict[str, str | None]  # served entity name -> `cairn.feature_spec` JSON, if any
