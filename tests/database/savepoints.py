"""Watching the savepoints a write opens and rolls back, on the archive's engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from modules.database import models


@contextmanager
def savepoint_events() -> Iterator[list[str]]:
    """``"savepoint"`` and ``"rollback"``, in order, for what happens while inside."""
    seen: list[str] = []
    engine = models.get_engine()

    def on_savepoint(conn: Any, name: str) -> None:
        seen.append("savepoint")

    def on_rollback(conn: Any, name: str, context: Any) -> None:
        seen.append("rollback")

    event.listen(engine, "savepoint", on_savepoint)
    event.listen(engine, "rollback_savepoint", on_rollback)
    try:
        yield seen
    finally:
        event.remove(engine, "savepoint", on_savepoint)
        event.remove(engine, "rollback_savepoint", on_rollback)
