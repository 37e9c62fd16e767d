"""Metastore tables (SQLAlchemy Core). The Alembic migrations create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Ids are never reused (AUTOINCREMENT on SQLite, sequences on PostgreSQL), so a cached id that
# was dropped can never alias a new object.
Id = BigInteger().with_variant(Integer, "sqlite")

principals = Table(
    "principals",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255)),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_name", String(255), ForeignKey("principals.name", ondelete="CASCADE"), primary_key=True),
    Column("member_name", String(255), ForeignKey("principals.name", ondelete="CASCADE"), primary_key=True),
    Index("ix_group_members_member", "member_name"),
)

securables = Table(
    "securables",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("parent_id", Id, ForeignKey("securables.id", ondelete="CASCADE")),
    Column("name", String(255), nullable=False),
    Column("full_name", String(800), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("comment", Text),
    Column("properties", JSON, nullable=False, default=dict),
    # Kind-specific attributes (table type, storage, keys, model version status, ...).
    Column("spec", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(255), nullable=False),
    UniqueConstraint("kind", "full_name"),
    Index("ix_securables_parent", "parent_id", "kind", "name"),
    sqlite_autoincrement=True,
)

columns = Table(
    "columns",
    metadata,
    Column("securable_id", Id, ForeignKey("securables.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("type_text", String(1000), nullable=False),
    Column("nullable", Boolean, nullable=False),
    Column("comment", Text),
    UniqueConstraint("securable_id", "name"),
)

grants = Table(
    "grants",
    metadata,
    Column("securable_id", Id, ForeignKey("securables.id", ondelete="CASCADE"), primary_key=True),
    Column("principal", String(255), ForeignKey("principals.name", ondelete="CASCADE"), primary_key=True),
    Column("privilege", String(32), primary_key=True),
    Column("granted_by", String(255), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Index("ix_grants_principal", "principal"),
)

tags = Table(
    "tags",
    metadata,
    Column("securable_id", Id, ForeignKey("securables.id", ondelete="CASCADE"), primary_key=True),
    # '' for a tag on the securable itself; a column name for a column tag.
    Column("column_name", String(255), primary_key=True, default=""),
    Column("key", String(255), primary_key=True),
    Column("value", String(1000), nullable=False, default=""),
    Index("ix_tags_key_value", "key", "value"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("principal", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("securable_kind", String(32)),
    Column("securable_name", String(800)),
    Column("parameters", JSON, nullable=False),
    Column("result", String(16), nullable=False),
    Column("error_code", String(32)),
    Column("error_message", Text),
    Column("request_id", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Index("ix_audit_time", "event_time"),
    Index("ix_audit_principal_time", "principal", "event_time"),
    Index("ix_audit_securable", "securable_name"),
    sqlite_autoincrement=True,
)

# Every change that can alter an authorization decision appends a row here in the same
# transaction. Each process's authorization cache reads the rows past its high-water mark at the
# start of a unit of work and evicts what they name, so a grant or revoke made by any replica is
# seen by the very next check.
authz_log = Table(
    "authz_log",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("securable_id", Id),
    Column("principal", String(255)),
    Column("scope", String(16), nullable=False),  # SECURABLE | SUBTREE | PRINCIPAL
    sqlite_autoincrement=True,
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("principal", String(255), ForeignKey("principals.name", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("comment", Text),
    Column("created_by", String(255), nullable=False),
)

# The storage every external table and external location occupies, canonical (catalog/storage.py).
# No two rows may overlap (one path inside another) except a table inside the one location that
# holds it; the services check that under STORAGE_PATHS_LOCK, and the unique path stops exact twins.
storage_paths = Table(
    "storage_paths",
    metadata,
    Column("securable_id", Id, ForeignKey("securables.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("path", String(2000), nullable=False, unique=True),
)

# Promotion gates of a registered model (catalog/gates.py defines their shapes), one row per model.
model_gates = Table(
    "model_gates",
    metadata,
    Column("securable_id", Id, ForeignKey("securables.id", ondelete="CASCADE"), primary_key=True),
    Column("gates", JSON, nullable=False, default=list),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(255), nullable=False),
)

# Registry webhooks: on one registered model, or metastore-wide (securable_id NULL). The secret is
# kept encrypted (it signs every delivery, so a hash would not do) and is never returned.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("securable_id", Id, ForeignKey("securables.id", ondelete="CASCADE")),
    Column("events", JSON, nullable=False),
    Column("url", String(2000), nullable=False),
    Column("secret", Text),
    Column("status", String(16), nullable=False),
    Column("description", Text),
    Column("owner", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_webhooks_securable", "securable_id"),
)

# The outbox: one row per (event, webhook), written in the transaction of the change it announces,
# and the delivery log (attempts, status, latency) once sent. Times are epoch seconds.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", String(36), nullable=False, unique=True),
    Column("webhook_id", String(32), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("status", String(16), nullable=False),  # PENDING | DELIVERED | FAILED
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("claimed_until", Float),
    Column("delivered_at", Float),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("latency_ms", Float),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    sqlite_autoincrement=True,
)

# Serving endpoints: the config of each SERVING_ENDPOINT securable (its grants and owner live there).
serving_endpoints = Table(
    "serving_endpoints",
    metadata,
    Column("securable_id", Id, ForeignKey("securables.id", ondelete="CASCADE"), primary_key=True),
    Column("config", JSON, nullable=False),  # {"served_entities": [...], "routes": [...]}
    Column("config_version", Integer, nullable=False),
    Column("inference_table", String(800)),
    Column("state", String(32), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
