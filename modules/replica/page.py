"""The replica's camera page and its JSON endpoints.

The page (``page.html``) imitates DrayDog's Vue/Element UI camera page closely
enough that the browser discovery is exercised against the same DOM shapes and
timing hazards as on the real site: content rendered by script after load, a
History list that fills progressively, a loading mask, an ``el-empty`` block, an
Element UI date picker (or the older per-day buttons), lazy images and pictures
on another host; pictures that fail to load come from the server's ``Faults``.
The page gets its data from the JSON endpoints answered here. The server reads
``page_options`` per request and the page reads the History knobs with each day,
so a test can change them between two days (the page form only on a new page).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Mapping, Sequence

from modules.downloader.urls import InvalidName, build_image_url, validate_name

if TYPE_CHECKING:
    from modules.replica.schedule import Schedule
    from modules.replica.server import ReplicaServer

LIVE_LOOKBACK_DAYS = 31
"""How far back the live section looks for the latest day with pictures."""

_PAGE_RE = re.compile(r"/terminal_cameras/(?P<terminal>[^/]+)/?")
_API_RE = re.compile(
    r"/api/cameras/(?P<terminal>[^/]+)/(?P<stream>[^/]+)/(?P<what>config|live|history)"
)
_NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class Response:
    """An HTTP answer the server writes as it is."""

    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class PageOptions:
    """Knobs of the camera page, each imitating one hazard of the real page."""

    render_delay: tuple[float, float] = (0.2, 0.6)
    """Seconds (random in this range) between picking a day and the History re-rendering."""
    image_stagger: float = 0.005
    """Seconds between two History pictures starting to load: 144 fill in over ~0.7 s."""
    legacy: bool = False
    """The older page form: one button per day (``Sat, Sep 6``) instead of the picker."""
    legacy_days: int = 14
    """How many days (today and before) the older form offers."""
    foreign_images: int = 0
    """Extra History pictures on another host name (``server.foreign_cdn_url``)."""
    lazy: bool = False
    """``el-image`` lazy: a History picture loads only once scrolled into view."""
    live_count: int = 4
    """Pictures in the live section (the real page shows 1 to 4)."""

    def __post_init__(self) -> None:
        low, high = self.render_delay
        if not 0 <= low <= high:
            raise ValueError(
                f"render_delay must be 0 <= low <= high, not {self.render_delay}"
            )
        if self.image_stagger < 0:
            raise ValueError(f"image_stagger must be >= 0, not {self.image_stagger}")
        for name in ("legacy_days", "foreign_images"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        if not 1 <= self.live_count <= 4:
            raise ValueError(f"live_count must be 1..4, not {self.live_count}")


def route(
    path: str, query: Mapping[str, Sequence[str]], server: ReplicaServer
) -> Response | None:
    """Answer a page or API request, or None when ``path`` is not the page's."""
    page = _PAGE_RE.fullmatch(path)
    if page is not None:
        try:
            validate_name(page["terminal"], "terminal")
            stream = query.get("streamName")
            if stream:
                validate_name(stream[0], "stream")
        except InvalidName as exc:
            return _text(404, str(exc))
        return Response(200, "text/html; charset=utf-8", _page_html(), _NO_STORE)
    api = _API_RE.fullmatch(path)
    if api is None:
        return None
    try:
        terminal = validate_name(api["terminal"], "terminal")
        stream = validate_name(api["stream"], "stream")
    except InvalidName as exc:
        return _json(404, {"error": str(exc)})
    schedule: Schedule = server.schedule
    if stream not in schedule.streams:
        return _json(404, {"error": f"no camera {terminal}/{stream}"})
    options: PageOptions = server.page_options or PageOptions()
    if api["what"] == "config":
        return _json(200, _config(schedule, options, terminal, stream))
    if api["what"] == "live":
        return _json(200, _live(server, options, terminal, stream))
    try:
        day = date.fromisoformat(query.get("date", [""])[0])
    except ValueError:
        return _json(400, {"error": "date must be YYYY-MM-DD"})
    return _json(200, _history(server, options, terminal, stream, day))


def _config(
    schedule: Schedule, options: PageOptions, terminal: str, stream: str
) -> dict[str, object]:
    """What the page needs before its first render: the calendar bounds and the page form."""
    return {
        "terminal": terminal,
        "stream": stream,
        "today": schedule.today_date().isoformat(),
        "first_day": schedule.first_date().isoformat(),
        "legacy": options.legacy,
        "legacy_days": options.legacy_days,
    }


def _live(
    server: ReplicaServer, options: PageOptions, terminal: str, stream: str
) -> dict[str, object]:
    """The latest pictures of the latest day with pictures (today, normally)."""
    schedule: Schedule = server.schedule
    day = schedule.today_date()
    for _ in range(LIVE_LOOKBACK_DAYS):
        times = schedule.timestamps(terminal, stream, day)
        if times:
            urls = [
                _thumbnail(server, server.cdn_url, terminal, stream, t) for t in times
            ]
            return {"date": day.isoformat(), "images": urls[-options.live_count :]}
        day -= timedelta(days=1)
    return {"date": None, "images": []}


def _history(
    server: ReplicaServer, options: PageOptions, terminal: str, stream: str, day: date
) -> dict[str, object]:
    """The day's thumbnails, with the foreign extras spread through the list."""
    times = server.schedule.timestamps(terminal, stream, day)
    images = [_thumbnail(server, server.cdn_url, terminal, stream, t) for t in times]
    if times:
        extras = [
            _thumbnail(
                server, server.foreign_cdn_url, terminal, stream, times[i % len(times)]
            )
            for i in range(options.foreign_images)
        ]
        for number, url in enumerate(extras, start=1):
            images.insert(number * len(images) // (len(extras) + 1), url)
    return {
        "date": day.isoformat(),
        "images": images,
        "render_delay": list(options.render_delay),
        "image_stagger": options.image_stagger,
        "lazy": options.lazy,
    }


def _thumbnail(
    server: ReplicaServer, cdn_url: str, terminal: str, stream: str, wall: datetime
) -> str:
    return build_image_url(
        cdn_url,
        terminal,
        stream,
        wall,
        thumbnail=True,
        source_timezone=server.schedule.source_timezone,
    )


@lru_cache(maxsize=1)
def _page_html() -> bytes:
    return resources.files("modules.replica").joinpath("page.html").read_bytes()


def _json(status: int, payload: object) -> Response:
    return Response(status, "application/json", json.dumps(payload).encode(), _NO_STORE)


def _text(status: int, message: str) -> Response:
    return Response(status, "text/plain; charset=utf-8", message.encode(), _NO_STORE)
