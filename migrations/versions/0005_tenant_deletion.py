"""Tenant deletion: the time an operator deleted a tenant, whose data is then purged in the background.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("deleted_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("deleted_at")
