"""How long browser discovery takes per day, warm and cold, against the replica.

Claims: with a warm browser a day's timestamps take < 2 s on average against the
replica's default page (render delay 0.2-0.6 s, 144 pictures filling in over
about a second); a first call with a fresh browser (Chromium start, page load,
first day) takes < 3 s. The days are spread over months, so the picker's header
navigation is part of the figure. The replica runs in its own process (the real
site is not in ours); every result is checked against the schedule.

    .venv/bin/python benchmarks/bench_discovery.py [--days 10] [--cold-runs 3]

Prints a table, then a last line that is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date, timedelta
from multiprocessing import Pipe, Process
from multiprocessing.connection import Connection

from modules.downloader.browser import find_browser
from modules.downloader.discovery import BrowserDiscovery
from modules.replica.schedule import Schedule
from modules.replica.server import ReplicaServer

TERMINAL = "apm"
STREAM = "in_gate"
TODAY = date(2025, 9, 20)
DAY_SPACING = 17
"""Days between two benchmarked days: 10 days span about five months."""


def timed_day(discovery: BrowserDiscovery, schedule: Schedule, day: date) -> float:
    """Seconds for one day's timestamps; exits when they are not the schedule's."""
    started = time.perf_counter()
    result = discovery.timestamps_for_date(day, STREAM)
    seconds = time.perf_counter() - started
    wanted = [
        moment.isoformat() for moment in schedule.timestamps(TERMINAL, STREAM, day)
    ]
    if result.timestamps != wanted:
        sys.exit(
            f"wrong timestamps for {day}: {len(result.timestamps)} != {len(wanted)}"
        )
    return seconds


def serve(schedule: Schedule, connection: Connection) -> None:
    """Run the replica in its own process, as the real site is not in ours."""
    with ReplicaServer(schedule) as replica:
        connection.send((replica.app_url, replica.cdn_url))
        connection.recv()  # until told to stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--cold-runs", type=int, default=3)
    args = parser.parse_args()
    chromium, chromedriver = find_browser()
    schedule = Schedule(today=TODAY)
    days = [TODAY - timedelta(days=1 + DAY_SPACING * i) for i in range(args.days)]
    ours, theirs = Pipe()
    server = Process(target=serve, args=(schedule, theirs), daemon=True)
    server.start()
    app_url, cdn_url = ours.recv()

    def new_discovery() -> BrowserDiscovery:
        return BrowserDiscovery(
            app_url,
            cdn_url,
            TERMINAL,
            chromium_path=chromium,
            chromedriver_path=chromedriver,
        )

    try:
        cold = []
        for run in range(args.cold_runs):
            with new_discovery() as discovery:
                cold.append(
                    timed_day(discovery, schedule, TODAY - timedelta(days=2 + run))
                )
        with new_discovery() as discovery:
            timed_day(discovery, schedule, TODAY)  # warm up: browser started, page open
            warm = [timed_day(discovery, schedule, day) for day in days]
    finally:
        ours.send("stop")
        server.join()

    print(f"{'day':<12} {'seconds':>8}")
    for day, seconds in zip(days, warm):
        print(f"{day.isoformat():<12} {seconds:>8.2f}")
    print(
        f"{'cold start':<12} {statistics.median(cold):>8.2f}  (median of {len(cold)})"
    )
    print(
        json.dumps(
            {
                "days": len(warm),
                "mean_s_per_day": round(statistics.mean(warm), 3),
                "max_s_per_day": round(max(warm), 3),
                "cold_start_s": round(statistics.median(cold), 3),
                "cold_start_max_s": round(max(cold), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
