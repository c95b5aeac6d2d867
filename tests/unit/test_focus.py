"""Content-aware crops: attention and entropy keep what is interesting, a focal point
wins over both, flat images fall back to the centre (generated scenes)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import InvalidRequest
from pipeline.imaging.focus import window
from pipeline.ops import parse_variant_specs
from pipeline.ops.base import Frame, Limits
from pipeline.ops.registry import get_operation
from tests import images

SKIN = (224, 172, 140)  # inside the YCrCb skin rule


def scene(width: int, height: int, box: tuple[int, int, int, int],
          kind: str = "checker") -> np.ndarray:
    """A flat grey image with one interesting object in ``box`` (x, y, w, h)."""
    pixels = np.full((height, width, 3), 128, np.uint8)
    x, y, w, h = box
    if kind == "checker":
        yy, xx = np.mgrid[0:h, 0:w]
        tiles = ((yy // 8 + xx // 8) % 2).astype(bool)
        patch = np.zeros((h, w, 3), np.uint8)
        patch[tiles] = (230, 40, 30)
        patch[~tiles] = (20, 60, 220)
        pixels[y:y + h, x:x + w] = patch
    else:  # a smooth skin-coloured disc: no texture, only its colour stands out
        yy, xx = np.mgrid[0:h, 0:w]
        disc = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 <= (min(w, h) / 2) ** 2
        pixels[y:y + h, x:x + w][disc] = SKIN
    return pixels


def run(op: str, pixels: np.ndarray, **raw) -> np.ndarray:
    operation = get_operation(op)
    args = operation.validate({"op": op, **raw}, Limits())
    return operation.apply(Frame(pixels), args).pixels


def contains(outer: tuple[int, int, int, int], inner: tuple[int, int, int, int]) -> bool:
    ox, oy, ow, oh = outer
    ix, iy, iw, ih = inner
    return ox <= ix and oy <= iy and ix + iw <= ox + ow and iy + ih <= oy + oh


@pytest.mark.parametrize("gravity", ["attention", "entropy"])
@pytest.mark.parametrize("size, box, crop", [
    ((640, 360), (500, 140, 80, 80), (360, 360)),  # landscape -> square, object right
    ((360, 640), (140, 520, 80, 80), (360, 360)),  # portrait -> square, object low
    ((640, 360), (20, 20, 90, 90), (202, 360)),    # -> 9:16, object top left
])
def test_the_window_keeps_the_interesting_object(gravity, size, box, crop):
    pixels = scene(*size, box)
    x, y = window(pixels, *crop, gravity)
    assert contains((x, y, *crop), box), (x, y)
    cx, cy = window(pixels, *crop, "centre")
    assert not contains((cx, cy, *crop), box)  # the fixed centre would have cut it


def test_attention_finds_skin_that_entropy_does_not_see_inside():
    pixels = scene(640, 360, (30, 110, 140, 140), kind="skin")
    x, y = window(pixels, 300, 360, "attention")
    assert contains((x, y, 300, 360), (30, 110, 140, 140)), x


def test_a_focal_point_wins_and_stays_inside_the_image():
    pixels = scene(640, 360, (500, 140, 80, 80))
    assert window(pixels, 360, 360, "attention", focus=(0.05, 0.5)) == (0, 0)
    assert window(pixels, 200, 200, "centre", focus=(0.5, 0.5)) == (220, 80)
    assert window(pixels, 200, 200, "centre", focus=(1.0, 1.0)) == (440, 160)


def test_a_flat_image_falls_back_to_the_centre():
    flat = np.full((300, 500, 3), 90, np.uint8)
    assert window(flat, 300, 300, "attention") == window(flat, 300, 300, "centre")
    assert window(flat, 300, 300, "entropy") == (100, 0)


def test_fill_thumbnail_and_crop_use_it():
    pixels = scene(1280, 720, (1000, 280, 160, 160))

    def object_share(out: np.ndarray) -> float:  # pixels that are not the grey ground
        return float(np.any(np.abs(out.astype(int) - 128) > 30, axis=-1).mean())

    for op, raw in [("resize", {"width": 256, "height": 256, "mode": "fill",
                                "gravity": "attention"}),
                    ("thumbnail", {"size": 256, "square": True, "gravity": "entropy"}),
                    ("crop", {"width": 720, "height": 720, "gravity": "attention"})]:
        out = run(op, pixels, **raw)
        assert out.shape[0] == out.shape[1]
        assert object_share(out) > 0.03, op  # the object is in the output
        assert object_share(run(op, pixels, **{**raw, "gravity": "centre"})) == 0


def test_specs_and_validation():
    variants = parse_variant_specs(["a=fill:300x300:attention,jpeg",
                                    "b=thumbnail:256:square:entropy,webp",
                                    "c=crop:400x300:attention,png"])
    assert variants["a"][0]["gravity"] == "attention"
    assert variants["b"][0] == {"op": "thumbnail", "size": 256, "square": True,
                                "gravity": "entropy"}
    assert variants["c"][0]["gravity"] == "attention"
    crop = get_operation("crop")
    for bad in ({"focus_x": 0.5}, {"focus_x": 1.5, "focus_y": 0.5},
                {"focus_x": -0.5, "focus_y": 0.5}, {"gravity": "faces"}):
        with pytest.raises(InvalidRequest) as info:
            crop.validate({"op": "crop", "width": 10, "height": 10, **bad}, Limits())
        assert info.value.code == "bad_param"


#: Where the astronaut's face is in scikit-image's portrait (512 x 512): x0, y0, x1, y1.
#: Measured with OpenCV's Haar frontal-face cascade (172-278 x 60-166 at 256 px, 176-273
#: x 65-162 at 384 px) and checked by eye; the box is the union plus a few pixels.
ASTRONAUT_FACE = (170, 58, 280, 170)


@pytest.mark.parametrize("crop", [(256, 256), (288, 512), (240, 240)])
def test_attention_keeps_the_astronauts_whole_face(crop):
    portrait = images.photo("astronaut")
    x, y = window(portrait, *crop, "attention")
    x0, y0, x1, y1 = ASTRONAUT_FACE
    assert x <= x0 and y <= y0 and x + crop[0] >= x1 and y + crop[1] >= y1, (x, y)


def test_a_9_16_fill_of_the_portrait_keeps_the_face():
    portrait = images.photo("astronaut")
    out = run("resize", portrait, width=144, height=256, mode="fill", gravity="attention")
    assert out.shape[:2] == (256, 144)
    # the face at half scale is x 85-140: find the crop's left edge by matching columns
    half = run("resize", portrait, width=256, height=256)
    left = next(x for x in range(0, 256 - 144 + 1)
                if np.array_equal(half[:, x:x + 144], out))
    assert left <= ASTRONAUT_FACE[0] // 2 and left + 144 >= ASTRONAUT_FACE[2] // 2
