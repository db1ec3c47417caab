"""Leases on (terminal, stream, day): how workers on many machines split one date range.

A worker claims the next open day with ``SELECT ... FOR UPDATE SKIP LOCKED`` (on
SQLite, ``BEGIN IMMEDIATE`` serialises the same steps), holds it under a lease it
renews while it works, and marks it done. A crashed worker's lease runs out and the
day goes to the next worker that asks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import cast

from sqlalchemy import Insert, Table, and_, func, or_, select, update
from sqlalchemy.orm import Session

from modules.database.models import (
    DayClaim,
    read_scope,
    session_scope,
    upsert_insert,
    utcnow,
    with_db_retries,
)

logger = logging.getLogger(__name__)

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


@dataclass(frozen=True)
class Claim:
    """A day this worker holds until ``lease_until``."""

    id: int
    terminal: str
    stream: str
    day: date
    worker: str
    lease_until: datetime
    attempts: int


def add_days(terminal: str, streams: Sequence[str], days: Iterable[date]) -> None:
    """Make sure every (terminal, stream, day) has a claim row; failed days get a new chance.

    Done and running days are left as they are. A day that failed in an earlier run
    is pending again with fresh attempts, as a plain rerun would try it again.
    """
    rows = [
        {
            "terminal": terminal,
            "camera_id": stream,
            "day": day,
            "status": PENDING,
            "attempts": 0,
        }
        for day in days
        for stream in streams
    ]
    if not rows:
        return

    def write() -> None:
        with session_scope() as session:
            session.execute(_insert_reopening_failed(session), rows)

    with_db_retries(write, "adding days to claim")


def _insert_reopening_failed(session: Session) -> Insert:
    table = cast(Table, DayClaim.__table__)
    return upsert_insert(session, table).on_conflict_do_update(
        index_elements=["terminal", "camera_id", "day"],
        set_=_REOPENED,
        where=DayClaim.status == FAILED,
    )


_REOPENED = {"status": PENDING, "attempts": 0, "worker": None, "lease_until": None}


def claim_next(
    worker: str,
    terminal: str,
    streams: Sequence[str],
    days: Sequence[date],
    *,
    lease: timedelta,
    max_attempts: int = 3,
) -> Claim | None:
    """Take the first open day of the range: pending, or running under a lease that ran out."""

    def claim() -> Claim | None:
        with session_scope() as session:
            now = _shared_clock(session)
            return _claim_in(
                session, now, worker, terminal, streams, days, lease, max_attempts
            )

    return with_db_retries(claim, "claiming a day")


def _claim_in(
    session: Session,
    now: datetime,
    worker: str,
    terminal: str,
    streams: Sequence[str],
    days: Sequence[date],
    lease: timedelta,
    max_attempts: int,
) -> Claim | None:
    query = (
        select(DayClaim)
        .where(
            DayClaim.terminal == terminal,
            DayClaim.camera_id.in_(list(streams)),
            DayClaim.day.in_(list(days)),
            DayClaim.attempts < max_attempts,
            or_(
                DayClaim.status == PENDING,
                and_(DayClaim.status == RUNNING, DayClaim.lease_until < now),
            ),
        )
        .order_by(DayClaim.day, DayClaim.camera_id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    give_up = (
        update(DayClaim)
        .where(
            DayClaim.terminal == terminal,
            DayClaim.status == RUNNING,
            DayClaim.lease_until < now,
            DayClaim.attempts >= max_attempts,
        )
        .values(status=FAILED, lease_until=None, updated_at=now)
    )
    # A worker that died on a day's last attempt leaves it running: close it as failed.
    session.connection().execute(give_up)
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        return None
    if row.status == RUNNING:
        logger.warning(
            "taking over %s %s %s from %s, whose lease ran out",
            row.terminal,
            row.camera_id,
            row.day,
            row.worker,
        )
    row.status = RUNNING
    row.worker = worker
    row.lease_until = now + lease
    row.attempts += 1
    row.updated_at = now
    session.flush()
    return Claim(
        row.id,
        row.terminal,
        row.camera_id,
        row.day,
        worker,
        row.lease_until,
        row.attempts,
    )


def _shared_clock(session: Session) -> datetime:
    """The time every worker agrees on: the database server's on PostgreSQL.

    Workers on several machines compare leases against one clock, so a machine whose
    clock runs ahead cannot take over a day whose lease is still running. SQLite
    lives on one machine, whose clock is the shared one.
    """
    if session.get_bind().dialect.name == "postgresql":
        moment = session.execute(select(func.clock_timestamp())).scalar_one()
        assert isinstance(moment, datetime)
        return moment.astimezone(timezone.utc)
    return utcnow()


def renew(claim: Claim, lease: timedelta) -> bool:
    """Extend the lease; False when another worker has taken the day over meanwhile."""

    def extend() -> bool:
        with session_scope() as session:
            now = _shared_clock(session)
            stmt = (
                update(DayClaim)
                .where(
                    DayClaim.id == claim.id,
                    DayClaim.worker == claim.worker,
                    DayClaim.status == RUNNING,
                )
                .values(lease_until=now + lease, updated_at=now)
            )
            return bool(session.connection().execute(stmt).rowcount)

    return with_db_retries(extend, "renewing a lease")


def release(claim: Claim, *, done: bool, max_attempts: int = 3) -> None:
    """Mark the day done, or give it back (``failed`` once it has had ``max_attempts``)."""
    status = DONE if done else (FAILED if claim.attempts >= max_attempts else PENDING)
    stmt = (
        update(DayClaim)
        .where(DayClaim.id == claim.id, DayClaim.worker == claim.worker)
        .values(status=status, lease_until=None, updated_at=utcnow())
    )

    def write() -> None:
        with session_scope() as session:
            session.connection().execute(stmt)

    with_db_retries(write, "releasing a day")


def claims_for(terminal: str, days: Sequence[date]) -> list[DayClaim]:
    """The claim rows of a range, for reports and tests."""
    query = (
        select(DayClaim)
        .where(DayClaim.terminal == terminal, DayClaim.day.in_(list(days)))
        .order_by(DayClaim.day, DayClaim.camera_id)
    )
    with read_scope() as session:
        return list(session.execute(query).scalars())
