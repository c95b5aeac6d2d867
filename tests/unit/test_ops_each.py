"""One test (or a few) per operation, checking pixels, not just that it ran."""

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.dev.samples import photo_like
from pipeline.errors import ImageRejected, InvalidRequest
from pipeline.imaging.decode import decode
from pipeline.imaging.phash import hamming, phash
from pipeline.ops import Limits, compile_chain
from pipeline.ops.base import Frame, RunContext
from pipeline.ops.spec import parse_variant_spec
from tests.images import encode, open_bytes, quadrants

LIMITS = Limits()
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def run(pixels, *ops, ctx=None, orientation=1):
    frame = Frame(np.ascontiguousarray(pixels), orientation=orientation)
    chain = compile_chain([*ops, {"op": "encode", "format": "png"}], LIMITS)
    return np.asarray(open_bytes(chain.run(frame, LIMITS, ctx).data))


def near(pixel, colour, tol=8):
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, colour, strict=False))


def test_crop_by_gravity_and_box():
    img = quadrants(200, 100)
    out = run(img, {"op": "crop", "width": 50, "height": 50, "gravity": "northwest"})
    assert out.shape[:2] == (50, 50) and near(out[25, 25], RED)
    out = run(img, {"op": "crop", "width": 40, "height": 40, "x": 150, "y": 60})
    assert out.shape[:2] == (40, 40) and near(out[20, 20], WHITE)
    out = run(img, {"op": "crop", "width": 500, "height": 20, "x": 190, "y": 0})
    assert out.shape[:2] == (20, 10)  # clamped to the image
    with pytest.raises(ImageRejected):
        run(img, {"op": "crop", "width": 10, "height": 10, "x": 500, "y": 0})


def test_thumbnail_fit_and_square():
    img = quadrants(400, 200)
    assert run(img, {"op": "thumbnail", "size": 100}).shape[:2] == (50, 100)
    square = run(img, {"op": "thumbnail", "size": 100, "square": True})
    assert square.shape[:2] == (100, 100)
    assert near(square[10, 10], RED) and near(square[90, 90], WHITE)


def test_rotate_right_angles_move_quadrants():
    img = quadrants(200, 100)
    out = run(img, {"op": "rotate", "angle": 90})  # counter-clockwise
    assert out.shape[:2] == (200, 100)
    assert near(out[10, 10], GREEN) and near(out[190, 10], RED)
    out = run(img, {"op": "rotate", "angle": 180})
    assert near(out[10, 10], WHITE)


def test_rotate_any_angle_grows_canvas_with_background():
    out = run(np.zeros((100, 100, 3), np.uint8), {"op": "rotate", "angle": 45,
                                                   "background": "#00ff00"})
    assert out.shape[0] == out.shape[1] == 142
    assert near(out[1, 1], GREEN) and near(out[71, 71], (0, 0, 0))


@pytest.mark.parametrize(("direction", "top_left"), [("horizontal", GREEN),
                                                     ("vertical", BLUE), ("both", WHITE)])
def test_flip(direction, top_left):
    assert near(run(quadrants(), {"op": "flip", "direction": direction})[5, 5], top_left)


@pytest.mark.parametrize(("orientation", "shape", "top_left"), [
    (1, (100, 200), RED), (3, (100, 200), WHITE), (6, (200, 100), BLUE),
    (8, (200, 100), GREEN), (2, (100, 200), GREEN)])
def test_exif_orientation_is_applied_by_default(orientation, shape, top_left):
    out = run(quadrants(200, 100), orientation=orientation)
    assert out.shape[:2] == shape and near(out[5, 5], top_left)


def test_orientation_can_be_ignored():
    out = run(quadrants(200, 100), {"op": "orient", "auto": False}, orientation=6)
    assert out.shape[:2] == (100, 200) and near(out[5, 5], RED)


def test_exif_orientation_from_a_real_jpeg():
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(quadrants(200, 100)).save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    frame = decode(buffer.getvalue(), max_pixels=10**6)
    assert frame.orientation == 6
    chain = compile_chain([{"op": "encode", "format": "jpeg", "keep_metadata": True}], LIMITS)
    encoded = chain.run(frame, LIMITS)
    out = open_bytes(encoded.data)
    assert out.size == (100, 200)
    assert out.getexif().get(0x0112) == 1  # kept EXIF no longer asks viewers to rotate


def test_metadata_is_stripped_by_default():
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    data = encode(quadrants(), "JPEG", exif=exif.tobytes())
    frame = decode(data, max_pixels=10**6)
    stripped = compile_chain([{"op": "encode", "format": "jpeg"}], LIMITS).run(frame, LIMITS)
    assert b"SecretCam" not in stripped.data
    kept = compile_chain([{"op": "encode", "format": "jpeg", "keep_metadata": True}],
                         LIMITS).run(frame, LIMITS)
    assert b"SecretCam" in kept.data


def test_grayscale():
    out = run(quadrants(), {"op": "grayscale"})
    assert out.ndim == 2
    assert abs(int(out[5, 5]) - 76) <= 1 and int(out[95, 195]) == 255  # 0.299 * 255


def test_blur_softens_an_edge_and_sharpen_steepens_it():
    img = quadrants(200, 100)
    blurred = run(img, {"op": "blur", "sigma": 5})
    assert 40 < int(blurred[25, 100, 0]) < 215  # red->green edge is now a ramp
    assert near(blurred[25, 20], RED)
    soft = run(img, {"op": "blur", "sigma": 2})
    sharp = run(img, {"op": "blur", "sigma": 2}, {"op": "sharpen", "amount": 2, "sigma": 2})
    assert np.abs(np.diff(sharp[25, 90:110, 0].astype(int))).max() > np.abs(
        np.diff(soft[25, 90:110, 0].astype(int))).max()


def test_adjust_brightness_and_contrast():
    gray = np.full((10, 10, 3), 100, np.uint8)
    assert int(run(gray, {"op": "adjust", "brightness": 0.2})[5, 5, 0]) == 151
    assert int(run(gray, {"op": "adjust", "contrast": 2.0})[5, 5, 0]) == 72
    with pytest.raises(InvalidRequest):
        compile_chain([{"op": "adjust"}], LIMITS)


def test_edges_find_the_quadrant_borders():
    out = run(quadrants(200, 100), {"op": "edges"})
    assert out.ndim == 2
    assert out[:, 98:102].max() == 255 and out[48:52, :].max() == 255
    assert out[10:40, 10:90].max() == 0


def test_text_watermark_lands_where_asked():
    img = np.zeros((200, 400, 3), np.uint8)
    out = run(img, {"op": "watermark", "text": "imgpipe", "gravity": "southeast",
                    "opacity": 1.0, "size": 0.1, "margin": 10})
    assert out[150:, 200:].max() == 255  # white text, bottom right
    assert out[:100, :200].max() == 0


def test_image_watermark_uses_the_context_loader():
    overlay = np.zeros((10, 10, 3), np.uint8)
    overlay[:] = BLUE
    loaded = []

    def load(uri, max_pixels):
        loaded.append(uri)
        return overlay

    img = np.full((100, 100, 3), 255, np.uint8)
    out = run(img, {"op": "watermark", "image": "file:///logo.png", "gravity": "northwest",
                    "opacity": 1.0, "size": 0.2, "margin": 0}, ctx=RunContext(load))
    assert loaded == ["file:///logo.png"]
    assert near(out[5, 5], BLUE) and near(out[50, 50], WHITE)
    chain = compile_chain([{"op": "watermark", "image": "file:///logo.png"}], LIMITS)
    assert chain.source_uris() == ["file:///logo.png"]
    with pytest.raises(InvalidRequest):
        compile_chain([{"op": "watermark"}], LIMITS)


def test_avif_and_webp_lossless():
    img = quadrants()
    frame = Frame(img)
    avif = compile_chain([{"op": "encode", "format": "avif", "quality": 60}],
                         LIMITS).run(frame, LIMITS)
    assert open_bytes(avif.data).format == "AVIF" and avif.extension == "avif"
    lossless = compile_chain([{"op": "encode", "format": "webp", "lossless": True}],
                             LIMITS).run(frame, LIMITS)
    assert np.array_equal(np.asarray(open_bytes(lossless.data).convert("RGB")), img)


def test_phash_matches_near_duplicates_and_separates_different_images():
    a = photo_like(320, 240, 1)
    b = np.clip(a.astype(int) + 12, 0, 255).astype(np.uint8)  # brighter copy
    resized = np.asarray(Image.fromarray(a).resize((160, 120)))
    other = photo_like(320, 240, 99)
    assert hamming(phash(a), phash(b)) <= 4
    assert hamming(phash(a), phash(resized)) <= 4
    assert hamming(phash(a), phash(other)) > 12


def test_output_limit_is_enforced_at_run_time():
    frame = Frame(np.zeros((100, 100, 3), np.uint8))
    chain = compile_chain([{"op": "resize", "width": 10000, "upscale": True}], LIMITS)
    with pytest.raises(ImageRejected) as info:
        chain.run(frame, LIMITS)
    assert info.value.code == "output_too_large"


@pytest.mark.parametrize("spec", [
    "a=thumbnail:64:square,gray,webp:q70:m0", "a=crop:10x10:north,rotate:90,avif:q40",
    "a=crop:10x10:3:4,flip:h,png", "a=blur:1.5,sharpen:2,bright:0.1,contrast:1.2,jpeg",
    "a=edges:50:150,png", "a=wm:hello,noorient,jpeg:q90:progressive:keepmeta"])
def test_every_spec_token_compiles(spec):
    _, ops = parse_variant_spec(spec)
    compile_chain(ops, LIMITS)


def test_variants_share_work_without_changing_results():
    from pipeline.ops import compile_variants
    from pipeline.ops.chain import shared_prefixes

    frame = Frame(photo_like(1600, 1200, 5))
    variants = {
        "large": [{"op": "resize", "width": 1000}, {"op": "encode", "format": "png"}],
        "mid": [{"op": "resize", "width": 1000}, {"op": "grayscale"},
                {"op": "encode", "format": "png"}],
        "thumb": [{"op": "resize", "width": 200, "height": 200},
                  {"op": "encode", "format": "png"}],
        "square": [{"op": "resize", "width": 100, "height": 100, "mode": "fill"},
                   {"op": "encode", "format": "png"}],
    }
    chains = compile_variants(variants, LIMITS, 8)
    alone = {n: np.asarray(open_bytes(c.run(frame, LIMITS).data)) for n, c in chains.items()}
    shared = shared_prefixes(chains)
    together = {n: np.asarray(open_bytes(chains[n].run(frame, LIMITS, shared=shared).data))
                for n in ("large", "mid", "thumb", "square")}
    assert any(v is not None for v in shared.values())  # the 1000 px resize was reused
    for name in variants:
        assert together[name].shape == alone[name].shape
        diff = np.abs(together[name].astype(int) - alone[name].astype(int))
        assert diff.mean() < 1.5, name
    assert np.array_equal(together["square"], alone["square"])  # fill is never shortcut
