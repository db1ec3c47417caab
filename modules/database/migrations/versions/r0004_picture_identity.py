"""A picture's identity: one row per (terminal, stream, capture instant, thumbnail or not).

Before it, the only unique column was ``filepath``, an absolute path, so two workers
mounting one archive at two paths stored each picture twice. A unique index, not a
named constraint: 0.1.0's constraints have no names, and on SQLite a constraint
would mean Alembic's batch mode rebuilding the table, whose reflection loses the
partial indexes' conditions; the index enforces the same and serves ``ON CONFLICT``.

Rows that already share an identity (an archive recorded through two mount points)
cannot all stay: the oldest (lowest id) is kept, the others are deleted and counted
in the log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

logger = logging.getLogger(__name__)

IDENTITY = ["terminal", "camera_id", "timestamp", "is_thumbnail"]


def upgrade() -> None:
    removed = op.get_bind().execute(
        sa.text(
            "DELETE FROM images WHERE EXISTS (SELECT 1 FROM images AS older WHERE "
            + " AND ".join(f"older.{name} = images.{name}" for name in IDENTITY)
            + " AND older.id < images.id)"
        )
    )
    if removed.rowcount:
        logger.warning(
            "deleted %d rows that repeated a picture already recorded (same terminal, "
            "stream, instant and kind under another path)",
            removed.rowcount,
        )
    op.create_index("uq_images_identity", "images", IDENTITY, unique=True)


def downgrade() -> None:
    op.drop_index("uq_images_identity", table_name="images")
