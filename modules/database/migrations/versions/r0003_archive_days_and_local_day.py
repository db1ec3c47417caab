"""The table ``archive_days`` and the column ``images.local_day`` with its index.

``archive_days`` keeps, per terminal, stream and day, what the site listed and what
the archive stored, so that ``gaps`` can tell a finished day from an incomplete one
and ``watch`` need not open a finished day again. ``images.local_day`` is the
capture's day at the terminal: ``gaps`` and ``stats`` group by it in SQL, with the
index (which carries the timestamp and the size too, so a day's pictures are read
in capture order, and counted and summed, from the index alone), instead of converting every timestamp in Python.
``ix_images_thumbnails`` is partial: only the few pictures kept as thumbnails.

Existing rows are given their day in America/Los_Angeles (the terminals' zone, the
code's default): on PostgreSQL by the server, on SQLite, which has no time-zone
database, in Python batches keyed on ``id``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TERMINAL_ZONE = "America/Los_Angeles"
"""Written out, not imported: the revision stays what it was whatever the code becomes."""
BATCH = 5000
THUMBNAIL = sa.column("is_thumbnail", sa.Boolean()).is_(True)

_IMAGES = sa.table(
    "images",
    sa.column("id", sa.Integer()),
    sa.column("timestamp", sa.DateTime()),
    sa.column("local_day", sa.Date()),
)


def upgrade() -> None:
    op.create_table(
        "archive_days",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("terminal", sa.String(64), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("listed", sa.Integer(), nullable=False),
        sa.Column("stored", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("thumbnails", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("terminal", "camera_id", "day"),
    )
    op.add_column("images", sa.Column("local_day", sa.Date(), nullable=True))
    _backfill_local_day()
    op.create_index(
        "ix_images_terminal_camera_local_day",
        "images",
        ["terminal", "camera_id", "local_day", "timestamp", "file_size"],
    )
    op.create_index(
        "ix_images_thumbnails",
        "images",
        ["terminal", "camera_id", "local_day"],
        postgresql_where=THUMBNAIL,
        sqlite_where=THUMBNAIL,
    )


def _backfill_local_day() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text(
                "UPDATE images SET local_day = "
                "CAST(timezone(:zone, timestamp) AS DATE) WHERE local_day IS NULL"
            ),
            {"zone": TERMINAL_ZONE},
        )
        return
    zone = ZoneInfo(TERMINAL_ZONE)
    set_day = (
        sa.update(_IMAGES)
        .where(_IMAGES.c.id == sa.bindparam("row_id"))
        .values(local_day=sa.bindparam("day"))
    )
    last = -1
    while True:
        rows = connection.execute(
            sa.select(_IMAGES.c.id, _IMAGES.c.timestamp)
            .where(_IMAGES.c.id > last)
            .order_by(_IMAGES.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        # SQLite keeps the timestamps as naive UTC.
        connection.execute(
            set_day,
            [
                {
                    "row_id": row_id,
                    "day": stamp.replace(tzinfo=timezone.utc).astimezone(zone).date(),
                }
                for row_id, stamp in rows
            ],
        )
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_images_thumbnails", table_name="images")
    op.drop_index("ix_images_terminal_camera_local_day", table_name="images")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite 3.35+ drops a column in place; Alembic's batch mode would rebuild the
        # table from its reflection, which loses the partial index's condition.
        op.execute("ALTER TABLE images DROP COLUMN local_day")
    else:
        op.drop_column("images", "local_day")
    op.drop_table("archive_days")
