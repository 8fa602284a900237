"""events: leave room in each page (fillfactor 85) so re-scoring and confirming update in place

A recalculation rewrites every re-scored event's points, status and rules version, and the
verification queue its status; none of these columns is indexed, so with free space in the
page PostgreSQL updates the row in place (a HOT update) without touching the table's four
indexes. Pages written from now on keep 15 % free; SQLite has no such setting.

Revision ID: c4e6a8b0d215
Revises: a8c2e4f6b913
Create Date: 2026-11-30
"""

from alembic import op

revision = "c4e6a8b0d215"
down_revision = "a8c2e4f6b913"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE events SET (fillfactor = 85)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE events RESET (fillfactor)")
