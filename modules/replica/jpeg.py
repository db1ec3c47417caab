"""The replica's pictures: small, valid, deterministic baseline JPEGs, no Pillow needed.

Each picture is a gate-camera-like scene (sky, yard, one container whose place and
colour come from a hash of the picture's identity, darker at night) encoded as a
baseline YCbCr JPEG whose 8x8 blocks carry only their DC value: cheap to encode in
pure Python yet a real image any decoder opens. COM segments then carry the
identity and incompressible pseudo-random padding so a picture weighs what the real
ones do (40-150 KB; thumbnails 5-8 KB), which is what transfer benchmarks measure.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from datetime import datetime
from functools import lru_cache

DEFAULT_SIZE = 60_000
FULL_SIZE = (320, 240)
THUMBNAIL_SIZE = (160, 120)
THUMBNAIL_BYTES = (5_000, 8_000)

_CACHE_LIMIT = 1 << 20
"""Pictures larger than this (the oversize fault) are built per call, not cached."""
_CACHE_ENTRIES = 1024
_MAX_SEGMENT = 0xFFFF + 2
"""The largest marker segment: 2 marker bytes, then a length field that counts itself."""

# Annex K.3 table for luminance DC differences: code counts per length 1..16, symbols.
_DC_COUNTS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_SYMBOLS = tuple(range(12))
# AC: every block ends right after its DC value, so the only symbol needed is EOB (0x00).
_AC_COUNTS = (1,) + (0,) * 15
_AC_SYMBOLS = (0x00,)
_EOB = "0"

_PALETTE = (
    (180, 40, 35),  # red
    (30, 80, 160),  # blue
    (40, 120, 60),  # green
    (220, 120, 30),  # orange
    (150, 150, 150),  # grey
    (240, 240, 235),  # white
    (110, 60, 40),  # brown
)


def picture_bytes(
    terminal: str,
    stream: str,
    wall_time: datetime,
    *,
    thumbnail: bool = False,
    size: int = DEFAULT_SIZE,
) -> bytes:
    """The picture taken by ``terminal``/``stream`` at ``wall_time``, as JPEG bytes.

    Deterministic and different per picture. A full-size picture is exactly ``size``
    bytes when ``size`` is above the bare encoding (about 1 KB); a thumbnail ignores
    ``size`` and weighs 5-8 KB. Results up to 1 MB are cached, since the CDN serves
    the same picture to the page, the downloader and its retries.
    """
    if thumbnail or size <= _CACHE_LIMIT:
        return _cached_picture(terminal, stream, wall_time, thumbnail, size)
    return _build_picture(terminal, stream, wall_time, thumbnail, size)


@lru_cache(maxsize=_CACHE_ENTRIES)
def _cached_picture(
    terminal: str, stream: str, wall_time: datetime, thumbnail: bool, size: int
) -> bytes:
    return _build_picture(terminal, stream, wall_time, thumbnail, size)


def _build_picture(
    terminal: str, stream: str, wall_time: datetime, thumbnail: bool, size: int
) -> bytes:
    kind = "thumbnail" if thumbnail else "full-size"
    identity = f"DrayDog replica {terminal} {stream} {wall_time.isoformat()} {kind}"
    digest = hashlib.sha256(
        f"{terminal}|{stream}|{wall_time.isoformat()}".encode()
    ).digest()
    width, height = THUMBNAIL_SIZE if thumbnail else FULL_SIZE
    if thumbnail:
        low, high = THUMBNAIL_BYTES
        size = low + int.from_bytes(digest[-4:], "big") % (high - low + 1)
    head = b"\xff\xd8" + _jfif() + _segment(0xFE, identity.encode())
    tail = (
        _dqt()
        + _sof0(width, height)
        + _dht(0, 0, _DC_COUNTS, _DC_SYMBOLS)
        + _dht(1, 0, _AC_COUNTS, _AC_SYMBOLS)
        + _sos()
        + _scan(_scene(digest, wall_time, width // 8, height // 8))
        + b"\xff\xd9"
    )
    padding = _padding(size - len(head) - len(tail), digest)
    return head + padding + tail


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _jfif() -> bytes:
    return _segment(0xE0, b"JFIF\x00" + struct.pack(">BBBHHBB", 1, 1, 0, 1, 1, 0, 0))


def _dqt() -> bytes:
    # With 8 as the DC step a block's DC coefficient is simply its value minus 128.
    return _segment(0xDB, b"\x00" + bytes([8] * 64))


def _sof0(width: int, height: int) -> bytes:
    components = b"".join(bytes([ident, 0x11, 0]) for ident in (1, 2, 3))
    return _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + components)


def _dht(
    table_class: int, table_id: int, counts: tuple[int, ...], symbols: tuple[int, ...]
) -> bytes:
    return _segment(0xC4, bytes([table_class << 4 | table_id, *counts, *symbols]))


def _sos() -> bytes:
    components = b"".join(bytes([ident, 0x00]) for ident in (1, 2, 3))
    return _segment(0xDA, b"\x03" + components + b"\x00\x3f\x00")


def _padding(total: int, digest: bytes) -> bytes:
    """COM segments adding up to ``total`` bytes of pseudo-random, incompressible data."""
    if total < 4:
        return b""
    count = -(-total // _MAX_SEGMENT)
    data = random.Random(digest).randbytes(total - 4 * count)
    segments, start = [], 0
    for index in range(count):
        length = total // count + (1 if index < total % count else 0) - 4
        segments.append(_segment(0xFE, data[start : start + length]))
        start += length
    return b"".join(segments)


def _scene(
    digest: bytes, wall_time: datetime, columns: int, rows: int
) -> list[tuple[int, int, int]]:
    """The YCbCr value of every 8x8 block, row by row: the picture's content."""
    hour = wall_time.hour + wall_time.minute / 60
    light = 0.25 + 0.75 * max(0.0, math.cos((hour - 13) / 12 * math.pi))
    left = 0.05 + digest[0] / 255 * 0.5
    top = 0.35 + digest[1] / 255 * 0.15
    right, bottom = (
        left + 0.3 + digest[2] / 255 * 0.1,
        top + 0.25 + digest[3] / 255 * 0.1,
    )
    red, green, blue = (
        channel * light for channel in _PALETTE[digest[4] % len(_PALETTE)]
    )
    container = (
        0.299 * red + 0.587 * green + 0.114 * blue,
        128 - 0.1687 * red - 0.3313 * green + 0.5 * blue,
        128 + 0.5 * red - 0.4187 * green - 0.0813 * blue,
    )
    noise = hashlib.shake_256(digest).digest(columns * rows)
    blocks = []
    for row in range(rows):
        y = (row + 0.5) / rows
        for column in range(columns):
            x = (column + 0.5) / columns
            jitter = noise[row * columns + column] % 17 - 8
            if left <= x <= right and top <= y <= bottom:
                luma, blue_diff, red_diff = container
            elif y < 0.4:
                luma, blue_diff, red_diff = 200 * light - 60 * y, 140.0, 120.0
            else:
                luma, blue_diff, red_diff = 110 * light, 124.0, 130.0
            blocks.append((_clamp(luma + jitter), _clamp(blue_diff), _clamp(red_diff)))
    return blocks


def _clamp(value: float) -> int:
    return min(255, max(0, round(value)))


def _scan(blocks: list[tuple[int, int, int]]) -> bytes:
    """Entropy-coded data: per MCU one DC-only block for each of Y, Cb, Cr."""
    codes = _dc_codes()
    previous = [128, 128, 128]  # the DC coefficient is the value minus 128
    parts = []
    for block in blocks:
        for component, value in enumerate(block):
            parts.append(codes[value - previous[component]])
            previous[component] = value
    bits = "".join(parts)
    bits += "1" * (-len(bits) % 8)
    data = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return data.replace(b"\xff", b"\xff\x00")


@lru_cache(maxsize=1)
def _dc_codes() -> dict[int, str]:
    """Bit strings for every DC difference of 8-bit blocks (-255..255), each with its EOB."""
    category_codes: dict[int, str] = {}
    code, index = 0, 0
    for length, count in enumerate(_DC_COUNTS, start=1):
        for _ in range(count):
            category_codes[_DC_SYMBOLS[index]] = format(code, f"0{length}b")
            code, index = code + 1, index + 1
        code <<= 1
    table = {}
    for diff in range(-255, 256):
        category = abs(diff).bit_length()
        magnitude = diff if diff >= 0 else diff + (1 << category) - 1
        bits = format(magnitude, f"0{category}b") if category else ""
        table[diff] = category_codes[category] + bits + _EOB
    return table
