"""A corpus of hostile and broken image files, generated in code.

Each entry maps a name to (bytes, the rejection code the engine must give).
"""

from __future__ import annotations

import io
import json
import struct
import time
import zlib

import numpy as np
from PIL import Image

from tests.images import encode, quadrants


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge image (rows of zeros compress ~1000:1)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", rows)
            + _png_chunk(b"IEND", b""))


def _patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    i = 2
    while i < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker in (0xC0, 0xC2):
            return (data[:i + 5] + struct.pack(">HH", height, width) + data[i + 9:])
        i += 2 + length
    raise AssertionError("no SOF marker")


def tiff_bomb(width: int, height: int) -> bytes:
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1),
               (262, 3, 1, 1), (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height),
               (279, 4, 1, width * height)]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, value)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\0\0\0\0"


def bmp_with_size(width: int, height: int) -> bytes:
    data = bytearray(encode(quadrants(4, 4), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def gif_bomb() -> bytes:
    data = bytearray(encode(np.zeros((4, 4), np.uint8), "GIF"))
    data[6:10] = struct.pack("<HH", 65535, 65535)  # logical screen
    i = data.index(b"\x2c")  # image descriptor
    data[i + 5:i + 9] = struct.pack("<HH", 65535, 65535)
    return bytes(data)


def jpeg_scan_bomb(scans: int = 500) -> bytes:
    """A progressive JPEG whose last scan is repeated ``scans`` times (each repeat is a
    full pass of the decoder)."""
    data = encode(quadrants(64, 48), "JPEG", quality=80, progressive=True)
    last = data.rindex(b"\xff\xda")
    scan = data[last:-2]  # the last SOS segment and its entropy-coded data, before EOI
    return data[:-2] + scan * scans + b"\xff\xd9"


def png_chunk_bomb(chunks: int = 5000) -> bytes:
    """A valid PNG with ``chunks`` empty private chunks before its pixels."""
    png = encode(quadrants(16, 16), "PNG")
    first_idat = png.index(b"IDAT") - 4
    return png[:first_idat] + _png_chunk(b"zzZz", b"") * chunks + png[first_idat:]


def corpus() -> dict[str, tuple[bytes, str]]:
    jpeg = encode(quadrants(64, 48), "JPEG", quality=90)
    png = encode(quadrants(64, 48), "PNG")
    webp = encode(quadrants(64, 48), "WEBP", quality=80)
    ico = io.BytesIO()
    Image.fromarray(quadrants(32, 32)).save(ico, "ICO")
    sof_end = jpeg.index(b"\xff\xda")  # headers only, no scan data
    return {
        "zero-bytes": (b"", "empty_source"),
        "random-bytes": (bytes(np.random.default_rng(1).integers(0, 256, 4096, np.uint8)),
                         "not_an_image"),
        "text-file": (b"#!/bin/sh\nrm -rf /\n" * 20, "not_an_image"),
        "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
                "not_an_image"),
        "truncated-jpeg": (jpeg[: len(jpeg) // 2], "corrupt_image"),
        "jpeg-headers-only": (jpeg[:sof_end], "corrupt_image"),
        "truncated-png": (png[: len(png) - 30], "corrupt_image"),
        "truncated-webp": (webp[: len(webp) // 2], "corrupt_image"),
        "png-bad-idat": (png[:33] + _png_chunk(b"IDAT", b"\x78\x9cgarbage!!") +
                         _png_chunk(b"IEND", b""), "corrupt_image"),
        "png-bomb-100k": (png_bomb(100_000, 100_000), "decompression_bomb"),
        "png-bomb-under-pillow-limit": (png_bomb(10_000, 10_000), "decompression_bomb"),
        "png-one-huge-row": (png_bomb(60_000_000, 1), "decompression_bomb"),
        "jpeg-header-65k": (_patch_jpeg_size(jpeg, 65_000, 65_000), "decompression_bomb"),
        "tiff-bomb": (tiff_bomb(50_000, 50_000), "decompression_bomb"),
        "bmp-bomb": (bmp_with_size(40_000, 40_000), "decompression_bomb"),
        "gif-bomb": (gif_bomb(), "decompression_bomb"),
        "ico-unsupported": (ico.getvalue(), "unsupported_format"),
        "jpeg-scan-bomb": (jpeg_scan_bomb(), "too_many_scans"),
        "png-chunk-bomb": (png_chunk_bomb(), "too_many_chunks"),
    }


VALID_EVENT = {"job_id": "job-1", "source": "file:///x/a.jpg",
         "variants": {"thumb": [{"op": "resize", "width": 10}]}}


def raw_event(**changes) -> bytes:
    """A valid ingest event's JSON with ``changes``."""
    return json.dumps({**VALID_EVENT, **changes}).encode()


def poison_events() -> dict[str, tuple[bytes | None, str]]:
    """Each kind of poison event and the reason it must be refused with."""
    now = time.time()
    return {
        "nested-lists-3000": (b"[" * 3000 + b"]" * 3000, "too_deep"),
        "nested-objects-3000": (b'{"a":' * 3000 + b"1" + b"}" * 3000, "too_deep"),
        "unclosed-nesting": (b"[" * 5000, "too_deep"),
        "deep-inside-a-field": (raw_event(replayed_from=json.loads("[" * 40 + "]" * 40)),
                                "too_deep"),
        "deep-job-id": (b'{"job_id": ' + b"[" * 2000 + b"]" * 2000 + b"}", "too_deep"),
        "over-64k": (raw_event(source="file:///" + "a" * 70_000), "event_too_large"),
        "utf16": (json.dumps(VALID_EVENT).encode("utf-16"), "malformed_json"),
        "latin1": ('{"job_id": "caf\u00e9"}'.encode("latin-1"), "malformed_json"),
        "nan-literal": (b'{"job_id": "a", "submitted_at": NaN}', "malformed_json"),
        "huge-integer": (b'{"job_id": "a", "attempt": ' + b"9" * 5000 + b"}", "malformed_json"),
        "submitted-at-infinity": (raw_event(submitted_at=float("inf")), "malformed_json"),
        "submitted-at-1e400": (raw_event()[:-1] + b', "submitted_at": 1e400}', "bad_submitted_at"),
        "submitted-at-far-future": (raw_event(submitted_at=now + 10 * 365 * 86400),
                                    "bad_submitted_at"),
        "submitted-at-1e12": (raw_event(submitted_at=1e12), "bad_submitted_at"),
        "submitted-at-negative": (raw_event(submitted_at=-5), "bad_submitted_at"),
        "tombstone": (None, "empty_event"),
        "bom": (b"\xef\xbb\xbf" + raw_event(), "malformed_json"),
        "job-id-of-other-tenant": (raw_event(job_id="acme:x", tenant="mallory"), "bad_job_id"),
        "job-id-with-slash": (raw_event(job_id="z/../../etc"), "bad_job_id"),
        "job-id-two-colons": (raw_event(job_id="a:b:c"), "bad_job_id"),
    }
