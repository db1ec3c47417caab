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
from dataclasses import dataclass
from pathlib import Path

from typing import cast

from sqlalchemy import Connection, Table, bindparam, func, select, update

from modules.database.models import Image

logger = logging.getLogger(__name__)

_BATCH = 5000
_IMAGES = cast(Table, Image.__table__)


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
