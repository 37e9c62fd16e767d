"""storage paths of tables and external locations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 01:00:00.000000

Existing tables, managed and external (and external locations, after a downgrade and upgrade), are
registered with their location as it was stored (trailing slash dropped). Where two of them
already shared a path, the older keeps it and the younger is left unregistered (listed in the
migration's log line) so an admin can look at it.
"""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    op.create_table('storage_paths',
    sa.Column('securable_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('path', sa.String(length=2000), nullable=False),
    sa.ForeignKeyConstraint(['securable_id'], ['securables.id'], name=op.f('fk_storage_paths_securable_id_securables'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('securable_id', name=op.f('pk_storage_paths')),
    sa.UniqueConstraint('path', name=op.f('uq_storage_paths_path'))
    )
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, kind, spec FROM securables WHERE kind IN ('TABLE', 'EXTERNAL_LOCATION') ORDER BY id")).all()
    taken: set[str] = set()
    skipped: list[int] = []
    for sid, kind, spec in rows:
        spec = json.loads(spec) if isinstance(spec, str) else (spec or {})
        location = str(spec.get("storage_location") or "")
        if (kind == "TABLE" and spec.get("table_type") not in ("EXTERNAL", "MANAGED")) or not location:
            continue
        path = location.rstrip("/") or "/"
        if path in taken:
            skipped.append(sid)
            continue
        taken.add(path)
        conn.execute(sa.text("INSERT INTO storage_paths (securable_id, kind, path) VALUES (:i, :k, :p)"), {"i": sid, "k": kind, "p": path})
    if skipped:
        log.warning("external tables sharing another table's path were not registered: ids %s", skipped)


def downgrade() -> None:
    op.drop_table('storage_paths')
