"""From an archive location as the user writes it (``--dir``) to its Storage."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from modules.storage.base import Storage
from modules.storage.local import LocalStorage

S3_SCHEME = "s3://"


def open_storage(location: str | Path) -> Storage:
    """``s3://bucket/prefix`` as S3Storage, anything else as a local folder.

    boto3 is imported only for a bucket, so local archives never pay its import.
    """
    text = str(location)
    if not text.startswith(S3_SCHEME):
        return LocalStorage(Path(text))
    parts = urlsplit(text)
    if not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"not an S3 location (s3://bucket/prefix): {text!r}")
    from modules.storage.s3 import S3Storage

    return S3Storage(parts.netloc, parts.path)
