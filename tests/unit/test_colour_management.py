"""Outputs look the way a colour-managed viewer shows the source: every embedded ICC
profile is converted to sRGB (LittleCMS), unless a variant keeps the source's gamut."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from pipeline.errors import ImageRejected
from pipeline.imaging import icc
from pipeline.imaging.decode import decode
from pipeline.imaging.iccbuild import (
    ADOBE_RGB,
    DISPLAY_P3,
    PROPHOTO_RGB,
    grey_profile,
    rgb_profile,
)
from pipeline.ops import Limits, compile_chain
from tests.colour import cmyk_profile, delta_e_2000, image_delta_e, srgb_to_lab
from tests.images import open_bytes

SRGB = ImageCms.createProfile("sRGB")
FORMATS = {"jpeg": {"quality": 95}, "png": {}, "webp": {"quality": 95}, "avif": {"quality": 95},
           "jxl": {"quality": 95}}


def gradient(width: int = 384, height: int = 256) -> np.ndarray:
    """Smooth hue x lightness sweep with saturated colours (where gamuts differ most)."""
    hue = np.linspace(0, 179, width, dtype=np.float32)[None, :].repeat(height, 0)
    value = np.linspace(90, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    hsv = np.dstack([hue, np.full_like(hue, 200), value]).astype(np.uint8)
    import cv2
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def tagged(pixels: np.ndarray, profile: bytes | None, fmt: str = "PNG", mode: str | None = None
           ) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(pixels, mode) if mode else Image.fromarray(pixels)
    image.save(buffer, format=fmt, **({"icc_profile": profile} if profile else {}),
               **({"quality": 98} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def reference(data: bytes, profile: bytes, mode: str = "RGB") -> np.ndarray:
    """What LittleCMS makes of the source on its own: the viewer's rendering in sRGB."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    image = open_bytes(data)
    if image.mode == "P":
        image = image.convert("RGB")
    return np.asarray(ImageCms.profileToProfile(
        image, source, SRGB, renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode=mode))


def render(data: bytes, encode: dict) -> tuple[np.ndarray, Image.Image]:
    chain = compile_chain([{"op": "encode", **encode}], Limits())
    out = chain.run(decode(data, max_pixels=10**7), Limits())
    image = open_bytes(out.data)
    return np.asarray(image), image


@pytest.mark.parametrize("space", [DISPLAY_P3, ADOBE_RGB, PROPHOTO_RGB], ids=lambda s: s.name)
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_wide_gamut_sources_come_out_as_a_viewer_shows_them(space, fmt):
    profile = rgb_profile(space)
    data = tagged(gradient(), profile)
    out, image = render(data, {"format": fmt, **FORMATS[fmt]})
    expected = reference(data, profile)
    mean, worst = image_delta_e(out, expected)
    assert mean <= 1.0 and worst <= 3.0, (space.name, fmt, mean, worst)
    # Untagged sRGB, what every viewer assumes (JPEG XL's decoder reports its codestream's
    # sRGB colour encoding as a profile).
    assert icc.conversion_for(image.info.get("icc_profile")) in (None, icc.Conversion("RGB "))
    # The check can fail: the unconverted pixels are far from the viewer's rendering.
    naive_mean, naive_worst = image_delta_e(gradient(), expected)
    assert naive_mean > 1.0 or naive_worst > 3.0, (space.name, naive_mean, naive_worst)


@pytest.mark.parametrize("fmt", sorted(set(FORMATS) - {"jxl"}))  # jxl: sRGB only
def test_keeping_the_source_gamut_keeps_its_pixels_and_embeds_its_profile(fmt):
    profile = rgb_profile(DISPLAY_P3)
    data = tagged(gradient(), profile)
    out, image = render(data, {"format": fmt, **FORMATS[fmt], "colour_space": "source"})
    assert image.info.get("icc_profile") == profile
    # Shown through its profile, the output is the source as a viewer shows it.
    shown = reference(_reencode_png(out, profile), profile)
    mean, worst = image_delta_e(shown, reference(data, profile))
    # AVIF subsamples chroma 4:2:0 even at q95; on this saturated sweep its own loss
    # reaches 3.5 once the P3 pixels are shown in sRGB.
    assert mean <= 1.0 and worst <= (4.0 if fmt == "avif" else 3.0), (fmt, mean, worst)


def test_variants_of_one_job_may_differ_in_colour_space():
    profile = rgb_profile(DISPLAY_P3)
    frame = decode(tagged(gradient(), profile), max_pixels=10**7)
    limits = Limits()
    srgb = compile_chain([{"op": "encode", "format": "png"}], limits)
    wide = compile_chain([{"op": "encode", "format": "png", "colour_space": "source"}], limits)
    shared: dict = {}
    converted = open_bytes(srgb.run(frame, limits, shared=shared).data)
    kept = open_bytes(wide.run(frame, limits, shared=shared).data)
    assert np.array_equal(np.asarray(kept), gradient())  # the shared frame was not touched
    assert not np.array_equal(np.asarray(converted), gradient())


def test_grey_with_a_gamma_profile_stays_grey_and_takes_srgb_tones():
    ramp = np.tile(np.arange(0, 256, dtype=np.uint8), (16, 1))
    profile = grey_profile(1.8)
    data = tagged(ramp, profile)
    out, image = render(data, {"format": "png"})
    assert image.mode == "L"
    expected = reference(data, profile).mean(axis=2)
    assert np.abs(out.astype(int) - np.round(expected).astype(int)).max() <= 1
    assert np.abs(out.astype(int) - ramp).max() > 10  # gamma 1.8 is not sRGB's curve


def test_sixteen_bit_grey_with_a_profile_is_converted():
    values = np.tile(np.linspace(0, 65535, 200).astype(np.uint16), (8, 1))
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="PNG", icc_profile=grey_profile(1.8))
    out, _ = render(buffer.getvalue(), {"format": "png"})
    as_eight_bit = np.round(values / 257).astype(np.uint8)
    expected = icc.to_srgb(as_eight_bit, grey_profile(1.8))
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(out.astype(int) - as_eight_bit).max() > 10


def test_cmyk_with_a_profile_goes_through_it():
    profile = cmyk_profile()
    cmyk = _cmyk_patches()
    data = tagged(cmyk, profile, "JPEG", "CMYK")
    out, _ = render(data, {"format": "png"})
    expected = reference(data, profile)
    mean, worst = image_delta_e(out, expected)
    assert mean <= 1.0 and worst <= 3.0, (mean, worst)
    plain_mean, _ = image_delta_e(np.asarray(open_bytes(data).convert("RGB")), expected)
    assert plain_mean > 3.0  # the profile mattered


def test_cmyk_without_a_profile_takes_the_plain_formula_right_way_round():
    """Pillow writes CMYK JPEGs the Adobe way (inverted, APP14 'Adobe' marker)."""
    cmyk = _cmyk_patches()
    data = tagged(cmyk, None, "JPEG", "CMYK")
    assert b"Adobe" in data[:200]
    out, _ = render(data, {"format": "png"})
    c, m, y, k = (open_bytes(data).split())
    ink = np.asarray(k, float)
    plain = np.dstack([(255 - np.asarray(ch, float)) * (255 - ink) / 255
                       for ch in (c, m, y)]).round().astype(np.uint8)
    assert np.abs(out.astype(int) - plain).max() <= 1
    # White paper stays white, full black ink is black (not inverted).
    assert out[0, 0].tolist() == [255, 255, 255] and out[-1, -1].max() <= 5


def test_alpha_survives_conversion():
    height, width, _ = gradient().shape
    pixels = np.dstack([gradient(), np.linspace(0, 255, width, dtype=np.uint8)[None, :]
                        .repeat(height, 0)])
    profile = rgb_profile(DISPLAY_P3)
    out, _ = render(tagged(pixels, profile), {"format": "png"})
    assert out.shape[2] == 4 and np.array_equal(out[..., 3], pixels[..., 3])
    expected = reference(tagged(gradient(), profile), profile)
    assert image_delta_e(out[..., :3], expected)[0] <= 1.0


def test_palette_images_with_a_profile_are_converted():
    profile = rgb_profile(ADOBE_RGB)
    image = Image.fromarray(gradient()).quantize(64)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", icc_profile=profile)
    out, _ = render(buffer.getvalue(), {"format": "png"})
    assert image_delta_e(out, reference(buffer.getvalue(), profile))[0] <= 1.0


def test_srgb_tagged_sources_pass_through_untouched_and_keep_their_tag_on_request():
    data = tagged(gradient(), icc.SRGB_PROFILE)
    assert icc.conversion_for(icc.SRGB_PROFILE).is_identity
    out, image = render(data, {"format": "png"})
    assert np.array_equal(out, gradient()) and "icc_profile" not in image.info
    _, kept = render(data, {"format": "png", "keep_metadata": True})
    assert kept.info.get("icc_profile") == icc.SRGB_PROFILE


def test_one_camera_builds_its_transform_once(monkeypatch):
    built = []
    original = icc._build
    monkeypatch.setattr(icc, "_build", lambda p: built.append(p) or original(p))
    profile = rgb_profile(PROPHOTO_RGB)[:-4] + b"\0\0\0\1"  # a profile no test used yet
    for shade in (10, 20, 30):
        pixels = np.full((4, 4, 3), shade, np.uint8)
        icc.to_srgb(pixels, profile)
    assert len(built) == 1


def test_a_profile_littlecms_cannot_read_is_ignored_like_viewers_do():
    data = tagged(gradient(), b"\0" * 128 + b"not a profile")
    out, _ = render(data, {"format": "png"})
    assert np.array_equal(out, gradient())


def test_an_oversized_profile_is_refused_with_its_own_code():
    huge = rgb_profile(DISPLAY_P3) + b"\0" * icc.MAX_PROFILE_BYTES
    with pytest.raises(ImageRejected) as caught:
        icc.to_srgb(gradient(), huge)
    assert caught.value.code == "icc_profile_too_large"


def test_the_srgb_conversion_matches_the_published_display_p3_red():
    """P3 (255, 0, 0) is outside sRGB; P3 (200, 40, 40) is about sRGB (218, 0, 26)."""
    converted = icc.to_srgb(np.array([[[200, 40, 40]]], np.uint8), rgb_profile(DISPLAY_P3))
    lab = srgb_to_lab(converted)
    assert delta_e_2000(lab, srgb_to_lab(np.array([[[218, 0, 26]]], np.uint8))).max() < 1.5


def _reencode_png(pixels: np.ndarray, profile: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", icc_profile=profile)
    return buffer.getvalue()


def _cmyk_patches() -> np.ndarray:
    """Flat CMYK patches: paper white top-left, solid black bottom-right, inks between."""
    levels = [0, 64, 128, 192, 255]
    patches = np.zeros((40, 40, 4), np.uint8)
    for i in range(5):
        for j in range(5):
            patches[i * 8:(i + 1) * 8, j * 8:(j + 1) * 8] = (
                levels[j], levels[i], levels[(i + j) % 5], 0)
    patches[32:, 32:] = (0, 0, 0, 255)
    return patches
