"""What ``draydog watch`` runs with: defaults, then a TOML file, then the command line.

A service is configured once and left running for months, so a file that says
something this version does not understand (a misspelt key, a wrong type) is
refused at start, never half-applied.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from modules.site.urls import DEFAULT_TIMEZONE, get_zone, validate_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 600.0
"""Seconds between cycles: the cameras take a picture about every 10 minutes."""
LAG_GRACE = 30 * 60.0
"""Added to three intervals for the default ``max_lag``."""


class ConfigError(ValueError):
    """A setting that cannot be used, said in one line."""


@dataclass(frozen=True)
class WatchConfig:
    """Every setting of the watch service (see ``deploy/draydog.toml``)."""

    terminals: tuple[str, ...] = ("apm",)
    streams: tuple[str, ...] = ("in_gate", "out_gate")
    interval: float = DEFAULT_INTERVAL
    jitter: float = 0.1
    """Each pause is ``interval`` times a random factor in ``[1 - jitter, 1 + jitter]``."""
    backfill_days: int = 7
    max_lag: float | None = None
    """Seconds a stream may lag before /healthz says 503; None: 3 intervals + 30 min."""
    stop_timeout: float = 10.0
    metrics_port: int | None = None
    dir: str = "data/images"
    db: str | None = None
    app_url: str = "https://app.draydog.com"
    cdn_url: str = "https://cdn.draydog.com"
    workers: int = 8
    timeout: float = 30.0
    timezone: str = DEFAULT_TIMEZONE
    recycle_after: int = 50
    """Days read by one browser before it is replaced by a fresh one."""
    max_backoff: float = 3600.0
    """The longest pause of a stream that keeps failing."""
    chromium: str | None = None
    chromedriver: str | None = None

    def __post_init__(self) -> None:
        if not self.terminals or not self.streams:
            raise ConfigError("terminals and streams must not be empty")
        try:
            for terminal in self.terminals:
                validate_name(terminal, "terminal")
            for stream in self.streams:
                validate_name(stream, "stream")
            get_zone(self.timezone)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        for name in ("app_url", "cdn_url"):
            parts = urlsplit(getattr(self, name))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(
                    f"{name} must be an http(s) URL, not {getattr(self, name)!r}"
                )
        _positive("interval", self.interval)
        _positive("stop_timeout", self.stop_timeout)
        _positive("timeout", self.timeout)
        _positive("max_backoff", self.max_backoff)
        if self.max_lag is not None:
            _positive("max_lag", self.max_lag)
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"jitter must be from 0 to below 1, not {self.jitter}")
        _whole("backfill_days", self.backfill_days, 0, 3650)
        _whole("workers", self.workers, 1, 64)
        _whole("recycle_after", self.recycle_after, 1, 100_000)
        if self.metrics_port is not None:
            _whole("metrics_port", self.metrics_port, 0, 65535)

    @property
    def lag_limit(self) -> float:
        """Seconds of lag past which a stream is unhealthy."""
        return (
            self.max_lag if self.max_lag is not None else 3 * self.interval + LAG_GRACE
        )


_FIELDS = {item.name: item for item in fields(WatchConfig)}
_TUPLES = {"terminals", "streams"}
_FLOATS = {"interval", "jitter", "max_lag", "stop_timeout", "timeout", "max_backoff"}
_INTS = {"backfill_days", "metrics_port", "workers", "recycle_after"}


def read_file(path: str | Path) -> dict[str, Any]:
    """The settings a TOML file gives; ConfigError for an unreadable file or an unknown key."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_FIELDS))})"
        )
    return {name: _typed(name, value, str(path)) for name, value in data.items()}


def build_config(
    file_settings: Mapping[str, Any], command_line: Mapping[str, Any]
) -> WatchConfig:
    """Defaults, overridden by the file, overridden by what the command line gave (not None)."""
    settings = dict(file_settings)
    settings.update({k: v for k, v in command_line.items() if v is not None})
    for name in _TUPLES:
        if name in settings:
            settings[name] = tuple(settings[name])
    config = replace(WatchConfig(), **settings)
    logger.debug("watch configuration: %s", config)
    return config


def from_environment() -> dict[str, str]:
    """The settings the environment gives, as the other commands read it."""
    found = {
        "db": os.environ.get("DATABASE_URL"),
        "app_url": os.environ.get("DRAYDOG_APP_URL"),
        "cdn_url": os.environ.get("DRAYDOG_CDN_URL"),
    }
    return {name: value for name, value in found.items() if value}


def _typed(name: str, value: object, where: str) -> object:
    """``value`` checked against the type the setting takes (TOML ints pass as floats)."""
    if name in _TUPLES:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where}: {name} must be a list of names")
    if name in _FLOATS:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: {name} must be a number of seconds")
    if name in _INTS:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {name} must be a whole number")
    if isinstance(value, str):
        return value
    raise ConfigError(f"{where}: {name} must be a string")


def _positive(name: str, value: float) -> None:
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a positive number of seconds, not {value}")


def _whole(name: str, value: int, low: int, high: int) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= high
    ):
        raise ConfigError(
            f"{name} must be a whole number from {low} to {high}, not {value!r}"
        )
