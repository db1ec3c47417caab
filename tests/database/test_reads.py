"""Reads that stay bounded: ``list_images`` pages, unprocessed pictures handed out
once (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) from their partial index; and the
batch insert's PostgreSQL path with columns that are all empty."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, text

from modules.database import models, queries
from modules.database.models import Image, session_scope

UTC = timezone.utc
T0 = datetime(2025, 9, 6, 12, 0, tzinfo=UTC)


def store(count: int, *, same_time_every: int = 1) -> list[int]:
    """``count`` pictures; every ``same_time_every`` of them share one capture time
    (each of another stream: one picture per stream and instant)."""
    records: list[dict[str, Any]] = [
        {
            "filepath": f"apm/in_gate/{i:05d}.jpg",
            "camera_id": "in_gate" + "_b" * (i % same_time_every),
            "timestamp": T0 + timedelta(seconds=i // same_time_every),
        }
        for i in range(count)
    ]
    result = queries.insert_images(records, chunk_size=1000)
    return [result.ids[record["filepath"]] for record in records]


# --- list_images pages --------------------------------------------------------------


def test_list_images_is_bounded_by_default(database: str) -> None:
    store(queries.DEFAULT_PAGE_SIZE + 5)
    assert len(queries.list_images()) == queries.DEFAULT_PAGE_SIZE


def test_pages_after_a_keyset_cover_every_picture_once(database: str) -> None:
    ids = store(23, same_time_every=4)  # ties on time: the id breaks them
    seen: list[int] = []
    after: tuple[datetime, int] | None = None
    while page := queries.list_images(limit=5, after=after):
        assert len(page) <= 5
        seen.extend(image.id for image in page)
        after = (page[-1].timestamp, page[-1].id)
    assert seen == ids


def test_pages_keep_the_filters(database: str) -> None:
    store(10)
    queries.insert_image("apm/out.jpg", "out_gate", T0)
    first = queries.list_images(
        camera_id="in_gate", start=T0 + timedelta(seconds=2), limit=3
    )
    assert [i.filepath for i in first] == [
        f"apm/in_gate/{i:05d}.jpg" for i in (2, 3, 4)
    ]
    rest = queries.list_images(
        camera_id="in_gate",
        start=T0 + timedelta(seconds=2),
        end=T0 + timedelta(seconds=7),
        after=(first[-1].timestamp, first[-1].id),
    )
    assert [i.filepath for i in rest] == [f"apm/in_gate/{i:05d}.jpg" for i in (5, 6)]


def test_iter_images_walks_every_page(database: str) -> None:
    ids = store(25, same_time_every=3)
    assert [image.id for image in queries.iter_images(page_size=7)] == ids
    assert [image.id for image in queries.iter_images(page_size=25)] == ids
    assert list(queries.iter_images(camera_id="none")) == []


@pytest.mark.parametrize("bad", [0, -1, queries.MAX_PAGE_SIZE + 1, True, 2.5, None])
def test_page_sizes_out_of_range_are_refused(database: str, bad: Any) -> None:
    with pytest.raises(ValueError, match="between 1 and"):
        queries.list_images(limit=bad)
    with pytest.raises(ValueError, match="page_size"):
        list(queries.iter_images(page_size=bad))
    with pytest.raises(ValueError, match="limit"):
        queries.get_unprocessed_images(bad)


# --- unprocessed pictures ------------------------------------------------------------


def test_the_unprocessed_query_reads_the_partial_index(database: str) -> None:
    store(50)
    query = queries._unprocessed(10)
    with session_scope() as session:
        dialect = session.get_bind().dialect
        sql = str(
            query.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        )
        if dialect.name == "sqlite":
            plan = " ".join(
                str(row[-1])
                for row in session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
            )
        else:
            session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(
                str(row[0]) for row in session.execute(text(f"EXPLAIN {sql}"))
            )
    assert "ix_images_unprocessed" in plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan  # the index gives the order


def test_claimed_pictures_are_locked_until_the_claimer_commits(database: str) -> None:
    ids = store(10)
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def consumer(name: str) -> None:
        try:
            start.wait()
            with session_scope() as session:
                images = queries.claim_unprocessed_images(3, session=session)
                got[name] = [image.id for image in images]
                time.sleep(0.3)  # hold them while the other consumer asks
                for image in images:
                    assert queries.mark_image_processed(image.id, session=session)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=consumer, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(got["a"]) == len(got["b"]) == 3
    assert not set(got["a"]) & set(got["b"])
    assert sorted(got["a"] + got["b"]) == ids[:6]
    assert [i.id for i in queries.get_unprocessed_images(10)] == ids[6:]


@pytest.mark.postgres
def test_postgresql_skips_rows_another_consumer_holds_without_waiting(
    postgres_url: str,
) -> None:
    models.configure(postgres_url)
    ids = store(6)
    first = models.session_factory()()
    second = models.session_factory()()
    try:
        held = queries.get_unprocessed_images(
            4, session=first
        )  # a claim, with a session
        started = time.monotonic()
        other = queries.claim_unprocessed_images(4, session=second)
        assert time.monotonic() - started < 2
        assert [i.id for i in held] == ids[:4]
        assert [i.id for i in other] == ids[4:]
        # Only looking (no session) takes no lock and skips nothing.
        assert [i.id for i in queries.get_unprocessed_images(2)] == ids[:2]
        # The first consumer gives its rows back unprocessed: the next claim gets them.
        first.rollback()
        second.rollback()
        with session_scope() as session:
            again = queries.claim_unprocessed_images(10, session=session)
            assert [i.id for i in again] == ids
    finally:
        first.close()
        second.close()


# --- the batch insert's PostgreSQL path -------------------------------------------------


def test_a_batch_with_every_optional_column_empty_and_naive_times(
    database: str,
) -> None:
    naive = datetime(2025, 1, 2, 3, 4, 5, 6)
    records = [
        {
            "filepath": f"e/{i}.jpg",
            "camera_id": "in_gate",
            "timestamp": naive + timedelta(seconds=i),
            "downloaded_at": naive,
        }
        for i in range(3)
    ]
    result = queries.insert_images(records + records[:1])
    assert (result.inserted, result.duplicates, result.failed) == (3, 1, [])
    again = queries.insert_images(records)
    assert (again.inserted, again.duplicates) == (0, 3)
    assert again.ids == result.ids
    with models.read_scope() as session:
        rows = list(session.scalars(select(Image).order_by(Image.id)))
    assert [row.timestamp for row in rows] == [
        (naive + timedelta(seconds=i)).replace(tzinfo=UTC) for i in range(3)
    ]
    assert {row.downloaded_at for row in rows} == {naive.replace(tzinfo=UTC)}
    assert {
        (row.file_size, row.sha256, row.source_url, row.run_id) for row in rows
    } == {(None, None, None, None)}
    assert {(row.terminal, row.is_thumbnail, row.processed) for row in rows} == {
        ("apm", False, False)
    }


def test_a_bad_downloaded_at_is_refused(database: str) -> None:
    with pytest.raises(ValueError, match="downloaded_at must be a datetime"):
        queries.insert_images(
            [{"filepath": "x", "camera_id": "c", "downloaded_at": "yesterday"}]
        )
