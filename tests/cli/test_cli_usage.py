"""Bad usage of ``draydog``: one line on stderr, exit status 2, no traceback, nothing written.

Every case runs as a real subprocess (all of them at once, to keep the module
fast) and again in-process through ``modules.cli.main``. The site URLs point at a
closed local port, so a case that slipped through validation could not reach the
real DrayDog; nothing may be written to the working folder or the database.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from modules.site.urls import terminal_today
from tests.cli.conftest import (
    CLOSED_SITE,
    RunMain,
    assert_clean_exit,
    cli_env,
    run_cli,
    sqlite_file_url,
)

DAY = "2025-09-06"
FUTURE = (terminal_today() + timedelta(days=2)).isoformat()
"""Two days ahead, so a run that crosses midnight still sees a future day."""
BAD_TIMES = "bad-times.txt"
GOOD_TIMES = "good-times.txt"

USAGE_CASES: dict[str, list[str]] = {
    # dates and ranges
    "month-13": ["download", "--date", "2025-13-01"],
    "word-date": ["download", "--date", "yesterday"],
    "day-zero": ["download", "--date", "2025-09-00"],
    "year-zero": ["download", "--date", "0000-01-01"],
    "empty-date": ["download", "--date", ""],
    "reversed-range": ["download", "--start", "2025-09-10", "--end", "2025-09-01"],
    "start-without-end": ["download", "--start", "2025-09-01"],
    "end-without-start": ["download", "--end", "2025-09-01"],
    "end-with-date": ["download", "--date", DAY, "--end", "2025-09-08"],
    "date-and-start": ["download", "--date", DAY, "--start", DAY, "--end", DAY],
    "no-date": ["download", "--stream", "in_gate"],
    "future-day": ["download", "--date", FUTURE],
    "future-end": ["download", "--start", DAY, "--end", FUTURE],
    "bad-end": ["download", "--start", DAY, "--end", "2025-02-30"],
    # the command line itself
    "unknown-option": ["download", "--date", DAY, "--frobnicate"],
    "unknown-global-option": ["--frobnicate", "stats"],
    "unknown-subcommand": ["frobnicate"],
    "no-subcommand": [],
    "only-global-options": ["-v"],
    "missing-value": ["download", "--date"],
    "stray-argument": ["stats", "extra"],
    # names
    "stream-dotdot": ["download", "--date", DAY, "--stream", "../x"],
    "stream-slash": ["download", "--date", DAY, "--stream", "a/b"],
    "stream-backslash": ["download", "--date", DAY, "--stream", "a\\b"],
    "stream-upper": ["download", "--date", DAY, "--stream", "A"],
    "stream-empty": ["download", "--date", DAY, "--stream", ""],
    "stream-space": ["download", "--date", DAY, "--stream", "x y"],
    "stream-thumbnail": ["download", "--date", DAY, "--stream", "in_gate-thumbnail"],
    "second-stream-bad": [
        "download",
        "--date",
        DAY,
        "--stream",
        "in_gate",
        "--stream",
        "..",
    ],
    "terminal-dotdot": ["download", "--date", DAY, "--terminal", ".."],
    "terminal-slash": ["download", "--date", DAY, "--terminal", "apm/x"],
    "terminal-empty": ["download", "--date", DAY, "--terminal", ""],
    # numbers
    "workers-0": ["download", "--date", DAY, "--workers", "0"],
    "workers-65": ["download", "--date", DAY, "--workers", "65"],
    "workers-word": ["download", "--date", DAY, "--workers", "many"],
    "batch-size-0": ["download", "--date", DAY, "--batch-size", "0"],
    "batch-size-huge": ["download", "--date", DAY, "--batch-size", "10001"],
    "timeout-0": ["download", "--date", DAY, "--timeout", "0"],
    "claim-gone": ["download", "--date", DAY, "--claim"],  # Celery shares ranges now
    "demo-days-0": ["demo", "--days", "0"],
    "demo-days-32": ["demo", "--days", "32"],
    "replica-port-negative": ["replica", "--port", "-1"],
    "replica-port-too-big": ["replica", "--port", "65536"],
    # URLs and other settings
    "db-not-a-url": ["download", "--date", DAY, "--db", "notaurl"],
    "stats-db-not-a-url": ["stats", "--db", "notaurl"],
    "reindex-db-not-a-url": ["reindex", "--dir", ".", "--db", "notaurl"],
    "app-url-ftp": ["download", "--date", DAY, "--app-url", "ftp://x"],
    "cdn-url-file": ["download", "--date", DAY, "--cdn-url", "file:///etc"],
    "cdn-url-credentials": [
        "download",
        "--date",
        DAY,
        "--cdn-url",
        "http://user:secret@127.0.0.1:9/cdn",
    ],
    "timezone-unknown": ["download", "--date", DAY, "--timezone", "Mars/Olympus"],
    # timestamps files
    "no-browser-without-file": ["download", "--date", DAY, "--no-browser"],
    "file-without-no-browser": [
        "download",
        "--date",
        DAY,
        "--timestamps-file",
        GOOD_TIMES,
    ],
    "timestamps-not-times": [
        "download",
        "--date",
        DAY,
        "--no-browser",
        "--timestamps-file",
        BAD_TIMES,
    ],
    "timestamps-file-missing": [
        "download",
        "--date",
        DAY,
        "--no-browser",
        "--timestamps-file",
        "nowhere.txt",
    ],
    "timestamps-two-streams": [
        "download",
        "--date",
        DAY,
        "--no-browser",
        "--timestamps-file",
        GOOD_TIMES,
        "--stream",
        "in_gate",
        "--stream",
        "out_gate",
    ],
    # other subcommands
    "reindex-no-dir": ["reindex"],
    "reindex-missing-dir": ["reindex", "--dir", "/nonexistent/draydog-archive"],
    "reindex-file-as-dir": ["reindex", "--dir", GOOD_TIMES],
}


SUBPROCESS_CASES = (
    "month-13",
    "word-date",
    "reversed-range",
    "start-without-end",
    "future-day",
    "unknown-option",
    "unknown-subcommand",
    "no-subcommand",
    "stream-dotdot",
    "stream-slash",
    "stream-upper",
    "stream-empty",
    "stream-space",
    "terminal-dotdot",
    "workers-0",
    "workers-65",
    "batch-size-0",
    "db-not-a-url",
    "app-url-ftp",
    "no-browser-without-file",
    "timestamps-not-times",
    "demo-days-0",
    "reindex-missing-dir",
)
"""The cases that also run as a real subprocess (each costs an interpreter start)."""
PARALLEL = 4


@dataclass
class Case:
    """One bad command line, run in its own folder."""

    folder: Path
    database: Path
    result: subprocess.CompletedProcess[str]
    before: set[str]


def _prepare(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / BAD_TIMES).write_text(
        f"{DAY}T00:07:27\nnot a time\n{DAY}T00:13:43\n", encoding="utf-8"
    )
    (folder / GOOD_TIMES).write_text(f"{DAY}T00:07:27\n", encoding="utf-8")


def _contents(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def _case_env(database: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": sqlite_file_url(database),
        "DRAYDOG_APP_URL": CLOSED_SITE,
        "DRAYDOG_CDN_URL": CLOSED_SITE + "/cdn",
    }


def _run_case(root: Path, name: str) -> Case:
    folder = root / name
    _prepare(folder)
    database = root / f"{name}.sqlite3"
    before = _contents(folder)
    result = run_cli(*USAGE_CASES[name], cwd=folder, env=_case_env(database))
    return Case(folder, database, result, before)


@pytest.fixture(scope="module")
def usage_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    """The subprocess cases, a few at a time."""
    root = tmp_path_factory.mktemp("usage")
    with ThreadPoolExecutor(PARALLEL) as pool:
        runs = {name: pool.submit(_run_case, root, name) for name in SUBPROCESS_CASES}
        return {name: run.result() for name, run in runs.items()}


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_bad_usage_is_one_line_and_exit_2(
    name: str, usage_results: dict[str, Case]
) -> None:
    case = usage_results[name]
    assert_clean_exit(case.result, 2)
    lines = case.result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{case.result.stderr}"
    assert lines[0].startswith("draydog: error: ")
    assert len(lines[0]) > len("draydog: error: ") + 5
    assert case.result.stdout == ""
    assert _contents(case.folder) == case.before, "the command wrote files"
    assert not case.database.exists(), "the command touched the database"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("month-13", ["2025-13-01"]),
        ("word-date", ["yesterday"]),
        ("reversed-range", ["reversed"]),
        ("start-without-end", ["--start", "--end"]),
        ("future-day", ["future"]),
        ("unknown-option", ["--frobnicate"]),
        ("unknown-subcommand", ["frobnicate"]),
        ("no-subcommand", ["command"]),
        ("stream-dotdot", ["stream", "../x"]),
        ("stream-space", ["stream", "x y"]),
        ("terminal-dotdot", ["terminal"]),
        ("workers-0", ["workers", "0"]),
        ("workers-65", ["workers", "65"]),
        ("batch-size-0", ["batch", "0"]),
        ("db-not-a-url", ["database URL", "notaurl"]),
        ("no-browser-without-file", ["--no-browser", "--timestamps-file"]),
        ("timestamps-not-times", ["not a time"]),
        ("app-url-ftp", ["app_url", "ftp://x"]),
        ("demo-days-0", ["--days"]),
        ("reindex-missing-dir", ["/nonexistent/draydog-archive"]),
    ],
)
def test_bad_usage_says_what_is_wrong(
    name: str, words: list[str], usage_results: dict[str, Case]
) -> None:
    message = usage_results[name].result.stderr
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


@pytest.mark.parametrize("name", list(USAGE_CASES))
def test_bad_usage_in_process(
    name: str,
    run_main: RunMain,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _prepare(tmp_path / "work")
    monkeypatch.chdir(tmp_path / "work")
    for key, value in _case_env(tmp_path / "case.sqlite3").items():
        monkeypatch.setenv(key, value)
    before = _contents(tmp_path / "work")
    result = run_main(*USAGE_CASES[name])
    assert result.code == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("draydog: error: "), result.err
    assert _contents(tmp_path / "work") == before
    assert not (tmp_path / "case.sqlite3").exists()


def test_a_nul_in_a_stream_name_is_refused(run_main: RunMain) -> None:
    """A NUL cannot pass through argv, only through an in-process call."""
    result = run_main("download", "--date", DAY, "--stream", "in\0gate")
    assert result.code == 2
    assert result.err.startswith("draydog: error: invalid stream")


def test_help_exits_0_and_lists_the_subcommands(
    tmp_path: Path, run_main: RunMain, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert_clean_exit(result, 0)
    for command in ("download", "demo", "reindex", "stats", "replica"):
        assert command in result.stdout
    with pytest.raises(SystemExit) as exited:
        run_main("download", "--help")
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    for option in ("--date", "--start", "--end", "--stream", "--no-browser", "--db"):
        assert option in shown


def test_port_out_of_range_says_so(run_main: RunMain) -> None:
    for port in ("-1", "65536"):
        result = run_main("replica", "--port", port)
        assert result.code == 2
        assert (
            result.err
            == f"draydog: error: --port must be from 0 to 65535, not {port}\n"
        )


def test_the_console_script_runs_the_same_command(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "draydog"
    if not script.exists():
        pytest.skip(f"{script} is not installed (pip install -e .)")
    result = subprocess.run(
        [str(script), "download", "--date", "yesterday"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_clean_exit(result, 2)
    assert result.stderr.startswith("draydog: error: not a day")
