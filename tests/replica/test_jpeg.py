"""The pictures: valid baseline JPEGs Pillow opens, distinct, of realistic sizes."""

from __future__ import annotations

import io
import time
from datetime import datetime, timedelta

import pytest
from PIL import Image

from modules.replica import jpeg
from modules.replica.jpeg import picture_bytes

WHEN = datetime(2025, 9, 6, 23, 7, 34)


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_full_size_picture_is_a_valid_jpeg_of_the_asked_size() -> None:
    data = picture_bytes("apm", "in_gate", WHEN)
    assert data[:3] == b"\xff\xd8\xff" and data[-2:] == b"\xff\xd9"
    assert len(data) == 60_000
    image = _decode(data)
    assert (
        image.format == "JPEG" and image.size == jpeg.FULL_SIZE and image.mode == "RGB"
    )
    assert b"DrayDog replica apm in_gate 2025-09-06T23:07:34 full-size" in data


def test_thumbnail_is_small_and_valid() -> None:
    data = picture_bytes("apm", "in_gate", WHEN, thumbnail=True)
    assert 5_000 <= len(data) <= 8_000
    assert _decode(data).size == jpeg.THUMBNAIL_SIZE
    sizes = {
        len(
            picture_bytes("apm", "in_gate", WHEN + timedelta(minutes=m), thumbnail=True)
        )
        for m in range(20)
    }
    assert len(sizes) > 10


@pytest.mark.parametrize("size", [40_000, 65_600, 150_000, 400_000])
def test_sizes_are_exact_and_still_decode(size: int) -> None:
    data = picture_bytes("apm", "out_gate", WHEN, size=size)
    assert len(data) == size
    _decode(data)


def test_a_size_below_the_bare_encoding_gives_the_bare_encoding() -> None:
    data = picture_bytes("apm", "in_gate", WHEN, size=10)
    assert 1_000 < len(data) < 5_000
    _decode(data)


def test_pictures_differ_in_bytes_and_in_pixels() -> None:
    cameras = [
        ("apm", "in_gate", WHEN),
        ("apm", "out_gate", WHEN),
        ("pier_t", "in_gate", WHEN),
    ]
    cameras += [("apm", "in_gate", WHEN + timedelta(seconds=1))]
    pictures = [picture_bytes(t, s, w) for t, s, w in cameras]
    assert len(set(pictures)) == len(pictures)
    pixels = {_decode(p).tobytes() for p in pictures}
    assert len(pixels) == len(pictures)


def test_pictures_are_deterministic_across_the_cache() -> None:
    first = picture_bytes("apm", "in_gate", WHEN)
    jpeg._cached_picture.cache_clear()
    assert picture_bytes("apm", "in_gate", WHEN) == first


def test_encoding_is_fast_enough_for_thousands_of_pictures() -> None:
    start = time.perf_counter()
    for minute in range(200):
        picture_bytes("bench", "in_gate", WHEN + timedelta(minutes=minute))
    assert (time.perf_counter() - start) / 200 < 0.02
