"""``draydog ... --dir s3://bucket/prefix``: every command on an archive in a bucket
(moto's S3 on 127.0.0.1, configured by the standard ``AWS_*`` variables), as real
subprocesses against the replica; two processes writing one day; bad locations.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from modules.downloader.archive import picture_key
from modules.replica import ReplicaServer
from modules.storage.s3 import S3Storage
from tests.cli.conftest import (
    RunMain,
    assert_clean_exit,
    day_times,
    delete_rows,
    parse_summary,
    read_images,
    replica,
    replica_server,
    require_browser,
    run_cli,
    run_main,
    site_options,
    sqlite_file_url,
    start_cli,
    write_timestamps,
)
from tests.storage.helpers import (
    PREFIX,
    STREAM,
    TERMINAL,
    expected_objects,
    files_below,
    objects,
)

__all__ = ["replica", "replica_server", "require_browser", "run_main"]  # fixtures

DAY = date(2025, 9, 6)


def key_of(wall: datetime) -> str:
    return picture_key(TERMINAL, STREAM, wall)


def parts_left(folder: Path) -> list[str]:
    return [name for name in files_below(folder) if name.endswith(".part")]


def temp_env(tmp_path: Path) -> dict[str, str]:
    """Bodies bound for the bucket are staged in the test's folder (``tmp``)."""
    return {"DRAYDOG_STAGING_DIR": str(tmp_path / "tmp")}


@pytest.mark.browser
@pytest.mark.usefixtures("require_browser")
def test_a_day_read_on_the_page_goes_into_a_bucket_and_a_rerun_reads_nothing(
    replica: ReplicaServer, s3_bucket: str, tmp_path: Path
) -> None:
    db = sqlite_file_url(tmp_path / "archive.sqlite3")
    location = f"s3://{s3_bucket}/{PREFIX}"
    command = ["download", "--date", DAY.isoformat(), "--stream", STREAM]
    command += ["--dir", location, "--db", db, *site_options(replica)]

    first = run_cli(*command, cwd=tmp_path, env=temp_env(tmp_path))

    assert_clean_exit(first, 0)
    times = day_times(DAY)
    row = parse_summary(first.stdout)[(DAY.isoformat(), STREAM)]
    assert row["found"] == row["new"] == row["rows+"] == str(len(times))
    assert objects(s3_bucket) == expected_objects(times)
    assert sorted(r.filepath for r in read_images(db)) == sorted(map(key_of, times))
    assert parts_left(tmp_path / "tmp") == []
    assert not list(tmp_path.glob("s3:*")), "no local folder named after the URL"

    replica.reset_counters()
    again = run_cli(*command, cwd=tmp_path, env=temp_env(tmp_path))
    assert_clean_exit(again, 0)
    assert "already complete (144 of 144 stored), not read again" in again.stdout
    assert replica.total_requests == 0


def test_every_command_works_on_a_bucket(
    replica: ReplicaServer, s3_bucket: str, tmp_path: Path
) -> None:
    """download, reindex, gaps, stats and prune with ``--dir s3://...``."""
    db = sqlite_file_url(tmp_path / "archive.sqlite3")
    location = f"s3://{s3_bucket}/{PREFIX}"
    times = day_times(DAY)[:30]
    listed = write_timestamps(tmp_path / "times.txt", times)
    env = temp_env(tmp_path)
    download = ["download", "--date", DAY.isoformat(), "--no-browser"]
    download += ["--timestamps-file", str(listed), "--dir", location, "--db", db]
    download += site_options(replica)

    assert_clean_exit(run_cli(*download, cwd=tmp_path, env=env), 0)
    assert objects(s3_bucket) == expected_objects(times)
    assert parts_left(tmp_path / "tmp") == []

    # reindex restores the rows deleted, by listing the bucket
    delete_rows(db, [key_of(t) for t in times[:10]])
    reindexed = run_cli("reindex", "--dir", location, "--db", db, cwd=tmp_path)
    assert_clean_exit(reindexed, 0)
    assert "30 pictures scanned, 10 without a row, 10 inserted" in reindexed.stdout
    assert sorted(r.filepath for r in read_images(db)) == sorted(map(key_of, times))

    # gaps compares rows and objects by key, and lists them by URL
    gaps = ["gaps", "--start", DAY.isoformat(), "--end", DAY.isoformat()]
    gaps += ["--stream", STREAM, "--dir", location, "--db", db, "--json"]
    clean = run_cli(*gaps, cwd=tmp_path)
    assert_clean_exit(clean, 0)
    assert json.loads(clean.stdout)["files_checked"] is True
    S3Storage(s3_bucket, PREFIX).delete(key_of(times[3]))
    delete_rows(db, [key_of(times[7])])
    lacking = run_cli(*gaps, cwd=tmp_path)
    assert_clean_exit(lacking, 1)
    found = json.loads(lacking.stdout)
    assert found["rows_without_files"] == [f"{location}/{key_of(times[3])}"]
    assert found["files_without_rows"] == [f"{location}/{key_of(times[7])}"]

    # stats adds what the bucket stores, by listing it
    stats = run_cli("stats", "--db", db, "--dir", location, cwd=tmp_path)
    assert_clean_exit(stats, 0)
    size = sum(len(body) for body in objects(s3_bucket).values())
    assert f"Stored: 29 pictures, {size / 1e6:.1f} MB in {location}" in stats.stdout

    # prune: the day is long past; a dry run touches nothing, --yes removes all
    prune = ["prune", "--older-than", "30", "--dir", location, "--db", db]
    dry = run_cli(*prune, cwd=tmp_path)
    assert_clean_exit(dry, 0)
    assert "29 with rows" in dry.stdout and "1 files without a row" in dry.stdout
    assert len(objects(s3_bucket)) == 29
    removed = run_cli(*prune, "--yes", cwd=tmp_path)
    assert_clean_exit(removed, 0)
    assert "29 files (1 already gone), 29 rows" in removed.stdout
    assert objects(s3_bucket) == {} and read_images(db) == []


def test_two_processes_writing_one_day_into_one_bucket_store_each_picture_once(
    replica: ReplicaServer, s3_bucket: str, tmp_path: Path
) -> None:
    db = sqlite_file_url(tmp_path / "archive.sqlite3")
    location = f"s3://{s3_bucket}/{PREFIX}"
    times = day_times(DAY)
    listed = write_timestamps(tmp_path / "times.txt", times)
    command = ["download", "--date", DAY.isoformat(), "--no-browser", "--workers", "4"]
    command += ["--timestamps-file", str(listed), "--dir", location, "--db", db]
    command += site_options(replica)
    env = temp_env(tmp_path)

    workers = [start_cli(*command, cwd=tmp_path, env=env) for _ in range(2)]
    results = [worker.communicate(timeout=300) for worker in workers]

    for worker, (out, err) in zip(workers, results):
        assert worker.returncode == 0, f"--- stdout\n{out}\n--- stderr\n{err}"
        assert "Traceback" not in out + err
        row = parse_summary(out)[(DAY.isoformat(), STREAM)]
        assert int(row["new"]) + int(row["present"]) == len(times)
    assert objects(s3_bucket) == expected_objects(times)
    keys = [r.filepath for r in read_images(db)]
    assert sorted(keys) == sorted(map(key_of, times)), "one row per picture"
    assert parts_left(tmp_path / "tmp") == []


@pytest.mark.parametrize(
    "command",
    [
        ["download", "--date", "2025-09-06", "--no-browser", "--timestamps-file"],
        ["reindex"],
        ["gaps"],
        ["prune", "--older-than", "30"],
        ["stats"],
        ["watch", "--once"],
    ],
    ids=lambda command: command[0],
)
@pytest.mark.parametrize(
    "location, message",
    [("s3:///prefix", "not an S3 location"), ("s3://no-such-bucket/x", "no bucket")],
    ids=["malformed", "missing-bucket"],
)
def test_a_bad_s3_location_is_one_line_and_exit_2(
    run_main: RunMain,
    s3_env: str,
    tmp_path: Path,
    command: list[str],
    location: str,
    message: str,
) -> None:
    args = list(command)
    if args[-1] == "--timestamps-file":
        args.append(str(write_timestamps(tmp_path / "times.txt", day_times(DAY)[:1])))
    db = sqlite_file_url(tmp_path / "archive.sqlite3")

    result = run_main(*args, "--dir", location, "--db", db)

    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("draydog: error: --dir: ")
    assert message in lines[0]
    assert "Traceback" not in result.err + result.out
