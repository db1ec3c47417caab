"""Fixtures shared by the whole test suite.

* ``sqlite_url``: a fresh SQLite file URL in the test's ``tmp_path``.
* ``postgres_url``: a URL into a fresh PostgreSQL schema of the server named by
  ``DRAYDOG_TEST_POSTGRES_URL`` (dropped afterwards); skips when that is unset.
* ``db_url``: ``sqlite_url`` and ``postgres_url`` in turn (ids ``sqlite``/``postgres``).
* ``database``: ``db_url`` configured as the archive (fast retry policy) with its
  tables created; yields the URL and forgets the engine afterwards.
* ``local_time_not_utc``: the process's local time zone is not UTC for the test.

And, for every test, ``DATABASE_URL`` points at a throwaway SQLite file in
``tmp_path`` and the engine state is reset before and after, so that no test ever
writes to ``./data/`` or inherits another test's engine without saying so.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from modules.database import models

POSTGRES_ENV = "DRAYDOG_TEST_POSTGRES_URL"


def reset_database_state() -> None:
    """Dispose the engine and forget the configured URL, archive root and retry policy.

    The next use of the database reads ``DATABASE_URL`` again, as at import.
    """
    with models._lock:
        if models._state.engine is not None:
            models._state.engine.dispose()
        models._state.url = None
        models._state.engine = None
        models._state.factory = None
        models._state.retry = models._State().retry
        models._state.archive_root = None


@pytest.fixture(autouse=True)
def _isolated_database_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/isolated.sqlite3")
    monkeypatch.delenv(models.ARCHIVE_ENV, raising=False)
    reset_database_state()
    yield
    reset_database_state()


@pytest.fixture
def local_time_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is America/Los_Angeles for the test.

    So that code taking the machine's local time where it means UTC is caught even
    on machines (CI) whose local time is UTC.
    """
    if not hasattr(time, "tzset"):
        pytest.skip("needs time.tzset (POSIX)")
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file URL (the file does not exist yet)."""
    return f"sqlite:///{tmp_path}/archive.sqlite3"


def schema_url(base: str, schema: str) -> str:
    """``base`` with its connections' ``search_path`` set to ``schema`` (psycopg options)."""
    url = make_url(base)
    query = dict(url.query)
    query["options"] = f"-csearch_path={schema}"
    return url.set(query=query).render_as_string(hide_password=False)


def libpq_conninfo(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as a URI psycopg/libpq accepts."""
    return (
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL into a fresh schema ``t_<hex>`` of the test server, dropped afterwards."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"set {POSTGRES_ENV} to run PostgreSQL tests")
    import psycopg

    schema = f"t_{uuid.uuid4().hex}"
    admin = libpq_conninfo(base)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema_url(base, schema)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            # Fail loudly rather than hang if a test leaked a connection holding locks.
            conn.execute("SET lock_timeout = '20s'")
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh SQLite file, then a fresh PostgreSQL schema (skipped without the server)."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url = request.getfixturevalue(name)
    assert isinstance(url, str)
    return url


@pytest.fixture
def database(db_url: str) -> Iterator[str]:
    """``db_url`` configured as the archive with its tables; the engine is dropped after."""
    models.configure(db_url, retry_attempts=3, retry_delay=0.01)
    models.init_db()
    try:
        yield db_url
    finally:
        reset_database_state()
