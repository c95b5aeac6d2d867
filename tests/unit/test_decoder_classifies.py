"""Whatever bytes arrive, decoding ends in a Frame or an ImageRejected with a precise,
permanent code: never another exception (which the worker would take for a transient
fault and retry)."""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import ImageRejected
from pipeline.imaging.decode import ACCEPTED_FORMATS, decode
from tests.images import quadrants

CODES = {"corrupt_image", "unsupported_format", "unsupported_codec", "unsupported_mode",
         "not_an_image", "empty_source", "decompression_bomb", "too_large"}
Image.init()


def sample(fmt: str) -> bytes | None:
    """A small image in ``fmt``, in the first mode its writer takes."""
    for mode in ("RGB", "L", "1", "RGBA", "I;16"):
        image = Image.fromarray(quadrants(24, 16)).convert(mode) if mode != "I;16" else (
            Image.fromarray(np.zeros((16, 24), np.uint16)))
        buffer = io.BytesIO()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # writing IM, ...
                image.save(buffer, format=fmt)
        except Exception:  # this writer wants another mode (or an external tool)
            continue
        if buffer.tell():
            return buffer.getvalue()
    return None


def damaged(data: bytes) -> dict[str, bytes]:
    middle = len(data) // 2
    flipped = bytearray(data)
    for i in range(middle, min(len(data), middle + 16)):
        flipped[i] ^= 0xA5
    return {"intact": data, "truncated": data[:middle], "header only": data[:24],
            "scrambled": bytes(flipped), "tail cut": data[:-8]}


WRITABLE = sorted(fmt for fmt in Image.SAVE if sample(fmt) is not None)


def test_the_walk_covers_the_formats_pillow_writes():
    assert {"JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "DDS", "ICO", "PCX", "TGA",
            "QOI", "SGI", "JPEG2000"} <= set(WRITABLE)


@pytest.mark.parametrize("fmt", WRITABLE)
def test_every_format_pillow_knows_ends_in_a_frame_or_a_precise_code(fmt, caplog):
    caplog.set_level(logging.DEBUG)
    for damage, data in damaged(sample(fmt)).items():
        try:
            frame = decode(data, max_pixels=10**6)
        except ImageRejected as exc:
            assert exc.code in CODES, (fmt, damage, exc.code, exc.message)
            assert len(exc.message) < 400
            if damage == "intact":
                assert fmt not in ACCEPTED_FORMATS, (fmt, exc.message)
                assert exc.code in ("unsupported_format", "not_an_image"), (fmt, exc.code)
        else:
            assert fmt in ACCEPTED_FORMATS, (fmt, damage)  # nothing else is ever decoded
            assert frame.width >= 1 and frame.height >= 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("fmt", ["DDS", "ICO", "PCX", "TGA", "QOI", "JPEG2000", "SGI"])
def test_formats_we_do_not_accept_are_named_and_never_parsed(fmt, monkeypatch):
    data = sample(fmt)
    accept = Image.OPEN[fmt][1]
    opened = []
    monkeypatch.setitem(Image.OPEN, fmt, (lambda *a: opened.append(a), accept))
    with pytest.raises(ImageRejected) as caught:
        decode(data, max_pixels=10**6)
    if accept is not None:
        assert caught.value.code == "unsupported_format" and fmt in caught.value.message
    assert not opened  # its plugin never ran on our bytes


def test_a_tiff_compression_pillow_lacks_is_an_unsupported_codec():
    buffer = io.BytesIO()
    Image.fromarray(quadrants(16, 16)).save(buffer, format="TIFF", compression="raw")
    data = bytearray(buffer.getvalue())
    tag = data.find(bytes([3, 1, 3, 0, 1, 0, 0, 0]))  # Compression, SHORT, count 1
    assert tag > 0
    data[tag + 8:tag + 10] = (34712).to_bytes(2, "little")  # JPEG 2000 in TIFF
    with pytest.raises(ImageRejected) as caught:
        decode(bytes(data), max_pixels=10**6)
    assert caught.value.code == "unsupported_codec" and "34712" in caught.value.message

