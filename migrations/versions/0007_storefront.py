"""The storefront loop: each tenant's allowed browser origins; events with the sender's id, amount and shopper;
the normalised text query in the search log; the analytics counters.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column:
    return sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)


def _counters(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


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
    op.add_column("search_logs", sa.Column("query", sa.String(200), nullable=True))
    op.create_table(
        "analytics_search_hours", _tenant(),
        sa.Column("hour", sa.Integer(), primary_key=True),
        sa.Column("mode", sa.String(20), primary_key=True),
        sa.Column("profile", sa.String(40), primary_key=True),
        *_counters("searches", "zero_results", "searches_clicked", "clicks", "click_position_sum", "searches_carted",
                   "add_to_carts", "searches_purchased", "purchases"),
    )
    op.create_table(
        "analytics_revenue_hours", _tenant(),
        sa.Column("hour", sa.Integer(), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        *_counters("purchases"),
        sa.Column("revenue", sa.Float(), nullable=False),
    )
    op.create_table(
        "analytics_query_days", _tenant(),
        sa.Column("day", sa.Integer(), primary_key=True),
        sa.Column("query", sa.String(200), primary_key=True),
        *_counters("searches", "zero_results", "searches_clicked", "clicks"),
    )
    for name, columns in (("ix_query_days_searches", ["tenant_id", "day", "searches"]),
                          ("ix_query_days_zero_results", ["tenant_id", "day", "zero_results"]),
                          ("ix_query_days_unclicked", ["tenant_id", "day", "searches_clicked", "searches"]),
                          ("ix_query_days_query", ["tenant_id", "query", "day"])):
        op.create_index(name, "analytics_query_days", columns)
    op.create_table(
        "analytics_product_days", _tenant(),
        sa.Column("day", sa.Integer(), primary_key=True),
        sa.Column("product_id", sa.String(256), primary_key=True),
        *_counters("clicks", "add_to_carts", "purchases"),
    )


def downgrade() -> None:
    for table in ("analytics_product_days", "analytics_query_days", "analytics_revenue_hours",
                  "analytics_search_hours"):
        op.drop_table(table)
    with op.batch_alter_table("search_logs") as batch:
        batch.drop_column("query")
    op.drop_index("uq_feedback_event_id", "feedback_events")
    with op.batch_alter_table("feedback_events") as batch:  # SQLite drops a column by copying the table
        for column in ("user_token", "currency", "value", "event_id"):
            batch.drop_column(column)
    op.drop_index("ix_tenant_origins_origin", "tenant_origins")
    op.drop_table("tenant_origins")
