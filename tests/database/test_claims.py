"""Leases on (terminal, stream, day): ``modules.database.claims`` on SQLite and PostgreSQL.

Every test runs on a fresh SQLite file and on a fresh PostgreSQL schema (the
``database`` fixture). The concurrent tests use real threads, each with its own
connection: on PostgreSQL they exercise ``SELECT ... FOR UPDATE SKIP LOCKED``, on
SQLite the ``BEGIN IMMEDIATE`` that serialises the same steps.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from modules.database import claims, models
from modules.database.models import DayClaim, session_scope

TERMINAL = "apm"
STREAMS = ("out_gate", "in_gate")
DAYS = [date(2025, 9, 1) + timedelta(days=n) for n in range(3)]
LEASE = timedelta(seconds=60)


def all_rows(terminal: str = TERMINAL) -> list[DayClaim]:
    """Every claim row of ``terminal``, in claiming order."""
    with session_scope() as session:
        query = (
            select(DayClaim)
            .where(DayClaim.terminal == terminal)
            .order_by(DayClaim.day, DayClaim.camera_id)
        )
        return list(session.execute(query).scalars())


def row_of(claim: claims.Claim) -> DayClaim:
    with session_scope() as session:
        row = session.get(DayClaim, claim.id)
        assert row is not None
        return row


def expire(claim: claims.Claim) -> None:
    """Move a claim's lease into the past, as if its worker had died a while ago."""
    past = models.utcnow() - timedelta(seconds=1)
    with session_scope() as session:
        session.execute(
            update(DayClaim).where(DayClaim.id == claim.id).values(lease_until=past)
        )


def claim(
    worker: str, lease: timedelta = LEASE, max_attempts: int = 3
) -> claims.Claim | None:
    return claims.claim_next(
        worker, TERMINAL, STREAMS, DAYS, lease=lease, max_attempts=max_attempts
    )


def must_claim(worker: str, lease: timedelta = LEASE) -> claims.Claim:
    got = claim(worker, lease)
    assert got is not None, f"{worker} found no open day"
    return got


# --- add_days -------------------------------------------------------------------------


def test_add_days_creates_one_pending_row_per_stream_and_day(database: str) -> None:
    claims.add_days(TERMINAL, STREAMS, DAYS)

    rows = all_rows()
    assert [(r.day, r.camera_id) for r in rows] == [
        (day, stream) for day in DAYS for stream in sorted(STREAMS)
    ]
    assert {r.status for r in rows} == {claims.PENDING}
    assert {r.attempts for r in rows} == {0}
    assert {r.worker for r in rows} == {None}
    assert {r.lease_until for r in rows} == {None}


def test_add_days_is_idempotent_and_leaves_existing_rows_alone(database: str) -> None:
    claims.add_days(TERMINAL, STREAMS, DAYS)
    taken = must_claim("w1")
    claims.release(taken, done=True)
    running = must_claim("w2")

    claims.add_days(TERMINAL, STREAMS, DAYS)
    claims.add_days(TERMINAL, STREAMS, DAYS + [DAYS[-1] + timedelta(days=1)])
    claims.add_days(TERMINAL, STREAMS, [])

    rows = all_rows()
    assert len(rows) == len(STREAMS) * (len(DAYS) + 1)
    assert Counter((r.camera_id, r.day) for r in rows).most_common(1)[0][1] == 1
    assert row_of(taken).status == claims.DONE
    assert row_of(taken).worker == "w1"
    kept = row_of(running)
    assert (kept.status, kept.worker, kept.attempts) == (claims.RUNNING, "w2", 1)
    assert kept.lease_until == running.lease_until


def test_add_days_gives_a_failed_day_a_new_chance(database: str) -> None:
    claims.add_days(TERMINAL, ["in_gate"], DAYS[:2])
    for number in range(1, 4):
        got = claims.claim_next(
            f"w{number}", TERMINAL, ["in_gate"], DAYS[:1], lease=LEASE
        )
        assert got is not None
        claims.release(got, done=False)
    done = claims.claim_next("w4", TERMINAL, ["in_gate"], DAYS[1:2], lease=LEASE)
    assert done is not None
    claims.release(done, done=True)
    assert [r.status for r in all_rows()] == [claims.FAILED, claims.DONE]

    claims.add_days(TERMINAL, ["in_gate"], DAYS[:2])  # the next run of the range

    failed, finished = all_rows()
    assert (failed.status, failed.attempts, failed.worker) == (claims.PENDING, 0, None)
    assert (finished.status, finished.worker) == (claims.DONE, "w4")
    again = claims.claim_next("w5", TERMINAL, ["in_gate"], DAYS[:2], lease=LEASE)
    assert again is not None and (again.day, again.attempts) == (DAYS[0], 1)


# --- claim_next -----------------------------------------------------------------------


def test_claim_next_takes_days_in_order_and_skips_running_and_done(
    database: str,
) -> None:
    claims.add_days(TERMINAL, STREAMS, DAYS)
    claims.add_days("other", STREAMS, DAYS)  # another terminal: never ours

    first = must_claim("w1")
    assert (first.day, first.stream, first.worker) == (DAYS[0], "in_gate", "w1")
    assert first.attempts == 1
    assert first.lease_until > datetime.now(timezone.utc) + LEASE - timedelta(
        seconds=10
    )
    second = must_claim("w2")  # the first is running under a live lease: skipped
    assert (second.day, second.stream) == (DAYS[0], "out_gate")

    claims.release(first, done=True)
    third = must_claim("w1")  # the first is done: skipped
    assert (third.day, third.stream) == (DAYS[1], "in_gate")

    rest = [must_claim("w3") for _ in range(len(DAYS) * len(STREAMS) - 3)]
    assert [(c.day, c.stream) for c in rest] == [
        (DAYS[1], "out_gate"),
        (DAYS[2], "in_gate"),
        (DAYS[2], "out_gate"),
    ]
    assert claim("w4") is None
    row = row_of(second)
    assert (row.status, row.worker, row.attempts) == (claims.RUNNING, "w2", 1)
    assert {r.status for r in all_rows("other")} == {claims.PENDING}


def test_claim_next_only_looks_at_the_streams_and_days_asked_for(
    database: str,
) -> None:
    claims.add_days(TERMINAL, STREAMS, DAYS)

    got = claims.claim_next("w1", TERMINAL, ["out_gate"], [DAYS[2]], lease=LEASE)
    assert got is not None
    assert (got.day, got.stream) == (DAYS[2], "out_gate")
    assert (
        claims.claim_next("w1", TERMINAL, ["out_gate"], [DAYS[2]], lease=LEASE) is None
    )
    assert claims.claim_next("w1", TERMINAL, ["east_gate"], DAYS, lease=LEASE) is None


def test_an_expired_lease_is_taken_over_by_another_worker(database: str) -> None:
    claims.add_days(TERMINAL, ["in_gate"], DAYS[:1])
    dead = claims.claim_next(
        "dead", TERMINAL, ["in_gate"], DAYS[:1], lease=timedelta(milliseconds=200)
    )
    assert dead is not None
    assert (
        claims.claim_next("live", TERMINAL, ["in_gate"], DAYS[:1], lease=LEASE) is None
    )

    time.sleep(0.4)  # the dead worker's lease runs out
    taken = claims.claim_next("live", TERMINAL, ["in_gate"], DAYS[:1], lease=LEASE)

    assert taken is not None
    assert (taken.id, taken.worker, taken.attempts) == (dead.id, "live", 2)
    row = row_of(taken)
    assert (row.status, row.worker) == (claims.RUNNING, "live")
    assert row.lease_until is not None and row.lease_until > models.utcnow()


def test_a_lease_set_in_the_past_is_taken_over(database: str) -> None:
    claims.add_days(TERMINAL, STREAMS, DAYS)
    dead = must_claim("dead")
    expire(dead)

    taken = must_claim("live")
    assert (taken.id, taken.day, taken.stream) == (dead.id, dead.day, dead.stream)
    assert taken.attempts == 2


# --- renew ----------------------------------------------------------------------------


def test_renew_extends_the_owners_lease(database: str) -> None:
    claims.add_days(TERMINAL, STREAMS, DAYS)
    mine = must_claim("w1", lease=timedelta(seconds=5))

    assert claims.renew(mine, timedelta(hours=1))

    row = row_of(mine)
    assert row.lease_until is not None
    assert row.lease_until > models.utcnow() + timedelta(minutes=59)
    assert row.worker == "w1"


def test_renew_is_false_once_another_worker_took_the_day_over(database: str) -> None:
    claims.add_days(TERMINAL, STREAMS, DAYS)
    old = must_claim("old")
    expire(old)
    new = must_claim("new")
    assert new.id == old.id

    assert not claims.renew(old, timedelta(hours=1))
    assert claims.renew(new, timedelta(hours=1))
    row = row_of(new)
    assert row.worker == "new"
    assert row.lease_until is not None
    assert row.lease_until > models.utcnow() + timedelta(minutes=59)


def test_renew_is_false_once_the_day_is_released(database: str) -> None:
    claims.add_days(TERMINAL, STREAMS, DAYS)
    mine = must_claim("w1")
    claims.release(mine, done=True)

    assert not claims.renew(mine, LEASE)
    row = row_of(mine)
    assert (row.status, row.lease_until) == (claims.DONE, None)


# --- release --------------------------------------------------------------------------


def test_release_done_marks_the_day_done_for_good(database: str) -> None:
    claims.add_days(TERMINAL, ["in_gate"], DAYS[:1])
    mine = claims.claim_next("w1", TERMINAL, ["in_gate"], DAYS[:1], lease=LEASE)
    assert mine is not None

    claims.release(mine, done=True)

    row = row_of(mine)
    assert (row.status, row.worker, row.lease_until) == (claims.DONE, "w1", None)
    assert claims.claim_next("w2", TERMINAL, ["in_gate"], DAYS[:1], lease=LEASE) is None
    assert [r.status for r in claims.claims_for(TERMINAL, DAYS[:1])] == [claims.DONE]


def test_release_not_done_gives_the_day_back_until_max_attempts(
    database: str,
) -> None:
    claims.add_days(TERMINAL, ["in_gate"], DAYS[:1])
    statuses = []
    for number in range(1, 4):
        got = claims.claim_next(
            f"w{number}", TERMINAL, ["in_gate"], DAYS[:1], lease=LEASE, max_attempts=3
        )
        assert got is not None
        assert got.attempts == number
        claims.release(got, done=False, max_attempts=3)
        statuses.append(row_of(got).status)

    assert statuses == [claims.PENDING, claims.PENDING, claims.FAILED]
    assert (
        claims.claim_next(
            "w4", TERMINAL, ["in_gate"], DAYS[:1], lease=LEASE, max_attempts=3
        )
        is None
    )
    (row,) = all_rows()
    assert (row.status, row.attempts, row.lease_until) == (claims.FAILED, 3, None)


def test_a_day_whose_last_attempt_died_is_closed_as_failed(database: str) -> None:
    claims.add_days(TERMINAL, ["in_gate"], DAYS[:1])
    for number in range(1, 3):
        got = claims.claim_next(
            f"w{number}", TERMINAL, ["in_gate"], DAYS[:1], lease=LEASE, max_attempts=2
        )
        assert got is not None
        expire(got)  # each worker dies: its lease runs out, nobody releases the day

    again = claims.claim_next(
        "w3", TERMINAL, ["in_gate"], DAYS[:1], lease=LEASE, max_attempts=2
    )

    assert again is None
    (row,) = all_rows()
    assert (row.status, row.attempts, row.lease_until) == (claims.FAILED, 2, None)


def test_a_stale_owner_cannot_release_a_day_taken_over(database: str) -> None:
    claims.add_days(TERMINAL, STREAMS, DAYS)
    old = must_claim("old")
    expire(old)
    new = must_claim("new")

    claims.release(old, done=False)  # the old owner comes back: changes nothing
    row = row_of(new)
    assert (row.status, row.worker) == (claims.RUNNING, "new")

    claims.release(new, done=True)
    claims.release(old, done=False)
    assert row_of(new).status == claims.DONE


# --- concurrency ----------------------------------------------------------------------


def test_concurrent_workers_never_get_the_same_day(database: str) -> None:
    days = [date(2025, 6, 1) + timedelta(days=n) for n in range(20)]
    claims.add_days(TERMINAL, STREAMS, days)
    workers = 6
    barrier = threading.Barrier(workers)
    taken: dict[str, list[tuple[date, str]]] = {f"w{n}": [] for n in range(workers)}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            barrier.wait()
            while True:
                got = claims.claim_next(name, TERMINAL, STREAMS, days, lease=LEASE)
                if got is None:
                    return
                taken[name].append((got.day, got.stream))
                claims.release(got, done=True)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    everything = [pair for pairs in taken.values() for pair in pairs]
    expected = {(day, stream) for day in days for stream in STREAMS}
    assert len(everything) == len(expected)  # no day claimed twice
    assert set(everything) == expected
    assert sum(1 for pairs in taken.values() if pairs) >= 2  # they did share the range
    rows = claims.claims_for(TERMINAL, days)
    assert {r.status for r in rows} == {claims.DONE}
    assert {r.attempts for r in rows} == {1}
    owner = {
        (day, stream): name for name, pairs in taken.items() for day, stream in pairs
    }
    assert all(owner[(r.day, r.camera_id)] == r.worker for r in rows)


@pytest.mark.postgres
def test_a_day_locked_by_another_transaction_is_skipped_not_waited_for(
    postgres_url: str,
) -> None:
    """PostgreSQL: ``SKIP LOCKED`` passes over a row another worker is claiming right now."""
    models.configure(postgres_url, retry_attempts=3, retry_delay=0.01)
    models.init_db()
    claims.add_days(TERMINAL, STREAMS, DAYS)
    blocker = models.session_factory()()
    try:
        locked = blocker.execute(
            select(DayClaim)
            .where(DayClaim.day == DAYS[0], DayClaim.camera_id == "in_gate")
            .with_for_update()
        ).scalar_one()
        result: list[claims.Claim | None] = []
        thread = threading.Thread(target=lambda: result.append(claim("w1")))
        thread.start()
        thread.join(timeout=20)
        assert not thread.is_alive(), "claim_next waited for the locked row"
        (got,) = result
        assert got is not None
        assert got.id != locked.id
        assert (got.day, got.stream) == (DAYS[0], "out_gate")
    finally:
        blocker.rollback()
        blocker.close()
    after = must_claim("w2")
    assert (after.day, after.stream) == (DAYS[0], "in_gate")


def test_sqlite_claim_waits_for_a_writer_instead_of_failing(sqlite_url: str) -> None:
    """SQLite: a claim during another write transaction waits (busy timeout), never 'locked'."""
    models.configure(sqlite_url, retry_attempts=1, retry_delay=0.01)
    models.init_db()
    claims.add_days(TERMINAL, STREAMS, DAYS)
    blocker = models.session_factory()()
    hold = 0.5
    try:
        blocker.execute(
            update(DayClaim)
            .where(DayClaim.day == DAYS[0], DayClaim.camera_id == "in_gate")
            .values(worker="blocker")
        )
        result: list[claims.Claim | None] = []
        started = time.monotonic()
        thread = threading.Thread(target=lambda: result.append(claim("w1")))
        thread.start()
        time.sleep(hold)
        assert thread.is_alive()  # waiting for the write lock
    finally:
        blocker.rollback()
        blocker.close()
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert time.monotonic() - started >= hold
    (got,) = result
    assert got is not None
    assert (got.day, got.stream, got.worker) == (DAYS[0], "in_gate", "w1")


@pytest.mark.parametrize("lease", [timedelta(0), timedelta(seconds=-1)])
def test_download_claimed_refuses_a_lease_that_is_not_positive(
    database: str, lease: timedelta
) -> None:
    from modules.downloader.claimed import download_claimed
    from modules.downloader.selenium_client import DrayDogDownloader

    with DrayDogDownloader(download_dir="unused", persist=False) as downloader:
        with pytest.raises(ValueError, match="lease"):
            download_claimed(downloader, DAYS[0], DAYS[0], lease=lease)
    assert all_rows() == []


@pytest.mark.postgres
def test_a_worker_whose_clock_runs_ahead_cannot_take_over_a_live_day(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leases are kept on the database server's clock, not each machine's own."""
    models.configure(postgres_url)
    claims.add_days(TERMINAL, ["in_gate"], DAYS[:1])
    held = claims.claim_next("w1", TERMINAL, ["in_gate"], DAYS[:1], lease=LEASE)
    assert held is not None
    ahead = models.utcnow() + timedelta(hours=1)
    monkeypatch.setattr(claims, "utcnow", lambda: ahead)
    monkeypatch.setattr(models, "utcnow", lambda: ahead)

    taken = claims.claim_next("w2", TERMINAL, ["in_gate"], DAYS[:1], lease=LEASE)

    assert taken is None
    assert claims.renew(held, LEASE)
    (row,) = all_rows()
    assert (row.worker, row.status) == ("w1", claims.RUNNING)
    assert row.lease_until is not None
    assert row.lease_until < ahead
