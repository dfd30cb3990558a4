"""A tenant's language: the one its products' words are tokenised in, and the one its indexed words are in.

Revision ID: 0014
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("language", sa.String(20), nullable=True))
    op.add_column("tenants", sa.Column("words_language", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("words_language")
        batch.drop_column("language")
