"""Catalogue feeds kept in sync: the feeds, their syncs, and the products each supplies.

Revision ID: 0012
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("schedule", sa.String(10), nullable=False),
        sa.Column("delete_missing", sa.Boolean(), nullable=False),
        sa.Column("etag", sa.String(512), nullable=True),
        sa.Column("last_modified", sa.String(100), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("active_sync_id", sa.String(40), nullable=True),
        sa.Column("syncs_started", sa.Integer(), nullable=False),
        sa.Column("next_sync_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_feeds_tenant_id", "feeds", ["tenant_id"])
    op.create_index("ix_feeds_due", "feeds", ["schedule", "next_sync_at"])
    op.create_table(
        "feed_syncs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("feed_id", sa.String(40), sa.ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("not_modified", sa.Boolean(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("failed_by_code", sa.JSON(), nullable=False),
        sa.Column("rejected", sa.JSON(), nullable=False),
        sa.Column("jobs", sa.JSON(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_feed_syncs_tenant_id", "feed_syncs", ["tenant_id"])
    op.create_index("ix_feed_syncs_feed_id", "feed_syncs", ["feed_id"])
    op.create_table(
        "feed_products",
        sa.Column("feed_id", sa.String(40), sa.ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("product_id", sa.String(256), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seen", sa.Integer(), nullable=False),
    )
    op.create_index("ix_feed_products_tenant_id", "feed_products", ["tenant_id"])
    op.create_index("ix_feed_products_seen", "feed_products", ["feed_id", "seen"])


def downgrade() -> None:
    op.drop_table("feed_products")
    op.drop_table("feed_syncs")
    op.drop_table("feeds")
