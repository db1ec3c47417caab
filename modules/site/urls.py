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
from typing import Sequence
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
_JPEG_SUFFIX_RE = re.compile(r"(\.jpe?g)$")


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
    exact: bool = False
    """True when the URL gave a Unix time, so ``timestamp`` is the exact instant.

    False for the ISO form: a zone-less wall-clock time, which names two instants in
    the repeated autumn hour (``timestamp`` is then the first; see capture_instants).
    """


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

    A wall time in the repeated autumn hour is its first occurrence unless it carries
    ``fold=1`` (PEP 495: the second); one in the skipped spring hour is read as if
    the clock had not moved yet. Neither raises.
    """
    if wall.tzinfo is not None:
        return wall.astimezone(timezone.utc)
    return wall.replace(tzinfo=get_zone(source_timezone)).astimezone(timezone.utc)


def utc_to_wall_clock(
    moment: datetime, source_timezone: str = DEFAULT_TIMEZONE
) -> datetime:
    """An aware datetime as naive wall-clock time at the terminal; naive passes through.

    The result keeps ``fold`` (1 for the second occurrence of a repeated hour), so
    wall_clock_to_utc gives the same instant back.
    """
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(get_zone(source_timezone)).replace(tzinfo=None)


def is_repeated_wall_time(
    wall: datetime, source_timezone: str = DEFAULT_TIMEZONE
) -> bool:
    """Whether a naive wall-clock time happens twice at the terminal (the autumn hour).

    Such a time alone does not name one instant; a time in the skipped spring hour
    (which never happens) is not repeated.
    """
    zone = get_zone(source_timezone)
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return False
    # In a gap both folds convert to other wall times; in a repeat both come back.
    back = first.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None)
    return back == wall.replace(tzinfo=None, fold=0)


def capture_instants(
    refs: Sequence[ImageRef], source_timezone: str = DEFAULT_TIMEZONE
) -> list[datetime]:
    """The aware UTC instants of pictures listed in the History's time order.

    The ISO form's wall-clock time is ambiguous in the repeated autumn hour; the
    list's order is what tells the two hours apart. The order (ascending or
    descending) is detected; within a repeated hour an ISO time is the first
    occurrence until the list's time goes back within that hour, and the second
    after. Unix-form refs keep their exact instant (and tell which hour the list is
    in); every other time is read as wall_clock_to_utc reads it.
    """
    if not refs:
        return []
    zone = get_zone(source_timezone)
    descending = _is_descending([ref.timestamp for ref in refs])
    ordered = list(reversed(refs)) if descending else list(refs)
    last_wall: dict[datetime, datetime] = {}
    in_second: set[datetime] = set()
    instants: list[datetime] = []
    for ref in ordered:
        wall = ref.local_time.replace(fold=0, microsecond=0)
        if ref.exact:
            instant = ref.timestamp.astimezone(timezone.utc)
            wall = utc_to_wall_clock(instant, source_timezone)
            hour = wall.replace(minute=0, second=0, microsecond=0, fold=0)
            if is_repeated_wall_time(wall.replace(fold=0), source_timezone):
                if wall.fold == 1:
                    in_second.add(hour)
                else:
                    last_wall[hour] = max(
                        wall.replace(fold=0), last_wall.get(hour, wall)
                    )
            instants.append(instant)
            continue
        if not is_repeated_wall_time(wall, source_timezone):
            instants.append(wall_clock_to_utc(wall, source_timezone))
            continue
        hour = wall.replace(minute=0, second=0)
        if hour not in in_second and hour in last_wall and wall < last_wall[hour]:
            in_second.add(hour)
        fold = 1 if hour in in_second else 0
        if fold == 0:
            last_wall[hour] = wall
        instants.append(wall.replace(tzinfo=zone, fold=fold).astimezone(timezone.utc))
    return list(reversed(instants)) if descending else instants


def _is_descending(approximate: Sequence[datetime]) -> bool:
    """Whether a list of (first-occurrence) instants runs mostly backwards in time.

    A repeated hour makes one step go the other way, so steps are counted rather
    than the ends compared; the ends only break a tie.
    """
    ups = downs = 0
    for before, after in zip(approximate, approximate[1:]):
        if after > before:
            ups += 1
        elif after < before:
            downs += 1
    if ups != downs:
        return downs > ups
    return approximate[-1] < approximate[0]


def timestamp_text(instant: datetime, source_timezone: str = DEFAULT_TIMEZONE) -> str:
    """The text a picture's timestamp is given as (a DiscoveryResult's timestamps).

    Naive wall-clock ISO (``2025-09-06T23:07:34``), as the site names pictures,
    except in a repeated hour, where the wall time alone names two instants: there
    it carries its UTC offset (``2025-11-02T01:05:00-08:00``). parse_wall_clock and
    parse_instant read either form back to the same instant.
    """
    if instant.tzinfo is None:
        raise ValueError(f"timestamp_text needs an aware instant, not {instant!r}")
    local = instant.astimezone(get_zone(source_timezone)).replace(microsecond=0)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if is_repeated_wall_time(local.replace(tzinfo=None, fold=0), source_timezone):
        return local.isoformat()
    return text


def parse_wall_clock(
    value: str | datetime, source_timezone: str = DEFAULT_TIMEZONE
) -> datetime:
    """A page timestamp (``2025-09-06T23:07:34`` or a datetime) as naive wall-clock time.

    Naive input already is wall-clock time at the terminal; aware input is converted,
    keeping ``fold`` so a second-occurrence time (``...01:05:00-08:00``) keeps its
    instant through wall_clock_to_utc.
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


def parse_instant(
    value: str | datetime, source_timezone: str = DEFAULT_TIMEZONE
) -> datetime:
    """A page timestamp as an aware UTC instant (naive text is terminal wall-clock time)."""
    return wall_clock_to_utc(parse_wall_clock(value, source_timezone), source_timezone)


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
        exact=match["unix"] is not None,
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


def thumbnail_url(full_url: str) -> str:
    """The thumbnail of a full-size picture URL: ``-thumbnail`` before the extension,
    so a History that lists full-size pictures still has a fallback for a 404."""
    parts = urlsplit(full_url)
    if _THUMB_SUFFIX_RE.search(parts.path):
        raise InvalidImageURL(f"already a thumbnail URL: {full_url!r}")
    path = _JPEG_SUFFIX_RE.sub(rf"{THUMBNAIL_SUFFIX}\1", parts.path)
    if path == parts.path:
        raise InvalidImageURL(f"not a JPEG picture URL: {full_url!r}")
    return parts._replace(path=path).geturl()


def picture_urls(url: str) -> tuple[str, str]:
    """The full-size and thumbnail URLs of a picture named by either of them.

    The History normally lists thumbnails, but a full-size URL there names the same
    picture: it is taken as the full-size one, not refused.
    """
    if _THUMB_SUFFIX_RE.search(urlsplit(url).path):
        return full_size_url(url), url
    return url, thumbnail_url(url)


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
