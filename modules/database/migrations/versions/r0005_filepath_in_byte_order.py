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

An index-only scan still reads the table for the rows of pages that the visibility
map does not mark all-visible: those written since the table's last vacuum. Left
to the defaults (PostgreSQL 13 on), autovacuum comes after inserts of 20% of the
table, so up to the newest fifth of a large archive stays out of the map (and
its index-only scans, reindex's and those of gaps and stats, read the table);
``autovacuum_vacuum_insert_scale_factor`` = 0.01 on ``images`` brings it after
1% (plus 1,000 rows). An insert-only vacuum only reads
the pages not yet all-visible. Before PostgreSQL 13 no insert starts autovacuum
and the parameter does not exist: it is not set there.

Nothing changes on SQLite.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

INSERT_SCALE_FACTOR = "autovacuum_vacuum_insert_scale_factor"

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
    if _has_insert_autovacuum():
        op.execute(f"ALTER TABLE images SET ({INSERT_SCALE_FACTOR} = 0.01)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    if _has_insert_autovacuum():
        op.execute(f"ALTER TABLE images RESET ({INSERT_SCALE_FACTOR})")
    op.alter_column(
        "images",
        "filepath",
        type_=sa.String(1024, collation="default"),
        existing_type=sa.String(1024, collation="C"),
        existing_nullable=False,
    )


def _has_insert_autovacuum() -> bool:
    version = op.get_bind().execute(sa.text("SHOW server_version_num")).scalar_one()
    return int(version) >= 130000
