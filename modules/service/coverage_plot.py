"""A day-by-hour coverage chart of the archive as a PNG (``draydog gaps --plot``).

One panel per stream: days across, the terminal's hours up, each cell coloured
by the pictures the database holds for that hour. A hole is a dark cell. The
counts come from the database per hour; matplotlib is an optional extra.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from modules.database import coverage
from modules.site.urls import DEFAULT_TIMEZONE
from modules.service.gaps import StreamRange

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'draydog-archiver[plot]'"


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def require_matplotlib() -> None:
    """Raise :class:`PlotUnavailable`, saying how to install it, when matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        raise PlotUnavailable(f"--plot needs matplotlib: {INSTALL_HINT}")


def hour_grid(stream: StreamRange, zone: str = DEFAULT_TIMEZONE) -> list[list[int]]:
    """Pictures per terminal hour (rows 0-23) and day of the stream's range (columns)."""
    local_zone = ZoneInfo(zone)
    width = (stream.end - stream.start).days + 1
    grid = [[0] * width for _ in range(24)]
    for moment, count in coverage.hourly_counts(
        stream.terminal, stream.stream, stream.start, stream.end
    ):
        local = moment.astimezone(local_zone)
        column = (local.date() - stream.start).days
        if 0 <= column < width:
            grid[local.hour][column] += count
    return grid


def plot_coverage(
    streams: Sequence[StreamRange], path: Path, zone: str = DEFAULT_TIMEZONE
) -> None:
    """Draw the chart of ``streams`` into the PNG file ``path``."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    if not streams:
        raise ValueError("no streams to draw")
    days = max((s.end - s.start).days + 1 for s in streams)
    figure, axes = pyplot.subplots(
        len(streams),
        1,
        figsize=(min(40.0, max(6.0, days * 0.12)), 2.2 * len(streams) + 0.8),
        squeeze=False,
    )
    try:
        for axis, stream in zip(axes[:, 0], streams):
            image = axis.imshow(
                hour_grid(stream, zone),
                aspect="auto",
                origin="lower",
                interpolation="nearest",
                cmap="viridis",
                vmin=0,  # an hour without pictures is dark whatever the others hold
            )
            axis.set_title(f"{stream.terminal} {stream.stream}", fontsize=9)
            axis.set_ylabel(f"hour ({zone})", fontsize=7)
            axis.set_yticks([0, 6, 12, 18, 23])
            ticks = list(
                range(0, (stream.end - stream.start).days + 1, max(1, days // 8))
            )
            axis.set_xticks(ticks)
            axis.set_xticklabels(
                [(stream.start + timedelta(days=t)).isoformat() for t in ticks],
                fontsize=7,
            )
            figure.colorbar(image, ax=axis, label="pictures")
        figure.tight_layout()
        figure.savefig(path, format="png", dpi=100)
    finally:
        pyplot.close(figure)
    logger.info("coverage chart of %d streams written to %s", len(streams), path)
