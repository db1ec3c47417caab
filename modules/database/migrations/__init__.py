"""The archive's schema versions: Alembic revisions, configured from Python (no alembic.ini).

The revisions in ``versions/`` are the one definition of the schema on disk: a new
database is made by running all of them, an old one is brought up by running the
ones it lacks. Revision 0001 is the schema of version 0.1.0, which kept no version
table; a database with its tables and no version is recognised as 0001.

Every function here works on a connection the caller opened; the ones that write
run inside the caller's transaction and take a lock first (PostgreSQL: an advisory
lock; SQLite: the write lock of ``BEGIN IMMEDIATE``), so that processes creating
or upgrading one database at once take turns instead of failing.

A new revision: ``alembic.command.revision(alembic_config(), message="...")``
writes its file from ``script.py.mako``; give it the next number as its id.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text

logger = logging.getLogger(__name__)

FOLDER = Path(__file__).resolve().parent
BASELINE = "0001"
"""The revision of version 0.1.0's schema."""
VERSION_TABLE = "alembic_version"
_BASELINE_TABLE = "images"
_POSTGRES_LOCK = 0x64726179_6462  # any constant shared by every draydog process


class SchemaError(RuntimeError):
    """The database's schema is not the one this code works with."""


class SchemaOutdatedError(SchemaError):
    """The database is at an older revision: ``draydog db upgrade`` brings it up."""


class SchemaUnknownError(SchemaError):
    """The database is at a revision this code does not know (a newer draydog wrote it)."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the archive, running on ``connection`` when given."""
    config = Config()
    config.set_main_option("script_location", str(FOLDER))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    """The newest revision: the schema this code works with."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:  # pragma: no cover - the folder ships with the package
        raise RuntimeError(f"no migrations in {FOLDER / 'versions'}")
    return revision


def current_revision(connection: Connection) -> str | None:
    """The database's revision; BASELINE for a 0.1.0 database; None when it has no tables."""
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None and inspect(connection).has_table(_BASELINE_TABLE):
        return BASELINE
    return revision


def require_head(revision: str | None, where: str) -> None:
    """Raise unless ``revision`` (of the database ``where``) is the newest one."""
    if revision == head():
        return
    if revision is None or not is_known(revision):
        raise SchemaUnknownError(
            f"the database {where} is at revision {revision}, which this draydog "
            f"(revision {head()}) does not know: use a newer draydog"
        )
    raise SchemaOutdatedError(
        f"the database {where} is at revision {revision}, older than this draydog's "
        f"{head()}: run `draydog db upgrade` first"
    )


def is_known(revision: str) -> bool:
    """Whether ``revision`` is one of this code's (the newest or an older one)."""
    try:
        script = ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        return False
    return script is not None


def create(connection: Connection) -> str:
    """Build an empty database at the newest revision; leave one that has tables alone.

    Returns the revision the database is at afterwards.
    """
    _lock(connection)
    revision = current_revision(connection)
    if revision is not None:
        return revision
    logger.info("creating the archive's tables at revision %s", head())
    command.upgrade(alembic_config(connection), "head")
    return head()


def upgrade(connection: Connection) -> str | None:
    """Bring the database to the newest revision; return the revision it was at.

    An empty database is created; one of version 0.1.0 is stamped BASELINE first.
    """
    _lock(connection)
    before = current_revision(connection)
    config = alembic_config(connection)
    if before is not None and not inspect(connection).has_table(VERSION_TABLE):
        logger.info("recognised a database of version 0.1.0 (revision %s)", BASELINE)
        command.stamp(config, BASELINE)
    if before != head():
        logger.info("upgrading the database from revision %s to %s", before, head())
        command.upgrade(config, "head")
    return before


def _lock(connection: Connection) -> None:
    """Make processes changing one schema at once take turns.

    PostgreSQL: an advisory lock until the transaction ends. SQLite: the caller's
    transaction holds the write lock already (the engine begins writes IMMEDIATE).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_LOCK}
        )
