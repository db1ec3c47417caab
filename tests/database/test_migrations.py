"""Schema revisions: a new database at the newest one, a 0.1.0 database recognised,
refused until upgraded, and upgraded with every row, run and timestamp kept."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Table, insert, inspect, select, text

from modules.database import migrations, models, queries
from modules.database.models import ArchiveDay, Base, DownloadRun, Image
from tests.database.legacy_schema import build_legacy_database

LOS_ANGELES = ZoneInfo("America/Los_Angeles")


@contextmanager
def connected(url: str) -> Iterator[Connection]:
    """A connection of the archive's kind (not the process-wide engine), committed at the end."""
    engine = models.build_engine(url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def revision_of(url: str) -> str | None:
    with connected(url) as connection:
        return migrations.current_revision(connection)


def stored_version(url: str) -> list[str]:
    with connected(url) as connection:
        return list(
            connection.execute(
                text("SELECT version_num FROM alembic_version")
            ).scalars()
        )


def schema_differences(url: str) -> list[Any]:
    """What Alembic's autogenerate finds between the database and the models."""
    with connected(url) as connection:
        return list(
            compare_metadata(MigrationContext.configure(connection), Base.metadata)
        )


def index_names(url: str) -> set[str]:
    with connected(url) as connection:
        return {
            str(index["name"]) for index in inspect(connection).get_indexes("images")
        }


def filepath_in_byte_order(url: str) -> bool:
    """Whether ``images.filepath`` compares bytes: SQLite's BINARY, PostgreSQL's "C".

    Alembic's comparison of the models with the database does not look at collations.
    """
    with connected(url) as connection:
        if connection.dialect.name == "sqlite":
            return True  # no collation declared: BINARY
        collation = connection.execute(
            text(
                "SELECT collation_name FROM information_schema.columns WHERE "
                "table_schema = current_schema() AND table_name = 'images' "
                "AND column_name = 'filepath'"
            )
        ).scalar_one()
        return bool(collation == "C")


def insert_autovacuum_setting(url: str) -> str | None:
    """``images``' ``autovacuum_vacuum_insert_scale_factor``: None if unset (or SQLite)."""
    with connected(url) as connection:
        if connection.dialect.name == "sqlite":
            return None
        options = connection.execute(
            text("SELECT reloptions FROM pg_class WHERE oid = 'images'::regclass")
        ).scalar_one()
    for option in options or []:
        name, _, value = str(option).partition("=")
        if name == "autovacuum_vacuum_insert_scale_factor":
            return value
    return None


def has_table(url: str, name: str) -> bool:
    with connected(url) as connection:
        return bool(inspect(connection).has_table(name))


def rows_of(table: Table) -> list[dict[str, Any]]:
    with models.read_scope() as session:
        result = session.execute(select(table).order_by(table.c.id))
        return [dict(row._mapping) for row in result]


# --- a new database -----------------------------------------------------------------


def test_a_new_database_is_created_at_the_newest_revision(db_url: str) -> None:
    models.configure(db_url)
    models.init_db()
    assert revision_of(db_url) == migrations.head() == "0006"
    assert stored_version(db_url) == ["0006"]
    assert schema_differences(db_url) == []
    assert filepath_in_byte_order(db_url)
    postgres = db_url.startswith("postgresql")
    assert insert_autovacuum_setting(db_url) == ("0.01" if postgres else None)
    assert {
        "ix_images_run_id",
        "ix_images_unprocessed",
        "ix_images_terminal_camera_local_day",
        "ix_images_thumbnails",
        "uq_images_identity",
    } <= index_names(db_url)


def test_processes_creating_one_database_at_once_take_turns(db_url: str) -> None:
    """Four engines (as four processes would) preparing one new database at once."""
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def create() -> None:
        engine = models.build_engine(db_url)
        try:
            start.wait()
            models.prepare_schema(engine)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert stored_version(db_url) == [migrations.head()]


def test_create_leaves_a_database_with_tables_alone(db_url: str) -> None:
    build_legacy_database(db_url)
    with connected(db_url) as connection:
        assert migrations.create(connection) == migrations.BASELINE
        assert not inspect(connection).has_table(migrations.VERSION_TABLE)


# --- a database of version 0.1.0 ----------------------------------------------------


def test_a_0_1_0_database_is_recognised_and_refused_until_upgraded(db_url: str) -> None:
    build_legacy_database(db_url)
    assert revision_of(db_url) == migrations.BASELINE
    models.configure(db_url)
    with pytest.raises(migrations.SchemaOutdatedError, match="draydog db upgrade"):
        models.get_engine()
    with pytest.raises(migrations.SchemaOutdatedError):
        queries.count_images()
    # Refused, not touched: still the 0.1.0 tables, still no version.
    assert "ix_images_run_id" not in index_names(db_url)
    with connected(db_url) as connection:
        assert not inspect(connection).has_table(migrations.VERSION_TABLE)


def test_upgrading_a_0_1_0_database_keeps_every_row_run_and_timestamp(
    db_url: str,
) -> None:
    legacy = build_legacy_database(db_url)
    with connected(db_url) as connection:
        assert migrations.upgrade(connection) == migrations.BASELINE
    assert stored_version(db_url) == [migrations.head()]
    assert schema_differences(db_url) == []
    assert filepath_in_byte_order(db_url)
    postgres = db_url.startswith("postgresql")
    assert insert_autovacuum_setting(db_url) == ("0.01" if postgres else None)
    assert {"ix_images_run_id", "ix_images_unprocessed"} <= index_names(db_url)

    models.configure(db_url)
    models.init_db()
    # Every row kept as it was, with its day at the terminal filled in.
    assert rows_of(Image.__table__) == [  # type: ignore[arg-type]
        {**row, "local_day": row["timestamp"].astimezone(LOS_ANGELES).date()}
        for row in legacy.images
    ]
    assert rows_of(DownloadRun.__table__) == legacy.runs  # type: ignore[arg-type]
    assert not has_table(db_url, "day_claims")  # 0006: ranges go through Celery
    for image in rows_of(Image.__table__):  # type: ignore[arg-type]
        assert image["timestamp"].tzinfo is not None
        assert image["downloaded_at"].utcoffset().total_seconds() == 0

    # The upgraded archive goes on: new ids after the old ones, old rows found.
    new_id = queries.insert_image("/srv/archive/new.jpg", "in_gate")
    assert new_id > max(row["id"] for row in legacy.images)
    assert queries.insert_image(legacy.images[0]["filepath"], "in_gate") == 1
    unprocessed = [row["id"] for row in legacy.images if not row["processed"]]
    assert [i.id for i in queries.get_unprocessed_images(3)] == unprocessed[:3]


def test_upgrade_is_idempotent(db_url: str) -> None:
    build_legacy_database(db_url)
    with connected(db_url) as connection:
        migrations.upgrade(connection)
    with connected(db_url) as connection:
        assert migrations.upgrade(connection) == migrations.head()
    assert stored_version(db_url) == [migrations.head()]


def test_upgrade_of_an_empty_database_creates_it(db_url: str) -> None:
    with connected(db_url) as connection:
        assert migrations.upgrade(connection) is None
    assert stored_version(db_url) == [migrations.head()]
    assert schema_differences(db_url) == []


def test_a_stamped_older_revision_is_refused_then_upgraded(db_url: str) -> None:
    with connected(db_url) as connection:
        migrations.create(connection)
        command.downgrade(migrations.alembic_config(connection), migrations.BASELINE)
    assert stored_version(db_url) == [migrations.BASELINE]
    assert not {"ix_images_run_id", "ix_images_unprocessed"} & index_names(db_url)
    models.configure(db_url)
    with pytest.raises(migrations.SchemaOutdatedError, match="0001"):
        models.init_db()
    with connected(db_url) as connection:
        assert migrations.upgrade(connection) == migrations.BASELINE
    models.configure(db_url)
    models.init_db()
    assert stored_version(db_url) == [migrations.head()]


def test_downgrading_to_nothing_drops_every_table(db_url: str) -> None:
    with connected(db_url) as connection:
        migrations.create(connection)
        command.downgrade(migrations.alembic_config(connection), "base")
    with connected(db_url) as connection:
        assert set(inspect(connection).get_table_names()) == {migrations.VERSION_TABLE}
        assert migrations.current_revision(connection) is None


def test_a_revision_this_code_does_not_know_is_refused(db_url: str) -> None:
    with connected(db_url) as connection:
        migrations.create(connection)
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    models.configure(db_url)
    with pytest.raises(migrations.SchemaUnknownError, match="9999.*newer draydog"):
        models.get_engine()
    assert migrations.is_known("9999") is False
    assert migrations.is_known(migrations.BASELINE) is True


def test_the_migrations_refuse_to_run_without_a_connection() -> None:
    with pytest.raises(RuntimeError, match="passes a connection"):
        command.upgrade(migrations.alembic_config(), "head")


def test_the_package_ships_its_migrations() -> None:
    versions = sorted(p.name for p in (migrations.FOLDER / "versions").glob("r*.py"))
    assert versions == [
        "r0001_schema_of_0_1_0.py",
        "r0002_index_run_id_and_unprocessed.py",
        "r0003_archive_days_and_local_day.py",
        "r0004_picture_identity.py",
        "r0005_filepath_in_byte_order.py",
        "r0006_drop_day_claims.py",
    ]
    assert (migrations.FOLDER / "env.py").is_file()
    assert (migrations.FOLDER / "script.py.mako").is_file()


# --- the commands' check ----------------------------------------------------------------


def test_check_schema_creates_nothing(db_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite3"
    models.configure(f"sqlite:///{missing}")
    models.check_schema()
    assert not missing.exists()
    models.configure(db_url)
    models.check_schema()  # an empty database passes: its first use creates it
    assert revision_of(db_url) is None
    build_legacy_database(db_url)
    with pytest.raises(migrations.SchemaOutdatedError, match="draydog db upgrade"):
        models.check_schema()
    with connected(db_url) as connection:
        migrations.upgrade(connection)
    models.check_schema()


# --- revision 0003: archive_days and images.local_day ------------------------------------


def test_0003_gives_existing_rows_their_day_at_the_terminal(db_url: str) -> None:
    """6,000 rows every 10 minutes across a daylight-saving change (more than one batch)."""
    start = datetime(2025, 3, 1, 0, 5, tzinfo=timezone.utc)
    stamps = [start + timedelta(minutes=10 * i) for i in range(6000)]
    with connected(db_url) as connection:
        migrations.create(connection)
        command.downgrade(migrations.alembic_config(connection), "0002")
    with connected(db_url) as connection:
        assert "local_day" not in {
            column["name"] for column in inspect(connection).get_columns("images")
        }
        connection.execute(
            insert(Image),
            [
                {
                    "filepath": f"/a/{i}.jpg",
                    "camera_id": "in_gate",
                    "terminal": "apm",
                    "timestamp": stamp,
                    "is_thumbnail": False,
                    "downloaded_at": stamp,
                    "processed": False,
                }
                for i, stamp in enumerate(stamps)
            ],
        )
    with connected(db_url) as connection:
        assert migrations.upgrade(connection) == "0002"
    assert schema_differences(db_url) == []
    models.configure(db_url)
    rows = rows_of(Image.__table__)  # type: ignore[arg-type]
    assert [row["local_day"] for row in rows] == [
        stamp.astimezone(LOS_ANGELES).date() for stamp in stamps
    ]
    # 00:05 UTC on March 1st is the evening of February 28th at the terminal.
    assert rows[0]["local_day"] == date(2025, 2, 28)
    with models.read_scope() as session:
        assert session.execute(select(ArchiveDay)).all() == []


def test_0003_downgrades_to_0002(db_url: str) -> None:
    with connected(db_url) as connection:
        migrations.create(connection)
        command.downgrade(migrations.alembic_config(connection), "0002")
    with connected(db_url) as connection:
        inspector = inspect(connection)
        assert not inspector.has_table("archive_days")
        assert "local_day" not in {c["name"] for c in inspector.get_columns("images")}
    assert {"ix_images_run_id", "ix_images_unprocessed"} <= index_names(db_url)
    assert not {
        "ix_images_terminal_camera_local_day",
        "ix_images_thumbnails",
    } & index_names(db_url)


# --- revision 0004 and `draydog db upgrade --dir`: identity and keys ------------------------


def upgrade_with_root(url: str, root: str, capsys: pytest.CaptureFixture[str]) -> str:
    from modules.cli import main

    assert main(["db", "upgrade", "--db", url, "--dir", root]) == 0
    return capsys.readouterr().out


def test_upgrading_a_0_1_0_database_with_its_root_turns_its_paths_into_keys(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = build_legacy_database(db_url)
    out = upgrade_with_root(db_url, "/srv/archive", capsys)
    assert f"upgraded from revision {migrations.BASELINE} to 0006" in out
    assert "8 stored paths under /srv/archive became keys" in out
    models.configure(db_url)
    # Every row, run and timestamp kept; only the path changed, to its key.
    assert rows_of(Image.__table__) == [  # type: ignore[arg-type]
        {
            **row,
            "filepath": row["filepath"].removeprefix("/srv/archive/"),
            "local_day": row["timestamp"].astimezone(LOS_ANGELES).date(),
        }
        for row in legacy.images
    ]
    assert rows_of(DownloadRun.__table__) == legacy.runs  # type: ignore[arg-type]
    assert not has_table(db_url, "day_claims")  # 0006: ranges go through Celery
    image = queries.get_image_by_path(
        "/mnt/elsewhere/apm/in_gate/2025-09-06/in_gate_00.jpg", root="/mnt/elsewhere"
    )
    assert image is not None and image.id == 1
    assert queries.image_location(image, "/mnt/elsewhere") == Path(
        "/mnt/elsewhere/apm/in_gate/2025-09-06/in_gate_00.jpg"
    )
    # Idempotent: a second run finds nothing left to convert.
    assert "0 stored paths under /srv/archive became keys" in upgrade_with_root(
        db_url, "/srv/archive", capsys
    )


def test_upgrading_from_0003_keys_paths_under_the_root_and_keeps_one_row_per_picture(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An archive recorded at 0003 through two mount points: each picture twice."""
    stamp = datetime(2025, 9, 6, 7, 7, 34, tzinfo=timezone.utc)
    with connected(db_url) as connection:
        migrations.create(connection)
        command.downgrade(migrations.alembic_config(connection), "0003")
    rows = [
        ("/data/archive/apm/in_gate/2025-09-06/a.jpg", stamp, False),
        ("/data/archive/apm/in_gate/2025-09-06/a_thumb.jpg", stamp, True),
        ("/mnt/other/apm/in_gate/2025-09-06/a.jpg", stamp, False),  # a's twin
        (
            "/data/archive/apm/in_gate/2025-09-06/b.jpg",
            stamp + timedelta(minutes=1),
            False,
        ),
        ("/home/me/downloads/c.jpg", stamp + timedelta(minutes=2), False),
    ]
    with connected(db_url) as connection:
        connection.execute(
            insert(Image),
            [
                {
                    "filepath": path,
                    "camera_id": "in_gate",
                    "terminal": "apm",
                    "timestamp": taken,
                    "is_thumbnail": thumb,
                    "downloaded_at": taken,
                    "processed": False,
                    "local_day": date(2025, 9, 6),
                }
                for path, taken, thumb in rows
            ],
        )
    out = upgrade_with_root(db_url, "/data/archive", capsys)
    assert "upgraded from revision 0003 to 0006" in out
    assert "3 stored paths under /data/archive became keys" in out
    assert schema_differences(db_url) == []
    models.configure(db_url)
    assert [(r["id"], r["filepath"]) for r in rows_of(Image.__table__)] == [  # type: ignore[arg-type]
        (1, "apm/in_gate/2025-09-06/a.jpg"),
        (2, "apm/in_gate/2025-09-06/a_thumb.jpg"),
        (4, "apm/in_gate/2025-09-06/b.jpg"),
        (5, "/home/me/downloads/c.jpg"),  # outside the root: stays absolute
    ]


def test_0004_downgrades_to_0003_which_is_refused_until_upgraded(db_url: str) -> None:
    with connected(db_url) as connection:
        migrations.create(connection)
        command.downgrade(migrations.alembic_config(connection), "0003")
    assert "uq_images_identity" not in index_names(db_url)
    models.configure(db_url)
    with pytest.raises(
        migrations.SchemaOutdatedError, match="0003.*draydog db upgrade"
    ):
        models.check_schema()


# --- revision 0005: filepath in byte order ------------------------------------------------


def test_0005_puts_filepath_in_byte_order_and_downgrades_to_0004(db_url: str) -> None:
    """Rows stored at 0004 keep their keys; a folder's keys are then one range."""
    stamp = datetime(2025, 9, 6, 7, 7, 34, tzinfo=timezone.utc)
    keys = [
        "apm/in_gate/2025-09-05/in_gate_20250905T000000.jpg",
        "apm/in_gate/2025-09-06/in_gate_20250906T000734.jpg",
        "apm/in_gate/2025-09-06/Z.jpg",
        "apm/in_gate/2025-09-06/é.jpg",  # beyond ASCII: still inside the range
        "apm/in_gate/2025-09-07/in_gate_20250907T000000.jpg",
        "apm/in_gate_2/2025-09-06/in_gate_2_20250906T000000.jpg",
    ]
    with connected(db_url) as connection:
        migrations.create(connection)
        command.downgrade(migrations.alembic_config(connection), "0004")
    with connected(db_url) as connection:
        connection.execute(
            insert(Image),
            [
                {
                    "filepath": key,
                    "camera_id": "in_gate",
                    "terminal": "apm",
                    "timestamp": stamp + timedelta(minutes=n),
                    "is_thumbnail": False,
                    "downloaded_at": stamp,
                    "processed": False,
                    "local_day": date(2025, 9, 6),
                }
                for n, key in enumerate(keys)
            ],
        )
    with connected(db_url) as connection:
        assert migrations.upgrade(connection) == "0004"
    assert filepath_in_byte_order(db_url)
    assert schema_differences(db_url) == []
    models.configure(db_url)
    assert [r["filepath"] for r in rows_of(Image.__table__)] == keys  # type: ignore[arg-type]
    assert queries.folder_keys(
        "apm", "in_gate", date(2025, 9, 6), date(2025, 9, 6)
    ) == set(keys[1:4])
    # Still unique: a key stored again is a duplicate.
    again = queries.insert_images(
        [
            {
                "filepath": keys[1],
                "camera_id": "in_gate",
                "terminal": "apm",
                "timestamp": stamp - timedelta(days=1),
            }
        ]
    )
    assert (again.inserted, again.duplicates) == (0, 1)

    models.configure("sqlite://")  # let go of the database before downgrading it
    with connected(db_url) as connection:
        command.downgrade(migrations.alembic_config(connection), "0004")
    assert stored_version(db_url) == ["0004"]
    if db_url.startswith("postgresql"):
        assert not filepath_in_byte_order(db_url)
    assert insert_autovacuum_setting(db_url) is None
    with connected(db_url) as connection:
        assert set(connection.execute(select(Image.filepath)).scalars()) == set(keys)


# --- revision 0006: the claims table goes -----------------------------------------------


def test_0006_drops_day_claims_with_its_rows_and_downgrades_to_0005(
    db_url: str,
) -> None:
    """A database of 0005 with claims: the upgrade drops the table (ranges are
    Celery's now), the rest stays; the downgrade makes it again, empty."""
    with connected(db_url) as connection:
        migrations.create(connection)
        command.downgrade(migrations.alembic_config(connection), "0005")
    assert has_table(db_url, "day_claims")
    with connected(db_url) as connection:
        connection.execute(
            text(
                "INSERT INTO day_claims (terminal, camera_id, day, status, attempts, "
                "updated_at) VALUES ('apm', 'in_gate', '2025-09-06', 'done', 1, "
                "'2025-09-07 00:00:00')"
            )
        )
    with connected(db_url) as connection:
        assert migrations.upgrade(connection) == "0005"
    assert stored_version(db_url) == ["0006"]
    assert not has_table(db_url, "day_claims")
    assert schema_differences(db_url) == []
    with connected(db_url) as connection:
        command.downgrade(migrations.alembic_config(connection), "0005")
    assert has_table(db_url, "day_claims")
    with connected(db_url) as connection:
        count = connection.execute(text("SELECT count(*) FROM day_claims")).scalar()
    assert count == 0
