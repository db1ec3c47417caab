"""``python -m modules.replica --port N``: serve the replica until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from dataclasses import fields
from datetime import date
from types import FrameType
from typing import Any

from modules.replica.server import DEFAULT_PORT, Faults, ReplicaServer, run_forever
from modules.replica.schedule import Schedule


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, serve until interrupted, return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        schedule = Schedule(
            seed=args.seed,
            interval_minutes=args.interval_minutes,
            empty_days=frozenset(args.empty_day),
            first_day=args.first_day,
            today=args.today,
            source_timezone=args.timezone,
            streams=tuple(args.streams.split(",")),
        )
        faults = _faults(args.fault)
    except ValueError as error:
        parser.error(str(error))
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    run_forever(args.port, args.host, schedule, faults, on_ready=_announce)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m modules.replica",
        description="Serve a replica of DrayDog's camera page and CDN.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="0 picks a free port"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--interval-minutes", type=int, default=10)
    parser.add_argument("--first-day", type=date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument(
        "--today", type=date.fromisoformat, help="pin the replica's today"
    )
    parser.add_argument(
        "--empty-day", type=date.fromisoformat, action="append", default=[]
    )
    parser.add_argument("--streams", default="in_gate,out_gate", help="comma-separated")
    parser.add_argument("--timezone", default="America/Los_Angeles")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Faults field, e.g. error_rate=0.1 or missing=2025-09-06T23:07:34,...",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    return parser


def _faults(settings: list[str]) -> Faults:
    """Faults from NAME=VALUE pairs, each value converted to its field's type."""
    defaults = Faults()
    names = {item.name for item in fields(Faults)}
    values: dict[str, Any] = {}
    for setting in settings:
        name, _, text = setting.partition("=")
        if name not in names:
            raise ValueError(
                f"unknown fault {name!r}; known: {', '.join(sorted(names))}"
            )
        kind = type(getattr(defaults, name))
        values[name] = frozenset(text.split(",")) if kind is frozenset else kind(text)
    return Faults(**values)


def _announce(server: ReplicaServer) -> None:
    print(
        f"DrayDog replica serving on {server.base_url} (CDN {server.cdn_url})",
        flush=True,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
