"""``images.filepath`` in byte order on PostgreSQL: a folder's keys are a range of its index.

Reindex asks, per run of day folders, for the keys stored under them. On SQLite that
is a range of the ``filepath`` index already (its BINARY collation is byte order),
read from the index alone. On PostgreSQL the column had the database's collation
(``en_US.UTF-8``, ``C.UTF-8``...), whose order the planner cannot use for a prefix,
so the keys came by the local-day index, which does not hold ``filepath``: one read
of the table per row. With the collation ``"C"`` (byte order, as in S3's listings)
the unique index on ``filepath`` serves the range, and an index-only scan answers it.
The index is rebuilt (the table is not rewritten); equality, and so uniqueness, is
the same under both collations, and byte comparisons are cheaper than the locale's.
Nothing changes on SQLite.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column(
        "images",
        "filepath",
        type_=sa.String(1024, collation="C"),
        existing_type=sa.String(1024),
        existing_nullable=False,
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column(
        "images",
        "filepath",
        type_=sa.String(1024, collation="default"),
        existing_type=sa.String(1024, collation="C"),
        existing_nullable=False,
    )
