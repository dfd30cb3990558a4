"""The storefront loop: each tenant's allowed browser origins; events with the sender's id, amount and shopper.

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
    op.add_column("feedback_events", sa.Column("event_id", sa.String(64), nullable=True))
    op.add_column("feedback_events", sa.Column("value", sa.Float(), nullable=True))
    op.add_column("feedback_events", sa.Column("currency", sa.String(3), nullable=True))
    op.add_column("feedback_events", sa.Column("user_token", sa.String(64), nullable=True))
    op.create_index("uq_feedback_event_id", "feedback_events", ["tenant_id", "event_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_feedback_event_id", "feedback_events")
    with op.batch_alter_table("feedback_events") as batch:  # SQLite drops a column by copying the table
        for column in ("user_token", "currency", "value", "event_id"):
            batch.drop_column(column)
    op.drop_index("ix_tenant_origins_origin", "tenant_origins")
    op.drop_table("tenant_origins")
