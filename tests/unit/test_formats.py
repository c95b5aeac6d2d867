"""Phone and modern formats: HEIC sources (upright, colour from ICC or nclx), JPEG XL
outputs, and JPEG XL sources refused before its decoder runs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import ImageRejected, InvalidRequest
from pipeline.imaging.decode import decode
from pipeline.imaging.iccbuild import DISPLAY_P3, rgb_profile
from pipeline.ops import Limits, compile_chain
from tests.colour import image_delta_e
from tests.images import open_bytes, quadrants

P3_NCLX = {"color_primaries": 12, "transfer_characteristics": 13, "matrix_coefficients": 6,
           "full_range_flag": 1}


def heic(pixels: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="HEIF", quality=-1, **options)  # lossless
    return buffer.getvalue()


def run(data: bytes, encode: dict) -> np.ndarray:
    chain = compile_chain([{"op": "encode", **encode}], Limits())
    return np.asarray(open_bytes(chain.run(decode(data, max_pixels=10**7), Limits()).data))


def test_a_heic_with_exif_rotation_comes_out_upright():
    upright = quadrants(60, 40)  # red top-left, white bottom-right
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # as a phone held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    data = heic(stored, exif=exif.tobytes())
    out = run(data, {"format": "png"})
    assert out.shape[:2] == (40, 60)
    assert out[5, 5].tolist() == pytest.approx([255, 0, 0], abs=12)
    assert out[-5, -5].tolist() == pytest.approx([255, 255, 255], abs=12)
    assert out[5, -5].tolist() == pytest.approx([0, 255, 0], abs=12)


@pytest.mark.parametrize("tagging", ["icc", "nclx"])
def test_heic_colour_from_an_icc_profile_or_nclx_primaries_is_converted(tagging):
    from tests.unit.test_colour_management import gradient, reference

    pixels = gradient(96, 64)
    profile = rgb_profile(DISPLAY_P3)
    options = {"icc_profile": profile} if tagging == "icc" else {"nclx_profile": P3_NCLX}
    data = heic(pixels, **options)
    out = run(data, {"format": "png"})
    decoded = np.asarray(open_bytes(data).convert("RGB"))  # libheif's own pixels
    png = io.BytesIO()
    Image.fromarray(decoded).save(png, format="PNG", icc_profile=profile)
    mean, worst = image_delta_e(out, reference(png.getvalue(), profile))
    assert mean <= 1.0 and worst <= 3.0, (tagging, mean, worst)
    assert image_delta_e(out, decoded)[1] > 3.0  # converted, not passed through


def test_jpeg_xl_outputs_decode_to_the_same_picture():
    out = run(heic(quadrants(64, 48)), {"format": "jxl", "quality": 90})
    png = run(heic(quadrants(64, 48)), {"format": "png"})
    assert out.shape == png.shape
    assert image_delta_e(out, png)[0] < 2.0


def test_jpeg_xl_outputs_cannot_keep_the_source_gamut():
    with pytest.raises(InvalidRequest) as caught:
        compile_chain([{"op": "encode", "format": "jxl", "colour_space": "source"}], Limits())
    assert "jxl" in caught.value.message


def test_a_jpeg_xl_source_is_refused_before_its_decoder_runs(monkeypatch):
    buffer = io.BytesIO()
    Image.fromarray(quadrants(32, 32)).save(buffer, format="JXL")
    accept = Image.OPEN["JXL"][1]
    ran = []
    monkeypatch.setitem(Image.OPEN, "JXL", (lambda *a: ran.append(a), accept))
    with pytest.raises(ImageRejected) as caught:
        decode(buffer.getvalue(), max_pixels=10**6)
    assert caught.value.code == "unsupported_format" and "JXL" in caught.value.message
    assert not ran


def test_a_heic_over_the_pixel_limit_is_refused_from_its_header():
    data = heic(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ImageRejected) as caught:
        decode(data, max_pixels=64 * 64 - 1)
    assert caught.value.code == "decompression_bomb"


def test_the_heif_srgb_nclx_needs_no_conversion():
    srgb = dict(P3_NCLX, color_primaries=1)
    data = heic(quadrants(16, 16), nclx_profile=srgb)
    assert decode(data, max_pixels=10**6).icc_profile is None  # nothing to convert


def test_a_heic_upload_passes_the_api_check_and_keeps_its_extension(tmp_path):
    from pipeline.jobs.uploads import check_upload

    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(heic(quadrants(32, 32)))
    assert check_upload(path, 10**6) == "heic"
    jxl = tmp_path / "photo.jxl"
    buffer = io.BytesIO()
    Image.fromarray(quadrants(32, 32)).save(buffer, format="JXL")
    jxl.write_bytes(buffer.getvalue())
    with pytest.raises(ImageRejected) as caught:
        check_upload(jxl, 10**6)
    assert caught.value.code == "unsupported_format"
