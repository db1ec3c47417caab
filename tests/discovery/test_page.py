"""The replica's camera page and JSON endpoints, without a browser."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest

from modules.site.urls import build_image_url, parse_image_url
from modules.replica.page import PageOptions, Response, route
from modules.replica.server import ReplicaServer
from tests.discovery.conftest import EMPTY_DAY, FIRST_DAY, SCHEDULE, TERMINAL, TODAY

HISTORY = f"/api/cameras/{TERMINAL}/in_gate/history"


def _json(response: Response | None) -> object:
    assert response is not None and response.status == 200, response
    assert response.content_type == "application/json"
    return json.loads(response.body)


def _thumbnails(cdn_url: str, day: date, stream: str = "in_gate") -> list[str]:
    return [
        build_image_url(cdn_url, TERMINAL, stream, moment, thumbnail=True)
        for moment in SCHEDULE.timestamps(TERMINAL, stream, day)
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/favicon.ico",
        "/terminal_cameras",
        "/terminal_cameras/apm/x",
        "/api/other",
        "/cdn/apm/x",
    ],
)
def test_other_paths_are_not_the_pages(replica: ReplicaServer, path: str) -> None:
    assert route(path, {}, replica) is None


def test_page_html_has_no_picture_and_no_external_resource(
    replica: ReplicaServer,
) -> None:
    response = route(
        f"/terminal_cameras/{TERMINAL}", {"streamName": ["in_gate"]}, replica
    )
    assert response is not None and response.status == 200
    assert response.content_type.startswith("text/html")
    assert b"<img" not in response.body.lower()
    assert re.search(rb"""(src|href)\s*=\s*["']?(https?:)?//""", response.body) is None
    assert b'id="app"' in response.body


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/terminal_cameras/APM", {}),
        ("/terminal_cameras/apm", {"streamName": ["../x"]}),
    ],
)
def test_bad_names_are_not_found(
    replica: ReplicaServer, path: str, query: dict[str, list[str]]
) -> None:
    response = route(path, query, replica)
    assert response is not None and response.status == 404


def test_config_gives_the_calendar_bounds(replica: ReplicaServer) -> None:
    config = _json(route(f"/api/cameras/{TERMINAL}/in_gate/config", {}, replica))
    assert config == {
        "terminal": TERMINAL,
        "stream": "in_gate",
        "today": TODAY.isoformat(),
        "first_day": FIRST_DAY.isoformat(),
        "legacy": False,
        "legacy_days": 14,
        "loading_mask": True,
    }


def test_history_lists_the_schedules_thumbnails(replica: ReplicaServer) -> None:
    day = date(2025, 9, 6)
    history = _json(route(HISTORY, {"date": [day.isoformat()]}, replica))
    assert isinstance(history, dict)
    assert history["images"] == _thumbnails(replica.cdn_url, day)
    times = [parse_image_url(url).local_time for url in history["images"]]
    assert times == SCHEDULE.timestamps(TERMINAL, "in_gate", day)
    assert history["render_delay"] == list(PageOptions().render_delay)


@pytest.mark.parametrize(
    "day", [EMPTY_DAY, TODAY + timedelta(days=1), FIRST_DAY - timedelta(days=1)]
)
def test_days_without_pictures_have_an_empty_history(
    replica: ReplicaServer, day: date
) -> None:
    history = _json(route(HISTORY, {"date": [day.isoformat()]}, replica))
    assert isinstance(history, dict) and history["images"] == []


def test_foreign_pictures_are_spread_through_the_history(
    replica: ReplicaServer, page_options: Callable[..., None]
) -> None:
    page_options(foreign_images=3)
    day = date(2025, 9, 6)
    history = _json(route(HISTORY, {"date": [day.isoformat()]}, replica))
    assert isinstance(history, dict)
    images: list[str] = history["images"]
    foreign = [
        i for i, url in enumerate(images) if urlsplit(url).hostname == "localhost"
    ]
    assert len(foreign) == 3 and foreign[0] > 0 and foreign[-1] < len(images) - 1
    assert [url for url in images if "localhost" not in url] == _thumbnails(
        replica.cdn_url, day
    )


def test_live_shows_the_latest_pictures_of_today(
    replica: ReplicaServer, page_options: Callable[..., None]
) -> None:
    live = _json(route(f"/api/cameras/{TERMINAL}/out_gate/live", {}, replica))
    assert isinstance(live, dict)
    assert live["date"] == TODAY.isoformat()
    assert live["images"] == _thumbnails(replica.cdn_url, TODAY, "out_gate")[-4:]
    page_options(live_count=1)
    live = _json(route(f"/api/cameras/{TERMINAL}/out_gate/live", {}, replica))
    assert isinstance(live, dict) and len(live["images"]) == 1


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        (HISTORY, {"date": ["6 Sep"]}, 400),
        (HISTORY, {}, 400),
        (f"/api/cameras/{TERMINAL}/side_gate/history", {"date": ["2025-09-06"]}, 404),
        (f"/api/cameras/{TERMINAL}/Bad/config", {}, 404),
    ],
)
def test_bad_api_requests_are_refused(
    replica: ReplicaServer, path: str, query: dict[str, list[str]], status: int
) -> None:
    response = route(path, query, replica)
    assert response is not None and response.status == status
    assert "error" in json.loads(response.body)


def test_the_server_serves_the_page_and_its_data(replica: ReplicaServer) -> None:
    with urlopen(
        f"{replica.app_url}/terminal_cameras/{TERMINAL}?streamName=in_gate"
    ) as page:
        assert page.headers["Content-Type"].startswith("text/html")
        assert b"<img" not in page.read().lower()
    with urlopen(f"{replica.app_url}{HISTORY}?date=2025-09-06") as answer:
        images = json.loads(answer.read())["images"]
    with urlopen(images[0]) as picture:
        assert picture.headers["Content-Type"] == "image/jpeg"
    with pytest.raises(HTTPError) as missing:
        urlopen(f"{replica.app_url}/terminal_cameras/APM")
    assert missing.value.code == 404


@pytest.mark.parametrize(
    "options",
    [
        {"render_delay": (0.5, 0.1)},
        {"render_delay": (-1.0, 0.1)},
        {"image_stagger": -0.1},
        {"foreign_images": -1},
        {"legacy_days": -1},
        {"live_count": 0},
        {"live_count": 5},
    ],
)
def test_page_options_are_checked(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PageOptions(**options)  # type: ignore[arg-type]
