"""Indexes for the readers: ``images.run_id`` and the pictures not processed yet.

``ix_images_unprocessed`` is partial (only rows with ``processed`` false) and in
the order ``get_unprocessed_images`` hands rows out, so that query reads the first
rows of a small index instead of scanning the table. Its predicate is written as
SQLAlchemy renders ``Image.processed.is_(False)``, which the query planners need
to see the query's condition imply the index's.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UNPROCESSED = sa.column("processed", sa.Boolean()).is_(False)


def upgrade() -> None:
    op.create_index("ix_images_run_id", "images", ["run_id"])
    op.create_index(
        "ix_images_unprocessed",
        "images",
        ["timestamp", "id"],
        postgresql_where=UNPROCESSED,
        sqlite_where=UNPROCESSED,
    )


def downgrade() -> None:
    op.drop_index("ix_images_unprocessed", table_name="images")
    op.drop_index("ix_images_run_id", table_name="images")
