"""The storefront loop: each tenant's allowed browser origins.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_origins",
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("origin", sa.String(255), primary_key=True),
    )
    op.create_index("ix_tenant_origins_origin", "tenant_origins", ["origin"])


def downgrade() -> None:
    op.drop_index("ix_tenant_origins_origin", "tenant_origins")
    op.drop_table("tenant_origins")
