"""``draydog db upgrade`` and ``draydog db current``, and the other commands refusing a
database whose schema is behind the code (one line, exit 2, no traceback)."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert

from modules.database import migrations, models
from modules.database.models import Image
from tests.cli.conftest import (
    RunMain,
    assert_clean_exit,
    read_images,
    read_runs,
    run_cli,
    sqlite_file_url,
)
from tests.database.legacy_schema import build_legacy_database

HEAD = migrations.head()


def test_db_upgrade_brings_a_0_1_0_database_to_the_newest_revision(
    run_main: RunMain, db_url: str
) -> None:
    legacy = build_legacy_database(db_url)
    before = run_main("db", "current", "--db", db_url)
    assert before.code == 0
    assert f"revision 0001, behind {HEAD}: run `draydog db upgrade`" in before.out

    upgraded = run_main("db", "upgrade", "--db", db_url)
    assert (upgraded.code, upgraded.err) == (0, "")
    assert upgraded.out.splitlines()[0].endswith(
        f"upgraded from revision 0001 to {HEAD}"
    )
    assert [row.filepath for row in read_images(db_url)] == sorted(
        row["filepath"] for row in legacy.images
    )
    assert [run.started_at for run in read_runs(db_url)] == [
        run["started_at"] for run in legacy.runs
    ]

    after = run_main("db", "current", "--db", db_url)
    assert f"revision {HEAD} (the newest)" in after.out
    again = run_main("db", "upgrade", "--db", db_url)
    assert again.out.splitlines()[0].endswith(f"already at revision {HEAD}")
    stats = run_main("stats", "--db", db_url)
    assert stats.code == 0
    assert f"Total: {len(legacy.images)} pictures" in stats.out


def test_db_upgrade_and_current_name_the_fix_for_rows_that_hold_absolute_paths(
    run_main: RunMain, db_url: str
) -> None:
    """Upgraded without --dir, 0.1.0's absolute paths stay: both commands say so."""
    legacy = build_legacy_database(db_url)
    note = (
        f"{len(legacy.images)} rows still hold absolute paths, not keys: "
        "`draydog db upgrade --dir ROOT` turns those under the archive root ROOT "
        "into keys (by their folders, ROOT is /srv/archive)"
    )
    assert note in run_main("db", "current", "--db", db_url).out
    upgraded = run_main("db", "upgrade", "--db", db_url)
    assert upgraded.code == 0
    assert upgraded.out.splitlines()[-1] == note
    assert run_main("db", "current", "--db", db_url).out.splitlines()[-1] == note

    keyed = run_main("db", "upgrade", "--db", db_url, "--dir", "/srv/archive")
    assert keyed.code == 0
    assert "8 stored paths under /srv/archive became keys" in keyed.out
    assert "absolute path" not in keyed.out.replace("stay absolute", "")
    assert "still hold" not in run_main("db", "current", "--db", db_url).out


def test_db_upgrade_with_a_root_names_what_is_left_absolute(
    run_main: RunMain, db_url: str
) -> None:
    """Rows under two mount points, one whose key is taken, and a file of one's own."""
    stamp = datetime(2025, 9, 6, 7, 7, 34, tzinfo=timezone.utc)
    day = "apm/in_gate/2025-09-06"
    paths = [
        f"{day}/a.jpg",  # a key already
        f"/srv/archive/{day}/a.jpg",  # its key is taken: stays
        f"/srv/archive/{day}/b.jpg",
        f"/mnt/other/{day}/c.jpg",
        f"/mnt/other/{day}/d.jpg",
        "/home/me/downloads/e.jpg",  # outside any archive
    ]
    models.configure(db_url)
    models.init_db()
    with models.session_scope() as session:
        session.execute(
            insert(Image),
            [
                {
                    "filepath": path,
                    "camera_id": "in_gate",
                    "terminal": "apm",
                    "timestamp": stamp + timedelta(minutes=n),
                    "local_day": date(2025, 9, 6),
                }
                for n, path in enumerate(paths)
            ],
        )
    models.configure("sqlite://")

    first = run_main("db", "upgrade", "--db", db_url, "--dir", "/srv/archive")
    assert first.code == 0
    assert "1 stored paths under /srv/archive became keys, 1 kept" in first.out
    assert first.out.splitlines()[-1] == (
        "4 rows still hold absolute paths, not keys: `draydog db upgrade --dir ROOT` "
        "turns those under the archive root ROOT into keys "
        "(by their folders, ROOT is /mnt/other)"
    )
    second = run_main("db", "upgrade", "--db", db_url, "--dir", "/mnt/other")
    assert "2 stored paths under /mnt/other became keys" in second.out
    assert second.out.splitlines()[-1].startswith(
        "2 rows still hold absolute paths, not keys: "
    )
    assert "(by their folders, ROOT is /srv/archive)" in second.out
    again = run_main("db", "upgrade", "--db", db_url, "--dir", "/srv/archive")
    assert again.out.splitlines()[-1].endswith(
        "(those under /srv/archive stay: another row has their key)"
    )

    models.configure(db_url)
    with models.session_scope() as session:
        session.query(Image).filter(
            Image.filepath == f"/srv/archive/{day}/a.jpg"
        ).delete()
    models.configure("sqlite://")
    assert run_main("db", "current", "--db", db_url).out.splitlines()[-1] == (
        "1 row still holds an absolute path, not keys: `draydog db upgrade --dir ROOT` "
        "turns those under the archive root ROOT into keys (none is in the "
        "archive's layout <terminal>/<stream>/<day>/<file>: a file outside any "
        "archive keeps its path)"
    )


def test_db_upgrade_creates_a_new_database(run_main: RunMain, tmp_path: Path) -> None:
    url = sqlite_file_url(tmp_path / "new.sqlite3")
    current = run_main("db", "current", "--db", url)
    assert "no tables yet" in current.out
    created = run_main("db", "upgrade", "--db", url)
    assert created.code == 0
    assert created.out.strip().endswith(f"created at revision {HEAD}")


def test_db_uses_database_url_without_db(
    run_main: RunMain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite_file_url(tmp_path / "env.sqlite3")
    monkeypatch.setenv("DATABASE_URL", url)
    assert run_main("db", "upgrade").code == 0
    assert f"revision {HEAD} (the newest)" in run_main("db", "current").out


def test_db_current_names_a_revision_it_does_not_know(
    run_main: RunMain, tmp_path: Path
) -> None:
    url = sqlite_file_url(tmp_path / "newer.sqlite3")
    run_main("db", "upgrade", "--db", url)
    with sqlite3.connect(tmp_path / "newer.sqlite3") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    assert (
        "revision 9999, unknown to this draydog"
        in run_main("db", "current", "--db", url).out
    )
    refused = run_main("stats", "--db", url)
    assert refused.code == 2
    assert "use a newer draydog" in refused.err


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["stats"], id="stats"),
        pytest.param(["reindex", "--dir", "archive"], id="reindex"),
        pytest.param(
            [
                "download",
                "--date",
                "2025-09-06",
                "--no-browser",
                "--timestamps-file",
                "times.txt",
                "--cdn-url",
                "http://127.0.0.1:9",
            ],
            id="download",
        ),
    ],
)
def test_commands_refuse_an_outdated_database_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "archive").mkdir()
    (tmp_path / "times.txt").write_text("2025-09-06T10:00:00\n", encoding="utf-8")
    url = sqlite_file_url(tmp_path / "old.sqlite3")
    build_legacy_database(url)
    result = run_cli(*command, "--db", url, cwd=tmp_path)
    assert_clean_exit(result, 2)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("draydog: error: the database ")
    assert "draydog db upgrade" in lines[0]
    assert not list((tmp_path / "archive").rglob("*.jpg"))


def test_db_with_a_malformed_url_is_bad_usage(run_main: RunMain) -> None:
    result = run_main("db", "current", "--db", "postgresql://h:port/x")
    assert result.code == 2
    assert result.err.startswith("draydog: error: malformed database URL")


def test_db_against_an_unreachable_database_fails_in_one_line(tmp_path: Path) -> None:
    result = run_cli(
        "db", "upgrade", "--db", "postgresql://postgres@127.0.0.1:1/x", cwd=tmp_path
    )
    assert_clean_exit(result, 1)
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("draydog: failed: OperationalError")
