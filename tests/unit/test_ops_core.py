import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ImageRejected, InvalidRequest, PermanentError
from pipeline.imaging.decode import decode
from pipeline.ops import Limits, compile_chain, compile_variants, parse_variant_specs
from pipeline.ops.spec import parse_variant_spec
from tests.images import encode, open_bytes, quadrants

LIMITS = Limits()


def run(pixels, ops, fmt="PNG"):
    frame = decode(encode(pixels, fmt), max_pixels=10**8)
    return compile_chain(ops, LIMITS).run(frame, LIMITS)


@pytest.mark.parametrize(("mode", "box", "expected"), [
    ("fit", (100, 100), (100, 50)),
    ("cover", (100, 100), (200, 100)),  # never upscales: 200x100 already covers 100x100
    ("fill", (50, 50), (50, 50)),
    ("exact", (30, 70), (30, 70)),
])
def test_resize_modes(mode, box, expected):
    out = run(quadrants(), [{"op": "resize", "width": box[0], "height": box[1], "mode": mode},
                            {"op": "encode", "format": "png"}])
    assert (out.width, out.height) == expected
    assert open_bytes(out.data).size == expected


def test_resize_keeps_regions_in_place():
    out = run(quadrants(400, 200), [{"op": "resize", "width": 100},
                                    {"op": "encode", "format": "png"}])
    pixels = np.asarray(open_bytes(out.data))
    assert pixels.shape == (50, 100, 3)
    assert tuple(pixels[10, 10]) == (255, 0, 0)
    assert tuple(pixels[10, 90]) == (0, 255, 0)
    assert tuple(pixels[40, 10]) == (0, 0, 255)
    assert tuple(pixels[40, 90]) == (255, 255, 255)


def test_no_upscale_unless_asked():
    small = quadrants(40, 20)
    assert run(small, [{"op": "resize", "width": 400}]).width == 40
    assert run(small, [{"op": "resize", "width": 400, "upscale": True}]).width == 400


@pytest.mark.parametrize(("fmt", "pil"), [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")])
def test_encode_formats(fmt, pil):
    out = run(quadrants(), [{"op": "encode", "format": fmt, "quality": 90}])
    assert open_bytes(out.data).format == pil
    assert out.format == fmt


def test_default_encode_is_jpeg_and_alpha_is_flattened():
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 255  # fully transparent red
    out = run(rgba, [])
    img = open_bytes(out.data)
    assert img.format == "JPEG" and img.mode == "RGB"
    assert np.asarray(img)[5, 5].min() > 240  # white background, not red


@pytest.mark.parametrize(("ops", "code"), [
    ([{"op": "explode"}], "unknown_op"),
    ([{"width": 5}], "unknown_op"),
    ([{"op": "resize"}], "missing_param"),
    ([{"op": "resize", "width": -1}], "bad_param"),
    ([{"op": "resize", "width": "big"}], "bad_param"),
    ([{"op": "resize", "width": 10, "mode": "stretch"}], "bad_param"),
    ([{"op": "resize", "width": 10, "colour": 1}], "bad_param"),
    ([{"op": "resize", "width": 10, "mode": "fill"}], "missing_param"),
    ([{"op": "resize", "width": 10000, "height": 10000}], "output_too_large"),
    ([{"op": "encode", "format": "tiff"}], "bad_param"),
    ([{"op": "encode"}], "missing_param"),
    ([{"op": "encode", "format": "png"}, {"op": "resize", "width": 5}], "bad_chain"),
    ([{"op": "encode", "format": "jpeg", "lossless": True}], "bad_param"),
    ([{"op": "encode", "format": "webp", "quality": 101}], "bad_param"),
])
def test_invalid_chains_are_rejected_with_reasons(ops, code):
    with pytest.raises(InvalidRequest) as info:
        compile_chain(ops, LIMITS)
    assert info.value.code == code


def test_variant_errors_name_the_variant():
    with pytest.raises(InvalidRequest) as info:
        compile_variants({"thumb": [{"op": "nope"}]}, LIMITS, 4)
    assert "variant 'thumb'" in info.value.message
    with pytest.raises(InvalidRequest) as info:
        compile_variants({f"v{i}": [] for i in range(5)}, LIMITS, 4)
    assert info.value.code == "too_many_variants"


def test_compact_spec():
    assert parse_variant_spec("thumb=fit:256x256,webp:q80:m2") == ("thumb", [
        {"op": "resize", "width": 256, "height": 256, "mode": "fit"},
        {"op": "encode", "format": "webp", "quality": 80, "method": 2}])
    assert set(parse_variant_specs([])) == {"thumb", "large"}
    for bad in ["thumb", "=fit:1x1", "t=fit:axb", "t=zoom:2", "t=webp:z9"]:
        with pytest.raises(InvalidRequest):
            parse_variant_specs([bad])


@given(st.text(max_size=40))
def test_spec_parser_never_crashes(text):
    try:
        variants = parse_variant_specs([text])
    except InvalidRequest:
        return
    for ops in variants.values():
        with contextlib.suppress(InvalidRequest):
            compile_chain(ops, LIMITS)


@given(width=st.integers(0, 20000), height=st.integers(0, 20000),
       mode=st.sampled_from(["fit", "fill", "cover", "exact"]),
       fmt=st.sampled_from(["jpeg", "png", "webp"]), quality=st.integers(-5, 120))
def test_valid_chains_always_compile_invalid_never(width, height, mode, fmt, quality):
    spec = f"v={mode}:{width}x{height},{fmt}:q{quality}"
    valid = (0 < quality <= 100 and width <= 16384 and height <= 16384
             and (width or height) and (mode in ("fit", "cover") or (width and height))
             and not (width and height and width * height > LIMITS.max_output_pixels))
    try:
        compile_variants(parse_variant_specs([spec]), LIMITS, 4)
        assert valid
    except InvalidRequest:
        assert not valid


def test_jpeg_fast_path_decodes_fewer_pixels_same_output():
    big = np.tile(quadrants(400, 300), (8, 8, 1))  # 3200x2400
    data = encode(big, "JPEG", quality=90)
    chain = compile_chain([{"op": "resize", "width": 200, "height": 200},
                           {"op": "encode", "format": "png"}], LIMITS)
    scale = chain.load_scale(3200, 2400)
    assert scale == pytest.approx(200 / 3200)
    fast = decode(data, max_pixels=10**8, load_scale=scale)
    full = decode(data, max_pixels=10**8)
    assert fast.width < full.width and fast.width >= 200
    a = chain.run(fast, LIMITS)
    b = chain.run(full, LIMITS)
    assert (a.width, a.height) == (b.width, b.height) == (200, 150)
    diff = np.abs(np.asarray(open_bytes(a.data), np.int16) - np.asarray(open_bytes(b.data)))
    assert diff.mean() < 3


def test_decode_rejects_bombs_from_the_header():
    data = encode(np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(ImageRejected) as info:
        decode(data, max_pixels=5000)
    assert info.value.code == "decompression_bomb"


@pytest.mark.parametrize(("data", "code"), [
    (b"", "empty_source"),
    (b"hello world, not an image", "not_an_image"),
])
def test_decode_rejects_non_images(data, code):
    with pytest.raises(ImageRejected) as info:
        decode(data, max_pixels=10**6)
    assert info.value.code == code


def test_decode_rejects_truncated():
    data = encode(quadrants(), "JPEG")
    with pytest.raises(ImageRejected) as info:
        decode(data[: len(data) // 2], max_pixels=10**6)
    assert info.value.code == "corrupt_image"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8)
param_names = st.sampled_from(["width", "height", "mode", "size", "square", "x", "y",
                               "gravity", "angle", "sigma", "amount", "format", "quality",
                               "text", "image", "op", "direction", "low", "high",
                               "colour_space"])
op_names = st.sampled_from(["resize", "thumbnail", "crop", "rotate", "flip", "grayscale",
                            "blur", "sharpen", "adjust", "edges", "watermark", "encode",
                            "orient", "to_srgb", "nope"])


@settings(deadline=None, max_examples=150)
@given(st.lists(st.builds(lambda name, params: {"op": name, **params}, op_names,
                          st.dictionaries(param_names, json_values, max_size=4)),
                max_size=5))
def test_arbitrary_op_objects_either_compile_or_give_a_reason(ops):
    """Whatever JSON arrives, validation answers with a chain or an InvalidRequest."""
    try:
        chain = compile_chain(ops, LIMITS)
    except InvalidRequest as exc:
        assert exc.code and exc.message
        return
    assert chain.encode_args["format"] in ("jpeg", "png", "webp", "avif")
    names = [step.operation.name for step in chain.steps]
    if not any(o.get("op") == "to_srgb" for o in ops):  # implicit, first, unless kept
        assert (names[0] == "to_srgb") == (chain.encode_args["colour_space"] == "srgb")
    if not any(o.get("op") == "orient" for o in ops):
        assert "orient" in names[:2]
    small = Limits(max_output_pixels=4_000_000, max_dimension=4096)
    try:  # a valid chain runs, or fails with a permanent, explained error
        out = chain.run(decode(encode(quadrants(32, 24)), max_pixels=10**6), small)
    except PermanentError as exc:
        assert exc.code in ("output_too_large", "crop_outside_image", "bad_param"), exc
    else:
        assert out.data and out.width >= 1 and out.height >= 1
