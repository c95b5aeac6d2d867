"""Inputs that made a job's cost explode now cost a bounded amount (issue: no job can
hurt a worker): huge blurs, image-sized watermark texts, scan and chunk bombs, 16-bit
sources, FIFOs among the sources."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from pipeline.errors import ImageRejected, PermanentError
from pipeline.imaging.decode import (
    MAX_JPEG_SCANS,
    _uint8_pixels,
    check_structure,
    decode,
    jpeg_scans,
)
from pipeline.objects.local import LocalObjectStore
from pipeline.ops.filters import DIRECT_BLUR_SIGMA, gaussian_blur
from pipeline.ops.watermark import _render_text
from tests.hostile import jpeg_scan_bomb, png_chunk_bomb
from tests.images import encode, quadrants, ssim


def photo_like(width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    base = cv2.resize(rng.integers(0, 256, (height // 16, width // 16, 3), np.uint8),
                      (width, height), interpolation=cv2.INTER_CUBIC)
    return cv2.add(base, quadrants(width, height))


@pytest.mark.parametrize("sigma", [DIRECT_BLUR_SIGMA * 2, 40.0, 100.0])
def test_a_large_blur_looks_like_the_direct_one(sigma):
    pixels = photo_like(960, 720)
    direct = cv2.GaussianBlur(pixels, (0, 0), sigma)
    fast = gaussian_blur(pixels, sigma)
    assert fast.shape == pixels.shape and fast.dtype == np.uint8
    assert ssim(direct, fast) > 0.98


def test_a_watermark_text_never_outgrows_the_image():
    overlay = _render_text("W" * 200, 300, (255, 255, 255), 400, 300)
    assert overlay.shape[1] <= 400 and overlay.shape[0] <= 300
    assert overlay[..., 3].max() > 0  # the text is drawn, only smaller
    small = _render_text("hi", 20, (255, 255, 255), 400, 300)
    unbounded = _render_text("hi", 20, (255, 255, 255), 10**6, 10**6)
    assert small.shape == unbounded.shape  # a text that fits keeps its size


def test_scan_and_chunk_bombs_are_refused_before_decoding():
    for data, code in ((jpeg_scan_bomb(), "too_many_scans"),
                       (png_chunk_bomb(), "too_many_chunks")):
        with pytest.raises(ImageRejected) as info:
            decode(data, max_pixels=10**7)
        assert info.value.code == code
    check_structure(jpeg_scan_bomb(MAX_JPEG_SCANS // 2))  # a plausible count passes
    check_structure(png_chunk_bomb(20))
    assert decode(encode(quadrants(64, 48), "JPEG", progressive=True),
                  max_pixels=10**7).width == 64


def test_jpeg_scans_counts_sos_markers_exactly_as_a_byte_search_does():
    rng = np.random.default_rng(3)
    alphabet = np.array([0xFF, 0xDA, 0x00, 0xD8], dtype=np.uint8)  # markers collide often
    for size in (0, 1, 2, 3, 4, 7, 1000, 1001):  # even and odd lengths
        for _ in range(30):
            data = rng.choice(alphabet, size).tobytes()
            assert jpeg_scans(data) == data.count(b"\xff\xda"), data[:40]
    assert jpeg_scans(b"\xff\xda\xff\xff\xda") == 2  # at the start, the end, after FF
    assert jpeg_scans(jpeg_scan_bomb()) > MAX_JPEG_SCANS


def test_the_worker_refuses_a_scan_bomb_before_its_image_work(tmp_path):
    # Its decode skips check_structure (structure_checked): the cost estimate ran it.
    import asyncio

    from pipeline.jobs.processing import FAILED, run_batch
    from tests.runtimes import local_runtime
    from tests.unit.test_processing import _job

    with local_runtime(tmp_path) as runtime:
        (outcome,) = asyncio.run(run_batch([_job(runtime, "bomb", jpeg_scan_bomb())],
                                           runtime))
    assert outcome.kind == FAILED and outcome.error.code == "too_many_scans"


def test_sixteen_bit_sources_scale_exactly():
    from PIL import Image

    values = np.arange(0, 65536, 7, dtype=np.uint16)[:9000].reshape(90, 100)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    out = _uint8_pixels(image)
    expected = ((values.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)
    assert out.dtype == np.uint8 and np.array_equal(out, expected)


def test_a_fifo_among_the_sources_is_refused_without_blocking(tmp_path):
    store = LocalObjectStore(tmp_path)
    fifo = tmp_path / "sources" / "pipe"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    with pytest.raises(PermanentError) as info:
        store.get(store.uri_for("sources/pipe"), 1024)  # would block forever if opened
    assert info.value.code == "not_a_regular_file"
