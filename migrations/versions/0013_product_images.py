"""Several images per product: the extra images that failed, and ingest jobs that keep stored images.

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("products", sa.Column("image_errors", sa.JSON(), nullable=True))
    op.add_column("ingest_jobs", sa.Column("keep_images", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("ingest_jobs", "keep_images")
    op.drop_column("products", "image_errors")
