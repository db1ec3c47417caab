"""/metrics and /healthz of a watch, scraped over HTTP: healthy, then lagging, then failing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modules.site.urls import wall_clock_to_utc
from modules.replica import Faults, ReplicaServer
from modules.service.metrics import MetricsServer, reason_label
from tests.service.watch_helpers import (
    STREAMS,
    TERMINAL,
    TODAY,
    MovingClock,
    WatchFactory,
    archive_db,
    clock,
    make_watch,
    published,
    schedule,
    site,
)

__all__ = ["archive_db", "clock", "make_watch", "site"]  # fixtures used here


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = _get(port, "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples[(name, tuple(sorted(labels.items())))]  # type: ignore[no-any-return]


@pytest.mark.browser
def test_metrics_and_health_over_http(
    site: ReplicaServer,
    clock: MovingClock,
    make_watch: WatchFactory,
    archive_db: str,
    tmp_path: Path,
) -> None:
    missing = published(site, "in_gate", TODAY)[-3:]
    site.faults = Faults(missing=frozenset(t.isoformat() for t in missing))
    watch = make_watch(backfill_days=0, interval=600.0)
    with MetricsServer(watch.metrics, 0) as server:
        port = server.port
        status, body = _get(port, "/healthz")
        assert status == 200  # nothing known yet, but the watch just started

        result = watch.run_cycle()

        samples = _samples(port)
        for stream in STREAMS:
            (report,) = [r for (_, s), _, r in result.reports if s == stream]
            labels = {"terminal": TERMINAL, "stream": stream}
            assert (
                _value(
                    samples, "draydog_pictures_downloaded_total", kind="full", **labels
                )
                == report.downloaded
                > 60
            )
            assert _value(samples, "draydog_downloaded_bytes_total", **labels) == sum(
                Path(f).stat().st_size for f in report.files
            )
            assert _value(samples, "draydog_discovery_seconds_count", **labels) == 1
            assert _value(samples, "draydog_download_seconds_count", **labels) == 1
            newest = max(
                t
                for t in published(site, stream, TODAY)
                if stream != "in_gate" or t not in missing
            )
            captured = wall_clock_to_utc(newest)
            assert (
                _value(samples, "draydog_newest_picture_timestamp_seconds", **labels)
                == captured.timestamp()
            )
            assert (
                _value(samples, "draydog_lag_seconds", **labels)
                == (clock.now - captured).total_seconds()
            )
        assert (
            _value(
                samples,
                "draydog_pictures_failed_total",
                terminal=TERMINAL,
                stream="in_gate",
                reason="not_found",
            )
            == 3
        )
        status, body = _get(port, "/healthz")
        assert status == 200
        health = json.loads(body)
        assert health["healthy"] is True
        in_gate = health["streams"][0]
        assert in_gate["stream"] == "in_gate" and in_gate["last_error"] is None
        assert in_gate["newest_picture"] is not None and in_gate["last_success"]

        # Nothing new for longer than max_lag (3 intervals + 30 min): unhealthy.
        clock.advance(seconds=3 * 600 + 1800 + 1)
        status, body = _get(port, "/healthz")
        assert status == 503
        assert all("lag" in s["problems"][0] for s in json.loads(body)["streams"])

        # Caught up again, but one stream's page fails two cycles in a row.
        site.schedule = schedule(clock, streams=("in_gate",))
        watch.run_cycle()
        watch.run_cycle()
        status, body = _get(port, "/healthz")
        assert status == 503
        streams = {s["stream"]: s for s in json.loads(body)["streams"]}
        assert streams["in_gate"]["healthy"] is True
        assert "the last 2 cycles failed" in streams["out_gate"]["problems"]
        assert "Camera not found" in streams["out_gate"]["last_error"]
        samples = _samples(port)
        assert (
            _value(
                samples,
                "draydog_stream_cycles_total",
                terminal=TERMINAL,
                stream="out_gate",
                outcome="failed",
            )
            == 2
        )
        assert _get(port, "/nothing")[0] == 404


@pytest.mark.parametrize(
    "reason, label",
    [
        ("404: no picture, no thumbnail", "not_found"),
        ("403: no picture, no thumbnail", "forbidden"),
        ("3 pictures failed to load on the page", "page"),
        ("body took longer than the timeout", "timeout"),
        ("connection failed: ConnectionError", "connection"),
        ("thumbnail: truncated: 10 of 20 bytes", "truncated"),
        ("not a JPEG (text/html)", "not_jpeg"),
        ("too large: over the cap of 10 bytes", "too_large"),
        ("HTTP 503", "server_error"),
        ("HTTP 418", "http_status"),
        ("cannot write /x: No space left on device", "disk"),
        ("something new", "other"),
        (None, "other"),
    ],
)
def test_failure_reasons_become_a_few_labels(reason: str | None, label: str) -> None:
    assert reason_label(reason) == label
