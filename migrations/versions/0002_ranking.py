"""Ranking: feedback events, merchandising rules, each product's popularity and family.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("search_id", sa.String(40), nullable=False),
        sa.Column("product_id", sa.String(256), nullable=False),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("search_id", "product_id", "event", name="uq_feedback_once"),
    )
    op.create_index("ix_feedback_events_tenant_id", "feedback_events", ["tenant_id"])
    op.create_index("ix_feedback_events_created_at", "feedback_events", ["created_at"])
    op.create_table(
        "merchandising_rules",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("profile", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_merchandising_rules_tenant_id", "merchandising_rules", ["tenant_id"])
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("popularity", sa.Float(), nullable=True))
        batch.add_column(sa.Column("family", sa.String(40), nullable=True))
        batch.add_column(sa.Column("family_confidence", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("products") as batch:
        for column in ("family_confidence", "family", "popularity"):
            batch.drop_column(column)
    op.drop_table("merchandising_rules")
    op.drop_table("feedback_events")
