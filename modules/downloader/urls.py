"""The DrayDog picture-URL grammar: parsing, building, names and time zones.

Everything that knows what a CDN path looks like lives here, so the downloader,
the archive layout and the replica server agree on one grammar.

Two file-name forms exist on the CDN (see the site notes):

* ISO: ``/<terminal>/<YYYY-MM-DD>/<H>/<YYYY-MM-DD>T<HH:MM:SS>-<stream>[-thumbnail].jpeg``,
  wall-clock time at the terminal (America/Los_Angeles by default);
* Unix: ``/<terminal>/<YYYY-MM-DD>/<HH>/<10-13 digits>-<stream>[-thumbnail].jpeg``,
  seconds or milliseconds since the epoch, UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "America/Los_Angeles"
THUMBNAIL_SUFFIX = "-thumbnail"
_NAME_RE = re.compile(r"[a-z0-9_-]+", re.ASCII)
_MILLISECONDS_FROM = 10**11
_MIN_YEAR, _MAX_YEAR = 1970, 9998

_PATH_RE = re.compile(
    r"/(?P<terminal>[a-z0-9_-]+)"
    r"/(?P<date>\d{4}-\d{2}-\d{2})"
    r"/(?P<hour>\d{1,2})"
    r"/(?:(?P<iso>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})|(?P<unix>\d{10,13}))"
    r"-(?P<stream>[a-z0-9_-]+?)(?P<thumb>-thumbnail)?\.jpe?g$",
    re.ASCII,
)


_THUMB_SUFFIX_RE = re.compile(r"-thumbnail(\.jpe?g)$")


class InvalidImageURL(ValueError):
    """A URL that is not a DrayDog picture URL."""


class InvalidName(ValueError):
    """A terminal or stream name that could escape the archive or the URL grammar."""


@dataclass(frozen=True)
class ImageRef:
    """What a picture URL says about the picture."""

    terminal: str
    date: date
    stream: str
    timestamp: datetime
    """Capture time, timezone-aware UTC."""
    local_time: datetime
    """Capture time as naive wall-clock time at the terminal (names files)."""
    is_thumbnail: bool


def validate_name(value: object, kind: str = "name") -> str:
    """Return ``value`` if it is a safe terminal or stream name, else raise InvalidName.

    Names become folder names and URL segments, so anything but ``[a-z0-9_-]+`` is
    refused before any I/O; ``-thumbnail`` is refused as an ending because the
    grammar would read it as the thumbnail marker.
    """
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise InvalidName(f"invalid {kind} {value!r}: expected lowercase [a-z0-9_-]+")
    if value.endswith(THUMBNAIL_SUFFIX):
        raise InvalidName(
            f"invalid {kind} {value!r}: may not end in {THUMBNAIL_SUFFIX!r}"
        )
    return value


@lru_cache(maxsize=32)
def get_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or a ValueError that names it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def wall_clock_to_utc(
    wall: datetime, source_timezone: str = DEFAULT_TIMEZONE
) -> datetime:
    """Read a naive wall-clock time at the terminal as an aware UTC datetime.

    A wall time in the repeated autumn hour is taken as its first occurrence, one in
    the skipped spring hour as if the clock had not moved yet: neither raises.
    """
    if wall.tzinfo is not None:
        return wall.astimezone(timezone.utc)
    return wall.replace(tzinfo=get_zone(source_timezone), fold=0).astimezone(
        timezone.utc
    )


def utc_to_wall_clock(
    moment: datetime, source_timezone: str = DEFAULT_TIMEZONE
) -> datetime:
    """An aware datetime as naive wall-clock time at the terminal; naive passes through."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(get_zone(source_timezone)).replace(tzinfo=None, fold=0)


def parse_wall_clock(
    value: str | datetime, source_timezone: str = DEFAULT_TIMEZONE
) -> datetime:
    """A page timestamp (``2025-09-06T23:07:34`` or a datetime) as naive wall-clock time.

    Naive input already is wall-clock time at the terminal; aware input is converted.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        if len(value.strip()) <= len("YYYY-MM-DD"):
            raise ValueError(f"not a timestamp (a day without a time?): {value!r}")
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"not a timestamp: {value!r}") from exc
    else:
        raise TypeError(
            f"timestamp must be a str or datetime, not {type(value).__name__}"
        )
    try:
        wall = utc_to_wall_clock(moment, source_timezone)
    except OverflowError as exc:
        # An offset that carries the time past year 1 or 9999 at the terminal.
        raise ValueError(f"timestamp out of range: {value!r}") from exc
    return wall.replace(microsecond=0)


def parse_image_url(url: str, source_timezone: str = DEFAULT_TIMEZONE) -> ImageRef:
    """Parse a DrayDog picture URL (either form); raise InvalidImageURL otherwise.

    Query strings and fragments are ignored. In the Unix form the number wins over
    the date and hour folders.
    """
    if not isinstance(url, str):
        raise InvalidImageURL(f"not a URL: {url!r}")
    try:
        path = unquote(urlsplit(url).path)
    except ValueError as exc:
        raise InvalidImageURL(f"not a URL: {url!r}") from exc
    match = _PATH_RE.search(path)
    if match is None or match["stream"].endswith(THUMBNAIL_SUFFIX):
        raise InvalidImageURL(f"not a DrayDog picture URL: {url!r}")
    try:
        folder_date = date.fromisoformat(match["date"])
        if int(match["hour"]) > 23:
            raise ValueError(f"hour folder {match['hour']} out of range")
        if match["iso"] is not None:
            local_time = datetime.fromisoformat(match["iso"])
            timestamp = wall_clock_to_utc(local_time, source_timezone)
        else:
            timestamp = _from_unix(int(match["unix"]))
            local_time = utc_to_wall_clock(timestamp, source_timezone)
        if not _MIN_YEAR <= timestamp.year <= _MAX_YEAR:
            raise ValueError(f"year {timestamp.year} out of range")
    except (ValueError, OverflowError) as exc:
        raise InvalidImageURL(f"bad date or time in {url!r}: {exc}") from exc
    return ImageRef(
        terminal=match["terminal"],
        date=folder_date,
        stream=match["stream"],
        timestamp=timestamp,
        local_time=local_time,
        is_thumbnail=match["thumb"] is not None,
    )


def _from_unix(number: int) -> datetime:
    seconds = number / 1000 if number >= _MILLISECONDS_FROM else float(number)
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=int(seconds))


def build_image_url(
    cdn_url: str,
    terminal: str,
    stream: str,
    timestamp: datetime,
    thumbnail: bool = False,
    *,
    source_timezone: str = DEFAULT_TIMEZONE,
) -> str:
    """The ISO-form URL of a picture, hour folder without a leading zero as the site writes it.

    An aware ``timestamp`` is converted to the terminal's wall clock; a naive one already is.
    """
    validate_name(terminal, "terminal")
    validate_name(stream, "stream")
    wall = utc_to_wall_clock(timestamp, source_timezone).replace(microsecond=0)
    day = wall.date().isoformat()
    suffix = THUMBNAIL_SUFFIX if thumbnail else ""
    stamp = wall.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{cdn_url.rstrip('/')}/{terminal}/{day}/{wall.hour}/{stamp}-{stream}{suffix}.jpeg"


def full_size_url(thumbnail_url: str) -> str:
    """The full-size picture of a thumbnail URL: the same with ``-thumbnail`` dropped."""
    parts = urlsplit(thumbnail_url)
    path = _THUMB_SUFFIX_RE.sub(r"\1", parts.path)
    if path == parts.path:
        raise InvalidImageURL(f"not a thumbnail URL: {thumbnail_url!r}")
    return parts._replace(path=path).geturl()


def parse_day(value: str | date) -> date:
    """A day as ``YYYY-MM-DD`` or a date (a datetime is not a day); ValueError otherwise."""
    if isinstance(value, datetime):
        raise ValueError(f"expected a day, not a datetime: {value!r}")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"not a day (expected YYYY-MM-DD): {value!r}") from exc
    raise ValueError(f"not a day: {value!r}")


def terminal_today(source_timezone: str = DEFAULT_TIMEZONE) -> date:
    """Today's date at the terminal, which is what decides whether a day is in the future."""
    return datetime.now(get_zone(source_timezone)).date()
