"""The schema of version 0.1.0, as its ``create_all`` made it.

Version 0.1.0 kept no ``alembic_version`` table: a database with these tables and
no version is stamped at this revision before it is upgraded. The DDL is written
out here, not taken from the models, so that it stays what 0.1.0 created.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "download_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("terminal", sa.String(64), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("requested", sa.Integer(), nullable=False),
        sa.Column("downloaded", sa.Integer(), nullable=False),
        sa.Column("already_present", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("db_inserted", sa.Integer(), nullable=False),
        sa.Column("db_duplicates", sa.Integer(), nullable=False),
        sa.Column("db_failed", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("filepath", sa.String(1024), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("terminal", sa.String(64), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("source_url", sa.Text(), nullable=True),
        sa.Column("is_thumbnail", sa.Boolean(), nullable=False),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("processed", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("filepath"),
        sa.ForeignKeyConstraint(["run_id"], ["download_runs.id"], ondelete="SET NULL"),
    )
    op.create_index("ix_images_camera_timestamp", "images", ["camera_id", "timestamp"])
    op.create_index("ix_images_timestamp", "images", ["timestamp"])
    op.create_table(
        "day_claims",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("terminal", sa.String(64), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("terminal", "camera_id", "day"),
    )


def downgrade() -> None:
    op.drop_table("day_claims")
    op.drop_index("ix_images_timestamp", table_name="images")
    op.drop_index("ix_images_camera_timestamp", table_name="images")
    op.drop_table("images")
    op.drop_table("download_runs")
