"""Rows of serving endpoint configs (the `serving_endpoints` table). Knows nothing about principals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from catalog.store import tables as t
from catalog.store.metastore import now


class ServingStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, securable_id: int, config: dict[str, Any], inference_table: str | None, state: str = "READY") -> None:
        self.conn.execute(insert(t.serving_endpoints).values(
            securable_id=securable_id, config=config, config_version=1, inference_table=inference_table, state=state,
            updated_at=now()))

    def get(self, securable_id: int) -> Any:
        """The row (config, config_version, inference_table, state, updated_at), or None."""
        return self.conn.execute(select(t.serving_endpoints).where(t.serving_endpoints.c.securable_id == securable_id)).first()

    def get_many(self, ids: Sequence[int]) -> dict[int, Any]:
        if not ids:
            return {}
        rows = self.conn.execute(select(t.serving_endpoints).where(t.serving_endpoints.c.securable_id.in_(list(ids))))
        return {r.securable_id: r for r in rows}

    def update_config(self, securable_id: int, config: dict[str, Any]) -> int:
        """Replace the config and bump its version; returns the new version."""
        c = t.serving_endpoints.c
        version = self.conn.execute(select(c.config_version).where(c.securable_id == securable_id)).scalar_one() + 1
        self.conn.execute(update(t.serving_endpoints).where(c.securable_id == securable_id).values(
            config=config, config_version=version, updated_at=now()))
        return version
