"""A row the database refuses for itself: the picture stays, its neighbours' rows are
written, and the day says it is not worth another attempt (unlike an outage).

The refusal is real: a trigger an operator might add, refusing one picture's row.
"""

from __future__ import annotations

from pathlib import Path

from modules.database import models
from modules.downloader.report import day_status
from modules.replica import ReplicaServer
from modules.tasks import failures
from tests.downloader.conftest import (
    DAY,
    STREAM,
    DownloaderFactory,
    day_times,
    files_under,
    rows_under,
)


def refuse_rows_named(stamp: str) -> None:
    """A trigger refusing the rows whose path holds ``stamp``."""
    engine = models.get_engine()
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON images "
                f"WHEN instr(NEW.filepath, '{stamp}') > 0 "
                "BEGIN SELECT RAISE(ABORT, 'refused by the operator'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN "
                f"IF strpos(NEW.filepath, '{stamp}') > 0 THEN "
                "RAISE EXCEPTION 'refused by the operator'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON images "
                "FOR EACH ROW EXECUTE FUNCTION refuse_one()"
            )


def test_a_row_refused_for_itself_is_not_an_outage(
    replica: ReplicaServer,
    make_downloader: DownloaderFactory,
    database: str,
    tmp_path: Path,
) -> None:
    walls = day_times(DAY)[:12]
    refuse_rows_named(f"{STREAM}_{walls[5]:%Y%m%dT%H%M%S}")
    root = tmp_path / "images"

    report = make_downloader().download_images_direct(
        STREAM, [w.isoformat() for w in walls]
    )

    assert report.downloaded == 12 and len(files_under(root)) == 12
    assert (report.db_inserted, report.db_failed, report.db_refused) == (11, 1, 1)
    assert len(rows_under(root)) == 11
    assert day_status(report, day_over=True) == "partial"
    assert failures.transient_trouble(report) is None  # a retry would be refused too
