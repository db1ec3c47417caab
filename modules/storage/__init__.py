"""Where pictures live: one interface (:class:`Storage`), a local folder and S3.

Every part that touches pictures (download, rerun, reindex, gaps, prune, the
sizes of ``stats``) goes through a Storage and names pictures by key, the path relative to the archive root, so the
root (``--dir``) is configuration and never data.
"""

from modules.storage.base import (
    MAX_PUT_BYTES,
    ArchiveNotFound,
    InvalidKey,
    KeyNotFound,
    Removal,
    Storage,
    StorageError,
    StoredObject,
    validate_key,
    validate_prefix,
)
from modules.storage.local import LocalStorage
from modules.storage.locations import open_storage

__all__ = [
    "MAX_PUT_BYTES",
    "ArchiveNotFound",
    "InvalidKey",
    "KeyNotFound",
    "LocalStorage",
    "Removal",
    "Storage",
    "StorageError",
    "StoredObject",
    "open_storage",
    "validate_key",
    "validate_prefix",
]
