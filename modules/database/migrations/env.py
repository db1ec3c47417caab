"""Alembic's entry point: runs the revisions on the connection the caller opened.

The archive configures Alembic from Python (see ``modules.database.migrations``), so
there is no alembic.ini and no offline mode: the caller's connection, already in
its transaction, is passed in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from modules.database.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "the archive's migrations run through modules.database.migrations, "
        "which passes a connection; the alembic command line is not set up for them"
    )
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
