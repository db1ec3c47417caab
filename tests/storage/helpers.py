"""Helpers of the end-to-end tests of an archive in a bucket (moto's S3 on 127.0.0.1)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from modules.downloader.archive import picture_key
from modules.replica.jpeg import DEFAULT_SIZE, picture_bytes
from modules.storage.s3 import new_s3_client

TERMINAL = "apm"
STREAM = "in_gate"
PREFIX = "archive/v1"


def objects(bucket: str) -> dict[str, bytes]:
    """Every object of ``bucket`` with its body, read with a client of its own."""
    client = new_s3_client()
    found: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=entry["Key"])["Body"]
            found[entry["Key"]] = body.read()
    return found


def expected_objects(
    times: Sequence[datetime], prefix: str = PREFIX, stream: str = STREAM
) -> dict[str, bytes]:
    """The objects a download of ``times`` stores: ``<prefix>/<key>`` -> the replica's bytes."""
    return {
        f"{prefix}/{picture_key(TERMINAL, stream, wall)}": picture_bytes(
            TERMINAL, stream, wall, thumbnail=False, size=DEFAULT_SIZE
        )
        for wall in times
    }


def files_below(folder: Path) -> list[str]:
    """Every file below ``folder`` (``.part`` files included), or none if it is absent."""
    return [
        os.path.join(parent, name)
        for parent, _, names in os.walk(folder)
        for name in names
    ]
