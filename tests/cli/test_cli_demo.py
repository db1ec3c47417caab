"""``draydog demo``: the whole pipeline, real headless Chromium included, offline."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from modules.database.keys import path_for
from modules.demo import DEMO_STREAMS
from tests.cli.conftest import TERMINAL, assert_clean_exit, part_files, run_cli


@pytest.mark.browser
@pytest.mark.usefixtures("require_browser")
def test_demo_downloads_a_day_and_says_where_it_is(tmp_path: Path) -> None:
    result = run_cli("demo", "--dir", "demo", "--days", "1", cwd=tmp_path)
    assert_clean_exit(result, 0)
    out = result.stdout
    folder = tmp_path / "demo"

    pictures_line = re.search(r"^Pictures: (.+)$", out, re.MULTILINE)
    database_line = re.search(r"^Database: (sqlite:///.+)$", out, re.MULTILINE)
    rows_line = re.search(r"^Rows in the database: (\d+)$", out, re.MULTILINE)
    assert pictures_line and database_line and rows_line, out
    archive = (tmp_path / pictures_line[1]).resolve()
    assert archive == (folder / "images").resolve()
    database = Path(database_line[1][len("sqlite:///") :])
    assert database.is_file() and database.resolve().parent == folder.resolve()

    # One day (yesterday at the terminal) of each demo stream, as the lines say.
    day_lines = re.findall(
        r"^(\d{4}-\d{2}-\d{2}) (\S+): (\d+) found, (\d+) downloaded", out, re.MULTILINE
    )
    assert sorted(stream for _, stream, _, _ in day_lines) == sorted(DEMO_STREAMS)
    (day,) = {d for d, _, _, _ in day_lines}
    files: set[Path] = set()
    for _, stream, found, downloaded in day_lines:
        assert int(found) == int(downloaded) > 100
        stream_root = archive / TERMINAL / stream
        assert [p.name for p in stream_root.iterdir()] == [day]
        day_files = {p.resolve() for p in (stream_root / day).glob("*.jpg")}
        assert len(day_files) == int(found)
        files |= day_files

    with sqlite3.connect(database) as connection:
        rows = [  # keys under the archive: their full paths there
            path_for(r[0], archive.resolve())
            for r in connection.execute("SELECT filepath FROM images")
        ]
    connection.close()
    assert len(rows) == len(set(rows)) == int(rows_line[1])
    assert set(rows) == files
    assert {p.resolve() for p in archive.rglob("*") if p.is_file()} == files
    assert part_files(folder) == []
