"""Alembic environment: runs against the engine Cairn hands over in `config.attributes`."""

from __future__ import annotations

from alembic import context

import catalog.store.jobs  # noqa: F401  (registers the job tables on the shared metadata)
import lineage.store  # noqa: F401  (registers the lineage tables on the shared metadata)
from catalog.store.tables import metadata

engine = context.config.attributes.get("engine")
if engine is None:  # `alembic` CLI use, e.g. autogenerate during development
    from catalog.store.db import make_engine

    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "sqlite:///./.cairn/metastore.db")

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
