"""partners: signing_required, for partners whose every request must carry an HMAC signature

Revision ID: e1f3a5c7d9b2
Revises: c4e6a8b0d215
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "e1f3a5c7d9b2"
down_revision = "c4e6a8b0d215"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.add_column(
            sa.Column("signing_required", sa.Boolean(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.drop_column("signing_required")
