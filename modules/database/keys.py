"""A picture's storage key: its path relative to the archive root, in POSIX form.

The database stores keys (``apm/in_gate/2025-09-06/in_gate_20250906T230734.jpg``),
not absolute paths, so that an archive moved, restored or mounted at another path
keeps its rows; the root is configuration (``--dir``, ``DRAYDOG_ARCHIVE``), never
data. A file outside the root (``download_image`` into a caller's folder) keeps
its absolute path; a relative path handed in is taken to be a key already.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)

from modules.database.models import Image

logger = logging.getLogger(__name__)

_BATCH = 5000
_IMAGES = cast(Table, Image.__table__)
_DAY_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}")
_ROOTS_SAMPLE = 1000


@dataclass(frozen=True)
class ArchiveRoot:
    """An archive root in the two forms a path under it may take: as given and resolved."""

    prefixes: tuple[str, ...]
    """``<root>/``, absolute, then the same with symlinks resolved (when it differs)."""

    @classmethod
    def of(cls, root: str | Path) -> ArchiveRoot:
        given = os.path.abspath(root)
        real = os.path.realpath(given)
        forms = (given,) if real == given else (given, real)
        return cls(tuple(form.rstrip(os.sep) + os.sep for form in forms))

    def key_for(self, path: str | Path) -> str | None:
        """The key of ``path`` under this root, or None when it is outside."""
        absolute = os.path.abspath(path)
        key = self._relative(absolute)
        if key is None:  # a path through another link to the same folder
            key = self._relative(os.path.realpath(absolute))
        return key

    def key_of_stored(self, stored: str) -> str | None:
        """The key a stored filepath names under this root: itself if it is a key,
        None for an absolute path outside (compared as text: it may not exist here)."""
        if not os.path.isabs(stored):
            return stored
        return self._relative(os.path.normpath(stored))

    def _relative(self, absolute: str) -> str | None:
        for prefix in self.prefixes:
            if absolute.startswith(prefix) and len(absolute) > len(prefix):
                return absolute[len(prefix) :].replace(os.sep, "/")
        return None


def key_for(path: str | Path, root: str | Path) -> str | None:
    """The key of ``path`` under ``root`` (symlinks on either side allowed), or None."""
    return ArchiveRoot.of(root).key_for(path)


def is_key(stored: str) -> bool:
    """Whether a stored ``filepath`` is a key in an archive, not a file outside any
    (an absolute path, a Windows path or a URL such as ``s3://...``)."""
    return not (os.path.isabs(stored) or stored.startswith("\\") or "://" in stored)


def stored_form(filepath: str, root: ArchiveRoot | None) -> str:
    """What the database keeps for ``filepath``: its key under ``root``, else the path as given."""
    if root is None or not os.path.isabs(filepath):
        return filepath
    return root.key_for(filepath) or filepath


def path_for(stored: str, root: str | Path | None) -> Path:
    """The full path of a stored ``filepath``: a key under ``root``, or an absolute path as is."""
    if os.path.isabs(stored):
        return Path(stored)
    if root is None:
        raise ValueError(f"{stored!r} is a key: its archive root is needed (--dir)")
    return Path(root) / stored


def convert_to_keys(connection: Connection, root: str | Path) -> tuple[int, int]:
    """Turn the stored absolute paths under ``root`` into keys, in the caller's transaction.

    Returns (converted, kept): a path whose key another row has already is kept
    as it is. Paths outside the root are not touched.
    """
    converted = kept = 0
    for prefix in ArchiveRoot.of(root).prefixes:
        last = 0
        while True:
            rows = connection.execute(
                select(Image.id, Image.filepath)
                .where(
                    func.substr(Image.filepath, 1, len(prefix)) == prefix,
                    Image.id > last,
                )
                .order_by(Image.id)
                .limit(_BATCH)
            ).all()
            if not rows:
                break
            last = rows[-1][0]
            keys = {row_id: path[len(prefix) :] for row_id, path in rows}
            taken = set(
                connection.execute(
                    select(Image.filepath).where(Image.filepath.in_(keys.values()))
                ).scalars()
            )
            changes = [
                {"row_id": row_id, "key": key}
                for row_id, key in keys.items()
                if key and key not in taken
            ]
            kept += len(keys) - len(changes)
            if changes:
                connection.execute(
                    update(_IMAGES)
                    .where(_IMAGES.c.id == bindparam("row_id"))
                    .values(filepath=bindparam("key")),
                    changes,
                )
            converted += len(changes)
    logger.info("%d stored paths under %s became keys, %d kept", converted, root, kept)
    return converted, kept


@dataclass(frozen=True)
class AbsolutePaths:
    """The rows whose ``filepath`` is still an absolute path rather than a key."""

    count: int
    roots: tuple[str, ...]
    """The archive roots that a sample of those paths sit under by the archive's
    layout (``<root>/<terminal>/<stream>/<YYYY-MM-DD>/<file>``), most rows first:
    what ``draydog db upgrade --dir ROOT`` could take. Paths of another shape (a
    picture downloaded into a folder of one's own) name no root."""


def absolute_paths(connection: Connection) -> AbsolutePaths:
    """Count the stored absolute paths (``/...``, or a Windows share's ``\\...``; a
    Windows drive's ``C:\\...`` is not told from a key here) and guess the archive
    roots they were written under, from a sample of them.

    A range of the ``filepath`` index on SQLite, and on PostgreSQL from revision
    0005 on (before it, a scan: the comparison is in byte order at every revision).
    """
    absolute = _is_absolute(connection)
    count = connection.execute(select(func.count()).where(absolute)).scalar_one()
    if not count:
        return AbsolutePaths(0, ())
    sample = connection.execute(
        select(_IMAGES.c.filepath).where(absolute).limit(_ROOTS_SAMPLE)
    ).scalars()
    roots = Counter(root for root in map(_layout_root, sample) if root is not None)
    return AbsolutePaths(int(count), tuple(root for root, _ in roots.most_common()))


def _is_absolute(connection: Connection) -> ColumnElement[bool]:
    column: ColumnElement[str] = _IMAGES.c.filepath
    if connection.dialect.name == "postgresql":
        column = column.collate("C")  # byte order at every revision, not the locale's
    # "0" follows "/" and "]" follows "\\": each range is every text that starts so.
    return or_(and_(column >= "/", column < "0"), and_(column >= "\\", column < "]"))


def _layout_root(stored: str) -> str | None:
    path: PurePath = (
        PurePosixPath(stored) if stored.startswith("/") else PureWindowsPath(stored)
    )
    if len(path.parts) < 5 or not _DAY_FOLDER.fullmatch(path.parts[-2]):
        return None
    return str(path.parents[3])
