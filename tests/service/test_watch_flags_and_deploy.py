"""Every option of ``draydog watch`` reaches the watch it runs; ``deploy/`` is consistent.

The watch is captured instead of run (its running is the subject of the browser
tests). The systemd unit is read as systemd would: its ExecStart must be a command
line the CLI accepts, pointing at the sample config's installed path, and it must
give the service longer to stop than the service gives itself.
"""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from modules import cli
from modules.service import runner
from modules.service.config import build_config, read_file
from modules.service.watch import CycleResult, Watch

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Watch, bool]]:
    """The watches ``draydog watch`` would run (and whether ``--once``), captured."""
    seen: list[tuple[Watch, bool]] = []

    def fake_serve(watch: Watch, *, once: bool, **kwargs: Any) -> runner.Outcome:
        seen.append((watch, once))
        return runner.Outcome(CycleResult(), signalled=False, stopped_in_time=True)

    monkeypatch.setattr(runner, "serve", fake_serve)
    for name in ("DATABASE_URL", "DRAYDOG_APP_URL", "DRAYDOG_CDN_URL"):
        monkeypatch.delenv(name, raising=False)
    return seen


def test_every_option_of_the_issue_reaches_the_watch(
    tmp_path: Path, served: list[tuple[Watch, bool]]
) -> None:
    db = f"sqlite:///{tmp_path}/a.sqlite3"
    folder = tmp_path / "images"
    status = cli.main(
        ["watch", "--terminal", "apm", "--terminal", "wbct"]
        + ["--stream", "in_gate", "--stream", "out_gate", "--interval", "300"]
        + ["--backfill-days", "3", "--metrics-port", "9108", "--once"]
        + ["--dir", str(folder), "--db", db]
        + ["--app-url", "http://app.example:8000", "--cdn-url", "http://cdn.example"]
        + ["--workers", "5", "--max-lag", "900", "--stop-timeout", "4"]
        + ["--timeout", "12", "--timezone", "America/New_York"]
        + ["--chromium", "/opt/chromium", "--chromedriver", "/opt/chromedriver"]
    )
    assert status == 0
    [(watch, once)] = served
    config = watch.config
    assert once is True
    assert config.terminals == ("apm", "wbct")
    assert config.streams == ("in_gate", "out_gate")
    assert watch.keys == [
        ("apm", "in_gate"),
        ("apm", "out_gate"),
        ("wbct", "in_gate"),
        ("wbct", "out_gate"),
    ]
    assert (config.interval, config.backfill_days, config.metrics_port) == (
        300.0,
        3,
        9108,
    )
    assert (config.dir, config.db) == (str(folder), db)
    assert (config.app_url, config.cdn_url) == (
        "http://app.example:8000",
        "http://cdn.example",
    )
    assert (config.workers, config.max_lag, config.lag_limit) == (5, 900.0, 900.0)
    assert (config.stop_timeout, config.timeout) == (4.0, 12.0)
    assert config.timezone == "America/New_York"
    assert (config.chromium, config.chromedriver) == (
        "/opt/chromium",
        "/opt/chromedriver",
    )


def test_without_once_it_serves_until_stopped_and_the_defaults_hold(
    tmp_path: Path, served: list[tuple[Watch, bool]]
) -> None:
    assert cli.main(["watch", "--db", f"sqlite:///{tmp_path}/a.sqlite3"]) == 0
    [(watch, once)] = served
    assert once is False
    config = watch.config
    assert config.interval == 600.0 and config.jitter == 0.1
    assert config.backfill_days == 7 and config.metrics_port is None
    assert config.stop_timeout == 10.0
    assert config.lag_limit == 3 * 600 + 30 * 60


def test_the_environment_is_below_the_file_which_is_below_the_command_line(
    tmp_path: Path, served: list[tuple[Watch, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRAYDOG_APP_URL", "http://from-env.example")
    monkeypatch.setenv("DRAYDOG_CDN_URL", "http://cdn-from-env.example")
    config_file = tmp_path / "draydog.toml"
    config_file.write_text('cdn_url = "http://cdn-from-file.example"\n')
    db = f"sqlite:///{tmp_path}/a.sqlite3"
    assert cli.main(["watch", "--config", str(config_file), "--db", db]) == 0
    assert (
        cli.main(
            ["watch", "--config", str(config_file), "--db", db]
            + ["--cdn-url", "http://cdn-from-cli.example"]
        )
        == 0
    )
    (first, _), (second, _) = served
    assert first.config.app_url == "http://from-env.example"
    assert first.config.cdn_url == "http://cdn-from-file.example"
    assert second.config.cdn_url == "http://cdn-from-cli.example"


def _unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "draydog-watch.service")
    return parser


def test_the_systemd_unit_runs_the_watch_on_the_sample_config(
    served: list[tuple[Watch, bool]], tmp_path: Path
) -> None:
    unit = _unit()
    service = unit["Service"]
    command = shlex.split(service["ExecStart"])
    assert Path(command[0]).name == "draydog"
    arguments = command[1:]
    assert arguments[0] == "watch" and "--once" not in arguments
    parsed = cli.build_parser().parse_args(arguments)
    installed = Path(parsed.config)
    # The unit's own install lines put the sample config where ExecStart reads it.
    install = (DEPLOY / "draydog-watch.service").read_text()
    assert re.search(
        rf"install -m \d+ deploy/draydog\.toml {re.escape(str(installed))}\b", install
    )
    # The sample config, run as the unit would run it (its folder and database
    # moved here), is a watch that serves until stopped.
    settings = read_file(DEPLOY / "draydog.toml")
    config = build_config(settings, {})
    sample = tmp_path / "draydog.toml"
    text = (DEPLOY / "draydog.toml").read_text()
    text = text.replace(f'dir = "{config.dir}"', f'dir = "{tmp_path / "images"}"')
    text = text.replace(f'db = "{config.db}"', f'db = "sqlite:///{tmp_path}/a.db"')
    sample.write_text(text)
    assert cli.main([*arguments[:-1], str(sample)]) == 0
    [(watch, once)] = served
    assert once is False
    assert watch.config.metrics_port == config.metrics_port == 9108
    assert watch.config.streams == ("in_gate", "out_gate")

    # SIGTERM, and more time to stop than the watch takes at most.
    assert service["KillSignal"] == "SIGTERM"
    assert float(service["TimeoutStopSec"]) > config.stop_timeout
    assert service["Restart"] == "on-failure"
    assert "ReadWritePaths" in service and config.dir.startswith(
        service["ReadWritePaths"]
    )
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_readme_explains_the_deploy_files() -> None:
    text = README.read_text()
    section = text[text.index("## Always-on archiving") :]
    section = section[: section.index("\n## ", 1)]
    for name in ("deploy/draydog.toml", "deploy/draydog-watch.service"):
        assert name in section
    for fact in ("KillSignal=SIGTERM", "TimeoutStopSec=30", "Restart=on-failure"):
        assert fact in section
    unit = _unit()["Service"]
    assert f"TimeoutStopSec={unit['TimeoutStopSec']}" in section
