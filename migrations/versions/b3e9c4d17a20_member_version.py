"""members.version: bumped by every write that changes what scoring reads for a member

Revision ID: b3e9c4d17a20
Revises: a550c5f0376d
Create Date: 2026-11-30 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "b3e9c4d17a20"
down_revision = "a550c5f0376d"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("version")
