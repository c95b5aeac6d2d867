"""Facts about the source (header, EXIF, ICC), the BlurHash placeholder and the dominant
colour: read once per job at decode, bounded, GPS coordinates never kept."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from pipeline.imaging.decode import decode
from pipeline.imaging.facts import MAX_COUNTED_FRAMES, MAX_TEXT
from pipeline.imaging.icc import to_srgb
from pipeline.imaging.iccbuild import DISPLAY_P3, rgb_profile
from pipeline.imaging.placeholder import (
    blurhash,
    blurhash_components,
    dominant_colour,
    placeholders,
)
from pipeline.jobs.engine import Engine, EngineLimits
from pipeline.jobs.sources import SourcePolicy
from pipeline.objects.local import LocalObjectStore
from pipeline.ops import Limits, parse_variant_specs
from pipeline.ops.chain import compile_variants
from tests import images

LATITUDE = (52.0, 31.0, 12.5)


def camera_jpeg(width: int = 400, height: int = 300, **tags) -> bytes:
    """A JPEG with the EXIF a phone writes: make, model, lens, time, orientation, GPS."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = tags.get("make", "Canon"), \
        tags.get("model", "EOS R5"), tags.get("orientation", 6)
    detail = exif.get_ifd(0x8769)
    detail[0x9003] = "2024:05:01 12:34:56"
    detail[0xA434] = tags.get("lens", "RF24-105mm F4 L IS USM")
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", LATITUDE
    pixels = np.random.default_rng(1).integers(0, 255, (height, width, 3), np.uint8)
    return images.encode(pixels, "JPEG", exif=exif, icc_profile=rgb_profile(DISPLAY_P3))


def test_a_camera_jpeg_reports_its_facts_and_never_its_coordinates():
    facts = decode(camera_jpeg(), max_pixels=10**8).facts
    assert facts == {"width": 400, "height": 300, "format": "jpeg", "bit_depth": 8,
                     "alpha": False, "icc": DISPLAY_P3.name, "camera_make": "Canon",
                     "camera_model": "EOS R5", "lens": "RF24-105mm F4 L IS USM",
                     "taken_at": "2024-05-01T12:34:56", "orientation": 6, "gps": True,
                     "frames": 1, "animated": False}
    assert "52" not in json.dumps(facts) and "31" not in json.dumps(facts)


def test_facts_give_the_stored_size_even_when_decoding_shrinks():
    frame = decode(camera_jpeg(1600, 1200), max_pixels=10**8, load_scale=0.1)
    assert frame.width < 1600 and (frame.facts["width"], frame.facts["height"]) == (1600, 1200)


def test_hostile_metadata_text_is_bounded_and_printable():
    facts = decode(camera_jpeg(make="A\x00\x07" + "x" * 5000, model="\x1b\x07\x7f",
                               orientation=99), max_pixels=10**8).facts
    assert facts["camera_make"] == "A" + "x" * (MAX_TEXT - 1)
    assert "camera_model" not in facts  # nothing printable was left
    assert "orientation" not in facts  # 99 is no orientation


def test_corrupt_exif_costs_the_facts_not_the_image():
    pixels = np.zeros((20, 30, 3), np.uint8)
    data = images.encode(pixels, "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")
    frame = decode(data, max_pixels=10**8)
    assert frame.width == 30 and frame.facts["format"] == "jpeg"


def test_bit_depth_alpha_and_animation():
    deep = (np.arange(64 * 64 * 3) % 65536).astype(np.uint16).reshape(64, 64, 3)
    import cv2

    sixteen = cv2.imencode(".png", deep)[1].tobytes()
    assert decode(sixteen, max_pixels=10**8).facts["bit_depth"] == 16
    rgba = images.encode(np.zeros((8, 8, 4), np.uint8), "PNG")
    assert decode(rgba, max_pixels=10**8).facts["alpha"] is True
    frames = [Image.fromarray(np.full((16, 16, 3), (i * 60, 255 - i * 60, 0), np.uint8))
              for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50)
    facts = decode(buffer.getvalue(), max_pixels=10**8).facts
    assert (facts["frames"], facts["animated"], facts["format"]) == (3, True, "gif")


def test_a_gif_with_more_frames_than_counted_is_capped():
    frames = [Image.fromarray(np.full((2, 2, 3), (i % 256, i // 256, 7), np.uint8))
              for i in range(MAX_COUNTED_FRAMES + 5)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=20)
    assert decode(buffer.getvalue(), max_pixels=10**8).facts["frames"] == MAX_COUNTED_FRAMES


def test_blurhash_holds_the_mean_colour_and_the_left_right_split():
    left_red = np.zeros((60, 90, 3), np.uint8)
    left_red[:, :45] = (255, 0, 0)
    left_red[:, 45:] = (0, 0, 255)
    text = blurhash(left_red)
    assert len(text) == 28  # 4 x 3 components
    factors = blurhash_components(text)
    assert factors.shape == (3, 4, 3)
    np.testing.assert_allclose(factors[0, 0], [0.5, 0.0, 0.5], atol=0.01)
    assert factors[0, 1, 0] > 0.2 and factors[0, 1, 2] < -0.2  # red left, blue right
    assert blurhash_components(blurhash(left_red.transpose(1, 0, 2))).shape == (4, 3, 3)
    with pytest.raises(ValueError):
        blurhash_components("L" + text[1:-2])


def test_dominant_colour_is_the_largest_area_not_the_mean():
    sky = np.full((100, 100, 3), (70, 130, 200), np.uint8)
    sky[10:40, 10:40] = (250, 20, 20)
    assert dominant_colour(sky) == "#4682c8"
    rgba_alpha = np.zeros((100, 100), np.uint8)
    rgba_alpha[10:40, 10:40] = 255  # only the red square is visible
    assert dominant_colour(sky, rgba_alpha) == "#fa1414"


def test_placeholders_are_judged_in_srgb():
    pixels = np.full((40, 40, 3), (200, 40, 40), np.uint8)
    p3 = rgb_profile(DISPLAY_P3)
    tagged = placeholders(pixels, p3)
    assert tagged["colour"] == dominant_colour(to_srgb(pixels, p3))
    assert tagged["colour"] != placeholders(pixels, None)["colour"]


def test_the_engine_reports_facts_and_placeholders_once_per_job(tmp_path):
    store = LocalObjectStore(tmp_path)
    engine = Engine(store, SourcePolicy(store),
                    EngineLimits(50 << 20, 10**8, Limits()))
    chains = compile_variants(parse_variant_specs(["a=thumbnail:64,webp",
                                                   "b=fit:200x200,jpeg"]), Limits(), 8)
    _, summary = engine.render(camera_jpeg(), chains)
    assert summary.image["camera_model"] == "EOS R5" and summary.image["width"] == 400
    assert len(summary.image["placeholder"]) == 28
    assert summary.image["colour"].startswith("#") and len(summary.phash) == 16
    assert len(json.dumps(summary.image)) < 600  # it travels in the job state
