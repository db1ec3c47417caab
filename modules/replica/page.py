"""The replica's camera page and its JSON endpoints.

Two pages answer the camera URL. ``widget_page.html`` is built on the real widget
DrayDog uses (Vue 2.7 and Element UI 2.15, see ``widget``): the picker's popper
and transitions, ``el-image``, ``v-loading`` and ``el-empty`` behave as on the
site because they are the site's own components. ``page.html`` is a hand-written
imitation of the same DOM shapes, kept for a machine without the widget's assets
and for the older page form (one button per day). Both get their data from the
JSON endpoints answered here; pictures that fail to load come from the server's
``Faults``. The server reads ``page_options`` per request and the page reads the
History knobs with each day, so a test can change them between two days (the
page form and the loading mask only on a new page).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Mapping, Sequence

from modules.site.urls import InvalidName, build_image_url, validate_name
from modules.replica import widget

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
HISTORY_FORMS = ("thumbnail", "full_size", "foreign", "unknown")
"""The forms of the History's URLs :attr:`PageOptions.history_form` can take."""


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
    widget: bool | None = None
    """The page on the real widget (True), the hand-written one (False), or the real
    widget when its assets are cached (None). The older form is hand-written only."""
    loading_mask: bool = True
    """Whether the History shows ``v-loading``'s mask while a day loads (widget page)."""
    history_delay: float = 0.0
    """Seconds the server waits before answering a History request."""
    batches: int = 1
    """Pages the History of a day comes in: the page asks for the next when one is shown."""
    history_form: str = "thumbnail"
    """The URLs the History lists: ``thumbnail`` (the site's), ``full_size`` (the
    full-size pictures' URLs instead), ``foreign`` (every thumbnail on another host
    name, ``server.foreign_cdn_url``) or ``unknown`` (every picture on the CDN in a
    form the URL grammar does not know, as after a change of the site)."""
    unknown_images: int = 0
    """Extra History pictures on the CDN in that unknown form."""

    def __post_init__(self) -> None:
        low, high = self.render_delay
        if not 0 <= low <= high:
            raise ValueError(
                f"render_delay must be 0 <= low <= high, not {self.render_delay}"
            )
        if self.image_stagger < 0:
            raise ValueError(f"image_stagger must be >= 0, not {self.image_stagger}")
        for name in ("legacy_days", "foreign_images", "unknown_images"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        if not 1 <= self.live_count <= 4:
            raise ValueError(f"live_count must be 1..4, not {self.live_count}")
        if self.history_delay < 0:
            raise ValueError(f"history_delay must be >= 0, not {self.history_delay}")
        if self.batches < 1:
            raise ValueError(f"batches must be >= 1, not {self.batches}")
        if self.batches > 1 and self.widget is False:
            raise ValueError("a History in batches is a knob of the widget page")
        if self.history_form not in HISTORY_FORMS:
            raise ValueError(
                f"history_form must be one of {', '.join(HISTORY_FORMS)}, "
                f"not {self.history_form!r}"
            )
        if self.widget and self.legacy:
            raise ValueError("the older page form exists on the hand-written page only")

    def uses_widget(self) -> bool:
        """Whether the camera page is served on the real widget."""
        if self.widget is None:
            return not self.legacy and widget.available()
        return self.widget


def route(
    path: str, query: Mapping[str, Sequence[str]], server: ReplicaServer
) -> Response | None:
    """Answer a page or API request, or None when ``path`` is not the page's."""
    if path.startswith(widget.ASSET_PREFIX):
        return _asset(path[len(widget.ASSET_PREFIX) :])
    page = _PAGE_RE.fullmatch(path)
    if page is not None:
        try:
            validate_name(page["terminal"], "terminal")
            stream = query.get("streamName")
            if stream:
                validate_name(stream[0], "stream")
        except InvalidName as exc:
            return _text(404, str(exc))
        if (server.page_options or PageOptions()).uses_widget():
            widget.require()
            html = _page_html("widget_page.html")
        else:
            html = _page_html("page.html")
        return Response(200, "text/html; charset=utf-8", html, _NO_STORE)
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
        offset = int(query.get("offset", ["0"])[0])
    except ValueError:
        return _json(400, {"error": "date must be YYYY-MM-DD, offset a number"})
    if options.history_delay:
        time.sleep(options.history_delay)
    if server.take_history_failure():
        return _json(503, {"error": "the History is unavailable, try again"})
    return _json(200, _history(server, options, terminal, stream, day, offset))


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
        "loading_mask": options.loading_mask,
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
    server: ReplicaServer,
    options: PageOptions,
    terminal: str,
    stream: str,
    day: date,
    offset: int = 0,
) -> dict[str, object]:
    """One page of the day's thumbnails, with the foreign extras spread through the list.

    The list is in capture order, so the repeated autumn hour shows its two
    occurrences one after the other, as the site's time-ordered History does.
    """
    times = server.schedule.timestamps(terminal, stream, day)
    images = [_listed(server, options, terminal, stream, t) for t in times]
    if times:
        extras = [
            _thumbnail(
                server, server.foreign_cdn_url, terminal, stream, times[i % len(times)]
            )
            for i in range(options.foreign_images)
        ] + [
            _unknown_form(server.cdn_url, terminal, stream, times[i % len(times)])
            for i in range(options.unknown_images)
        ]
        for number, url in enumerate(extras, start=1):
            images.insert(number * len(images) // (len(extras) + 1), url)
    size = -(-len(images) // options.batches) or 1
    offset = max(0, offset)
    end = offset + size
    return {
        "date": day.isoformat(),
        "images": images[offset:end],
        "next_offset": end if end < len(images) else None,
        "render_delay": list(options.render_delay),
        "image_stagger": options.image_stagger,
        "lazy": options.lazy,
    }


def _thumbnail(
    server: ReplicaServer,
    cdn_url: str,
    terminal: str,
    stream: str,
    wall: datetime,
    thumbnail: bool = True,
) -> str:
    return build_image_url(
        cdn_url,
        terminal,
        stream,
        wall,
        thumbnail=thumbnail,
        source_timezone=server.schedule.source_timezone,
    )


def _listed(
    server: ReplicaServer,
    options: PageOptions,
    terminal: str,
    stream: str,
    wall: datetime,
) -> str:
    """A History item's URL in the form ``options.history_form`` asks for."""
    form = options.history_form
    if form == "unknown":
        return _unknown_form(server.cdn_url, terminal, stream, wall)
    cdn = server.foreign_cdn_url if form == "foreign" else server.cdn_url
    return _thumbnail(server, cdn, terminal, stream, wall, form != "full_size")


def _unknown_form(cdn_url: str, terminal: str, stream: str, wall: datetime) -> str:
    """A picture URL on the CDN in a form ``modules.site.urls`` does not parse."""
    day = wall.date().isoformat()
    return f"{cdn_url}/{terminal}/{day}/{wall.hour}/{stream}-{wall:%Y%m%dT%H%M%S}.jpeg"


@lru_cache(maxsize=2)
def _page_html(name: str) -> bytes:
    return resources.files("modules.replica").joinpath(name).read_bytes()


def _asset(name: str) -> Response:
    """A file of the real widget, from the cache the setup script fills."""
    path = widget.asset_path(name)
    if path is None or not path.is_file():
        return _text(404, f"no widget asset {name!r}; run {widget.FETCH_HINT}")
    headers = {"Cache-Control": "public, max-age=31536000, immutable"}
    return Response(200, widget.content_type(name), path.read_bytes(), headers)


def _json(status: int, payload: object) -> Response:
    return Response(status, "application/json", json.dumps(payload).encode(), _NO_STORE)


def _text(status: int, message: str) -> Response:
    return Response(status, "text/plain; charset=utf-8", message.encode(), _NO_STORE)
