"""serving endpoints

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 03:40:00.000000

The config of each SERVING_ENDPOINT securable: served entities, traffic routes, its version, and
the inference table requests are logged to.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('serving_endpoints',
    sa.Column('securable_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('config_version', sa.Integer(), nullable=False),
    sa.Column('inference_table', sa.String(length=800), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['securable_id'], ['securables.id'], name=op.f('fk_serving_endpoints_securable_id_securables'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('securable_id', name=op.f('pk_serving_endpoints'))
    )


def downgrade() -> None:
    op.drop_table('serving_endpoints')
