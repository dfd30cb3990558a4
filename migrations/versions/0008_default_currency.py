"""A tenant's default currency: how its products' prices without a currency of their own are shown.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("default_currency", sa.String(3), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("default_currency")
