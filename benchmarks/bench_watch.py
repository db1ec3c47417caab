"""``draydog watch`` on the replica: how soon a new picture has its row, and memory over cycles.

Targets (issue 9):

* (a) lag: from the moment a picture appears on the site to the moment its row is
  in the database, p95 under the watch's interval plus 3 s. The replica's cameras
  run on a fast clock (``--speed`` simulated seconds per real second: at 60, a
  camera takes a picture every 10 real seconds), the watch goes by the same clock,
  and the database is polled for new rows every 0.1 s.
* (b) memory: the resident memory of a ``draydog watch`` process and of its
  browser (chromedriver, Chromium and all their processes) sampled after each
  cycle; growth from cycle 20 to the last (200 by default) under 10%. The browser
  is recycled every ``recycle_after`` days read, so the figures compare the medians
  of the ten cycles around each point.
* (c) ``gaps`` and ``stats`` over a year of two streams (about 105,000 rows) and
  over two years of 20 streams (about 2,100,000 rows) on SQLite, under 1 s each:
  ``bench_gaps.py``'s two archives, run here too so that one run of this script
  answers the whole of issue 9 (``bench_gaps.py`` alone also times the slower
  alternatives side by side).

The replica runs in a process of its own (the real site is not in the watch's).

    .venv/bin/python benchmarks/bench_watch.py [--lag-seconds 120] [--interval 10]
        [--speed 60] [--cycles 200] [--memory-interval 1] [--skip-lag] [--skip-memory]
        [--skip-gaps] [--gaps-only year]

Prints tables, then a last line that is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta, timezone
from multiprocessing import Pipe, Process
from multiprocessing.connection import Connection
from pathlib import Path

if __package__ in (
    None,
    "",
):  # run as a script: its folder is on the path, not the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_gaps import SCENARIOS, run_scenario
from modules.database import models
from modules.downloader.archive import read_picture_path
from modules.replica.page import PageOptions
from modules.replica.schedule import Schedule
from modules.replica.server import ReplicaServer
from modules.service.config import WatchConfig
from modules.service.watch import Watch

STREAMS = ("in_gate", "out_gate")
SIM_START = datetime(2025, 9, 20, 19, 0, tzinfo=timezone.utc)
"""Noon at the terminal on a past day (the downloader refuses future days)."""
PAGE = PageOptions(render_delay=(0.1, 0.3))


class FastClock:
    """Simulated time: ``SIM_START`` at real time ``origin``, running ``speed`` times as fast."""

    def __init__(self, origin: float, speed: float) -> None:
        self.origin = origin
        self.speed = speed

    def __call__(self) -> datetime:
        return SIM_START + timedelta(seconds=(time.time() - self.origin) * self.speed)

    def real_time_of(self, instant: datetime) -> float:
        return self.origin + (instant - SIM_START).total_seconds() / self.speed


def _serve(connection: Connection, origin: float | None, speed: float) -> None:
    """The replica in its own process; its clock is the fast one, or the real one."""
    logging.basicConfig(level=logging.WARNING)
    clock = FastClock(origin, speed) if origin is not None else None
    first_day = date(2025, 1, 1) if clock else date.today() - timedelta(days=30)
    schedule = Schedule(clock=clock, first_day=first_day)
    with ReplicaServer(schedule, page_options=PAGE) as server:
        connection.send((server.app_url, server.cdn_url))
        connection.recv()  # until told to stop


class Replica:
    def __init__(self, origin: float | None, speed: float = 1.0) -> None:
        self.here, there = Pipe()
        self.process = Process(target=_serve, args=(there, origin, speed), daemon=True)

    def __enter__(self) -> tuple[str, str]:
        self.process.start()
        app_url, cdn_url = self.here.recv()
        return app_url, cdn_url

    def __exit__(self, *exc: object) -> None:
        self.here.send("stop")
        self.process.join(10)


# --- (a) lag ---------------------------------------------------------------------


def measure_lag(seconds: float, interval: float, speed: float) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="bench-watch-"))
    database = folder / "archive.sqlite3"
    models.configure(f"sqlite:///{database}")
    models.init_db()
    origin = time.time()
    clock = FastClock(origin, speed)
    with Replica(origin, speed) as (app_url, cdn_url):
        config = WatchConfig(
            streams=STREAMS,
            interval=interval,
            backfill_days=0,
            dir=str(folder / "images"),
            app_url=app_url,
            cdn_url=cdn_url,
            timeout=10,
        )
        watch = Watch(config, clock=clock)
        worker = threading.Thread(target=watch.run, name="watch")
        worker.start()
        seen: dict[str, float] = {}
        first_cycle_done: float | None = None
        ends = time.time() + seconds
        reader = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        while time.time() < ends:
            now = time.time()
            for (path,) in reader.execute("SELECT filepath FROM images"):
                seen.setdefault(path, now)
            if first_cycle_done is None and watch.cycles >= 2:
                first_cycle_done = now  # the backlog of the morning is in
            time.sleep(0.1)
        watch.stop()
        worker.join(30)
        reader.close()
    lags = []
    for path, row_at in seen.items():
        picture = read_picture_path(Path(path))
        if picture is None:
            continue
        appeared = clock.real_time_of(picture.timestamp())
        if first_cycle_done is not None and appeared > first_cycle_done:
            lags.append(row_at - appeared)
    lags.sort()
    figures: dict[str, object] = {
        "interval_s": interval,
        "speed": speed,
        "run_s": seconds,
        "cycles": watch.cycles,
        "pictures_measured": len(lags),
        "rows_total": len(seen),
    }
    if lags:
        figures.update(
            lag_p50_s=round(statistics.median(lags), 2),
            lag_p95_s=round(lags[max(0, int(len(lags) * 0.95) - 1)], 2),
            lag_max_s=round(lags[-1], 2),
            target_p95_s=interval + 3,
            met=lags[max(0, int(len(lags) * 0.95) - 1)] < interval + 3,
        )
    return figures


# --- (b) memory --------------------------------------------------------------------


def _tree_memory_kib(root: int) -> tuple[int, int, int]:
    """KiB of ``root`` alone (resident), and of ``root`` with all its descendants
    (resident, which counts shared pages once per process, and proportional)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            status = (proc / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(proc.name)
        children.setdefault(int(fields["PPid"]), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total_rss = total_pss = 0
    pending = [root]
    while pending:
        pid = pending.pop()
        total_rss += rss.get(pid, 0)
        total_pss += _pss_kib(pid)
        pending.extend(children.get(pid, []))
    return rss.get(root, 0), total_rss, total_pss


def _pss_kib(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def measure_memory(cycles: int, interval: float) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="bench-watch-mem-"))
    with Replica(None) as (app_url, cdn_url):
        command = [sys.executable, "-m", "modules", "watch", "--stream", "in_gate"]
        command += ["--backfill-days", "0", "--interval", str(interval)]
        command += ["--dir", str(folder / "images"), "--db"]
        command += [f"sqlite:///{folder}/archive.sqlite3"]
        command += ["--app-url", app_url, "--cdn-url", cdn_url]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert process.stdout is not None
        samples: list[tuple[int, int, int]] = []
        started = time.monotonic()
        for line in process.stdout:
            if " in_gate: " not in line:
                continue
            samples.append(_tree_memory_kib(process.pid))
            if len(samples) >= cycles:
                break
        seconds = time.monotonic() - started
        process.terminate()
        process.wait(30)
    if len(samples) < cycles:
        raise SystemExit(f"the watch ended after {len(samples)} cycles")

    def around(cycle: int, which: int) -> float:
        window = samples[max(0, cycle - 6) : cycle + 4]
        return statistics.median(s[which] for s in window) / 1024

    early = min(20, cycles)
    python_early, python_late = around(early, 0), around(cycles, 0)
    total_early, total_late = around(early, 1), around(cycles, 1)
    pss_early, pss_late = around(early, 2), around(cycles, 2)
    growth = (total_late - total_early) / total_early
    return {
        "cycles": cycles,
        "seconds": round(seconds, 1),
        "interval_s": interval,
        f"rss_total_mib_cycle_{early}": round(total_early, 1),
        f"rss_total_mib_cycle_{cycles}": round(total_late, 1),
        "rss_total_max_mib": round(max(s[1] for s in samples) / 1024, 1),
        f"pss_total_mib_cycle_{early}": round(pss_early, 1),
        f"pss_total_mib_cycle_{cycles}": round(pss_late, 1),
        f"rss_python_mib_cycle_{early}": round(python_early, 1),
        f"rss_python_mib_cycle_{cycles}": round(python_late, 1),
        "growth_total": round(growth, 4),
        "growth_pss": round((pss_late - pss_early) / pss_early, 4),
        "growth_python": round((python_late - python_early) / python_early, 4),
        "met": growth < 0.10,
    }


def measure_gaps_and_stats(only: str | None) -> dict[str, object]:
    """(c): ``bench_gaps.py``'s archives, timed the same way (best of 3 after a warm-up)."""
    print("(c) gaps and stats on SQLite")
    names = [only] if only else list(SCENARIOS)
    with tempfile.TemporaryDirectory() as folder:
        figures = {name: run_scenario(name, Path(folder), 3) for name in names}
    met = all(f["gaps_s"] < 1.0 and f["stats_s"] < 1.0 for f in figures.values())
    return {**figures, "target_s": 1.0, "met": met}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lag-seconds", type=float, default=120.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--memory-interval", type=float, default=1.0)
    parser.add_argument("--skip-lag", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-gaps", action="store_true")
    parser.add_argument(
        "--gaps-only", choices=sorted(SCENARIOS), help="(c) on one archive only"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    results: dict[str, object] = {"cpus": os.cpu_count()}
    if not args.skip_lag:
        lag = measure_lag(args.lag_seconds, args.interval, args.speed)
        results["lag"] = lag
        print("(a) lag from a picture's appearance to its row")
        for key, value in lag.items():
            print(f"    {key:>20}: {value}")
    if not args.skip_memory:
        memory = measure_memory(args.cycles, args.memory_interval)
        results["memory"] = memory
        print("(b) resident memory of the watch process and its browser")
        for key, value in memory.items():
            print(f"    {key:>28}: {value}")
    if not args.skip_gaps:
        results["gaps_and_stats"] = measure_gaps_and_stats(args.gaps_only)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
