"""The watch's settings: defaults, a TOML file, the command line winning; bad input is exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modules import cli
from modules.service import runner
from modules.service.config import (
    DEFAULT_INTERVAL,
    ConfigError,
    WatchConfig,
    build_config,
    read_file,
)
from modules.service.watch import CycleResult, Watch

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "draydog.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "draydog.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Watch]:
    """The watches ``draydog watch`` would run, captured instead of run."""
    seen: list[Watch] = []

    def fake_serve(watch: Watch, *, once: bool, **kwargs: Any) -> runner.Outcome:
        seen.append(watch)
        return runner.Outcome(CycleResult(), signalled=False, stopped_in_time=True)

    monkeypatch.setattr(runner, "serve", fake_serve)
    return seen


def test_the_command_line_wins_over_the_file_which_wins_over_the_defaults(
    tmp_path: Path, served: list[Watch], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRAYDOG_APP_URL", raising=False)
    config_file = _write(
        tmp_path,
        'streams = ["in_gate"]\ninterval = 120\nbackfill_days = 3\n'
        'dir = "/srv/draydog/images"\nmetrics_port = 9108\n'
        'cdn_url = "http://cdn.example:8080"\n',
    )
    db = f"sqlite:///{tmp_path}/a.sqlite3"

    status = cli.main(
        ["watch", "--config", str(config_file), "--interval", "60", "--db", db]
        + ["--stream", "out_gate", "--stream", "in_gate", "--once"]
    )

    assert status == 0
    config = served[0].config
    assert config.interval == 60.0  # the command line
    assert config.streams == ("out_gate", "in_gate")  # the command line
    assert config.backfill_days == 3 and config.metrics_port == 9108  # the file
    assert config.dir == "/srv/draydog/images"
    assert config.cdn_url == "http://cdn.example:8080"
    assert config.db == db
    assert config.terminals == ("apm",) and config.stop_timeout == 10.0  # defaults
    assert config.app_url == "https://app.draydog.com"
    assert config.lag_limit == 3 * 60 + 30 * 60


def test_defaults_without_a_file() -> None:
    config = build_config({}, {"interval": None, "streams": None})
    assert config == WatchConfig()
    assert config.interval == DEFAULT_INTERVAL == 600
    assert config.lag_limit == 3 * 600 + 1800
    assert config.backfill_days == 7


def test_the_sample_config_is_valid() -> None:
    settings = read_file(SAMPLE)
    config = build_config(settings, {})
    assert config.streams == ("in_gate", "out_gate")
    assert config.interval == 600


@pytest.mark.parametrize(
    "arguments, words",
    [
        (["--interval", "-5"], "interval must be a positive"),
        (["--interval", "0"], "interval must be a positive"),
        (["--interval", "nan"], "interval must be a positive"),
        (["--interval", "ten"], "invalid float value"),
        (["--backfill-days", "-1"], "backfill_days must be a whole number"),
        (["--workers", "0"], "workers must be a whole number"),
        (["--metrics-port", "70000"], "metrics_port must be a whole number"),
        (["--stream", "In Gate"], "stream"),
        (["--cdn-url", "ftp://x"], "cdn_url must be an http(s) URL"),
        (["--stop-timeout", "-1"], "stop_timeout must be a positive"),
        (["--config", "/nonexistent/draydog.toml"], "cannot read"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    arguments: list[str],
    words: str,
    served: list[Watch],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["watch", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("draydog: error: ") and err.count("\n") == 1
    assert words in err
    assert served == []


@pytest.mark.parametrize(
    "text, words",
    [
        ("intervall = 60\n", "unknown setting(s) intervall"),
        ("[watch]\ninterval = 60\n", "unknown setting(s) watch"),
        ('interval = "ten"\n', "interval must be a number"),
        ("streams = 'in_gate'\n", "streams must be a list"),
        ("backfill_days = 1.5\n", "backfill_days must be a whole number"),
        ("interval = \n", "not valid TOML"),
        ("jitter = 1.5\n", "jitter must be from 0"),
    ],
)
def test_a_bad_config_file_is_one_line_and_exit_2(
    text: str,
    words: str,
    tmp_path: Path,
    served: list[Watch],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config_file = _write(tmp_path, text)
    assert cli.main(["watch", "--config", str(config_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err
    assert served == []


def test_config_errors_are_value_errors() -> None:
    with pytest.raises(ConfigError, match="terminal"):
        WatchConfig(terminals=("../etc",))
    assert issubclass(ConfigError, ValueError)
