"""encode.max_bytes: the highest quality whose output fits, in a bounded number of
encodes; a clear failure when nothing fits."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import ImageRejected, InvalidRequest
from pipeline.ops import encode as encode_module
from pipeline.ops import parse_variant_specs
from pipeline.ops.base import Frame, Limits
from pipeline.ops.encode import MAX_BYTES_ENCODES, Encode, encode_frame


def photo_like(width: int = 480, height: int = 320, seed: int = 7) -> Frame:
    """Smooth gradients plus noise: file size falls steadily with quality."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)],
                    axis=-1)
    noisy = base + rng.normal(0, 18, base.shape)
    return Frame(np.clip(noisy, 0, 255).astype(np.uint8))


def args_for(**raw) -> dict:
    return Encode().validate({"op": "encode", **raw}, Limits())


@pytest.fixture
def encodes(monkeypatch) -> list[int]:
    """The size of every encode the op makes."""
    sizes: list[int] = []
    real = encode_module._save

    def counted(image, options, fmt):
        result = real(image, options, fmt)
        sizes.append(len(result.data))
        return result

    monkeypatch.setattr(encode_module, "_save", counted)
    return sizes


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_the_highest_quality_that_fits_is_found_in_a_few_encodes(fmt, encodes):
    frame = photo_like()
    full = len(encode_frame(frame, args_for(format=fmt, quality=90)).data)
    budget = full // 3
    encodes.clear()
    fitted = encode_frame(frame, args_for(format=fmt, quality=90, max_bytes=budget))
    assert len(fitted.data) <= budget
    assert len(encodes) <= MAX_BYTES_ENCODES
    # the best that fits among what was tried, and better than the floor quality
    assert len(fitted.data) == max(size for size in encodes if size <= budget)
    floor = len(encode_frame(frame, args_for(format=fmt, quality=5)).data)
    assert len(fitted.data) > floor


def test_an_output_that_fits_is_encoded_once_and_unchanged(encodes):
    frame = photo_like()
    plain = encode_frame(frame, args_for(format="jpeg", quality=80))
    encodes.clear()
    fitted = encode_frame(frame, args_for(format="jpeg", quality=80,
                                          max_bytes=len(plain.data)))
    assert fitted.data == plain.data and len(encodes) == 1


@pytest.mark.parametrize("raw", [{"format": "png"}, {"format": "webp", "lossless": True},
                                 {"format": "jpeg", "quality": 90}])
def test_nothing_fits_fails_with_its_own_code(raw):
    with pytest.raises(ImageRejected) as info:
        encode_frame(photo_like(), args_for(**raw, max_bytes=300))
    assert info.value.code == "max_bytes_unreachable"
    assert "max_bytes=300" in info.value.message


def test_the_compact_spec_and_the_bounds():
    variants = parse_variant_specs(["t=fit:256x256,jpeg:q80:max40k", "u=webp:max9000"])
    assert variants["t"][-1]["max_bytes"] == 40 * 1024
    assert variants["u"][-1]["max_bytes"] == 9000
    for bad in (-1, encode_module.MAX_BYTES_LIMIT + 1, "many"):
        with pytest.raises(InvalidRequest):
            args_for(format="jpeg", max_bytes=bad)
