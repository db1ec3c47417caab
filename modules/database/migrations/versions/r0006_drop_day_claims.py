"""The table ``day_claims`` goes: ranges are shared through Celery now.

``draydog download --claim`` split a range across workers with this table (leases
renewed by each worker, taken over once they ran out). Celery over RabbitMQ does
that job (``draydog enqueue`` and ``draydog worker``, :mod:`modules.tasks`), with
late acknowledgement in place of leases, so the table and its rows are dropped. A
claim only ever said who was working on a day: what the archive holds is in
``images`` and ``archive_days``, which stay as they are.

The downgrade creates the table again, empty, as revision 0001 made it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("day_claims")


def downgrade() -> None:
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
