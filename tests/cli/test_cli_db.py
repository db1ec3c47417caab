"""``draydog db upgrade`` and ``draydog db current``, and the other commands refusing a
database whose schema is behind the code (one line, exit 2, no traceback)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from modules.database import migrations
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
    assert upgraded.out.strip().endswith(f"upgraded from revision 0001 to {HEAD}")
    assert [row.filepath for row in read_images(db_url)] == sorted(
        row["filepath"] for row in legacy.images
    )
    assert [run.started_at for run in read_runs(db_url)] == [
        run["started_at"] for run in legacy.runs
    ]

    after = run_main("db", "current", "--db", db_url)
    assert f"revision {HEAD} (the newest)" in after.out
    again = run_main("db", "upgrade", "--db", db_url)
    assert again.out.strip().endswith(f"already at revision {HEAD}")
    stats = run_main("stats", "--db", db_url)
    assert stats.code == 0
    assert f"Total: {len(legacy.images)} pictures" in stats.out


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
