"""Discovery on the replica's real-widget page: seconds per day, and 100 picks checked.

Targets (issue 8): with a warm browser a day's timestamps take under 1 s on
average, and a reliability run of 100 picks of random days over two years, on both
streams alternately (in_gate, out_gate, in_gate, ...), has 0 failed or wrong picks.

The camera page is the real Vue 2.7 + Element UI 2.15 widget (``PageOptions(
widget=True)``; ``scripts/fetch-widget.sh`` caches its assets). The page waits a
random render delay (``--render-delay LOW HIGH``, default 0.1-0.3 s) between the
History's data and its render; ``--compare-delays`` also measures the warm figure
at the older default 0.2-0.6 s. The replica runs in its own process (the real site
is not in ours). Every result is compared with the replica Schedule's own pictures
for the day; a few days of the schedule are empty and must come back
``confirmed_empty``, and the four DST days of the range are among the picks.

Sections:

* warm: ``--days`` random days of in_gate in one browser after a warm-up day;
* cold: ``--cold-runs`` first calls, each with a fresh browser (Chromium start,
  page load, first day);
* picks: the reliability run, one browser, streams alternating, so each pick also
  opens the other stream's page.

Where the time goes is measured by timing discovery's own steps (page load, panel
opening, panel transition, month stepping, pick confirmation, the History wait).

    .venv/bin/python benchmarks/bench_discovery.py [--picks 100] [--days 20]
        [--cold-runs 2] [--render-delay 0.1 0.3] [--compare-delays] [--seed 8]

Prints tables, then a last line that is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import wraps
from multiprocessing import Pipe, Process
from multiprocessing.connection import Connection
from typing import Any, Callable

from modules.downloader.browser import find_browser
from modules.downloader.discovery import BrowserDiscovery, DiscoveryResult
from modules.site.urls import timestamp_text, wall_clock_to_utc
from modules.replica import widget
from modules.replica.page import PageOptions
from modules.replica.schedule import Schedule
from modules.replica.server import ReplicaServer

TERMINAL = "apm"
STREAMS = ("in_gate", "out_gate")
TODAY = date(2025, 9, 20)
HISTORY_DAYS = 730
"""The picks' range: two years back from the replica's today (today included)."""
FIRST_DAY = TODAY - timedelta(days=HISTORY_DAYS - 1)
DST_DAYS = (date(2023, 11, 5), date(2024, 3, 10), date(2024, 11, 3), date(2025, 3, 9))
"""The range's autumn (25 h, repeated hour) and spring (23 h) days: always picked."""
OLD_DELAY = (0.2, 0.6)
"""The replica's render delay the previous figures were measured at."""
TIMEOUT = 30.0

PHASES = {
    "_open_page": "page load (stream switch / reopen)",
    "_open_panel": "opening the picker panel",
    "_show_month": "month stepping in the header",
    "_wait_still": "waiting for the panel transition",
    "_confirmed_pick": "confirming the pick in the input",
    "_result": "parsing URLs into timestamps",
}
"""Discovery steps timed by wrapping them (private: missing ones are skipped)."""
HISTORY_PHASE = "waiting for the History"


# --- the replica, in its own process ------------------------------------------


def serve(schedule: Schedule, options: PageOptions, connection: Connection) -> None:
    """Run the replica until told to stop; ``("options", PageOptions)`` changes its page."""
    with ReplicaServer(schedule, page_options=options) as replica:
        connection.send((replica.app_url, replica.cdn_url))
        while True:
            command, payload = connection.recv()
            if command == "stop":
                break
            replica.page_options = payload
            connection.send("ok")


class Replica:
    """The replica process and the pipe that sets its page options."""

    def __init__(self, schedule: Schedule, options: PageOptions) -> None:
        self._ours, theirs = Pipe()
        self._process = Process(
            target=serve, args=(schedule, options, theirs), daemon=True
        )
        self._process.start()
        self.app_url, self.cdn_url = self._ours.recv()

    def set_options(self, options: PageOptions) -> None:
        self._ours.send(("options", options))
        self._ours.recv()

    def stop(self) -> None:
        self._ours.send(("stop", None))
        self._process.join(timeout=10)


def page_options(delay: tuple[float, float]) -> PageOptions:
    return PageOptions(widget=True, render_delay=delay)


# --- timing discovery's steps -------------------------------------------------


@dataclass
class Phases:
    """Seconds spent in each of discovery's steps, since the last ``reset``."""

    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    missing: list[str] = field(default_factory=list)

    def instrument(self, discovery: BrowserDiscovery) -> None:
        """Wrap the steps on this instance only; the class is left as it is."""
        for name, label in PHASES.items():
            method = getattr(discovery, name, None)
            if method is None:
                self.missing.append(name)
                continue
            setattr(discovery, name, self._timed(method, label))
        wait = getattr(discovery, "_wait", None)
        if wait is None:
            self.missing.append("_wait")
            return

        @wraps(wait)
        def timed_wait(*args: Any, **kwargs: Any) -> Any:
            what = args[2] if len(args) > 2 else kwargs.get("what", "")
            if not str(what).startswith("the History of"):
                return wait(*args, **kwargs)
            return self._timed(wait, HISTORY_PHASE)(*args, **kwargs)

        setattr(discovery, "_wait", timed_wait)

    def _timed(self, method: Callable[..., Any], label: str) -> Callable[..., Any]:
        @wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started

        return timed

    def reset(self) -> None:
        self.seconds.clear()

    def snapshot(self) -> dict[str, float]:
        return {label: self.seconds[label] for label in self.seconds}


def print_phases(title: str, phases: dict[str, float], total: float, days: int) -> None:
    """Per-day seconds of each step; steps nest (``page load`` holds no other)."""
    print(f"\n{title}: where the time goes (seconds per day, of {total / days:.3f})")
    for label, seconds in sorted(phases.items(), key=lambda item: -item[1]):
        print(f"  {label:<38} {seconds / days:>7.3f}  {100 * seconds / total:>5.1f}%")
    other = total - sum(phases.values())
    print(
        f"  {'other (state reads, clicks, parsing)':<38} {other / days:>7.3f}"
        f"  {100 * other / total:>5.1f}%"
    )


# --- checking a result --------------------------------------------------------


def expected(schedule: Schedule, stream: str, day: date) -> list[str]:
    """The schedule's pictures of the day as discovery reports them.

    The schedule lists naive wall-clock times in capture order (the repeated autumn
    hour's second occurrence carries ``fold=1``); discovery reports each instant's
    ``timestamp_text`` (an offset inside a repeated hour) in time order.
    """
    zone = schedule.source_timezone
    instants = sorted(
        wall_clock_to_utc(wall, zone)
        for wall in schedule.timestamps(TERMINAL, stream, day)
    )
    return [timestamp_text(instant, zone) for instant in instants]


def mismatch(result: DiscoveryResult, wanted: list[str]) -> str | None:
    """Why a result is wrong, or None when it is exactly the schedule's day."""
    if not wanted:
        if result.confirmed_empty:
            return None
        if result.timestamps:
            return f"{len(result.timestamps)} pictures on an empty day"
        return (
            f"empty but not confirmed (reads={result.reads}, missing={result.missing})"
        )
    if result.timestamps == wanted:
        return None
    got, want = set(result.timestamps), set(wanted)
    return (
        f"{len(result.timestamps)} timestamps, wanted {len(wanted)} "
        f"({len(want - got)} missing, {len(got - want)} extra"
        + (", order differs" if got == want else "")
        + ")"
    )


class ReadCounter(logging.Handler):
    """Counts discovery's failed reads (it logs them as warnings and tries again)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.messages.append(record.getMessage())


# --- the sections -------------------------------------------------------------


def timed_day(
    discovery: BrowserDiscovery, schedule: Schedule, day: date, stream: str
) -> float:
    """Seconds for one day's timestamps; exits when they are not the schedule's."""
    started = time.perf_counter()
    result = discovery.timestamps_for_date(day, stream)
    seconds = time.perf_counter() - started
    problem = mismatch(result, expected(schedule, stream, day))
    if problem is not None:
        sys.exit(f"wrong timestamps for {stream} {day}: {problem}")
    return seconds


def warm_days(
    discovery: BrowserDiscovery, schedule: Schedule, days: list[date]
) -> list[float]:
    """Seconds per day on in_gate, the page already open on another day."""
    return [timed_day(discovery, schedule, day, STREAMS[0]) for day in days]


@dataclass
class Pick:
    day: date
    stream: str
    seconds: float
    pictures: int
    reads: int
    empty: bool
    problem: str | None


def reliability(
    discovery: BrowserDiscovery, schedule: Schedule, days: list[date]
) -> list[Pick]:
    picks = []
    for index, day in enumerate(days):
        stream = STREAMS[index % len(STREAMS)]
        wanted = expected(schedule, stream, day)
        started = time.perf_counter()
        problem: str | None
        try:
            result = discovery.timestamps_for_date(day, stream)
        except Exception as exc:  # a pick that raises is a failure, whatever it is
            problem = f"raised {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            pictures = reads = 0
        else:
            problem = mismatch(result, wanted)
            pictures, reads = len(result.timestamps), result.reads
        seconds = time.perf_counter() - started
        picks.append(Pick(day, stream, seconds, pictures, reads, not wanted, problem))
        mark = "ok" if problem is None else f"FAIL {problem}"
        print(
            f"  {index + 1:>3} {day.isoformat()} {stream:<8} {pictures:>4} pictures "
            f"{reads} read(s) {seconds:>6.2f} s  {mark}",
            flush=True,
        )
    return picks


def quantile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (inclusive method); the value itself for one."""
    if len(values) < 2:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(fraction * 100) - 1]


def summary(seconds: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.mean(seconds), 3),
        "p50": round(statistics.median(seconds), 3),
        "p95": round(quantile(seconds, 0.95), 3),
        "max": round(max(seconds), 3),
    }


# --- main ---------------------------------------------------------------------


def delay_pair(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a delay is >= 0, not {value}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--picks", type=int, default=100, help="reliability picks")
    parser.add_argument("--days", type=int, default=20, help="warm days timed")
    parser.add_argument("--cold-runs", type=int, default=2)
    parser.add_argument(
        "--empty-days",
        type=int,
        default=5,
        help="empty days of the schedule, all among the picks",
    )
    parser.add_argument(
        "--render-delay",
        nargs=2,
        type=delay_pair,
        default=[0.1, 0.3],
        metavar=("LOW", "HIGH"),
        help="seconds the page takes between the History's data and its render",
    )
    parser.add_argument(
        "--compare-delays",
        action="store_true",
        help=f"also time warm days at {OLD_DELAY[0]}-{OLD_DELAY[1]} s",
    )
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    low, high = args.render_delay
    if low > high:
        parser.error("--render-delay LOW HIGH needs LOW <= HIGH")
    if args.picks < len(DST_DAYS) + args.empty_days:
        parser.error(f"--picks must be at least {len(DST_DAYS) + args.empty_days}")
    if not widget.available():
        sys.exit(
            "the real widget's assets are not cached "
            f"({', '.join(widget.missing_assets())} missing from {widget.widget_dir()});"
            f" run {widget.FETCH_HINT} first: this benchmark measures the real widget"
        )
    delay = (low, high)
    chromium, chromedriver = find_browser()

    rng = random.Random(args.seed)
    all_days = [FIRST_DAY + timedelta(days=i) for i in range(HISTORY_DAYS)]
    others = [day for day in all_days if day not in DST_DAYS]
    pick_days = rng.sample(others, args.picks - len(DST_DAYS)) + list(DST_DAYS)
    rng.shuffle(pick_days)
    empty_days = frozenset(
        rng.sample([d for d in pick_days if d not in DST_DAYS], args.empty_days)
    )
    schedule = Schedule(today=TODAY, empty_days=empty_days, first_day=FIRST_DAY)
    full_days = [day for day in others if day not in empty_days and day != TODAY]
    warm_list = rng.sample(full_days, args.days)

    counter = ReadCounter()
    logging.getLogger("modules.downloader.discovery").addHandler(counter)
    replica = Replica(schedule, page_options(delay))

    def new_discovery() -> BrowserDiscovery:
        return BrowserDiscovery(
            replica.app_url,
            replica.cdn_url,
            TERMINAL,
            timeout=TIMEOUT,
            chromium_path=chromium,
            chromedriver_path=chromedriver,
        )

    phases = Phases()
    compare: list[float] = []
    try:
        print(
            f"render delay {low:g}-{high:g} s, real widget "
            f"(Vue {widget.VUE_VERSION}, Element UI {widget.ELEMENT_UI_VERSION})"
        )
        cold = []
        for run in range(args.cold_runs):
            with new_discovery() as discovery:
                cold.append(
                    timed_day(
                        discovery, schedule, warm_list[run % len(warm_list)], STREAMS[0]
                    )
                )
        with new_discovery() as discovery:
            phases.instrument(discovery)
            timed_day(discovery, schedule, TODAY, STREAMS[0])  # warm-up: page open
            phases.reset()
            warm = warm_days(discovery, schedule, warm_list)
            warm_phases = phases.snapshot()
            if args.compare_delays:
                replica.set_options(page_options(OLD_DELAY))
                compare = warm_days(discovery, schedule, warm_list)
                replica.set_options(page_options(delay))
        print(
            f"\nreliability: {args.picks} picks, streams alternating, "
            f"{len(empty_days)} empty days, DST days {', '.join(map(str, DST_DAYS))}"
        )
        failed_reads_before = counter.count
        with new_discovery() as discovery:
            phases.instrument(discovery)
            timed_day(discovery, schedule, TODAY, STREAMS[0])  # warm-up
            phases.reset()
            picks = reliability(discovery, schedule, pick_days)
            pick_phases = phases.snapshot()
        failed_reads = counter.count - failed_reads_before
    finally:
        replica.stop()

    if phases.missing:
        print(f"(not timed, discovery has no {', '.join(phases.missing)})")
    print(f"\nwarm, in_gate, render delay {low:g}-{high:g} s")
    print(f"  {'day':<12} {'seconds':>8}")
    for day, seconds in zip(warm_list, warm):
        print(f"  {day.isoformat():<12} {seconds:>8.2f}")
    print_phases("warm days", warm_phases, sum(warm), len(warm))
    pick_seconds = [pick.seconds for pick in picks]
    print_phases("reliability picks", pick_phases, sum(pick_seconds), len(picks))

    failures = [pick for pick in picks if pick.problem is not None]
    empties = [pick for pick in picks if pick.empty]
    full = [pick.seconds for pick in picks if not pick.empty]
    warm_stats = summary(warm)
    rows = [
        (f"warm day ({low:g}-{high:g} s)", warm_stats),
        ("pick, day with pictures", summary(full)),
        ("cold start", summary(cold)),
    ]
    if empties:
        rows.insert(
            -1, ("pick, empty day (2 reads)", summary([p.seconds for p in empties]))
        )
    if compare:
        rows.insert(
            1, (f"warm day ({OLD_DELAY[0]:g}-{OLD_DELAY[1]:g} s)", summary(compare))
        )
    print(f"\n{'seconds':<28} {'mean':>6} {'p50':>6} {'p95':>6} {'max':>6}  n")
    counts = [len(warm)] + ([len(compare)] if compare else [])
    counts += [len(full)] + ([len(empties)] if empties else []) + [len(cold)]
    for (label, stats), n in zip(rows, counts):
        print(
            f"{label:<28} {stats['mean']:>6.2f} {stats['p50']:>6.2f} "
            f"{stats['p95']:>6.2f} {stats['max']:>6.2f}  {n}"
        )
    confirmed = sum(1 for p in empties if p.problem is None)
    print(
        f"\npicks {len(picks)}: {len(failures)} failed or wrong; "
        f"empty days {confirmed}/{len(empties)} confirmed empty; "
        f"{failed_reads} failed reads retried; "
        f"re-read days with pictures: "
        f"{sum(1 for p in picks if not p.empty and p.reads > 1)}"
    )
    for pick in failures:
        print(f"  FAIL {pick.stream} {pick.day}: {pick.problem}")
    target_met = warm_stats["mean"] < 1.0 and not failures
    print(
        f"targets (< 1 s a day, 0 failures in {len(picks)}): "
        f"{'met' if target_met else 'NOT met'}"
    )

    report: dict[str, object] = {
        "seconds_per_day": warm_stats["mean"],
        "p50_s_per_day": warm_stats["p50"],
        "p95_s_per_day": warm_stats["p95"],
        "max_s_per_day": warm_stats["max"],
        "days": len(warm),
        "render_delay": [low, high],
        "cold_start_s": round(statistics.median(cold), 3),
        "picks": len(picks),
        "failures": len(failures),
        "empty_days": len(empties),
        "empty_days_confirmed": confirmed,
        "dst_days": len(DST_DAYS),
        "failed_reads_retried": failed_reads,
        "pick_s_mean": round(statistics.mean(pick_seconds), 3),
        "pick_s_with_pictures_mean": summary(full)["mean"],
        "pick_s_with_pictures_p95": summary(full)["p95"],
        "pick_s_empty_mean": (
            summary([p.seconds for p in empties])["mean"] if empties else None
        ),
        "warm_phases_s_per_day": {
            label: round(seconds / len(warm), 3)
            for label, seconds in warm_phases.items()
        },
        "seed": args.seed,
    }
    if compare:
        report["old_delay_seconds_per_day"] = summary(compare)["mean"]
        report["old_delay_p95_s_per_day"] = summary(compare)["p95"]
        report["old_render_delay"] = list(OLD_DELAY)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
