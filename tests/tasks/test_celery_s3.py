"""Celery workers writing one archive in an S3 bucket (moto's server on 127.0.0.1,
configured by the standard ``AWS_*`` variables): every picture once as an object
with the replica's bytes, one row each, nothing left in the staging folders; a
worker whose bucket does not exist takes no task and exits 3."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from modules.database import models
from modules.downloader.archive import picture_key
from modules.replica.jpeg import picture_bytes
from tests.reliability.workers_helpers import image_rows, reaped
from tests.storage.helpers import files_below, objects
from tests.tasks.helpers import (
    PICTURE_SIZE,
    TERMINAL,
    day_times,
    enqueue_args,
    running_replica,
    start,
    stop_all,
    summary_rows,
    tasks_done_by,
    tasks_received_by,
    wait_ready,
    worker_args,
)

D1, D2 = date(2025, 9, 5), date(2025, 9, 6)
STREAMS = ["in_gate", "out_gate"]
PREFIX = "draydog/v1"


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.postgres
def test_two_workers_archive_a_range_into_one_bucket(
    queue: str, s3_bucket: str, postgres_url: str, tmp_path: Path
) -> None:
    days, logs = [D1, D2], tmp_path / "logs"
    location = f"s3://{s3_bucket}/{PREFIX}"
    missing = f"s3://no-such-bucket-{s3_bucket}/x"
    with running_replica() as server:
        workers = [
            start(
                name,
                worker_args(queue, postgres_url, Path("unused"), server, name=name)
                + ["--dir", location],
                logs,
                env={"DRAYDOG_STAGING_DIR": str(tmp_path / f"staging-{name}")},
            )
            for name in ("s1", "s2")
        ]
        no_bucket = start(
            "no-bucket",
            worker_args(queue, postgres_url, Path("unused"), server, name="no-bucket")
            + ["--dir", missing],
            logs,
        )
        with reaped([*workers, no_bucket]):
            wait_ready(workers)
            client = start("enqueue", enqueue_args(queue, days, STREAMS), logs)
            with reaped([client]):
                code = client.wait(150)
            assert no_bucket.wait(60) == 3
            assert stop_all(workers) == [0, 0]
    assert code == 0, client.output() + "".join(w.output() for w in workers)
    assert "no archive at" in no_bucket.err() and tasks_received_by(no_bucket) == []
    assert sum(len(tasks_done_by(worker)) for worker in workers) == 4

    walls = {
        stream: [w for d in days for w in day_times(stream, d)] for stream in STREAMS
    }
    expected = {
        f"{PREFIX}/{picture_key(TERMINAL, stream, wall)}": picture_bytes(
            TERMINAL, stream, wall, size=PICTURE_SIZE
        )
        for stream in STREAMS
        for wall in walls[stream]
    }
    assert objects(s3_bucket) == expected
    models.configure(postgres_url)
    rows = image_rows()
    assert sorted(row.filepath for row in rows) == sorted(
        key.removeprefix(PREFIX + "/") for key in expected
    )
    assert sum(row.rows for row in summary_rows(client.stdout.read_text())) == len(rows)
    for name in ("s1", "s2"):
        assert [
            f for f in files_below(tmp_path / f"staging-{name}") if f.endswith(".part")
        ] == []
